/**
 * SIP INFO (issue 5): passed to the other leg or answered locally, as configured (calls.info).
 * INFO is never sent toward Teams (its Allow lacks INFO).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { expectSippOk, received, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async () => {
  h.gw.ctx.features = undefined;
  await h.afterEach();
});
afterAll(async () => h.close());

const DTMF_INFO = 'Signal=5\r\nDuration=160\r\n';

describe('SIP INFO', () => {
  it('pass mode (default): INFO from Teams reaches the carrier with its body, and the carrier\'s 200 comes back', async () => {
    expect(h.gw.ctx.config.calls.info).toBe('pass');
    const target = await startTarget({ scenario: 'target-answer-info.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460132', tenant: 'acme.customers.example.net' });
    expect((await call.waitForFinal()).status).toBe(200);
    const r = await call.send('INFO', { body: DTMF_INFO, contentType: 'application/dtmf-relay' });
    expect(r.status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const res = await target.done;
    expectSippOk(res);
    const infos = received(res, /^INFO /);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatch(/Content-Type: application\/dtmf-relay/i);
    expect(infos[0]).toContain('Signal=5');
  });

  it('local mode: INFO from Teams is answered 200 by the gateway and never reaches the carrier', async () => {
    h.gw.ctx.features = { info: 'local' };
    // target-answer.xml has no INFO step: an INFO reaching it would fail the scenario.
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460133', tenant: 'acme.customers.example.net' });
    expect((await call.waitForFinal()).status).toBe(200);
    const r = await call.send('INFO', { body: DTMF_INFO, contentType: 'application/dtmf-relay' });
    expect(r.status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const res = await target.done;
    expectSippOk(res);
    expect(received(res, /^INFO /)).toEqual([]);
    expect(received(res, /^BYE /)).toHaveLength(1);
  });
});
