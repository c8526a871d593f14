import type { CallSession } from '../gateway/call-session.js';
import type { Cdr, CdrWriter } from '../observability/cdr.js';
import { type GatewayMetrics, sipClass } from '../observability/metrics.js';

/** Optional details a call flow records on its session (read defensively). */
interface CallDetails {
  carrier?: string;
  from?: string;
  to?: string;
  teamsProxy?: string;
  firstProvisionalAt?: number;
  media?: { finalStats?: unknown; query?: () => Promise<unknown> };
}

/**
 * The set of live calls, observed: adding a call counts an attempt and the active gauge;
 * removing it (CallSession.close) records the outcome, setup latencies and writes the CDR.
 * Call flows stay unaware of metrics and CDRs.
 */
export class ObservedCallSet extends Set<CallSession> {
  #metrics?: GatewayMetrics;
  #cdr?: CdrWriter;
  /**
   * The carrier label a call was counted under when it was attempted: answered/failed use the
   * same label, so per-label ratios (failed / attempted) stay consistent even when a call flow
   * learns or changes its carrier later (outbound failover). The CDR carries the final carrier.
   */
  readonly #attemptCarrier = new WeakMap<CallSession, string>();

  attach(metrics: GatewayMetrics, cdr: CdrWriter): void {
    this.#metrics = metrics;
    this.#cdr = cdr;
  }

  override add(s: CallSession): this {
    if (!this.has(s) && this.#metrics) {
      const d = s as CallSession & CallDetails;
      const carrier = d.carrier ?? '';
      this.#attemptCarrier.set(s, carrier);
      this.#metrics.callsAttempted.inc({ tenant: s.tenantId, carrier, direction: s.direction });
      this.#metrics.activeCalls.inc({ tenant: s.tenantId, direction: s.direction });
    }
    return super.add(s);
  }

  override delete(s: CallSession): boolean {
    const had = super.delete(s);
    if (had && this.#metrics) this.#record(s);
    return had;
  }

  #record(s: CallSession): void {
    const m = this.#metrics!;
    const d = s as CallSession & CallDetails;
    const labels = { tenant: s.tenantId, carrier: this.#attemptCarrier.get(s) ?? d.carrier ?? '', direction: s.direction };
    m.activeCalls.dec({ tenant: s.tenantId, direction: s.direction });
    const status = s.answeredAt ? 200 : (s.finalStatus ?? 500);
    if (s.answeredAt) {
      m.callsAnswered.inc(labels);
      m.setupAnswer.observe({ direction: s.direction }, (s.answeredAt - s.startedAt) / 1000);
    } else {
      m.callsFailed.inc({ ...labels, class: sipClass(status) });
    }
    if (s.endCause) {
      const [leg, ...rest] = s.endCause.split('_');
      m.sessionTimerEnds.inc({ leg, outcome: rest.join('_'), carrier: d.carrier ?? '' });
    }
    if (d.firstProvisionalAt) m.setupFirst18x.observe({ direction: s.direction }, (d.firstProvisionalAt - s.startedAt) / 1000);
    const end = s.endedAt ?? Date.now();
    const stats = d.media?.finalStats;
    const cdr: Cdr = {
      callId: s.callId,
      direction: s.direction,
      tenant: s.tenantId,
      carrier: d.carrier ?? '',
      from: d.from ?? '',
      to: d.to ?? '',
      startTime: new Date(s.startedAt).toISOString(),
      answerTime: s.answeredAt ? new Date(s.answeredAt).toISOString() : null,
      endTime: new Date(end).toISOString(),
      durationSec: s.answeredAt ? Math.round((end - s.answeredAt) / 100) / 10 : 0,
      finalStatus: status,
      hangupBy: s.hangupBy ?? 'gateway',
      endCause: s.endCause ?? null,
      teamsProxy: d.teamsProxy ?? null,
      media: stats && typeof stats === 'object' ? flattenStats(stats as Record<string, unknown>) : null,
    };
    void this.#cdr?.write(cdr);
  }
}

function flattenStats(o: Record<string, unknown>, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') out[prefix + k] = v;
    else if (v && typeof v === 'object') flattenStats(v as Record<string, unknown>, `${prefix}${k}.`, out);
  }
  return out;
}
