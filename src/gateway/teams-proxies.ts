import type { Clock } from '../util/clock.js';
import { realClock } from '../util/clock.js';

export interface TeamsProxy {
  host: string;
  port: number;
}

interface ProxyState {
  proxy: TeamsProxy;
  /** Health (OPTIONS) verdict; down proxies are tried last. */
  up: boolean;
  /** 503 + Retry-After: not used before this time (ms, clock time). */
  retryAfterUntil: number;
}

/**
 * The Teams SIP proxy list (sip, sip2, sip3 by default) with the state that orders it for a
 * new call: proxies marked down by health checks, or inside a 503 Retry-After window, go last.
 */
export class TeamsProxyList {
  readonly #states: ProxyState[];
  readonly #clock: Clock;

  constructor(proxies: TeamsProxy[], clock: Clock = realClock) {
    this.#states = proxies.map((proxy) => ({ proxy, up: true, retryAfterUntil: 0 }));
    this.#clock = clock;
  }

  /** Configured order, with unhealthy / backing-off proxies moved to the end (stable). */
  ordered(): TeamsProxy[] {
    const now = this.#clock.now();
    const good = this.#states.filter((s) => s.up && s.retryAfterUntil <= now);
    const bad = this.#states.filter((s) => !(s.up && s.retryAfterUntil <= now));
    return [...good, ...bad].map((s) => s.proxy);
  }

  setHealth(host: string, up: boolean): void {
    for (const s of this.#states) if (s.proxy.host === host) s.up = up;
  }

  isUp(host: string): boolean {
    return this.#states.find((s) => s.proxy.host === host)?.up ?? false;
  }

  /** RFC 3261 §21.5.4 / Teams failover: honour Retry-After before using the proxy again. */
  backOff(host: string, seconds: number): void {
    for (const s of this.#states) if (s.proxy.host === host) s.retryAfterUntil = this.#clock.now() + seconds * 1000;
  }

  list(): readonly TeamsProxy[] {
    return this.#states.map((s) => s.proxy);
  }
}
