/**
 * Ring groups ("group calls", issue 5) end to end, defined where partner admins define them: per
 * DID in the tenant config. The fixture (tests/fixtures/gateway/tenants, tenant acme) is applied
 * with the real `teams-gw tenants apply` to a throwaway Redis and served to the gateway by a
 * RedisTenantStore, so every call here goes through the production path: apply → Redis version →
 * store snapshot → one called-number lookup (tenant + ring group) → ring-group.ts.
 * SIPp plays the carrier; the fake Teams plays every member and checks every Teams-bound message.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/net.js';
import { CARRIER_IPS, type GatewayHarness, TENANTS_DIR, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCallAsync, expectSippOk } from './sipp-gateway.js';

let h: GatewayHarness;
const dirs: string[] = [];
beforeAll(async () => {
  h = await startGatewayHarness({ tenantStore: 'redis' });
});
afterEach(async (c) => {
  if (process.env.GW_DEBUG && c.task.result?.state === 'fail') console.log(JSON.stringify(h.logs.filter((l) => l.level >= 40 || /fail|ring/.test(String(l.msg))).slice(-15), null, 1));
  await h.afterEach();
});
afterAll(async () => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  await h.close();
});

const C = CARRIER_IPS[4];

/** A copy of the fixture tenant directory whose tenants.yaml is edited by `edit`. */
function editedFixture(edit: (tenantsYaml: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'rg-tenants-'));
  dirs.push(dir);
  cpSync(TENANTS_DIR, dir, { recursive: true });
  const file = join(dir, 'tenants.yaml');
  const before = readFileSync(file, 'utf8');
  const after = edit(before);
  expect(after).not.toBe(before);
  writeFileSync(file, after);
  return dir;
}

describe('ring groups from the tenant config (group calls)', () => {
  it('the gateway serves the applied fixture: acme owns both ring-group DIDs, with their groups', async () => {
    const sim = await h.gw.ctx.tenants.lookupNumber('+14255550170');
    expect(sim?.tenant.id).toBe('acme');
    expect(sim?.ringGroup).toEqual({ did: '+14255550170', strategy: 'simultaneous', memberTimeoutSec: 10, members: ['+14255550171', '+14255550172', '+14255550173'] });
    const seq = await h.gw.ctx.tenants.lookupNumber('+14255550176');
    expect(seq?.ringGroup).toMatchObject({ strategy: 'sequential', memberTimeoutSec: 1, fallback: '+14255550179' });
    // a member's own number is an ordinary DID
    expect((await h.gw.ctx.tenants.lookupNumber('+14255550171'))?.ringGroup).toBeUndefined();
    expect(h.gw.ctx.tenants.status()).toMatchObject({ source: 'redis', state: 'ok' });
  });

  it('simultaneous (drachtio-fn-b2b-sugar simring): every member rings, the first answer wins, the others get a CANCEL', async () => {
    const members = ['+14255550171', '+14255550172', '+14255550173'];
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550170', pauseMs: 500 });
    const calls = [await h.nextCall(mark), await h.nextCall(mark), await h.nextCall(mark)];
    expect(calls.map((c) => c.called).sort()).toEqual(members);
    for (const c of calls) await c.ringing();
    const winner = calls.find((c) => c.called === '+14255550172')!;
    await winner.answer();
    await winner.waitForAck();
    const losers = calls.filter((c) => c !== winner);
    for (const c of losers) await c.waitForCancel();
    const r = await sipp.done;
    expectSippOk(r);
    await waitFor(() => winner.ended, { what: 'BYE at the winner' });
    expect(calls.filter((c) => c.ackedAt !== undefined)).toEqual([winner]);
    expect(losers.every((c) => c.requests.items.some((q) => q.method === 'CANCEL'))).toBe(true);
    expect(h.ft.calls.length - mark).toBe(3);
  });

  it('sequential with a per-member timeout, then the fallback answers: exactly one connected, every other member got a CANCEL', async () => {
    const members = ['+14255550174', '+14255550175'];
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550176', pauseMs: 300 });
    const first = await h.nextCall(mark);
    expect(first.called).toBe(members[0]);
    await first.ringing();
    await first.waitForCancel(3000);
    const second = await h.nextCall(mark);
    expect(second.called).toBe(members[1]);
    await second.ringing();
    await second.waitForCancel(3000);
    const fallback = await h.nextCall(mark);
    expect(fallback.called).toBe('+14255550179');
    await fallback.answer();
    await fallback.waitForAck();
    expectSippOk(await sipp.done);
    await waitFor(() => fallback.ended, { what: 'BYE at the fallback' });
    const all = [first, second, fallback];
    expect(all.filter((c) => c.ackedAt !== undefined)).toEqual([fallback]);
    expect([first, second].every((c) => c.requests.items.some((q) => q.method === 'CANCEL'))).toBe(true);
    // the member timeout was honoured: the second member was only tried after the first gave up
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(900);
  });

  it('live reload: a ring group added by `teams-gw tenants apply` takes effect for the next call without a restart; an invalid apply changes nothing; rollback removes it', async () => {
    const gateway = h.gw;
    const v1 = h.gw.ctx.tenants.version();

    // Before: +14255550180 is a plain DID of acme, one INVITE to that number.
    let mark = h.ft.calls.length;
    let sipp = await carrierCallAsync({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550180', pauseMs: 300 });
    const single = await h.nextCall(mark);
    expect(single.called).toBe('+14255550180');
    await single.answer();
    await single.waitForAck();
    expectSippOk(await sipp.done);
    await waitFor(() => single.ended, { what: 'BYE at the single callee' });
    expect(h.ft.calls.length - mark).toBe(1);

    // The partner admin adds a ring group to acme's file and applies it.
    const withGroup = editedFixture((y) =>
      y.replace(
        '    ringGroups:\n',
        '    ringGroups:\n      - { did: "+14255550180", strategy: simultaneous, memberTimeoutSec: 10, members: ["+14255550181", "+14255550182"] }\n',
      ),
    );
    expect((await h.tenantsCli(['plan', '--config-dir', withGroup])).out.split('\n')).toEqual([
      '~ tenant acme: ringGroups',
      'Plan: 0 to add, 1 to change, 0 to remove (live version 1).',
    ]);
    const applied = await h.tenantsCli(['apply', '--config-dir', withGroup]);
    expect(applied.code, applied.err).toBe(0);
    expect(applied.out).toMatch(/^applied version 2 \(previous 1, kept for rollback\)/);
    await waitFor(() => h.gw.ctx.tenants.version() === v1 + 1, { timeoutMs: 2000, what: 'the gateway to load version 2' });
    const show = JSON.parse((await h.tenantsCli(['show', 'acme', '--json'])).out) as { tenant: { ringGroups: { did: string }[] } };
    expect(show.tenant.ringGroups.map((g) => g.did)).toEqual(['+14255550170', '+14255550176', '+14255550180']);

    // The next call rings the group: same gateway process, no restart.
    expect(h.gw).toBe(gateway);
    mark = h.ft.calls.length;
    sipp = await carrierCallAsync({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550180', pauseMs: 300 });
    const calls = [await h.nextCall(mark), await h.nextCall(mark)];
    expect(calls.map((c) => c.called).sort()).toEqual(['+14255550181', '+14255550182']);
    for (const c of calls) await c.ringing();
    const winner = calls.find((c) => c.called === '+14255550181')!;
    const loser = calls.find((c) => c !== winner)!;
    await winner.answer();
    await winner.waitForAck();
    await loser.waitForCancel();
    expectSippOk(await sipp.done);
    await waitFor(() => winner.ended, { what: 'BYE at the winner' });
    expect(calls.filter((c) => c.ackedAt !== undefined)).toEqual([winner]);
    expect(h.ft.calls.length - mark).toBe(2);

    // An invalid ring group is refused: nothing applied, the running gateway keeps version 2.
    const bad = editedFixture((y) => y.replace('members: ["+14255550174", "+14255550175"]', 'members: ["+14255550174"]'));
    const refused = await h.tenantsCli(['apply', '--config-dir', bad]);
    expect(refused.code).toBe(1);
    expect(refused.err.split('\n')[0]).toBe('tenants.yaml:15:9 tenants[0].ringGroups[1].members: must list at least 2 items');
    await new Promise((r) => setTimeout(r, 200));
    expect(h.gw.ctx.tenants.version()).toBe(v1 + 1);
    expect((await h.gw.ctx.tenants.lookupNumber('+14255550176'))?.ringGroup?.members).toEqual(['+14255550174', '+14255550175']);

    // Rollback: version 1 again, +14255550180 is a plain DID again.
    expect((await h.tenantsCli(['rollback'])).code).toBe(0);
    await waitFor(() => h.gw.ctx.tenants.version() === v1, { timeoutMs: 2000, what: 'the gateway to go back to version 1' });
    const back = await h.gw.ctx.tenants.lookupNumber('+14255550180');
    expect(back?.tenant.id).toBe('acme');
    expect(back?.ringGroup).toBeUndefined();
  });
});
