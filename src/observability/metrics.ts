import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets for call setup (seconds): SIP setup spans ms to tens of seconds. */
const SETUP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60];
const CMD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export type Direction = 'inbound' | 'outbound';

/** SIP class label: "2xx".."6xx". */
export function sipClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/**
 * The gateway's Prometheus metrics (prefix `teamsgw_`), with bounded label sets: tenant,
 * carrier, direction, Teams proxy, rtpengine instance and SIP response class. The rtpengine
 * label is `rtpengine`, not `instance`: Prometheus reserves `instance` for the scrape target. The embedded SIP
 * server adds its drachtio_* families to the same registry.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly callsAttempted: Counter<'tenant' | 'carrier' | 'direction'>;
  readonly callsAnswered: Counter<'tenant' | 'carrier' | 'direction'>;
  readonly callsFailed: Counter<'tenant' | 'carrier' | 'direction' | 'class'>;
  readonly activeCalls: Gauge<'tenant' | 'direction'>;
  readonly setupFirst18x: Histogram<'direction'>;
  readonly setupAnswer: Histogram<'direction'>;
  readonly admissionRejections: Counter<'tenant' | 'reason'>;
  readonly callsRejected: Counter<'direction' | 'carrier' | 'reason'>;
  readonly optionsUp: Gauge<'target' | 'kind'>;
  readonly optionsRtt: Histogram<'target' | 'kind'>;
  readonly optionsStatus: Counter<'target' | 'kind' | 'class'>;
  readonly rtpengineUp: Gauge<'rtpengine'>;
  readonly rtpengineLatency: Histogram<'rtpengine' | 'command'>;
  readonly rtpengineErrors: Counter<'rtpengine' | 'command' | 'outcome'>;
  readonly mediaSessions: Gauge;
  readonly noRtpengine: Counter;
  readonly redisLatency: Histogram<'op'>;
  readonly redisErrors: Counter<'op'>;
  readonly redisUp: Gauge;
  readonly tenantConfigVersion: Gauge;
  readonly tenantReloads: Counter;
  readonly certExpiry: Gauge<'subject'>;
  readonly tlsReloads: Counter<'outcome'>;
  readonly cdrsWritten: Counter<'sink'>;
  readonly sessionTimerEnds: Counter<'leg' | 'outcome' | 'carrier'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const r = [this.registry];
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.callsAttempted = new Counter({ name: 'teamsgw_calls_attempted_total', help: 'Calls attempted (INVITEs accepted for routing)', labelNames: ['tenant', 'carrier', 'direction'], registers: r });
    this.callsAnswered = new Counter({ name: 'teamsgw_calls_answered_total', help: 'Calls answered (200 OK)', labelNames: ['tenant', 'carrier', 'direction'], registers: r });
    this.callsFailed = new Counter({ name: 'teamsgw_calls_failed_total', help: 'Calls that ended without answer, by final SIP class', labelNames: ['tenant', 'carrier', 'direction', 'class'], registers: r });
    this.activeCalls = new Gauge({ name: 'teamsgw_active_calls', help: 'Calls in progress', labelNames: ['tenant', 'direction'], registers: r });
    this.setupFirst18x = new Histogram({ name: 'teamsgw_setup_first_provisional_seconds', help: 'INVITE to first 18x', labelNames: ['direction'], buckets: SETUP_BUCKETS, registers: r });
    this.setupAnswer = new Histogram({ name: 'teamsgw_setup_answer_seconds', help: 'INVITE to 200 OK', labelNames: ['direction'], buckets: SETUP_BUCKETS, registers: r });
    this.admissionRejections = new Counter({ name: 'teamsgw_admission_rejections_total', help: 'Calls refused by per-tenant limits', labelNames: ['tenant', 'reason'], registers: r });
    this.callsRejected = new Counter({ name: 'teamsgw_calls_rejected_total', help: 'INVITEs refused before they became calls (not in calls_attempted), by reason: unknown-source, not-tls, draining, session-interval, number-format, unallocated, unknown-trunk, tenant-disabled, carrier-not-allowed, trunk-mismatch, replaces-unknown, unsupported-body, caller-id, limit, error', labelNames: ['direction', 'carrier', 'reason'], registers: r });
    this.optionsUp = new Gauge({ name: 'teamsgw_options_up', help: '1 when the OPTIONS target answers, 0 when marked down', labelNames: ['target', 'kind'], registers: r });
    this.optionsRtt = new Histogram({ name: 'teamsgw_options_rtt_seconds', help: 'OPTIONS round-trip time', labelNames: ['target', 'kind'], buckets: CMD_BUCKETS.concat([2, 5]), registers: r });
    this.optionsStatus = new Counter({ name: 'teamsgw_options_responses_total', help: 'OPTIONS results by SIP class (timeout = "timeout")', labelNames: ['target', 'kind', 'class'], registers: r });
    this.rtpengineUp = new Gauge({ name: 'teamsgw_rtpengine_up', help: '1 when the rtpengine instance answers pings', labelNames: ['rtpengine'], registers: r });
    this.rtpengineLatency = new Histogram({ name: 'teamsgw_rtpengine_command_seconds', help: 'rtpengine ng command latency', labelNames: ['rtpengine', 'command'], buckets: CMD_BUCKETS, registers: r });
    this.rtpengineErrors = new Counter({ name: 'teamsgw_rtpengine_command_errors_total', help: 'rtpengine ng commands that failed or timed out', labelNames: ['rtpengine', 'command', 'outcome'], registers: r });
    this.mediaSessions = new Gauge({ name: 'teamsgw_media_sessions', help: 'Media sessions anchored by this gateway', registers: r });
    this.noRtpengine = new Counter({ name: 'teamsgw_media_unavailable_total', help: 'Calls refused because no rtpengine was alive', registers: r });
    this.redisLatency = new Histogram({ name: 'teamsgw_redis_command_seconds', help: 'Redis command latency', labelNames: ['op'], buckets: CMD_BUCKETS, registers: r });
    this.redisErrors = new Counter({ name: 'teamsgw_redis_errors_total', help: 'Redis errors', labelNames: ['op'], registers: r });
    this.redisUp = new Gauge({ name: 'teamsgw_redis_up', help: '1 when Redis (or the embedded store) serves config', registers: r });
    this.tenantConfigVersion = new Gauge({ name: 'teamsgw_tenant_config_version', help: 'Tenant config version served', registers: r });
    this.tenantReloads = new Counter({ name: 'teamsgw_tenant_config_reloads_total', help: 'Tenant config reloads applied', registers: r });
    this.certExpiry = new Gauge({ name: 'teamsgw_tls_certificate_expiry_timestamp_seconds', help: 'notAfter of the TLS certificates in use (unix seconds)', labelNames: ['subject'], registers: r });
    this.tlsReloads = new Counter({ name: 'teamsgw_tls_reloads_total', help: 'Certificate reload attempts (SIGHUP, POST /tls/reload, file watch) by outcome: reloaded, unchanged, failed', labelNames: ['outcome'], registers: r });
    this.sessionTimerEnds = new Counter({ name: 'teamsgw_session_timer_terminations_total', help: 'Answered calls the gateway ended because an RFC 4028 session timer ran out (outcome=session_expired: no refresh from that leg) or our refresh failed (outcome=refresh_failed)', labelNames: ['leg', 'outcome', 'carrier'], registers: r });
    this.cdrsWritten = new Counter({ name: 'teamsgw_cdrs_written_total', help: 'CDRs written', labelNames: ['sink'], registers: r });
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
