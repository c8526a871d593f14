/**
 * Cluster-wide admission control against a real redis-server: concurrency and CPS limits shared
 * by several gateways, idempotent release (a fast CANCEL is never counted twice), and leases that
 * heal the counters when a gateway dies without releasing.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAdmission, RedisAdmission } from '../../../src/gateway/admission.js';
import { type RedisServerHandle, startRedisServer } from '../../helpers/redis-server.js';

let redis: RedisServerHandle;
const clients: Redis[] = [];
const client = () => {
  const c = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: false, maxRetriesPerRequest: 1 });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis.stop();
});

describe('RedisAdmission', () => {
  it('enforces a concurrent-call limit across two gateways, and release is idempotent', async () => {
    const gw1 = new RedisAdmission(client(), { namespace: 't1' });
    const gw2 = new RedisAdmission(client(), { namespace: 't1' });
    const limits = { maxConcurrentCalls: 3 };
    expect(await gw1.admit('contoso', 'c1', limits)).toEqual({ ok: true });
    expect(await gw2.admit('contoso', 'c2', limits)).toEqual({ ok: true });
    expect(await gw1.admit('contoso', 'c3', limits)).toEqual({ ok: true });
    expect(await gw2.admit('contoso', 'c4', limits)).toEqual({ ok: false, reason: 'concurrency', retryAfter: 5 });
    // another tenant is unaffected
    expect(await gw2.admit('fabrikam', 'f1', limits)).toEqual({ ok: true });
    expect(await gw1.active('contoso')).toBe(3);
    // admitting the same call twice counts it once (retransmitted INVITE)
    expect(await gw1.admit('contoso', 'c1', limits)).toEqual({ ok: true });
    expect(await gw2.active('contoso')).toBe(3);
    // CANCEL racing the final response: two releases, counted down once
    await gw1.release('contoso', 'c1');
    await gw1.release('contoso', 'c1');
    expect(await gw2.active('contoso')).toBe(2);
    expect(await gw2.admit('contoso', 'c4', limits)).toEqual({ ok: true });
    for (const [gw, id] of [[gw2, 'c2'], [gw1, 'c3'], [gw2, 'c4']] as const) await gw.release('contoso', id);
    await gw2.release('fabrikam', 'f1');
    expect(await gw1.active('contoso')).toBe(0);
    expect(await gw1.active('fabrikam')).toBe(0);
    await gw1.close();
    await gw2.close();
  });

  it('enforces calls per second across gateways', async () => {
    const gw1 = new RedisAdmission(client(), { namespace: 't2' });
    const gw2 = new RedisAdmission(client(), { namespace: 't2' });
    // Start at the beginning of a second so all attempts fall in one.
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await (i % 2 ? gw2 : gw1).admit('contoso', `r${i}`, { cps: 4 }));
    expect(results.filter((r) => r.ok)).toHaveLength(4);
    expect(results.slice(4)).toEqual([
      { ok: false, reason: 'cps', retryAfter: 1 },
      { ok: false, reason: 'cps', retryAfter: 1 },
    ]);
    for (let i = 0; i < 4; i++) await (i % 2 ? gw2 : gw1).release('contoso', `r${i}`);
    expect(await gw1.active('contoso')).toBe(0);
    await gw1.close();
    await gw2.close();
  });

  it('heals by itself when a gateway dies holding calls: its leases expire', async () => {
    const dead = new RedisAdmission(client(), { namespace: 't3', leaseMs: 600 });
    const alive = new RedisAdmission(client(), { namespace: 't3', leaseMs: 600 });
    expect(await dead.admit('contoso', 'lost1', { maxConcurrentCalls: 2 })).toEqual({ ok: true });
    expect(await alive.admit('contoso', 'kept1', { maxConcurrentCalls: 2 })).toEqual({ ok: true });
    expect(await alive.admit('contoso', 'x', { maxConcurrentCalls: 2 })).toMatchObject({ ok: false, reason: 'concurrency' });
    // The first gateway dies: no release, no lease renewal.
    await dead.close();
    await new Promise((r) => setTimeout(r, 1200));
    // The living gateway kept renewing its own call; the dead one's expired.
    expect(await alive.active('contoso')).toBe(1);
    expect(await alive.admit('contoso', 'x', { maxConcurrentCalls: 2 })).toEqual({ ok: true });
    await alive.release('contoso', 'kept1');
    await alive.release('contoso', 'x');
    expect(await alive.active('contoso')).toBe(0);
    await alive.close();
  });
});

describe('MemoryAdmission (embedded default)', () => {
  it('has the same semantics in one process', async () => {
    const a = new MemoryAdmission();
    expect(await a.admit('t', 'a', { maxConcurrentCalls: 1 })).toEqual({ ok: true });
    expect(await a.admit('t', 'a', { maxConcurrentCalls: 1 })).toEqual({ ok: true });
    expect(await a.admit('t', 'b', { maxConcurrentCalls: 1 })).toEqual({ ok: false, reason: 'concurrency', retryAfter: 5 });
    await a.release('t', 'a');
    await a.release('t', 'a');
    expect(await a.active('t')).toBe(0);
    await a.close();
  });
});
