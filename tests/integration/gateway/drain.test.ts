/**
 * SIGTERM behaviour (issue 4, "SIGTERM drains"): gateway.drain() refuses new calls with 503
 * (both directions), lets the existing call finish, then closes. Maintenance drain over the ops
 * endpoint (POST /drain, POST /resume) does the same without closing.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { step } from '../../helpers/fake-teams/index.js';
import { sleep } from '../../helpers/net.js';
import { carrierCall, carrierCallAsync, expectSippOk, finalStatuses, header, optionsFrom, received } from '../../sipp/gateway/sipp-gateway.js';
import { CARRIER_IPS, GW_IP, type GatewayHarness, startGatewayHarness } from './harness.js';

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

it('drain: new calls get 503, the existing call finishes, then the gateway closes', async () => {
  h.ft.script([step.answer(20)]);
  const mark = h.ft.calls.length;
  const existing = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: CARRIER_IPS[0], to: '+14255550140' });
  const call = await h.nextCall(mark);
  await call.waitForAck();
  const gw = h.gw;
  let drained = false;
  const draining = gw.drain().then(() => (drained = true));
  await sleep(100);
  expect(gw.ctx.draining).toBe(true);

  // PSTN → Teams: 503 with Retry-After.
  const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: CARRIER_IPS[1], to: '+14255550141' });
  expectSippOk(r);
  expect(finalStatuses(r)).toEqual([503]);
  const res = received(r, /^SIP\/2\.0 503/)[0]!;
  expect(header(res, 'Retry-After')).toBeDefined();
  expect(header(res, 'Reason')).toMatch(/draining/);
  // Teams → PSTN: 503 too (Teams re-routes on 503, §1.11).
  const t = h.ft.originate({ to: '+442079460140', tenant: 'acme.customers.example.net' });
  expect((await t.waitForFinal()).status).toBe(503);
  expect(h.ft.calls.length).toBe(mark + 1);

  // The existing call is still up; the gateway waits for it.
  await sleep(500);
  expect(drained).toBe(false);
  expect(gw.ctx.calls.size).toBe(1);
  expect((await call.bye()).status).toBe(200);
  expectSippOk(await existing.done);
  const t0 = Date.now();
  await draining;
  expect(Date.now() - t0).toBeLessThan(2000);
  expect(gw.ctx.calls.size).toBe(0);

  // Closed: nothing listens for call control any more. A fresh gateway shows rtpengine holds
  // no session (the afterEach check runs against it).
  await h.restartGateway();
  expect(await h.pool.activeSessions()).toBe(0);
});

async function post(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { method: 'POST' });
  return { status: r.status, body: await r.json() };
}

it('maintenance drain over HTTP: /ready fails, new calls and OPTIONS get 503, the call in progress goes on; /resume takes calls again', async () => {
  const ops = `http://${GW_IP}:${h.gw.ops.http.port}`;
  h.ft.script([step.answer(20)]);
  const mark = h.ft.calls.length;
  const existing = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: CARRIER_IPS[0], to: '+14255550142' });
  const call = await h.nextCall(mark);
  await call.waitForAck();
  expect((await fetch(`${ops}/ready`)).status).toBe(200);
  expect((await fetch(`${ops}/drain`)).status).toBe(405); // a GET changes nothing
  expect(await post(`${ops}/drain`)).toEqual({ status: 200, body: { draining: true, calls: 1 } });

  const ready = await fetch(`${ops}/ready`);
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { checks: Record<string, boolean> }).checks).toMatchObject({ accepting: false, sip: true });
  const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: CARRIER_IPS[1], to: '+14255550143' });
  expectSippOk(r);
  expect(finalStatuses(r)).toEqual([503]);
  expect(header(received(r, /^SIP\/2\.0 503/)[0]!, 'Retry-After')).toBeDefined();
  expect((await h.ft.originate({ to: '+442079460142', tenant: 'acme.customers.example.net' }).waitForFinal()).status).toBe(503);
  expect((await optionsFrom(CARRIER_IPS[2], 1))?.status).toBe(503);
  expect(h.gw.ctx.calls.size).toBe(1); // the call in progress is untouched

  expect(await post(`${ops}/resume`)).toEqual({ status: 200, body: { draining: false, calls: 1 } });
  expect((await fetch(`${ops}/ready`)).status).toBe(200);
  expect((await optionsFrom(CARRIER_IPS[2], 2))?.status).toBe(200);
  const m2 = h.ft.calls.length;
  h.ft.script([step.answer(20)]);
  const next = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: CARRIER_IPS[3], to: '+14255550144' });
  const c2 = await h.nextCall(m2);
  await c2.waitForAck();
  expect((await c2.bye()).status).toBe(200);
  expectSippOk(await next.done);

  // Once the process is stopping (SIGTERM), the drain cannot be undone. (The first call is still
  // up, so the shutdown drain waits and the ops endpoint is still there to ask.)
  const stopping = h.gw.drain();
  await sleep(50);
  expect(await post(`${ops}/resume`)).toEqual({ status: 409, body: { error: 'the gateway is stopping', draining: true, calls: 1 } });
  expect((await call.bye()).status).toBe(200);
  expectSippOk(await existing.done);
  await stopping;
  await h.restartGateway();
});

it('ops.adminToken: requests that change something need the bearer token; reads stay open', async () => {
  const token = 'ops-T0ken-for-tests';
  await h.restartGateway({ ops: { adminToken: token } });
  try {
    const ops = `http://${GW_IP}:${h.gw.ops.http.port}`;
    const call = (path: string, method: string, auth?: string) => fetch(`${ops}${path}`, { method, ...(auth ? { headers: { Authorization: auth } } : {}) });
    for (const [path, method] of [['/drain', 'POST'], ['/resume', 'POST'], ['/tls/reload', 'POST'], ['/loglevel/debug', 'PUT']] as const) {
      const none = await call(path, method);
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect((await call(path, method, 'Bearer wrong-token-of-same-size')).status).toBe(401);
    }
    expect(h.gw.ctx.draining).toBe(false);
    expect(await (await call('/loglevel', 'GET')).text()).not.toBe('debug\n');
    expect((await call('/drain', 'POST', `Bearer ${token}`)).status).toBe(200);
    expect(h.gw.ctx.draining).toBe(true);
    expect((await call('/resume', 'POST', `bearer ${token}`)).status).toBe(200);
    expect(h.gw.ctx.draining).toBe(false);
    for (const path of ['/metrics', '/ready', '/status', '/health']) expect((await call(path, 'GET')).status, path).toBe(200);
  } finally {
    await h.restartGateway({ ops: { adminToken: '' } });
  }
});
