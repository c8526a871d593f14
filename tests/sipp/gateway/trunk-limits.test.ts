/**
 * A carrier trunk's own capacity (carriers[].limits: its channels and calls per second, both
 * directions together), applied by a partner admin with `teams-gw tenants apply` and counted in
 * Redis like the tenants' limits. Inbound calls over the limit get 503 with Retry-After whatever
 * their tenant; Teams → PSTN calls pass a full trunk over for the tenant's next one.
 * In the same two-carrier set: a tenant whose numbers only one carrier may deliver
 * (tenants[].inboundCarriers).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { step } from '../../helpers/fake-teams/index.js';
import { waitFor } from '../../helpers/net.js';
import { CARRIER_IPS, GW_IP, type GatewayHarness, TARGET_IPS, TENANTS_DIR, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, carrierCallAsync, expectSippOk, finalStatuses, header, received, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
let dir: string;
beforeAll(async () => {
  h = await startGatewayHarness({ tenantStore: 'redis' });
  // carrier-a: one channel; carrier-b: acme's second trunk, its target on 127.0.6.31.
  dir = mkdtempSync(join(tmpdir(), 'trunk-limits-'));
  cpSync(TENANTS_DIR, dir, { recursive: true });
  const carriers = readFileSync(join(dir, 'carriers.yaml'), 'utf8');
  const limited = carriers.replace('    auth:\n', '    limits: { maxConcurrentCalls: 1 }\n    auth:\n');
  writeFileSync(
    join(dir, 'carriers.yaml'),
    `${limited}\n  - name: carrier-b\n    sources: [127.0.6.21]\n    targets:\n      - { host: ${TARGET_IPS[1]}, port: 5060, transport: udp, priority: 10 }\n`,
  );
  const tenants = readFileSync(join(dir, 'tenants.yaml'), 'utf8');
  writeFileSync(
    join(dir, 'tenants.yaml'),
    tenants
      .replace('    trunks: [{ carrier: carrier-a, priority: 10 }]\n', '    trunks: [{ carrier: carrier-a, priority: 10 }, { carrier: carrier-b, priority: 20 }]\n')
      // strict's numbers are hosted by carrier-b only.
      .replace('    fqdn: strict.customers.example.net\n', '    fqdn: strict.customers.example.net\n    inboundCarriers: [carrier-b]\n'),
  );
  const v = h.gw.ctx.tenants.version();
  const applied = await h.tenantsCli(['apply', '--config-dir', dir]);
  expect(applied.code, applied.err).toBe(0);
  await waitFor(() => h.gw.ctx.tenants.version() > v, { timeoutMs: 3000, what: 'the trunk limits applied' });
  expect(h.gw.ctx.tenants.carrier('carrier-a')?.limits).toEqual({ maxConcurrentCalls: 1 });
});
afterEach(async () => h.afterEach());
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await h.close();
});

it('a trunk at its channel limit: another inbound call gets 503 with Retry-After (any tenant), acme\'s Teams → PSTN call takes its next trunk; the channel frees when the call ends', async () => {
  h.ft.script([step.answer(20)]);
  const mark = h.ft.calls.length;
  const first = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: CARRIER_IPS[0], to: '+14255550153' });
  const call = await h.nextCall(mark);
  await call.waitForAck();

  // Inbound, another tenant: the trunk is full.
  const refused = await carrierCall({ scenario: 'carrier-call-reject.xml', from: CARRIER_IPS[1], to: '+14255550301' });
  expectSippOk(refused);
  expect(finalStatuses(refused)).toEqual([503]);
  const res = received(refused, /^SIP\/2\.0 503/)[0]!;
  expect(header(res, 'Reason')).toMatch(/^Q\.850;cause=34;text="Trunk carrier-a limit reached \(concurrency\)"/);
  expect(header(res, 'Retry-After')).toBeDefined();
  expect(h.ft.calls.length).toBe(mark + 1);

  // Teams → PSTN for acme: carrier-a is full, so carrier-b (priority 20) gets the call.
  const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[1] });
  const out = h.ft.originate({ to: '+442079460160', tenant: 'acme.customers.example.net' });
  expect((await out.waitForFinal()).status).toBe(200);
  expect((await out.bye()).status).toBe(200);
  expectSippOk(await target.done);
  expect(h.logs.some((l) => l.msg === 'carrier trunk limit reached: next trunk' && l.carrier === 'carrier-a')).toBe(true);

  // The first call ends: the channel is free again.
  expect((await call.bye()).status).toBe(200);
  expectSippOk(await first.done);
  h.ft.script([step.answer(20)]);
  const again = await carrierCall({ scenario: 'carrier-call-bye.xml', from: CARRIER_IPS[1], to: '+14255550154' });
  expectSippOk(again);
  expect(finalStatuses(again)).toEqual([200]);
});

it('a tenant whose numbers carrier-b hosts (inboundCarriers): carrier-a\'s call for one gets 404, logged and counted, and never reaches Teams; carrier-b\'s is put through', async () => {
  // Applied through Redis like the rest of the set.
  expect((await h.gw.ctx.tenants.lookupNumber('+14255550701'))?.tenant.inboundCarriers).toEqual(['carrier-b']);
  const mark = h.ft.calls.length;
  const refused = await carrierCall({ scenario: 'carrier-call-reject.xml', from: CARRIER_IPS[0], to: '+14255550701' });
  expectSippOk(refused);
  expect(finalStatuses(refused)).toEqual([404]);
  expect(header(received(refused, /^SIP\/2\.0 404/)[0]!, 'Reason')).toBe('Q.850;cause=1;text="Number not served over carrier carrier-a"');
  expect(h.ft.calls.length).toBe(mark);
  expect(h.logs.some((l) => l.msg === 'call rejected' && l.tenant === 'strict' && l.carrier === 'carrier-a' && l.status === 404)).toBe(true);
  const metrics = await (await fetch(`http://${GW_IP}:${h.gw.ops.http.port}/metrics`)).text();
  expect(metrics).toContain('teamsgw_calls_rejected_total{direction="inbound",carrier="carrier-a",reason="carrier-not-allowed"} 1');

  h.ft.script([step.answer(20)]);
  const ok = await carrierCall({ scenario: 'carrier-call-bye.xml', from: '127.0.6.21', to: '+14255550702' });
  expectSippOk(ok);
  expect(finalStatuses(ok)).toEqual([200]);
  expect(h.ft.calls.length).toBe(mark + 1);
});
