/**
 * Writing config versions to Redis: apply (write a new version, then switch the pointer in one
 * atomic script), rollback (swap current and previous), read what is live, and clean up.
 * Key schema: redis-keys.ts. Callers validate first: nothing here is called with an invalid set,
 * and nothing is written before validation succeeds (an invalid apply touches no key).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { NoPreviousVersionError, TenantApplyConflictError } from './errors.js';
import { KeySchema, decodePrefixes, decodeRanges, decodeRingGroups, encodePrefixes, encodeRanges, encodeRingGroup, splitNumber } from './redis-keys.js';
import type { RedisClient } from './redis-connection.js';
import { buildIndexData } from './tenant-index.js';
import type { Carrier, RingGroup, Tenant, TenantConfigSet } from './types.js';

/** Stable content hash of a config set (what `plan` and `apply` compare). */
export function configHash(config: TenantConfigSet): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

// Compare-and-switch: only if the pointer still names the version the apply started from.
const SWITCH = `
local cur = redis.call('HGET', KEYS[1], 'current')
if (cur or '') ~= ARGV[1] then return redis.error_reply('CONFLICT live version is ' .. (cur or 'none')) end
if cur then
  redis.call('HSET', KEYS[1], 'current', ARGV[2], 'previous', cur)
else
  -- first version of this dataset: a new epoch tells gateways that version numbers restarted
  redis.call('HSET', KEYS[1], 'current', ARGV[2], 'epoch', ARGV[5])
  redis.call('HDEL', KEYS[1], 'previous')
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;

const ROLLBACK = `
local cur = redis.call('HGET', KEYS[1], 'current')
local prev = redis.call('HGET', KEYS[1], 'previous')
if (cur or '') ~= ARGV[1] or (prev or '') ~= ARGV[2] then return redis.error_reply('CONFLICT pointer changed') end
redis.call('HSET', KEYS[1], 'current', prev, 'previous', cur)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;

export interface LiveConfig {
  version: number;
  previous: number | undefined;
  createdAt: string;
  hash: string;
  config: TenantConfigSet;
}

export interface ApplyResult {
  /** False when the live config already equals the input (nothing written). */
  changed: boolean;
  version: number;
  previous: number | undefined;
  tenants: number;
  exactNumbers: number;
  durationMs: number;
}

/** Every Redis master (one for standalone/Sentinel, all masters for Cluster). */
function masters(redis: RedisClient): Redis[] {
  return redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
}

async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const out: string[] = [];
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out;
}

export class TenantAdmin {
  readonly keys: KeySchema;
  constructor(
    readonly redis: RedisClient,
    namespace = 'tg',
  ) {
    this.keys = new KeySchema(namespace);
  }

  async pointer(): Promise<{ current: number | undefined; previous: number | undefined }> {
    const [cur, prev] = await this.redis.hmget(this.keys.ptr, 'current', 'previous');
    return { current: cur ? Number(cur) : undefined, previous: prev ? Number(prev) : undefined };
  }

  /** Reads a complete version (with DIDs) or undefined when it does not exist. */
  async readVersion(v: number): Promise<Omit<LiveConfig, 'previous'> | undefined> {
    const k = this.keys;
    const res = await this.redis
      .pipeline()
      .hgetall(k.meta(v))
      .hgetall(k.tenants(v))
      .hgetall(k.dids(v))
      .hgetall(k.carriers(v))
      .hgetall(k.ringGroups(v))
      .exec();
    if (!res) return undefined;
    for (const [err] of res) if (err) throw err;
    const [meta, t, td, c, rg] = res.map((r) => r[1] as Record<string, string>) as [
      Record<string, string>,
      Record<string, string>,
      Record<string, string>,
      Record<string, string>,
      Record<string, string>,
    ];
    if (!meta.version) return undefined;
    const groups = new Map<number, RingGroup[]>();
    for (const { t: i, group } of decodeRingGroups(rg)) {
      let l = groups.get(i);
      if (!l) groups.set(i, (l = []));
      l.push(group);
    }
    const tenants = Object.keys(t)
      .map(Number)
      .sort((a, b) => a - b)
      .map((i) => ({ tenant: JSON.parse(t[String(i)]!) as Tenant, dids: td[String(i)] ? td[String(i)]!.split(' ') : [], ringGroups: groups.get(i) }));
    // Field order inside the stored JSON is the runtime order; put dids and ring groups back after
    // fqdn, where the validated config has them (plan compares the two as JSON).
    const ordered = tenants.map(({ tenant: { id, name, enabled, fqdn, ...rest }, dids, ringGroups }) => ({
      id,
      name,
      enabled,
      fqdn,
      dids,
      ...(ringGroups ? { ringGroups } : {}),
      ...rest,
    }));
    const carriers = Object.keys(c)
      .map(Number)
      .sort((a, b) => a - b)
      .map((i) => JSON.parse(c[String(i)]!) as Carrier);
    return {
      version: Number(meta.version),
      createdAt: meta.createdAt ?? '',
      hash: meta.hash ?? '',
      config: { settings: JSON.parse(meta.settings ?? '{}'), carriers, tenants: ordered },
    };
  }

  async live(): Promise<LiveConfig | undefined> {
    const { current, previous } = await this.pointer();
    if (current === undefined) return undefined;
    const v = await this.readVersion(current);
    return v ? { ...v, previous } : undefined;
  }

  /**
   * Writes `config` as a new version and switches to it. `config` must be validated. When the
   * live version already has the same content nothing is written, unless `force`.
   */
  async apply(config: TenantConfigSet, opts: { force?: boolean; chunk?: number } = {}): Promise<ApplyResult> {
    const t0 = performance.now();
    const k = this.keys;
    const hash = configHash(config);
    const { current } = await this.pointer();
    if (!opts.force && current !== undefined) {
      const liveHash = await this.redis.hget(k.meta(current), 'hash');
      if (liveHash === hash) {
        const { previous } = await this.pointer();
        return { changed: false, version: current, previous, tenants: config.tenants.length, exactNumbers: 0, durationMs: performance.now() - t0 };
      }
    }
    const v = await this.redis.incr(k.seq);
    const data = buildIndexData(config, v);
    try {
      await this.#writeVersion(v, config, data, hash, opts.chunk ?? 20_000);
      const event = JSON.stringify({ action: 'apply', version: v, previous: current ?? null });
      await this.redis.eval(SWITCH, 1, k.ptr, current === undefined ? '' : String(current), String(v), k.channel, event, randomUUID());
    } catch (err) {
      await this.deleteVersion(v).catch(() => undefined);
      if (err instanceof Error && err.message.startsWith('CONFLICT')) {
        throw new TenantApplyConflictError(`the live config changed during the apply (${err.message.slice(9)}): nothing was switched; run apply again`);
      }
      throw err;
    }
    await this.gc(v).catch(() => undefined);
    return { changed: true, version: v, previous: current, tenants: config.tenants.length, exactNumbers: data.exactCount, durationMs: performance.now() - t0 };
  }

  async #writeVersion(
    v: number,
    config: TenantConfigSet,
    data: ReturnType<typeof buildIndexData>,
    hash: string,
    chunk: number,
  ): Promise<void> {
    const k = this.keys;
    let pipe = this.redis.pipeline();
    let queued = 0;
    const flush = async (): Promise<void> => {
      if (queued === 0) return;
      const res = await pipe.exec();
      for (const [err] of res ?? []) if (err) throw err;
      pipe = this.redis.pipeline();
      queued = 0;
    };
    const add = async (cost: number, fn: (p: ReturnType<RedisClient['pipeline']>) => void): Promise<void> => {
      fn(pipe);
      queued += cost;
      if (queued >= chunk) await flush();
    };
    // Tenants and their DID lists, 500 per HSET.
    for (let i = 0; i < config.tenants.length; i += 500) {
      const t: string[] = [];
      const td: string[] = [];
      for (let j = i; j < Math.min(i + 500, config.tenants.length); j++) {
        t.push(String(j), JSON.stringify(data.tenants[j]));
        td.push(String(j), config.tenants[j]!.dids.join(' '));
      }
      await add(t.length + td.length, (p) => p.hset(k.tenants(v), ...t).hset(k.dids(v), ...td));
    }
    if (config.carriers.length) {
      const c = config.carriers.flatMap((x, i) => [String(i), JSON.stringify(x)]);
      await add(c.length, (p) => p.hset(k.carriers(v), ...c));
    }
    // Ring groups: one field per DID, 500 per HSET.
    for (let i = 0; i < data.ringGroups.length; i += 500) {
      const rg = data.ringGroups.slice(i, i + 500).flatMap(({ t, group }) => [group.did, encodeRingGroup(t, group)]);
      await add(rg.length, (p) => p.hset(k.ringGroups(v), ...rg));
    }
    // Exact numbers, grouped by bucket.
    const buckets = new Map<string, string[]>();
    for (const [digits, t] of data.exact) {
      const [head, tail] = splitNumber(digits);
      let b = buckets.get(head);
      if (!b) buckets.set(head, (b = []));
      b.push(tail, String(t));
    }
    const heads = [...buckets.keys()];
    for (const [head, fields] of buckets) await add(fields.length + 2, (p) => p.hset(k.bucket(v, head), ...fields));
    for (let i = 0; i < heads.length; i += 1000) {
      const part = heads.slice(i, i + 1000);
      await add(part.length, (p) => p.sadd(k.buckets(v), ...part));
    }
    await flush();
    // Meta last: its presence marks the version complete.
    await this.redis.hset(k.meta(v), {
      version: String(v),
      createdAt: new Date().toISOString(),
      hash,
      settings: JSON.stringify(config.settings),
      ranges: encodeRanges(data.ranges),
      prefixes: encodePrefixes(data.prefixes),
      exactCount: String(data.exactCount),
      ringGroupCount: String(data.ringGroups.length),
      tenantCount: String(config.tenants.length),
      carrierCount: String(config.carriers.length),
    });
  }

  /** Switches back to the previous version (which becomes the new previous: rollback twice = redo). */
  async rollback(): Promise<{ version: number; previous: number }> {
    const k = this.keys;
    const { current, previous } = await this.pointer();
    if (current === undefined || previous === undefined) throw new NoPreviousVersionError();
    if (!(await this.redis.exists(k.meta(previous)))) throw new NoPreviousVersionError();
    const event = JSON.stringify({ action: 'rollback', version: previous, previous: current });
    try {
      await this.redis.eval(ROLLBACK, 1, k.ptr, String(current), String(previous), k.channel, event);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('CONFLICT')) {
        throw new TenantApplyConflictError('the live config changed during the rollback: nothing was switched');
      }
      throw err;
    }
    return { version: previous, previous: current };
  }

  async deleteVersion(v: number): Promise<number> {
    const keys = await scanKeys(this.redis, `${this.keys.version(v)}:*`);
    for (let i = 0; i < keys.length; i += 500) await this.redis.unlink(...keys.slice(i, i + 500));
    return keys.length;
  }

  /** Deletes versions older than `upTo` that are neither current nor previous (old and orphaned ones). */
  async gc(upTo: number): Promise<number[]> {
    const { current, previous } = await this.pointer();
    const keep = new Set([current, previous]);
    const doomed = new Map<number, string[]>();
    for (const key of await scanKeys(this.redis, this.keys.versionPattern)) {
      const v = this.keys.versionOf(key);
      if (v === undefined || v >= upTo || keep.has(v)) continue;
      let l = doomed.get(v);
      if (!l) doomed.set(v, (l = []));
      l.push(key);
    }
    for (const keys of doomed.values()) for (let i = 0; i < keys.length; i += 500) await this.redis.unlink(...keys.slice(i, i + 500));
    return [...doomed.keys()];
  }
}

export { decodePrefixes, decodeRanges };
