/**
 * TenantStore backed by Redis (key schema: redis-keys.ts, docs/tenants.md).
 *
 * - On start and on every `{ns}:events` message (plus a cheap pointer poll as a safety net for
 *   messages lost while disconnected) it reads `{ns}:ptr` and, when the version changed, loads
 *   that version's tenants, carriers, ranges, prefixes and ring groups (and its exact numbers too, when there
 *   are at most `preloadExactLimit`) into a new immutable snapshot, then swaps it in.
 * - Lookups read the snapshot: no Redis round trip, except for exact numbers that are not
 *   preloaded and not yet in the snapshot's cache; those read the snapshot's own version keys,
 *   so an answer always belongs to one version.
 * - Redis unreachable: the snapshot keeps serving; the store logs once, reports `degraded`
 *   through status() and a 'status' event, and reloads by itself when Redis is back.
 */
import { TenantStoreUnavailableError } from './errors.js';
import { decodePrefixes, decodeRanges, decodeRingGroups, KeySchema, splitNumber } from './redis-keys.js';
import { createRedisClient, describeRedis, type RedisClient, type RedisConnectionOptions } from './redis-connection.js';
import { BaseTenantStore, emptySnapshot, type TenantLogger } from './tenant-store.js';
import { TenantIndex, TenantSnapshot, VERSION_GONE, type IndexData } from './tenant-index.js';
import type { Carrier, Tenant } from './types.js';

export interface RedisTenantStoreOptions {
  /** Connection options, or a factory (called twice: commands, then the subscriber). */
  redis: RedisConnectionOptions | (() => RedisClient);
  namespace?: string;
  logger?: TenantLogger;
  /** Pointer poll interval, a safety net behind pub/sub (default 1000 ms). */
  pollIntervalMs?: number;
  /** Exact-number cache entries per snapshot (default 200,000). */
  cacheSize?: number;
  /** Preload every exact number when a version has at most this many (default 100,000). */
  preloadExactLimit?: number;
  /** Timeout of a call-path Redis read (default 500 ms). */
  commandTimeoutMs?: number;
  /** start() rejects if no config could be loaded within this time (default 10,000 ms). */
  startTimeoutMs?: number;
}

export class RedisTenantStore extends BaseTenantStore {
  readonly keys: KeySchema;
  readonly #opts: Required<Omit<RedisTenantStoreOptions, 'redis' | 'logger' | 'namespace'>>;
  readonly #factory: (role: 'cmd' | 'sub') => RedisClient;
  readonly #describe: string;
  #cmd: RedisClient | undefined;
  #sub: RedisClient | undefined;
  #poll: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #loadedId: string | undefined;
  #dataLost = false;
  #firstLoad: { resolve: () => void; promise: Promise<void> };

  constructor(opts: RedisTenantStoreOptions) {
    super('redis', opts.logger);
    this.keys = new KeySchema(opts.namespace ?? 'tg');
    this.#opts = {
      pollIntervalMs: opts.pollIntervalMs ?? 1000,
      cacheSize: opts.cacheSize ?? 200_000,
      preloadExactLimit: opts.preloadExactLimit ?? 100_000,
      commandTimeoutMs: opts.commandTimeoutMs ?? 500,
      startTimeoutMs: opts.startTimeoutMs ?? 10_000,
    };
    const retryStrategy = (times: number): number => Math.min(50 * times, 500);
    const conn = opts.redis;
    if (typeof conn === 'function') {
      this.#factory = () => conn();
      this.#describe = 'redis (custom client)';
    } else {
      this.#describe = describeRedis(conn);
      this.#factory = (role) =>
        createRedisClient(conn, {
          retryStrategy,
          connectionName: `teams-gw-tenants-${role}`,
          ...(role === 'cmd'
            ? { enableOfflineQueue: false, commandTimeout: this.#opts.commandTimeoutMs, maxRetriesPerRequest: 0 }
            : { maxRetriesPerRequest: null }),
        });
    }
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstLoad = { resolve, promise };
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    if (!this.#cmd) {
      const cmd = (this.#cmd = this.#factory('cmd'));
      const sub = (this.#sub = this.#factory('sub'));
      cmd.on('ready', () => void this.reload());
      cmd.on('error', (err: Error) => this.#degrade(err));
      cmd.on('close', () => this.#degrade(new Error('connection closed')));
      sub.on('error', () => undefined); // reported through the command connection
      sub.on('ready', () => void this.reload()); // after a reconnect: catch up on missed messages
      sub.on('message', (channel: string) => {
        if (channel === this.keys.channel) void this.reload();
      });
      sub.subscribe(this.keys.channel).catch(() => undefined);
      this.#poll = setInterval(() => void this.reload(), this.#opts.pollIntervalMs);
      this.#poll.unref();
      if ((cmd as { status?: string }).status === 'ready') void this.reload();
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TenantStoreUnavailableError(`no tenant config loaded from ${this.#describe} within ${this.#opts.startTimeoutMs} ms`)),
        this.#opts.startTimeoutMs,
      );
      timer.unref();
    });
    try {
      await Promise.race([this.#firstLoad.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Re-reads the pointer and loads a new version if it moved. Concurrent calls coalesce. */
  reload(): Promise<void> {
    if (this.closed || !this.#cmd) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      let rounds = 0;
      do {
        this.#again = false;
        await this.#reloadOnce();
      } while (this.#again && !this.closed && ++rounds < 5);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #reloadOnce(): Promise<void> {
    const cmd = this.#cmd;
    if (!cmd || this.closed) return;
    try {
      const [cur, epoch] = await cmd.hmget(this.keys.ptr, 'current', 'epoch');
      const v = cur ? Number(cur) : 0;
      // (epoch, version) identifies a version: numbers restart if Redis lost its data.
      const id = `${epoch ?? ''}:${v}`;
      if (v === 0 && this.#loadedId !== undefined && this.#loadedId !== id) {
        // Redis answers but holds no config although we served one: it lost its data (restart
        // without persistence, failover to an empty replica). Keep serving until an apply.
        if (!this.#dataLost) {
          this.#dataLost = true;
          this.log.error(
            { version: this.snap.version, redis: this.#describe },
            `tenant store: Redis has no tenant config (data lost?), serving last good config version ${this.snap.version} until the next apply`,
          );
        }
        this.setState('degraded', new Error('Redis has no tenant config'));
        return;
      }
      if (id !== this.#loadedId) {
        const next = v === 0 ? emptySnapshot() : await this.#loadVersion(cmd, v);
        if (!next) {
          this.#again = true; // the version went away between pointer and read: read the pointer again
          return;
        }
        const from = this.snap.version;
        this.install(next);
        this.#loadedId = id;
        this.#dataLost = false;
        this.log.info(
          { version: v, previous: from, tenants: next.index.tenants.length, ringGroups: next.index.ringGroupCount, exactPreloaded: next.index.exactComplete },
          `tenant config version ${v} loaded`,
        );
      }
      if (this.st.state === 'degraded') this.log.info({ version: this.snap.version }, `tenant store: Redis reachable again, serving config version ${this.snap.version}`);
      this.setState('ok');
      this.#firstLoad.resolve();
    } catch (err) {
      this.st.reloadFailures++;
      this.#degrade(err);
    }
  }

  async #loadVersion(cmd: RedisClient, v: number): Promise<TenantSnapshot | undefined> {
    const k = this.keys;
    const res = await cmd.pipeline().hgetall(k.meta(v)).hgetall(k.tenants(v)).hgetall(k.carriers(v)).hgetall(k.ringGroups(v)).exec();
    for (const [err] of res ?? []) if (err) throw err;
    type H = Record<string, string>;
    const [meta, t, c, rg] = (res ?? []).map((r) => r[1] as H) as [H, H, H, H];
    if (!meta?.version) return undefined;
    const byIdx = <T>(h: Record<string, string>): T[] =>
      Object.keys(h)
        .map(Number)
        .sort((a, b) => a - b)
        .map((i) => JSON.parse(h[String(i)]!) as T);
    const exactCount = Number(meta.exactCount ?? 0);
    const data: IndexData = {
      version: v,
      settings: JSON.parse(meta.settings ?? '{}'),
      tenants: byIdx<Tenant>(t),
      carriers: byIdx<Carrier>(c),
      ranges: decodeRanges(meta.ranges ?? ''),
      prefixes: decodePrefixes(meta.prefixes ?? ''),
      ringGroups: decodeRingGroups(rg ?? {}),
      exactCount,
    };
    if (exactCount <= this.#opts.preloadExactLimit) {
      const heads = exactCount === 0 ? [] : await cmd.smembers(k.buckets(v));
      const exact = new Map<string, number>();
      for (let i = 0; i < heads.length; i += 1000) {
        const part = heads.slice(i, i + 1000);
        const p = cmd.pipeline();
        for (const h of part) p.hgetall(k.bucket(v, h));
        const r = (await p.exec()) ?? [];
        r.forEach(([err, fields], j) => {
          if (err) throw err;
          for (const [tail, idx] of Object.entries(fields as Record<string, string>)) exact.set(part[j]! + tail, Number(idx));
        });
      }
      // A version is immutable, but it may have been garbage-collected while we read it.
      if (!(await cmd.exists(k.meta(v)))) return undefined;
      data.exact = exact;
    }
    return new TenantSnapshot(new TenantIndex(data), {
      cacheSize: this.#opts.cacheSize,
      stats: this.lookupStats,
      fetchExact: async (digits) => {
        const [head, tail] = splitNumber(digits);
        const r = (await cmd.pipeline().hget(k.bucket(v, head), tail).exists(k.meta(v)).exec()) ?? [];
        for (const [err] of r) if (err) throw err;
        if (r[1]?.[1] === 0) return VERSION_GONE;
        const val = r[0]?.[1] as string | null;
        return val === null || val === undefined ? -1 : Number(val);
      },
      onGone: async () => {
        await this.reload();
        if (this.snap.version === v || this.st.state !== 'ok') throw new TenantStoreUnavailableError(`config version ${v} is gone and no newer one could be loaded`);
        return this.snap;
      },
    });
  }

  #degrade(err: unknown): void {
    if (this.closed) return;
    this.st.redisErrors++;
    if (this.st.state === 'ok') {
      this.log.warn(
        { err: err instanceof Error ? err.message : String(err), version: this.snap.version, redis: this.#describe },
        `tenant store: Redis unreachable, serving last good config version ${this.snap.version}`,
      );
    }
    this.setState(this.st.state === 'starting' ? 'starting' : 'degraded', err);
  }

  protected async doClose(): Promise<void> {
    if (this.#poll) clearInterval(this.#poll);
    this.#cmd?.disconnect();
    this.#sub?.disconnect();
    await this.#running?.catch(() => undefined);
  }
}
