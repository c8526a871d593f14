import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, startRedisServer, type RedisServerHandle } from '../../helpers/redis-server.js';
import { runTenantsCli } from '../../../src/tenants/cli.js';
import { RedisTenantStore } from '../../../src/tenants/redis-tenant-store.js';
import { CARRIERS, GOOD_RING_GROUP, RING_GROUP_CASES, ringGroupTenants, SETTINGS, tenantsFile, writeConfigDir, writeFiles } from '../../unit/tenants/fixture.js';

interface Run {
  code: number;
  out: string;
  err: string;
  json: any;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTenantsCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env, cwd: process.cwd() });
  const text = out.join('\n');
  let json: unknown;
  if (args.includes('--json')) json = JSON.parse(text);
  return { code, out: text, err: err.join('\n'), json };
}

/** Every key with its type, TTL and DUMP payload: equal snapshots mean byte-for-byte equal data. */
async function dumpAll(r: Redis): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of (await r.keys('*')).sort()) {
    const [dump, ttl] = await Promise.all([r.dumpBuffer(k), r.pttl(k)]);
    out[k] = `${ttl}:${dump!.toString('hex')}`;
  }
  return out;
}

const GOOD = {
  'settings.yaml': SETTINGS,
  'carriers.yaml': CARRIERS,
  'tenants/a.yaml': tenantsFile([{ id: 'a', name: 'Alpha', dids: ['+14255550100-+14255550199', '+14255551234'] }]),
  'tenants/b.yaml': tenantsFile([{ id: 'b', name: 'Beta', dids: ['+4930*'], trunks: ['beta', 'alpha'] }]),
};

describe('teams-gw tenants CLI', () => {
  let server: RedisServerHandle;
  let redis: Redis;
  let url: string[];
  const dirs: (() => void)[] = [];
  const dir = (files: Record<string, string>): string => {
    const d = writeConfigDir(files);
    dirs.push(d.cleanup);
    return d.dir;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    url = ['--redis-url', server.url];
  });
  beforeEach(async () => {
    await redis.flushall();
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
    for (const c of dirs) c();
  });

  it('validate: exit 0 and a summary; exit 1 and every problem (text and --json)', async () => {
    const ok = await cli(['validate', '--config-dir', dir(GOOD)]);
    expect(ok).toMatchObject({ code: 0, out: 'OK: 2 tenants, 2 carriers, 3 DID entries in 4 files' });
    const bad = dir({ ...GOOD, 'tenants/c.yaml': tenantsFile([{ id: 'c', fqdn: 'a.customers.example.net', dids: ['+4930123'], trunks: ['zeta'] }]) });
    const text = await cli(['validate', '--config-dir', bad]);
    expect(text.code).toBe(1);
    expect(text.err.split('\n')).toEqual([
      'tenants/c.yaml:4:11 tenants[0].fqdn: duplicate FQDN "a.customers.example.net": already used by tenant "a" (tenants/a.yaml:4)',
      'tenants/c.yaml:5:12 tenants[0].dids[0]: DID "+4930123" overlaps "+4930*" of tenant "b" (tenants/b.yaml:5): a number would map to two tenants',
      'tenants/c.yaml:6:25 tenants[0].trunks[0].carrier: unknown carrier "zeta": no carrier with that name is defined',
      `3 problems in ${bad}`,
    ]);
    const json = await cli(['validate', '--config-dir', bad, '--json']);
    expect(json.code).toBe(1);
    expect(json.json.ok).toBe(false);
    expect(json.json.problems.map((p: { rule: string }) => p.rule)).toEqual(['fqdn-duplicate', 'did-overlap', 'carrier-unknown']);
    expect(json.json.problems[0]).toEqual({
      file: 'tenants/c.yaml',
      line: 4,
      column: 11,
      path: 'tenants[0].fqdn',
      rule: 'fqdn-duplicate',
      message: 'duplicate FQDN "a.customers.example.net": already used by tenant "a" (tenants/a.yaml:4)',
    });
  });

  it('an invalid apply is refused and leaves Redis byte-for-byte unchanged', async () => {
    expect((await cli(['apply', '--config-dir', dir(GOOD), ...url])).code).toBe(0);
    const before = await dumpAll(redis);
    expect(Object.keys(before).length).toBeGreaterThan(5);
    const bad = dir({ ...GOOD, 'tenants/b.yaml': tenantsFile([{ id: 'b', dids: ['+14255550150'], trunks: ['beta'] }]) });
    const r = await cli(['apply', '--config-dir', bad, ...url, '--json']);
    expect(r.code).toBe(1);
    expect(r.json.problems[0].message).toBe(
      'DID "+14255550150" overlaps "+14255550100-+14255550199" of tenant "a" (tenants/a.yaml:5): a number would map to two tenants',
    );
    expect(await dumpAll(redis)).toEqual(before);
    // and on an empty Redis nothing at all is created
    await redis.flushall();
    expect((await cli(['apply', '--config-dir', bad, ...url])).code).toBe(1);
    expect(await redis.dbsize()).toBe(0);
  });

  it('plan → apply → plan → list → show → export (validates) → rollback', async () => {
    const d = dir(GOOD);
    const plan1 = await cli(['plan', '--config-dir', d, ...url]);
    expect(plan1.code).toBe(0);
    expect(plan1.out.split('\n')).toEqual([
      '+ settings settings',
      '+ carrier alpha',
      '+ carrier beta',
      '+ tenant a +[+14255550100-+14255550199 +14255551234]',
      '+ tenant b +[+4930*]',
      'Plan: 5 to add, 0 to change, 0 to remove (nothing live yet).',
    ]);
    const applied = await cli(['apply', '--config-dir', d, ...url, '--json']);
    expect(applied.json).toMatchObject({ ok: true, changed: true, version: 1, previous: null, tenants: 2, exactNumbers: 1 });
    expect((await cli(['plan', '--config-dir', d, ...url])).out).toBe('No changes (live version 1).');
    expect((await cli(['apply', '--config-dir', d, ...url])).out).toBe(`no changes: live version 1 already matches ${d}`);

    writeFiles(d, {
      'tenants/a.yaml': tenantsFile([{ id: 'a', name: 'Alpha 2', dids: ['+14255550100-+14255550199', '+14255559999'] }]),
      'tenants/b.yaml': '',
      'tenants/c.yaml': tenantsFile([{ id: 'c', dids: ['+3399*'] }]),
    });
    const plan2 = await cli(['plan', '--config-dir', d, ...url, '--json']);
    expect(plan2.json).toMatchObject({ ok: true, live: { version: 1 }, add: 1, change: 1, remove: 1 });
    expect((await cli(['plan', '--config-dir', d, ...url])).out.split('\n')).toEqual([
      '~ tenant a: dids, name +[+14255559999] -[+14255551234]',
      '+ tenant c +[+3399*]',
      '- tenant b',
      'Plan: 1 to add, 1 to change, 1 to remove (live version 1).',
    ]);
    expect((await cli(['apply', '--config-dir', d, ...url])).out).toMatch(/^applied version 2 \(previous 1, kept for rollback\): 2 tenants in \d+ ms$/);

    const list = await cli(['list', ...url, '--json']);
    expect(list.json).toEqual({
      ok: true,
      version: 2,
      tenants: [
        { id: 'a', name: 'Alpha 2', fqdn: 'a.customers.example.net', enabled: true, didEntries: 2, trunks: ['alpha'] },
        { id: 'c', name: 'Tenant c', fqdn: 'c.customers.example.net', enabled: true, didEntries: 1, trunks: ['alpha'] },
      ],
    });
    expect((await cli(['list', ...url])).out.split('\n')[0]).toBe('ID  FQDN                     ENABLED  DIDS  NAME');
    const show = await cli(['show', 'a', ...url]);
    expect(show.out).toContain('fqdn: a.customers.example.net');
    expect(show.out).toContain('"+14255559999"');
    expect(await cli(['show', 'zz', ...url, '--json'])).toMatchObject({ code: 1, json: { ok: false, error: { code: 'ERR_TENANT_NOT_FOUND', message: 'no tenant "zz" in live version 2' } } });

    const out = dir({});
    const exp = await cli(['export', out, ...url, '--force']);
    expect(exp.code).toBe(0);
    expect(readdirSync(join(out, 'tenants')).sort()).toEqual(['a.yaml', 'c.yaml']);
    expect(readFileSync(join(out, 'tenants', 'a.yaml'), 'utf8')).toMatch(/^# yaml-language-server: \$schema=.*config\/schema\/tenants\.schema\.json\n# exported from live config version 2\n/);
    // what export wrote validates, and applying it back changes nothing
    expect((await cli(['validate', '--config-dir', out])).code).toBe(0);
    expect((await cli(['plan', '--config-dir', out, ...url])).out).toBe('No changes (live version 2).');
    expect((await cli(['export', out, ...url])).code).toBe(1); // refuses to overwrite without --force

    expect((await cli(['rollback', ...url, '--json'])).json).toEqual({ ok: true, version: 1, previous: 2 });
    expect((await cli(['show', 'b', ...url, '--json'])).json.tenant).toMatchObject({ id: 'b', dids: ['+4930*'], trunks: [{ carrier: 'beta' }, { carrier: 'alpha' }] });
  });

  it('every invalid ring-group file (one per rule) is refused and leaves Redis byte-for-byte unchanged; a running store keeps its groups', async () => {
    const good = { 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 'tenants.yaml': ringGroupTenants([GOOD_RING_GROUP]) };
    expect((await cli(['apply', '--config-dir', dir(good), ...url])).code).toBe(0);
    const store = new RedisTenantStore({ redis: { url: server.url }, pollIntervalMs: 50 });
    try {
      await store.start();
      const before = await dumpAll(redis);
      for (const c of RING_GROUP_CASES) {
        const r = await cli(['apply', '--config-dir', dir({ ...good, 'tenants.yaml': ringGroupTenants(c.groups) }), ...url, '--json']);
        expect(r.code, c.name).toBe(1);
        expect(r.json.problems, c.name).toEqual([{ file: 'tenants.yaml', ...c.problem }]);
        expect(await dumpAll(redis), c.name).toEqual(before);
      }
      await new Promise((res) => setTimeout(res, 150)); // a few pointer polls
      expect(store.version()).toBe(1);
      expect(await store.lookupNumber('+14255550170')).toMatchObject({ tenant: { id: 'a' }, ringGroup: { members: GOOD_RING_GROUP.members } });
    } finally {
      await store.close();
    }
  });

  it('ring groups through plan, apply, show and export (the export validates and plans as no change)', async () => {
    const G = GOOD_RING_GROUP;
    const d = dir({ 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 'tenants.yaml': ringGroupTenants([G]) });
    expect((await cli(['apply', '--config-dir', d, ...url])).code).toBe(0);
    writeFiles(d, { 'tenants.yaml': ringGroupTenants([{ ...G, strategy: 'sequential', fallback: '+14255550199' }, { ...G, did: '+4930123' }]) });
    expect((await cli(['plan', '--config-dir', d, ...url])).out.split('\n')).toEqual(['~ tenant a: ringGroups', 'Plan: 0 to add, 1 to change, 0 to remove (live version 1).']);
    expect((await cli(['apply', '--config-dir', d, ...url])).code).toBe(0);
    const show = await cli(['show', 'a', ...url]);
    expect(show.out).toContain(
      [
        'ringGroups:',
        '  - did: "+14255550170"',
        '    strategy: sequential',
        '    memberTimeoutSec: 20',
        '    members:',
        '      - "+14255550171"',
        '      - "+14255550172"',
        '    fallback: "+14255550199"',
        '  - did: "+4930123"',
      ].join('\n'),
    );
    expect((await cli(['show', 'a', ...url, '--json'])).json.tenant.ringGroups).toEqual([
      { ...G, strategy: 'sequential', fallback: '+14255550199' },
      { ...G, did: '+4930123' },
    ]);
    expect((await cli(['show', 'b', ...url, '--json'])).json.tenant).not.toHaveProperty('ringGroups');
    const out = dir({});
    expect((await cli(['export', out, ...url, '--force'])).code).toBe(0);
    expect(readFileSync(join(out, 'tenants', 'a.yaml'), 'utf8')).toContain('ringGroups:\n');
    expect((await cli(['validate', '--config-dir', out])).code).toBe(0);
    expect((await cli(['plan', '--config-dir', out, ...url])).out).toBe('No changes (live version 2).');
  });

  it('exit codes: rollback without previous 1, usage 2, Redis unreachable 3, no Redis for apply 2', async () => {
    expect(await cli(['rollback', ...url, '--json'])).toMatchObject({
      code: 1,
      json: { ok: false, error: { code: 'ERR_TENANT_NO_PREVIOUS', message: 'there is no previous config version to roll back to' } },
    });
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['validate', '--bogus'])).code).toBe(2);
    expect((await cli(['show'])).code).toBe(2);
    expect((await cli([])).code).toBe(2);
    expect((await cli(['--help'])).code).toBe(0);
    const dead = await freePort();
    const r = await cli(['apply', '--config-dir', dir(GOOD), '--redis-url', `redis://127.0.0.1:${dead}`, '--json']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('ERR_REDIS_UNREACHABLE');
    expect((await cli(['apply', '--config-dir', dir(GOOD)], {})).code).toBe(2);
    // the environment selects Redis too
    expect((await cli(['apply', '--config-dir', dir(GOOD)], { TEAMS_GW_REDIS_URL: server.url })).code).toBe(0);
  });

  it('without Redis, list/show/export read the config directory (embedded mode)', async () => {
    const d = dir(GOOD);
    expect((await cli(['list', '--config-dir', d, '--json'])).json.tenants.map((t: { id: string }) => t.id)).toEqual(['a', 'b']);
    expect((await cli(['show', 'b', '--config-dir', d, '--json'])).json.tenant.dids).toEqual(['+4930*']);
  });

  it('runs as a process through cli-entry.ts with script-friendly exit codes', async () => {
    const run = promisify(execFile);
    const ok = await run('npx', ['tsx', 'src/tenants/cli-entry.ts', 'validate', '--config-dir', 'config/tenants', '--json']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, summary: { tenants: 4, carriers: 2 } });
    const bad = dir({ 'x.yaml': 'tenants: 3\n' });
    const err = await run('npx', ['tsx', 'src/tenants/cli-entry.ts', 'validate', '--config-dir', bad]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('x.yaml:1:10 tenants: must be a list');
  });
});
