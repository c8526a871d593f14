/**
 * The same call flows with call control connected to our SIP server running as a separate
 * process (`node dist/cli.js sip-server`, external mode): the gateway code has no path
 * specific to the embedded server. Needs `npm run build` first.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp, step } from '../../helpers/fake-teams/index.js';
import { sleep } from '../../helpers/net.js';
import { assertCliBuilt } from '../../helpers/sip-server.js';
import { carrierCall, expectSippOk, received, startTarget } from '../../sipp/gateway/sipp-gateway.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from './harness.js';

let h: GatewayHarness;
beforeAll(async () => {
  assertCliBuilt();
  h = await startGatewayHarness({ mode: 'external' });
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

describe('external SIP server process', () => {
  it('runs without an embedded server', () => {
    expect(h.gw.server).toBeUndefined();
    expect(h.config.sipServer.mode).toBe('external');
  });

  it('PSTN → Teams: answered call with the Teams MUST items, carrier hangs up', async () => {
    h.ft.script([step.ringing(0), step.answer(50)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: CARRIER_IPS[0], to: '+14255550150' });
    expectSippOk(r);
    const call = h.ft.calls.at(-1)!;
    expect(call.invite.uri).toBe('sip:+14255550150@sip.pstnhub.microsoft.com:5061;user=phone');
    expect(call.invite.getAll('contact')).toEqual(['<sip:+14255550150@acme.customers.example.net:5061;transport=tls>']);
    expect(audioOf(parseSdp(call.invite.body.toString('utf8')))!.proto).toBe('RTP/SAVP');
    expect(received(r, /^SIP\/2\.0 200/)[0]).toMatch(/RTP\/AVP/);
  });

  it('PSTN → Teams: 503 + Retry-After on sip fails over to sip2', async () => {
    h.ft.script([step.reject(503, { retryAfter: 1 })], { endpoint: 'sip', times: 1 });
    h.ft.script([step.answer(20)], { endpoint: 'sip2' });
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: CARRIER_IPS[0], to: '+14255550151' });
    expectSippOk(r);
    expect(h.ft.calls.slice(-2).map((c) => c.endpoint)).toEqual(['sip', 'sip2']);
    await sleep(1100);
  });

  it('Teams → PSTN: routed by the tenant FQDN, 503 from the first target fails over to the second', async () => {
    const t1 = await startTarget({ scenario: 'target-reject-503.xml', ip: TARGET_IPS[0] });
    const t2 = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[1] });
    const call = h.ft.originate({ to: '+442079460150', tenant: 'acme.customers.example.net' });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    expect(ok.getAll('contact')).toEqual(['<sip:acme.customers.example.net:5061;transport=tls>']);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await t1.done);
    expectSippOk(await t2.done);
  });
});
