/**
 * How the tenants layer connects to Redis: standalone (URL), Sentinel or Cluster, the way
 * ioredis users configure it. Options come from code, CLI flags or environment variables
 * (docs/tenants.md "Connecting to Redis").
 */
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface HostPort {
  host: string;
  port: number;
}

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). Standalone. */
  url?: string;
  /** Sentinel mode: sentinel addresses plus the monitored master name. */
  sentinels?: HostPort[];
  sentinelName?: string;
  sentinelPassword?: string;
  /** Cluster mode: seed nodes. */
  cluster?: HostPort[];
  username?: string;
  password?: string;
  tls?: boolean;
  db?: number;
  /** Passed through to ioredis (RedisOptions, or ClusterOptions in cluster mode). */
  extra?: RedisOptions & ClusterOptions;
}

export function parseHostList(s: string): HostPort[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(x);
      if (!m) throw new Error(`expected host:port, got "${x}"`);
      return { host: m[1]!, port: Number(m[2]) };
    });
}

/** Reads TEAMS_GW_REDIS_* variables; undefined when none selects a Redis (embedded mode). */
export function redisOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): RedisConnectionOptions | undefined {
  const o: RedisConnectionOptions = {};
  if (env.TEAMS_GW_REDIS_URL) o.url = env.TEAMS_GW_REDIS_URL;
  if (env.TEAMS_GW_REDIS_SENTINELS) o.sentinels = parseHostList(env.TEAMS_GW_REDIS_SENTINELS);
  if (env.TEAMS_GW_REDIS_SENTINEL_NAME) o.sentinelName = env.TEAMS_GW_REDIS_SENTINEL_NAME;
  if (env.TEAMS_GW_REDIS_SENTINEL_PASSWORD) o.sentinelPassword = env.TEAMS_GW_REDIS_SENTINEL_PASSWORD;
  if (env.TEAMS_GW_REDIS_CLUSTER) o.cluster = parseHostList(env.TEAMS_GW_REDIS_CLUSTER);
  if (env.TEAMS_GW_REDIS_USERNAME) o.username = env.TEAMS_GW_REDIS_USERNAME;
  if (env.TEAMS_GW_REDIS_PASSWORD) o.password = env.TEAMS_GW_REDIS_PASSWORD;
  if (env.TEAMS_GW_REDIS_TLS === '1' || env.TEAMS_GW_REDIS_TLS === 'true') o.tls = true;
  return o.url || o.sentinels || o.cluster ? o : undefined;
}

/** A short description without credentials, for logs and CLI output. */
export function describeRedis(o: RedisConnectionOptions): string {
  if (o.cluster) return `cluster ${o.cluster.map((h) => `${h.host}:${h.port}`).join(',')}`;
  if (o.sentinels) return `sentinel ${o.sentinelName ?? 'mymaster'} via ${o.sentinels.map((h) => `${h.host}:${h.port}`).join(',')}`;
  if (o.url) {
    try {
      const u = new URL(o.url);
      return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    } catch {
      return 'redis (unparsable url)';
    }
  }
  return 'redis';
}

/** Creates an ioredis client; `overrides` are the caller's behavioural options (retries, queues). */
export function createRedisClient(o: RedisConnectionOptions, overrides: RedisOptions = {}): RedisClient {
  const auth: RedisOptions = {
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    ...(o.tls ? { tls: {} } : {}),
    ...(o.db !== undefined ? { db: o.db } : {}),
  };
  if (o.cluster) {
    const { retryStrategy, enableOfflineQueue, ...redisOptions } = { ...auth, ...overrides, ...o.extra };
    return new Cluster(o.cluster, {
      redisOptions,
      ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
      ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
      ...o.extra,
    });
  }
  if (o.sentinels) {
    return new Redis({
      sentinels: o.sentinels,
      name: o.sentinelName ?? 'mymaster',
      ...(o.sentinelPassword ? { sentinelPassword: o.sentinelPassword } : {}),
      ...auth,
      ...overrides,
      ...o.extra,
    });
  }
  if (o.url) return new Redis(o.url, { ...auth, ...overrides, ...o.extra });
  throw new Error('no Redis connection configured (url, sentinels or cluster)');
}
