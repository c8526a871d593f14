import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server.js';
import { loadConfigTexts } from '../../../src/tenants/load.js';
import { TenantAdmin } from '../../../src/tenants/redis-admin.js';
import { RedisTenantStore, type RedisTenantStoreOptions } from '../../../src/tenants/redis-tenant-store.js';
import { NoPreviousVersionError } from '../../../src/tenants/errors.js';
import type { TenantLogger } from '../../../src/tenants/tenant-store.js';
import type { TenantConfigSet } from '../../../src/tenants/types.js';
import { CARRIERS, GOOD_RING_GROUP, ringGroupTenants, SETTINGS, tenantsFile, type RingGroupSpec, type TenantSpec } from '../../unit/tenants/fixture.js';

function ringGroupConfig(groups: RingGroupSpec[]): TenantConfigSet {
  const r = loadConfigTexts([{ file: 'c.yaml', text: SETTINGS + CARRIERS + ringGroupTenants(groups) }]);
  expect(r.problems).toEqual([]);
  return r.config!;
}

function config(tenants: TenantSpec[]): TenantConfigSet {
  const r = loadConfigTexts([{ file: 'c.yaml', text: SETTINGS + CARRIERS + tenantsFile(tenants) }]);
  expect(r.problems).toEqual([]);
  return r.config!;
}

/**
 * Generation `g` of a config where every number moves to the next tenant on each generation and
 * every tenant's name carries `g`: a lookup that mixed two versions would pair a name of one
 * generation with an owner of the other.
 */
const N = 200;
const num = (i: number, j: number): string => `+1555${String(i).padStart(4, '0')}${String(j).padStart(2, '0')}0`; // exact
const rangeOf = (i: number): string => `+1666${String(i).padStart(4, '0')}000-+1666${String(i).padStart(4, '0')}999`;
const owner = (i: number, g: number): number => (i + g) % N;
function generation(g: number, exactPerTenant = 10): TenantConfigSet {
  const dids: string[][] = Array.from({ length: N }, () => []);
  for (let i = 0; i < N; i++) {
    const o = owner(i, g);
    for (let j = 0; j < exactPerTenant; j++) dids[o]!.push(num(i, j));
    dids[o]!.push(rangeOf(i));
  }
  return config(Array.from({ length: N }, (_, t) => ({ id: `t${t}`, name: `T${t} gen ${g}`, dids: dids[t]! })));
}
const genOf = (name: string): number => Number(/gen (\d+)$/.exec(name)![1]);

function captureLogger(): TenantLogger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    info: (_o, m) => lines.push({ level: 'info', msg: m ?? '' }),
    warn: (_o, m) => lines.push({ level: 'warn', msg: m ?? '' }),
    error: (_o, m) => lines.push({ level: 'error', msg: m ?? '' }),
  };
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - t0;
}

describe('RedisTenantStore against a real redis-server', () => {
  let server: RedisServerHandle;
  let redis: Redis;
  let admin: TenantAdmin;
  const stores: RedisTenantStore[] = [];

  const open = async (opts: Partial<RedisTenantStoreOptions> = {}): Promise<RedisTenantStore> => {
    const s = new RedisTenantStore({ redis: { url: server.url }, pollIntervalMs: 60_000, ...opts });
    stores.push(s);
    await s.start();
    return s;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url, { retryStrategy: (n) => Math.min(n * 50, 300) });
    redis.on('error', () => undefined);
    admin = new TenantAdmin(redis);
  });
  beforeEach(async () => {
    await redis.flushall();
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  it('serves an empty config before the first apply, then the applied one', async () => {
    const s = await open();
    expect(s.version()).toBe(0);
    expect(await s.byNumber('+15550000000')).toBeUndefined();
    expect(s.status()).toMatchObject({ source: 'redis', state: 'ok', version: 0 });
    await admin.apply(config([{ id: 'a', dids: ['+14255550100-+14255550199', '+14255550300'] }]));
    await waitFor(() => s.version() === 1, 1000, 'version 1');
    expect((await s.byNumber('+14255550300'))?.id).toBe('a');
    expect(s.byFqdn('a.customers.example.net')?.name).toBe('Tenant a');
    expect(s.carrierBySourceIp('2001:db8:100:5::9')?.name).toBe('beta');
  });

  it('a running store sees an apply within 1 s, and a rollback likewise (pub/sub, poll disabled)', async () => {
    await admin.apply(config([{ id: 'a', name: 'first', dids: ['+4930*'] }]));
    const s = await open();
    expect(s.get('a')?.name).toBe('first');

    let t0 = performance.now();
    await admin.apply(config([{ id: 'a', name: 'second', dids: ['+4931*'] }]));
    await waitFor(() => s.get('a')?.name === 'second', 1000, 'apply to be seen');
    const applySeen = performance.now() - t0;
    expect((await s.byNumber('+49311'))?.id).toBe('a');
    expect(await s.byNumber('+49301')).toBeUndefined();

    t0 = performance.now();
    const rb = await admin.rollback();
    expect(rb).toEqual({ version: 1, previous: 2 });
    await waitFor(() => s.get('a')?.name === 'first', 1000, 'rollback to be seen');
    const rollbackSeen = performance.now() - t0;
    expect((await s.byNumber('+49301'))?.id).toBe('a');
    expect(applySeen).toBeLessThan(1000);
    expect(rollbackSeen).toBeLessThan(1000);

    // rollback twice = redo
    await admin.rollback();
    await waitFor(() => s.get('a')?.name === 'second', 1000, 'second rollback');
  });

  it('keeps exactly the live and the previous version; rollback without a previous version fails', async () => {
    await expect(admin.rollback()).rejects.toBeInstanceOf(NoPreviousVersionError);
    await admin.apply(config([{ id: 'a', name: 'v1', dids: ['+1555*'] }]));
    await expect(admin.rollback()).rejects.toBeInstanceOf(NoPreviousVersionError);
    await admin.apply(config([{ id: 'a', name: 'v2', dids: ['+1555*', '+15551'] }]));
    await admin.apply(config([{ id: 'a', name: 'v3', dids: ['+1555*', '+15552'] }]));
    const keys = await redis.keys('tg:{v*');
    const versions = [...new Set(keys.map((k) => Number(/\{v(\d+)\}/.exec(k)![1])))].sort();
    expect(versions).toEqual([2, 3]);
    expect(await admin.pointer()).toEqual({ current: 3, previous: 2 });
    // an unchanged apply writes nothing
    const before = await redis.keys('*');
    const r = await admin.apply(config([{ id: 'a', name: 'v3', dids: ['+1555*', '+15552'] }]));
    expect(r.changed).toBe(false);
    expect((await redis.keys('*')).sort()).toEqual(before.sort());
    // live() reads back what was applied
    const live = await admin.live();
    expect(live?.config.tenants[0]).toMatchObject({ id: 'a', name: 'v3', dids: ['+1555*', '+15552'] });
  });

  it('exact numbers not preloaded are read from the snapshot version, then cached', async () => {
    await admin.apply(generation(1));
    const s = await open({ preloadExactLimit: 0, cacheSize: 100_000 });
    expect(s.snapshot().index.exactComplete).toBe(false);
    const before = s.status();
    expect((await s.byNumber(num(5, 3)))?.id).toBe(`t${owner(5, 1)}`);
    expect((await s.byNumber(num(5, 3)))?.id).toBe(`t${owner(5, 1)}`);
    expect((await s.byNumber('+16660005500'))?.id).toBe(`t${owner(5, 1)}`); // a range number: answered from memory
    expect(await s.byNumber('+17770000000')).toBeUndefined(); // no range/prefix: Redis says not exact either
    expect(await s.byNumber('+17770000000')).toBeUndefined(); // negative answers are cached too
    const after = s.status();
    expect(after.cacheMisses - before.cacheMisses).toBe(2);
    expect(after.cacheHits - before.cacheHits).toBe(3);
  });

  it('lookups in a tight loop during applies and rollbacks never observe a mixed state', async () => {
    await admin.apply(generation(1));
    // Small cache, no preload: most exact lookups go to Redis while the next version is written.
    const s = await open({ preloadExactLimit: 0, cacheSize: 64 });
    let stop = false;
    let lookups = 0;
    const seen = new Set<number>();
    const violations: string[] = [];
    const loop = (async () => {
      let k = 0;
      while (!stop) {
        const snap = s.snapshot();
        const g = genOf(snap.get('t0')!.name);
        seen.add(snap.version);
        for (let n = 0; n < 8; n++, k++) {
          const i = k % N;
          const j = (k >> 3) % 10;
          const viaSnap = await snap.byNumber(num(i, j));
          const viaStore = await s.byNumber(k % 2 ? num(i, j) : `+1666${String(i).padStart(4, '0')}${String(k % 1000).padStart(3, '0')}`);
          lookups += 2;
          if (!viaSnap || viaSnap.id !== `t${owner(i, g)}` || genOf(viaSnap.name) !== g) violations.push(`snapshot v${snap.version}: ${num(i, j)} → ${viaSnap?.id} ${viaSnap?.name}`);
          // a store lookup may use a newer snapshot, but owner and name must agree
          if (!viaStore || viaStore.id !== `t${owner(i, genOf(viaStore.name))}`) violations.push(`store: ${i} → ${viaStore?.id} ${viaStore?.name}`);
        }
      }
    })();
    for (let g = 2; g <= 5; g++) {
      await admin.apply(generation(g));
      await new Promise((r) => setTimeout(r, 50));
    }
    await admin.rollback();
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await loop;
    expect(violations.slice(0, 5)).toEqual([]);
    // the loop really ran during the applies (a loaded CI box manages a few hundred)
    expect(lookups).toBeGreaterThan(200);
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(s.version()).toBe(4);
  });

  it('Redis killed and restarted: lookups answer from cache, the outage is logged and reported, reloads resume', async () => {
    await admin.apply(generation(1, 2));
    const log = captureLogger();
    const statuses: string[] = [];
    const s = await open({ logger: log, preloadExactLimit: 0, pollIntervalMs: 200 });
    s.on('status', (st) => statuses.push(st.state));
    // warm the cache with exact numbers
    for (let i = 0; i < 20; i++) expect((await s.byNumber(num(i, 0)))?.id).toBe(`t${owner(i, 1)}`);

    await server.kill();
    await waitFor(() => s.status().state === 'degraded', 2000, 'degraded state');
    expect(log.lines).toContainEqual({ level: 'warn', msg: 'tenant store: Redis unreachable, serving last good config version 1' });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        expect((await s.byNumber(num(i, 0)))?.id).toBe(`t${owner(i, 1)}`); // cached exact
        expect((await s.byNumber(`+1666${String(i).padStart(4, '0')}123`))?.id).toBe(`t${owner(i, 1)}`); // range, in memory
        expect(performance.now() - t0).toBeLessThan(50);
      }
      expect(s.byFqdn('t3.customers.example.net')?.id).toBe('t3');
      await new Promise((r) => setTimeout(r, 100));
    }
    // an uncached exact number cannot be confirmed: an explicit error, not a wrong "no tenant"
    await expect(s.byNumber('+17770000000')).rejects.toMatchObject({ code: 'ERR_TENANT_STORE_UNAVAILABLE' });

    await server.restart(); // no persistence: Redis comes back empty
    await waitFor(() => log.lines.some((l) => l.msg.startsWith('tenant store: Redis has no tenant config')), 3000, 'data-loss log');
    expect(s.version()).toBe(1); // still the last good config
    expect((await s.byNumber(num(7, 0)))?.id).toBe(`t${owner(7, 1)}`);

    const t0 = performance.now();
    await admin.apply(generation(2, 2));
    await waitFor(() => genOf(s.get('t0')!.name) === 2, 1000, 'apply after restart');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(s.status().state).toBe('ok');
    expect((await s.byNumber(num(7, 1)))?.id).toBe(`t${owner(7, 2)}`);
    expect(statuses).toEqual(['degraded', 'ok']);
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1); // logged once per outage
  });

  it('ring groups: one rg hash per version (DID → group JSON), read back whole; lookups return tenant + group, exact DIDs through Redis too', async () => {
    const G = GOOD_RING_GROUP;
    const SEQ = { did: '+4930123', strategy: 'sequential', memberTimeoutSec: 15, members: ['+4930124', '+4930125'], fallback: '+4930100' };
    const cfg = ringGroupConfig([G, { ...G, did: '+14255551234' }, SEQ]);
    await admin.apply(cfg);
    // the documented layout
    expect(await redis.hgetall('tg:{v1}:rg')).toEqual({
      '+14255550170': JSON.stringify({ t: 0, ...G }),
      '+14255551234': JSON.stringify({ t: 0, ...G, did: '+14255551234' }),
      '+4930123': JSON.stringify({ t: 0, ...SEQ }),
    });
    expect(await redis.hget('tg:{v1}:meta', 'ringGroupCount')).toBe('3');
    expect(JSON.parse((await redis.hget('tg:{v1}:t', '0'))!)).not.toHaveProperty('ringGroups');
    // read back equal to what was applied (show/export/plan rely on it)
    expect((await admin.live())!.config).toEqual(cfg);

    // exact numbers not preloaded: the exact ring-group DID needs a Redis trip, the others not
    const s = await open({ preloadExactLimit: 0 });
    const before = s.status();
    const exact = await s.lookupNumber('+14255551234');
    expect(exact).toMatchObject({ tenant: { id: 'a' }, ringGroup: { did: '+14255551234', members: G.members } });
    expect(s.status().cacheMisses - before.cacheMisses).toBe(1);
    expect(await s.lookupNumber('+14255551234')).toBe(exact); // cached: same shared answer
    expect((await s.lookupNumber('+14255550170'))?.ringGroup?.strategy).toBe('simultaneous');
    expect((await s.lookupNumber('+4930123'))?.ringGroup).toEqual(SEQ);
    expect((await s.lookupNumber('+14255550171'))?.ringGroup).toBeUndefined();
    expect(s.snapshot().lookupNumberSync('+14255550170')?.ringGroup?.did).toBe('+14255550170');

    // an apply that changes only a ring group reaches the running store
    await admin.apply(ringGroupConfig([{ ...G, members: ['+14255550173', '+14255550174'] }]));
    await waitFor(() => s.version() === 2, 1000, 'version 2');
    expect((await s.lookupNumber('+14255550170'))?.ringGroup?.members).toEqual(['+14255550173', '+14255550174']);
    expect((await s.lookupNumber('+14255551234'))?.ringGroup).toBeUndefined();
    expect((await s.lookupNumber('+4930123'))?.ringGroup).toBeUndefined();
    expect(await redis.hlen('tg:{v2}:rg')).toBe(1);
  });

  it('a version without an rg hash (written before ring groups existed) loads with no groups', async () => {
    await admin.apply(config([{ id: 'a', dids: ['+14255550100-+14255550199'] }]));
    expect(await redis.exists('tg:{v1}:rg')).toBe(0); // no groups → no key at all
    await redis.hdel('tg:{v1}:meta', 'ringGroupCount');
    const s = await open();
    expect(await s.lookupNumber('+14255550170')).toMatchObject({ tenant: { id: 'a' }, ringGroup: undefined });
    expect((await admin.live())!.config.tenants[0]).not.toHaveProperty('ringGroups');
  });
});
