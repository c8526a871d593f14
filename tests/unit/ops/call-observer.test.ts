/**
 * The call observer (src/ops/call-observer.ts) turns a call's end into metrics and one CDR. Real
 * CallSession, real prom-client metrics, real CdrWriter writing pino lines to memory.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CallSession } from '../../../src/gateway/call-session.js';
import { CdrWriter } from '../../../src/observability/cdr.js';
import { GatewayMetrics } from '../../../src/observability/metrics.js';
import { ObservedCallSet } from '../../../src/ops/call-observer.js';

function setup() {
  const lines: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = pino({ level: 'info', base: null }, sink);
  const metrics = new GatewayMetrics({ processMetrics: false });
  const calls = new ObservedCallSet();
  calls.attach(metrics, new CdrWriter({ logger: log }));
  const call = (callId: string): CallSession => {
    const s = new CallSession({ log, direction: 'inbound', tenantId: 'acme', callId, onClose: (x) => calls.delete(x) });
    s.carrier = 'trunk-a';
    calls.add(s);
    return s;
  };
  const cdr = (callId: string) => lines.find((l) => l.msg === 'cdr' && l.cdr.callId === callId)?.cdr;
  const ends = async (leg: string, outcome: string) => (await metrics.sessionTimerEnds.get()).values.find((v) => v.labels.leg === leg && v.labels.outcome === outcome && v.labels.carrier === 'trunk-a')?.value ?? 0;
  return { lines, metrics, calls, call, cdr, ends };
}

describe('call observer: calls a session timer ended', () => {
  it('count per leg, outcome and carrier, and the CDR and the "call ended" line carry endCause', async () => {
    const t = setup();
    const a = t.call('c1');
    a.answeredAt = Date.now();
    a.endCause = 'carrier_session_expired';
    await a.close('gateway', 408);
    const b = t.call('c2');
    b.answeredAt = Date.now();
    b.endCause = 'teams_refresh_failed';
    await b.close('gateway', 408);
    const c = t.call('c3');
    c.answeredAt = Date.now();
    await c.close('caller');

    expect(await t.ends('carrier', 'session_expired')).toBe(1);
    expect(await t.ends('teams', 'refresh_failed')).toBe(1);
    expect(await t.ends('carrier', 'refresh_failed')).toBe(0);
    expect(t.cdr('c1')).toMatchObject({ hangupBy: 'gateway', endCause: 'carrier_session_expired', carrier: 'trunk-a', finalStatus: 200 });
    expect(t.cdr('c2')).toMatchObject({ hangupBy: 'gateway', endCause: 'teams_refresh_failed' });
    expect(t.cdr('c3')).toMatchObject({ hangupBy: 'caller', endCause: null });
    expect(t.lines.find((l) => l.msg === 'call ended' && l.endCause === 'carrier_session_expired')).toBeDefined();
    expect(t.calls.size).toBe(0);
    const text = await t.metrics.registry.metrics();
    expect(text).toContain('teamsgw_session_timer_terminations_total{leg="carrier",outcome="session_expired",carrier="trunk-a"} 1');
  });
});
