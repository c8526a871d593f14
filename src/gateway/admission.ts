import type { Redis } from 'ioredis';

export type AdmitResult = { ok: true } | { ok: false; reason: 'concurrency' | 'cps'; retryAfter: number };

export interface Limits {
  maxConcurrentCalls?: number;
  cps?: number;
}

/**
 * Per-tenant admission control: concurrent calls and calls per second.
 * `admit` counts a call once; `release` is idempotent, so a fast CANCEL racing the final
 * response can never release (or count) twice.
 */
export interface Admission {
  admit(tenantId: string, callId: string, limits: Limits): Promise<AdmitResult>;
  release(tenantId: string, callId: string): Promise<void>;
  /** Calls currently counted for a tenant (all gateways, for the Redis implementation). */
  active(tenantId: string): Promise<number>;
  close(): Promise<void>;
}

/** Whether `l` limits anything (a carrier without limits takes no admission slot). */
export function hasLimits(l: Limits | undefined): l is Limits {
  return l !== undefined && (l.maxConcurrentCalls !== undefined || l.cps !== undefined);
}

/** The admission key of a carrier trunk's own limits (tenant ids cannot hold ':'). */
export function carrierKey(name: string): string {
  return `carrier:${name}`;
}

/**
 * `admit`, with a failing store (Redis unreachable) counted as a full one: the call is refused
 * with 503 and Retry-After rather than admitted uncounted.
 */
export async function admitOrRefuse(admission: Admission, key: string, callId: string, limits: Limits, log: { error(o: object, m: string): void }): Promise<AdmitResult> {
  return admission.admit(key, callId, limits).catch((err: Error) => {
    log.error({ err: err.message, key }, 'admission check failed');
    return { ok: false as const, reason: 'concurrency' as const, retryAfter: 5 };
  });
}

/** Single-process admission (embedded default, no Redis). */
export class MemoryAdmission implements Admission {
  readonly #calls = new Map<string, Set<string>>();
  readonly #cps = new Map<string, { sec: number; n: number }>();

  async admit(tenantId: string, callId: string, limits: Limits): Promise<AdmitResult> {
    const set = this.#calls.get(tenantId) ?? new Set<string>();
    if (set.has(callId)) return { ok: true };
    if (limits.maxConcurrentCalls !== undefined && set.size >= limits.maxConcurrentCalls) return { ok: false, reason: 'concurrency', retryAfter: 5 };
    if (limits.cps !== undefined) {
      const sec = Math.floor(Date.now() / 1000);
      const c = this.#cps.get(tenantId);
      const cur = c && c.sec === sec ? c : { sec, n: 0 };
      cur.n++;
      this.#cps.set(tenantId, cur);
      if (cur.n > limits.cps) return { ok: false, reason: 'cps', retryAfter: 1 };
    }
    set.add(callId);
    this.#calls.set(tenantId, set);
    return { ok: true };
  }

  async release(tenantId: string, callId: string): Promise<void> {
    const set = this.#calls.get(tenantId);
    if (!set) return;
    set.delete(callId);
    if (set.size === 0) this.#calls.delete(tenantId);
  }

  async active(tenantId: string): Promise<number> {
    return this.#calls.get(tenantId)?.size ?? 0;
  }

  async close(): Promise<void> {
    this.#calls.clear();
  }
}

/*
 * Cluster-wide admission in Redis, one atomic script per decision.
 *   {ns}:adm:{tenant}:calls   ZSET  member = call id, score = lease expiry (Redis TIME, ms)
 *   {ns}:adm:{tenant}:cps     STRING counter for the current second (PEXPIRE 2 s)
 * A gateway renews the leases of its own calls every leaseMs/3; if it dies, its leases expire
 * and the counters heal by themselves within leaseMs.
 */
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
local maxCalls = tonumber(ARGV[2])
if maxCalls >= 0 and redis.call('ZCARD', KEYS[1]) >= maxCalls then return -1 end
local cps = tonumber(ARGV[3])
if cps >= 0 then
  local key = KEYS[2] .. ':' .. t[1]
  local c = redis.call('INCR', key)
  if c == 1 then redis.call('PEXPIRE', key, 2000) end
  if c > cps then return -2 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`;

const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`;

const ACTIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`;

export class RedisAdmission implements Admission {
  readonly #redis: Redis;
  readonly #ns: string;
  readonly #leaseMs: number;
  /** Calls this gateway holds, per tenant (renewed periodically). */
  readonly #mine = new Map<string, Set<string>>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(redis: Redis, opts: { namespace?: string; leaseMs?: number } = {}) {
    this.#redis = redis;
    this.#ns = opts.namespace ?? 'tg';
    this.#leaseMs = opts.leaseMs ?? 60_000;
    this.#timer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
  }

  #keys(tenantId: string): [string, string] {
    return [`${this.#ns}:adm:{${tenantId}}:calls`, `${this.#ns}:adm:{${tenantId}}:cps`];
  }

  async admit(tenantId: string, callId: string, limits: Limits): Promise<AdmitResult> {
    const [calls, cps] = this.#keys(tenantId);
    const r = (await this.#redis.eval(ADMIT, 2, calls, cps, String(this.#leaseMs), String(limits.maxConcurrentCalls ?? -1), String(limits.cps ?? -1), callId)) as number;
    if (r === -1) return { ok: false, reason: 'concurrency', retryAfter: 5 };
    if (r === -2) return { ok: false, reason: 'cps', retryAfter: 1 };
    const set = this.#mine.get(tenantId) ?? new Set<string>();
    set.add(callId);
    this.#mine.set(tenantId, set);
    return { ok: true };
  }

  async release(tenantId: string, callId: string): Promise<void> {
    const set = this.#mine.get(tenantId);
    if (!set?.delete(callId)) return;
    if (set.size === 0) this.#mine.delete(tenantId);
    await this.#redis.zrem(this.#keys(tenantId)[0], callId);
  }

  async active(tenantId: string): Promise<number> {
    return (await this.#redis.eval(ACTIVE, 1, this.#keys(tenantId)[0])) as number;
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    for (const [tenantId, set] of this.#mine) {
      if (set.size === 0) continue;
      await this.#redis.eval(RENEW, 1, this.#keys(tenantId)[0], String(this.#leaseMs), ...set).catch(() => {});
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
