/**
 * RtpenginePool with two real rtpengine processes: placement, health checks, failover of new
 * calls when one dies, NO_RTPENGINE when none is alive, recovery after a restart, and the
 * per-instance counters/events metrics subscribe to.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RtpenginePool, isMediaError, type MediaLogger, type MediaPoolEvent, type MediaSession } from '../../../src/media/index.js';
import { startRtpengine, type RtpengineHandle } from '../../helpers/rtpengine.js';
import { waitFor } from '../../helpers/net.js';

const A_IP = '127.0.4.20';
const B_IP = '127.0.4.21';
const PEER_IP = '127.0.4.22';

let a: RtpengineHandle;
let b: RtpengineHandle;
const pools: RtpenginePool[] = [];
let n = 0;

function offerSdp(port = 40000): string {
  return [
    'v=0',
    `o=carrier 1 1 IN IP4 ${PEER_IP}`,
    's=-',
    `c=IN IP4 ${PEER_IP}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

interface LogLine {
  level: string;
  obj: object;
  msg: string | undefined;
}

function recordingLogger(lines: LogLine[]): MediaLogger {
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function makePool(opts: Partial<ConstructorParameters<typeof RtpenginePool>[0]> = {}): { pool: RtpenginePool; events: MediaPoolEvent[]; log: LogLine[] } {
  const log: LogLine[] = [];
  const pool = new RtpenginePool({
    instances: [a.ngAddress, b.ngAddress],
    commandTimeoutMs: 200,
    healthIntervalMs: 100,
    failuresBeforeDown: 2,
    logger: recordingLogger(log),
    ...opts,
  });
  const events: MediaPoolEvent[] = [];
  pool.on((e) => events.push(e));
  pools.push(pool);
  return { pool, events, log };
}

async function call(pool: RtpenginePool): Promise<MediaSession> {
  n++;
  const s = pool.createSession({ callId: `pool-test-${process.pid}-${n}`, fromTag: `ft-${n}` });
  await s.offer('carrier', offerSdp());
  return s;
}

async function bothUp(): Promise<void> {
  if (!a.pid) await a.restart();
  if (!b.pid) await b.restart();
}

beforeAll(async () => {
  [a, b] = await Promise.all([startRtpengine({ ip: A_IP }), startRtpengine({ ip: B_IP })]);
});

afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
  await bothUp();
  // Nothing leaks into the next test: both instances hold no call.
  const check = new RtpenginePool({ instances: [a.ngAddress, b.ngAddress], healthIntervalMs: 0 });
  try {
    expect(await check.activeSessionsByInstance()).toEqual({ [a.ngAddress]: 0, [b.ngAddress]: 0 });
  } finally {
    await check.close();
  }
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('RtpenginePool', () => {
  it('spreads new calls over live instances, each call sticks to its instance, counters and events are kept', async () => {
    const { pool, events } = makePool();
    const calls = [await call(pool), await call(pool), await call(pool), await call(pool)];
    const placed = calls.map((c) => c.instance);
    expect(placed.filter((x) => x === a.ngAddress)).toHaveLength(2);
    expect(placed.filter((x) => x === b.ngAddress)).toHaveLength(2);
    expect(await pool.activeSessionsByInstance()).toEqual({ [a.ngAddress]: 2, [b.ngAddress]: 2 });
    expect(await pool.activeSessions()).toBe(4);

    // A re-offer goes to the same instance.
    const first = calls[0]!;
    const before = first.instance;
    await first.offer('carrier', offerSdp(40002));
    expect(first.instance).toBe(before);

    const st = pool.stats();
    expect(st.up).toBe(2);
    for (const i of st.instances) {
      expect(i.up).toBe(true);
      expect(i.sessions).toBe(2);
      expect(i.commands.offer!.count).toBeGreaterThanOrEqual(2);
      expect(i.commands.offer!.timeouts).toBe(0);
      expect(i.commands.offer!.totalLatencyMs).toBeGreaterThan(0);
      expect(i.commands.offer!.maxLatencyMs).toBeGreaterThanOrEqual(i.commands.offer!.lastLatencyMs);
    }
    expect(events.some((e) => e.type === 'command' && e.command === 'offer' && e.outcome === 'ok' && e.latencyMs >= 0)).toBe(true);

    await Promise.all(calls.map((c) => c.delete()));
    expect(pool.stats().instances.map((i) => i.sessions)).toEqual([0, 0]);
    expect(await pool.activeSessions()).toBe(0);
  });

  it('kill one instance: health marks it down, new calls go to the other; a call on the dead one fails bounded and deletes quietly', async () => {
    const { pool, events, log } = makePool();
    const onA = await call(pool);
    const onB = await call(pool);
    expect(new Set([onA.instance, onB.instance])).toEqual(new Set([a.ngAddress, b.ngAddress]));
    const [victimCall, survivorCall] = onA.instance === a.ngAddress ? [onA, onB] : [onB, onA];

    await a.kill();
    await waitFor(() => events.some((e) => e.type === 'instance-down' && e.instance === a.ngAddress), { timeoutMs: 3000, what: 'instance-down event' });
    expect(pool.liveInstances).toEqual([b.ngAddress]);
    expect(log.some((l) => l.level === 'error' && l.msg === 'rtpengine instance down')).toBe(true);

    const fresh = await Promise.all([call(pool), call(pool), call(pool)]);
    expect(fresh.every((c) => c.instance === b.ngAddress)).toBe(true);

    // The call anchored on the dead instance stays there: a re-offer times out (503), bounded.
    const t0 = performance.now();
    const err = await victimCall.offer('carrier', offerSdp(40004)).catch((e: unknown) => e);
    expect(isMediaError(err, 'MEDIA_ERR_TIMEOUT')).toBe(true);
    expect((err as { sipStatus: number }).sipStatus).toBe(503);
    expect(performance.now() - t0).toBeLessThan(1000);
    // delete() on it never throws; the failure is logged.
    await expect(victimCall.delete()).resolves.toBeUndefined();
    expect(log.some((l) => l.level === 'error' && /delete failed/.test(l.msg ?? ''))).toBe(true);

    await Promise.all([survivorCall, ...fresh].map((c) => c.delete()));
    expect(await pool.activeSessions()).toBe(0);
  });

  it('no instance alive: createSession throws MEDIA_ERR_NO_RTPENGINE at once, with a log line, counter and event', async () => {
    const { pool, events, log } = makePool();
    await Promise.all([a.kill(), b.kill()]);
    await waitFor(() => pool.stats().up === 0, { timeoutMs: 3000, what: 'both instances down' });

    const t0 = performance.now();
    let err: unknown;
    try {
      pool.createSession({ callId: 'no-rtpengine-1', fromTag: 'x' });
    } catch (e) {
      err = e;
    }
    expect(performance.now() - t0).toBeLessThan(50);
    expect(isMediaError(err, 'MEDIA_ERR_NO_RTPENGINE')).toBe(true);
    expect((err as { sipStatus: number }).sipStatus).toBe(503);
    expect(pool.stats().noRtpengine).toBe(1);
    expect(events).toContainEqual({ type: 'no-rtpengine', callId: 'no-rtpengine-1' });
    expect(log.some((l) => l.level === 'error' && l.msg === 'no rtpengine alive: refusing call media')).toBe(true);
  });

  it('health checks bring a restarted instance back, and new calls use it again', async () => {
    const { pool, events } = makePool();
    await a.kill();
    await waitFor(() => !pool.liveInstances.includes(a.ngAddress), { timeoutMs: 3000, what: 'A down' });
    const onB = await call(pool);
    expect(onB.instance).toBe(b.ngAddress);

    await a.restart();
    await waitFor(() => pool.liveInstances.includes(a.ngAddress), { timeoutMs: 3000, what: 'A back up' });
    expect(events.filter((e) => e.type === 'instance-up').map((e) => (e as { instance: string }).instance)).toEqual([a.ngAddress]);
    // B holds one call, A none: the next call lands on A.
    const next = await call(pool);
    expect(next.instance).toBe(a.ngAddress);
    await Promise.all([onB.delete(), next.delete()]);
  });

  it('an instance that died unnoticed: the first offer fails over to a live one within the command timeout', async () => {
    // No periodic health checks, and one failure is enough to mark an instance down.
    const { pool } = makePool({ healthIntervalMs: 0, failuresBeforeDown: 1 });
    await a.kill();
    // Both look alive; with equal load the first pick is A (the dead one).
    const s = pool.createSession({ callId: `unnoticed-${process.pid}`, fromTag: 'ft' });
    const t0 = performance.now();
    const sdp = await s.offer('carrier', offerSdp());
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(sdp).toContain('RTP/SAVP');
    expect(s.instance).toBe(b.ngAddress);
    const st = pool.stats();
    const statsA = st.instances.find((i) => i.address === a.ngAddress)!;
    expect(statsA.up).toBe(false);
    expect(statsA.commands.offer!.timeouts).toBe(1);
    await s.delete();

    // Now B dies unnoticed too: the offer of a new call ends in NO_RTPENGINE, bounded.
    await b.kill();
    const s2 = pool.createSession({ callId: `unnoticed2-${process.pid}`, fromTag: 'ft' });
    const t1 = performance.now();
    const err = await s2.offer('carrier', offerSdp()).catch((e: unknown) => e);
    expect(isMediaError(err, 'MEDIA_ERR_NO_RTPENGINE')).toBe(true);
    expect(performance.now() - t1).toBeLessThan(1000);
    expect(pool.stats().up).toBe(0);
    await s2.delete();
    // No health checks: a manual round still finds the restarted instances.
    await bothUp();
    await pool.checkHealth();
    expect(pool.stats().up).toBe(2);
  });

  it('close() is idempotent and refuses new sessions', async () => {
    const { pool } = makePool();
    await pool.close();
    await pool.close();
    expect(() => pool.createSession({ callId: 'closed', fromTag: 'x' })).toThrow(expect.objectContaining({ code: 'MEDIA_ERR_CLOSED' }));
  });
});
