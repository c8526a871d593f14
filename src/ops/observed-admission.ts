import type { Admission, AdmitResult, Limits } from '../gateway/admission.js';
import type { GatewayMetrics } from '../observability/metrics.js';

/** Admission decorated with metrics: rejections per tenant, and store latency/errors (Redis). */
export class ObservedAdmission implements Admission {
  readonly #inner: Admission;
  readonly #m: GatewayMetrics;
  readonly #timed: boolean;

  constructor(inner: Admission, metrics: GatewayMetrics, timed: boolean) {
    this.#inner = inner;
    this.#m = metrics;
    this.#timed = timed;
  }

  async #time<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (!this.#timed) return fn();
    const end = this.#m.redisLatency.startTimer({ op });
    try {
      return await fn();
    } catch (err) {
      this.#m.redisErrors.inc({ op });
      throw err;
    } finally {
      end();
    }
  }

  async admit(tenantId: string, callId: string, limits: Limits): Promise<AdmitResult> {
    const r = await this.#time('admit', () => this.#inner.admit(tenantId, callId, limits));
    if (!r.ok) this.#m.admissionRejections.inc({ tenant: tenantId, reason: r.reason });
    return r;
  }

  release(tenantId: string, callId: string): Promise<void> {
    return this.#time('release', () => this.#inner.release(tenantId, callId));
  }

  active(tenantId: string): Promise<number> {
    return this.#inner.active(tenantId);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
