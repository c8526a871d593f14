import type { Logger } from 'pino';

/** One OPTIONS target and the FQDN we present in Contact. */
export interface OptionsTarget {
  /** Label for metrics/logs (the proxy host or carrier target host:port). */
  name: string;
  kind: 'teams' | 'carrier';
  /** Request-URI. */
  uri: string;
  /** Outbound proxy (resolved address) for the request, or undefined to resolve the URI. */
  proxy?: string;
  /** Contact header value. */
  contact?: string;
  headers?: Record<string, string>;
}

export interface OptionsResult {
  target: OptionsTarget;
  /** SIP status, or 0 on timeout / send failure. */
  status: number;
  rttMs: number;
}

export interface OptionsPingerOptions {
  srf: any;
  logger: Logger;
  intervalMs: number;
  /** Consecutive failures before a target is reported down. */
  failuresBeforeDown: number;
  timeoutMs: number;
  /** Called before every round: the target list follows config changes live. */
  targets: () => Promise<OptionsTarget[]> | OptionsTarget[];
  onResult?: (r: OptionsResult) => void;
  onStateChange: (target: OptionsTarget, up: boolean) => void;
}

/**
 * Whether an OPTIONS answer shows the element up: any final response but 408 and 5xx. A 4xx
 * (403 from Teams for a tenant FQDN it does not know yet, 404/405/401 from a carrier) comes from
 * an element that is alive and refuses this request: a config matter, logged, not a reason to
 * route around it.
 */
export function answersUp(status: number): boolean {
  return status >= 200 && status !== 408 && (status < 500 || status >= 600);
}

/**
 * Periodic SIP OPTIONS to Teams proxies (teams-direct-routing.md §3: Teams marks an SBC inactive
 * when OPTIONS stop) and optionally to carrier targets. A target failing `failuresBeforeDown`
 * checks in a row (no answer, 408 or 5xx) is reported down, and up again at its first answer.
 */
export class OptionsPinger {
  readonly #o: OptionsPingerOptions;
  readonly #failures = new Map<string, number>();
  readonly #down = new Set<string>();
  /** `${key}|${contact}` → the last refusing status, for logging changes only. */
  readonly #refused = new Map<string, number>();
  #timer?: NodeJS.Timeout;
  #closed = false;
  #running?: Promise<void>;

  constructor(opts: OptionsPingerOptions) {
    this.#o = opts;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    const tick = () => {
      if (this.#closed) return;
      this.#running = this.round().then(
        () => undefined,
        (err: Error) => this.#o.logger.warn({ err: err.message }, 'OPTIONS round failed'),
      );
      this.#timer = setTimeout(tick, this.#o.intervalMs);
      this.#timer.unref();
    };
    tick();
  }

  isDown(name: string): boolean {
    return this.#down.has(name);
  }

  /** One round over all targets (exposed for tests and `teams-gw check`). */
  async round(): Promise<OptionsResult[]> {
    const targets = await this.#o.targets();
    return Promise.all(targets.map((t) => this.ping(t)));
  }

  /** One OPTIONS without touching up/down state (onboarding self-test). */
  async probe(target: OptionsTarget): Promise<OptionsResult> {
    const started = performance.now();
    const status = await this.#send(target);
    return { target, status, rttMs: performance.now() - started };
  }

  async ping(target: OptionsTarget): Promise<OptionsResult> {
    const r = await this.probe(target);
    const status = r.status;
    this.#o.onResult?.(r);
    const key = `${target.kind}:${target.name}`;
    this.#noteRefusal(key, target, status);
    if (answersUp(status)) {
      this.#failures.set(key, 0);
      if (this.#down.delete(key)) {
        this.#o.logger.info({ target: target.name, kind: target.kind }, 'OPTIONS target is up again');
        this.#o.onStateChange(target, true);
      }
    } else {
      const n = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, n);
      if (n >= this.#o.failuresBeforeDown && !this.#down.has(key)) {
        this.#down.add(key);
        this.#o.logger.warn({ target: target.name, kind: target.kind, status, failures: n }, 'OPTIONS target marked down');
        this.#o.onStateChange(target, false);
      }
    }
    return r;
  }

  /** Logs a refusal (an answer that is not 2xx from an element that is up) when it starts and ends, per Contact. */
  #noteRefusal(key: string, target: OptionsTarget, status: number): void {
    if (!answersUp(status)) return;
    const k = `${key}|${target.contact ?? ''}`;
    const refused = status >= 300;
    const was = this.#refused.get(k);
    if (refused && was !== status) {
      this.#refused.set(k, status);
      this.#o.logger.warn({ target: target.name, kind: target.kind, contact: target.contact, status }, 'OPTIONS refused: the target is up but does not accept this request (for Teams: is the FQDN an online PSTN gateway of the tenant?)');
    } else if (!refused && was !== undefined) {
      this.#refused.delete(k);
      this.#o.logger.info({ target: target.name, kind: target.kind, contact: target.contact }, 'OPTIONS accepted again');
    }
  }

  #send(target: OptionsTarget): Promise<number> {
    return new Promise<number>((resolve) => {
      let done = false;
      const finish = (s: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(s);
      };
      const timer = setTimeout(() => finish(0), this.#o.timeoutMs);
      const opts: Record<string, unknown> = { method: 'OPTIONS', headers: { ...(target.contact ? { Contact: target.contact } : {}), ...target.headers } };
      if (target.proxy) opts.proxy = target.proxy;
      try {
        this.#o.srf.request(target.uri, opts, (err: Error | null, req: any) => {
          if (err || !req) return finish(0);
          req.on('response', (res: any) => {
            if (res.status >= 200) finish(res.status);
          });
        });
      } catch {
        finish(0);
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
