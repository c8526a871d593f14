/**
 * teams-direct-routing §1.2: a gateway configured for GCC High (`teams.cloud: gcch`, no proxy
 * list) uses that cloud's one proxy, sip.pstnhub.gov.teams.microsoft.us:5061: calls and OPTIONS
 * go there with the government FQDN in the Request-URI and To, and there is no sip2/sip3 to fail
 * over to. The fake Teams plays the same cloud; its sip2/sip3 endpoints still listen, so a
 * gateway that reached for a commercial proxy would be recorded there.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { step } from '../../helpers/fake-teams/index.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, expectSippOk, finalStatuses, received, startTarget } from './sipp-gateway.js';

const GOV = 'sip.pstnhub.gov.teams.microsoft.us';
let h: GatewayHarness;
beforeAll(async () => {
  // `proxies: undefined` drops the harness' explicit list, so the gcch preset applies; the
  // resolver override (ft.hosts) maps the government FQDN to the fake's sip endpoint.
  h = await startGatewayHarness({ fakeTeams: { cloud: 'gcch' }, config: { teams: { cloud: 'gcch', proxies: undefined }, ops: { optionsIntervalSec: 0.5 } } });
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const C = CARRIER_IPS[3];

describe('Teams in GCC High (teams.cloud: gcch)', () => {
  it('the preset names the one government proxy', () => {
    expect(h.ft.hosts[GOV]).toBe(h.ft.endpoints.sip.address);
    expect(h.gw.ctx.config.teams.proxies).toEqual([{ host: GOV, port: 5061 }]);
    expect(h.gw.ctx.config.teams.sourceCidrs).toEqual(['127.0.5.0/24']); // the harness' own, kept over the preset
  });

  it('a carrier call reaches the government proxy with its FQDN in the Request-URI and To', async () => {
    h.ft.script([step.ringing(0), step.answer(30)]);
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550163' });
    expectSippOk(r);
    const calls = h.ft.calls.slice(before);
    expect(calls.map((c) => c.endpoint)).toEqual(['sip']);
    const inv = calls[0]!.invite;
    expect(inv.uri).toBe(`sip:+14255550163@${GOV}:5061;user=phone`);
    expect(inv.get('to')).toMatch(/^<sip:\+14255550163@sip\.pstnhub\.gov\.teams\.microsoft\.us;user=phone>/);
    expect(inv.getAll('contact')).toEqual(['<sip:+14255550163@acme.customers.example.net:5061;transport=tls>']);
    await waitFor(() => calls[0]!.ended, { what: 'BYE at the government proxy' });
    expect(h.ft.violations).toEqual([]);
  });

  it('no sip2/sip3 in this cloud: the proxy\'s 503 reaches the carrier and nothing else is tried', async () => {
    h.ft.script([step.reject(503)], { endpoint: 'sip', times: 1 });
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C, to: '+14255550164' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([503]);
    await sleep(300);
    expect(h.ft.calls.slice(before).map((c) => c.endpoint)).toEqual(['sip']);
  });

  it('OPTIONS health checks go to the government proxy only', async () => {
    await waitFor(() => h.ft.options.filter((o) => o.status === 200).length >= 2 || undefined, { timeoutMs: 8000, what: 'two answered OPTIONS' });
    expect(new Set(h.ft.options.map((o) => o.endpoint))).toEqual(new Set(['sip']));
    expect(h.ft.options.every((o) => o.requestUri.includes(`@${GOV}`) || o.requestUri.startsWith(`sip:${GOV}`))).toBe(true);
    expect(h.ft.violations).toEqual([]);
  });

  it('a call from the government proxy reaches the carrier', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460129', tenant: 'acme.customers.example.net', from: '+14255550100' });
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    expect(received(r, /^INVITE /)).toHaveLength(1);
    expect(h.ft.violations).toEqual([]);
  });
});
