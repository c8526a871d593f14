/**
 * Tenant store benchmark (issue 3 goals: apply 10,000 tenants + 1,000,000 DIDs in < 30 s;
 * cache-hit lookup < 5 µs).
 *
 *   npx tsx bench/tenants.bench.ts [--tenants 10000] [--exact 50] [--range 50] [--lookups 200000] [--ring-groups 0]
 *
 * Each tenant gets `--exact` exact numbers and one range of `--range` numbers (default 50 + 50 =
 * 100 DIDs per tenant, 1,000,000 in all); every tenth tenant also gets a prefix. The config is
 * written as YAML files; "apply" is the whole admin path: read + validate the files, then write
 * the version and switch (what `teams-gw tenants apply` does). Redis memory is INFO memory
 * used_memory before/after. Lookups: a RedisTenantStore (the exact numbers exceed the preload
 * limit, so they are served through its cache); "hit" = number already cached or answered from
 * the in-memory ranges, "miss" = exact number not yet cached (one Redis round trip).
 * `--ring-groups N` gives each tenant N ring groups (on its first exact numbers, two members
 * each); "lookupNumber hit" is the inbound call path's lookup (tenant + ring group) over the same
 * numbers as "hit".
 * The last line printed is a JSON summary.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer } from '../tests/helpers/redis-server.js';
import { loadConfigDir } from '../src/tenants/load.js';
import { TenantAdmin } from '../src/tenants/redis-admin.js';
import { RedisTenantStore } from '../src/tenants/redis-tenant-store.js';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string', default: '10000' },
    exact: { type: 'string', default: '50' },
    range: { type: 'string', default: '50' },
    lookups: { type: 'string', default: '200000' },
    'ring-groups': { type: 'string', default: '0' },
  },
});
const T = Number(values.tenants);
const E = Number(values.exact);
const R = Number(values.range);
const L = Number(values.lookups);
const RG = Math.min(Number(values['ring-groups']), E);
if (RG > 0 && E < 3) throw new Error('--ring-groups needs --exact 3 or more (members are exact numbers of the tenant)');

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const exactNum = (t: number, j: number): string => `+12${pad(t, 5)}${pad(j, 3)}`;
const rangeFirst = (t: number): string => `+12${pad(t, 5)}${pad(500, 3)}`;
const rangeLast = (t: number): string => `+12${pad(t, 5)}${pad(500 + R - 1, 3)}`;

function quantiles(ns: Float64Array): { p50: number; p99: number; mean: number } {
  const a = Float64Array.from(ns).sort();
  const q = (p: number): number => a[Math.min(a.length - 1, Math.floor(p * a.length))]! / 1000;
  return { p50: +q(0.5).toFixed(3), p99: +q(0.99).toFixed(3), mean: +(a.reduce((x, y) => x + y, 0) / a.length / 1000).toFixed(3) };
}

async function usedMemory(r: Redis): Promise<number> {
  const info = await r.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tenants-bench-'));
  const server = await startRedisServer();
  // fail instead of waiting forever if the server goes away mid-run
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 20 ? null : 100) });
  try {
    // --- generate ---------------------------------------------------------------------------
    writeFileSync(join(dir, 'settings.yaml'), 'settings:\n  carrierBaseDomain: customers.example.net\n');
    writeFileSync(
      join(dir, 'carriers.yaml'),
      'carriers:\n  - name: alpha\n    sources: [198.51.100.0/24]\n    targets: [{ host: sip.alpha.example }]\n',
    );
    const perFile = 100;
    for (let f = 0; f * perFile < T; f++) {
      const lines = ['tenants:'];
      for (let t = f * perFile; t < Math.min(T, (f + 1) * perFile); t++) {
        lines.push(`  - id: t${t}`, `    name: Tenant ${t}`, `    fqdn: t${t}.customers.example.net`, '    dids:');
        for (let j = 0; j < E; j++) lines.push(`      - "${exactNum(t, j)}"`);
        if (R > 0) lines.push(`      - "${rangeFirst(t)}-${rangeLast(t)}"`);
        if (t % 10 === 0) lines.push(`      - "+449${pad(t, 5)}*"`);
        if (RG > 0) lines.push('    ringGroups:');
        for (let g = 0; g < RG; g++) {
          lines.push(`      - { did: "${exactNum(t, g)}", strategy: simultaneous, memberTimeoutSec: 20, members: ["${exactNum(t, E - 1)}", "${exactNum(t, E - 2)}"] }`);
        }
        lines.push('    trunks: [{ carrier: alpha }]');
      }
      writeFileSync(join(dir, `tenants-${pad(f, 4)}.yaml`), `${lines.join('\n')}\n`);
    }
    const dids = T * (E + R);
    console.error(`generated ${T} tenants / ${dids} DIDs in ${dir}`);

    // --- apply ------------------------------------------------------------------------------
    const mem0 = await usedMemory(redis);
    const t0 = performance.now();
    const loaded = loadConfigDir(dir);
    console.error(`validated in ${(performance.now() - t0).toFixed(0)} ms`);
    const t1 = performance.now();
    if (!loaded.config) throw new Error(`bench config invalid: ${loaded.problems.slice(0, 3).map((p) => p.message).join('; ')}`);
    const res = await new TenantAdmin(redis).apply(loaded.config);
    const t2 = performance.now();
    const mem1 = await usedMemory(redis);
    const keys = await redis.dbsize();
    console.error(`apply: ${T} tenants, ${dids} DIDs: validate ${(t1 - t0).toFixed(0)} ms + write ${(t2 - t1).toFixed(0)} ms; Redis +${((mem1 - mem0) / 1048576).toFixed(1)} MiB in ${keys} keys`);

    // --- store start ------------------------------------------------------------------------
    const s0 = performance.now();
    const store = new RedisTenantStore({ redis: { url: server.url }, pollIntervalMs: 60_000, cacheSize: 400_000, preloadExactLimit: 0 });
    await store.start();
    const startMs = performance.now() - s0;
    if (store.version() !== res.version) throw new Error('store did not load the applied version');

    // --- lookups: miss (exact number not cached yet → one Redis round trip) ------------------
    const missN = Math.min(L, T * E, 50_000);
    const miss = new Float64Array(missN);
    const warmed: string[] = [];
    for (let k = 0; k < missN; k++) {
      const t = (k * 7919) % T;
      const j = Math.floor(k / T) % E;
      const n = exactNum(t, j);
      const a = process.hrtime.bigint();
      const r = await store.byNumber(n);
      miss[k] = Number(process.hrtime.bigint() - a);
      if (r?.id !== `t${t}`) throw new Error(`miss lookup ${n} → ${r?.id}`);
      warmed.push(n);
    }
    // --- lookups: hit (cached exact numbers, and range numbers answered from memory) ---------
    const hitsBefore = store.status();
    const hit = new Float64Array(L);
    for (let k = 0; k < L; k++) {
      const n = k % 2 === 0 || R === 0 ? warmed[(k >> 1) % warmed.length]! : `+12${pad((k * 7919) % T, 5)}${pad(500 + (k % R), 3)}`;
      const a = process.hrtime.bigint();
      const r = await store.byNumber(n);
      hit[k] = Number(process.hrtime.bigint() - a);
      if (!r) throw new Error(`hit lookup ${n} found nothing`);
    }
    // --- the inbound call path's lookup: tenant + ring group, same numbers as "hit" ------------
    const hitRg = new Float64Array(L);
    let groupsSeen = 0;
    for (let k = 0; k < L; k++) {
      const n = k % 2 === 0 || R === 0 ? warmed[(k >> 1) % warmed.length]! : `+12${pad((k * 7919) % T, 5)}${pad(500 + (k % R), 3)}`;
      const a = process.hrtime.bigint();
      const r = await store.lookupNumber(n);
      hitRg[k] = Number(process.hrtime.bigint() - a);
      if (!r) throw new Error(`lookupNumber ${n} found nothing`);
      if (r.ringGroup) groupsSeen++;
    }
    if (RG > 0 && groupsSeen === 0) throw new Error('no ring group found by lookupNumber');
    const st = store.status();
    // --- synchronous path (what a call handler can use when the answer is in memory) ----------
    const snap = store.snapshot();
    const syncN = 200_000;
    const sa = process.hrtime.bigint();
    let found = 0;
    for (let k = 0; k < syncN; k++) if (snap.byNumberSync(R > 0 ? `+12${pad(k % T, 5)}${pad(500 + (k % R), 3)}` : warmed[k % warmed.length]!)) found++;
    const syncNs = Number(process.hrtime.bigint() - sa) / syncN;
    if (found !== syncN) throw new Error('sync lookups missed');
    const fq = new Float64Array(50_000);
    for (let k = 0; k < fq.length; k++) {
      const name = `t${(k * 31) % T}.customers.example.net`;
      const a = process.hrtime.bigint();
      store.byFqdn(name);
      fq[k] = Number(process.hrtime.bigint() - a);
    }
    await store.close();

    const summary = {
      bench: 'tenants',
      tenants: T,
      dids,
      exactNumbers: T * E,
      rangeNumbers: T * R,
      prefixes: Math.ceil(T / 10),
      files: loaded.files,
      apply: {
        totalMs: Math.round(t2 - t0),
        validateMs: Math.round(t1 - t0),
        writeMs: Math.round(t2 - t1),
        goalMs: 30_000,
        met: t2 - t0 < 30_000,
      },
      redis: { usedMemoryDeltaBytes: mem1 - mem0, usedMemoryDeltaMiB: +((mem1 - mem0) / 1048576).toFixed(1), keys },
      storeStartMs: Math.round(startMs),
      lookupHitUs: { ...quantiles(hit), n: L, goalUs: 5, met: quantiles(hit).p50 < 5 && quantiles(hit).p99 < 5 },
      lookupMissUs: { ...quantiles(miss), n: missN },
      lookupNumberHitUs: { ...quantiles(hitRg), n: L, ringGroups: T * RG, answersWithGroup: groupsSeen },
      lookupSyncMeanUs: +(syncNs / 1000).toFixed(3),
      byFqdnUs: quantiles(fq),
      cache: { hits: st.cacheHits, misses: st.cacheMisses, missesDuringHitLoop: st.cacheMisses - hitsBefore.cacheMisses },
    };
    console.log(JSON.stringify(summary));
  } finally {
    redis.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
