/**
 * RFC 4028 session timers, one per call leg. The Teams leg (mid-call.ts) and the carrier leg
 * (carrier-session-timer.ts) each negotiate and run their own: a refresh on one leg restarts
 * that leg's timer only and is never passed to the other leg as a refresh.
 *
 * This class is only the clock side of RFC 4028 §10 for one leg: which of the two timers runs
 * (send a refresh, or wait for the peer's), when it fires, and an idempotent close(). What a
 * refresh is on the wire, and what an expiry does, belongs to the leg's owner (callbacks).
 */
import type { Logger } from 'pino';
import { type Clock, type TimerHandle, realClock } from '../util/clock.js';
import { InvalidStateError } from '../util/errors.js';
import type { MediaSide } from './media-port.js';

export type Refresher = 'uac' | 'uas';

/**
 * What a leg negotiated before it was answered (carrier leg: carrier-session-timer.ts), armed
 * by callAnswered() once both legs are up.
 */
export interface LegTimerPlan {
  /** Session interval, seconds. */
  interval: number;
  /** The gateway sends the refreshes; otherwise the peer does and we wait for them. */
  weRefresh: boolean;
  /** The peer listed `timer` (Supported or Require): it may be sent `Require: timer`. */
  peerSupportsTimer: boolean;
  /** The peer's Allow lists UPDATE: our refreshes go as UPDATE without a body (RFC 3311). */
  useUpdate: boolean;
  /** The peer sent the INVITE that created this leg's dialog. */
  peerIsUac: boolean;
}

/**
 * States of one leg's timer (RFC 4028 §10):
 * - `idle`: created, not negotiated yet;
 * - `refresher`: we refresh; the refresh timer (half the interval) runs;
 * - `refreshing`: the refresh timer fired; the owner's refresh is in flight;
 * - `watching`: the peer refreshes; the expiry timer runs;
 * - `expired`: no refresh came before the expiry; the owner ends the call;
 * - `closed`: the call ended (or the leg's timer was dropped); nothing runs any more.
 */
export type SessionTimerState = 'idle' | 'refresher' | 'refreshing' | 'watching' | 'expired' | 'closed';

export interface SessionTimerOptions {
  leg: MediaSide;
  log: Logger;
  /** Whether the peer sent the INVITE that created the dialog (refresher roles are expressed relative to it). */
  peerIsUac: boolean;
  /** Half the interval passed and we are the refresher: send a refresh, then call start() (or retry()). */
  onRefreshDue(): void;
  /** The peer is the refresher and its refresh did not come in time. */
  onExpired(): void;
  clock?: Clock;
}

/** RFC 4028 §10: the refresher sends its refresh "half the session expiration" into the interval. */
export function refreshDelayMs(intervalSec: number): number {
  return intervalSec * 500;
}

/**
 * RFC 4028 §10: the side that does not refresh sends its BYE "slightly before" the session
 * expires; the recommended margin is the minimum of 32 seconds and one third of the interval.
 */
export function expiryDelayMs(intervalSec: number): number {
  return (intervalSec - Math.min(32, intervalSec / 3)) * 1000;
}

/** The per-leg session timer (see the module comment). */
export class SessionTimer {
  /** Allowed transitions; anything else throws InvalidStateError. */
  static readonly edges = {
    idle: ['refresher', 'watching', 'closed'],
    refresher: ['refresher', 'refreshing', 'watching', 'closed'],
    refreshing: ['refresher', 'watching', 'closed'],
    watching: ['refresher', 'watching', 'expired', 'closed'],
    expired: ['closed'],
    closed: [],
  } as const satisfies Record<SessionTimerState, readonly SessionTimerState[]>;

  readonly leg: MediaSide;
  /** Whether the peer sent the INVITE that created the current dialog of this leg. */
  peerIsUac: boolean;
  #state: SessionTimerState = 'idle';
  #interval = 0;
  #timer: TimerHandle | undefined;
  readonly #o: SessionTimerOptions;
  readonly #clock: Clock;

  constructor(o: SessionTimerOptions) {
    this.#o = o;
    this.leg = o.leg;
    this.peerIsUac = o.peerIsUac;
    this.#clock = o.clock ?? realClock;
  }

  get state(): SessionTimerState {
    return this.#state;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** The session interval in force (seconds); 0 before start(). */
  get interval(): number {
    return this.#interval;
  }

  /** We are the refresher (also while our refresh is in flight). */
  get weRefresh(): boolean {
    return this.#state === 'refresher' || this.#state === 'refreshing';
  }

  /**
   * A session refresh succeeded (or the session was set up) with `interval` seconds and
   * `weRefresh` naming the refresher: RFC 4028 §10, the refresher's timer is half the
   * interval, the other side's the interval less min(32, interval/3). Ignored once the timer
   * expired or was closed (a late refresh cannot revive a call being torn down).
   */
  start(intervalSec: number, weRefresh: boolean): void {
    if (this.#state === 'closed' || this.#state === 'expired') return;
    this.#interval = intervalSec;
    this.#arm(weRefresh ? 'refresher' : 'watching', weRefresh ? refreshDelayMs(intervalSec) : expiryDelayMs(intervalSec));
    this.#o.log.debug({ leg: this.leg, sessionExpires: intervalSec, weRefresh }, 'session timer started');
  }

  /**
   * Our refresh could not go now (another offer/answer in progress, or glare: RFC 3261 §14.1)
   * or must be repeated at once with a larger interval (RFC 4028 §10 on a 422): fire the
   * refresh timer again in `ms`.
   */
  retry(ms: number, intervalSec = this.#interval): void {
    if (this.#state === 'closed' || this.#state === 'expired') return;
    this.#interval = intervalSec;
    this.#arm('refresher', ms);
  }

  /** Stops the timer for good. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#transition('closed');
  }

  #arm(state: 'refresher' | 'watching', ms: number): void {
    this.#clock.clearTimeout(this.#timer);
    this.#transition(state);
    this.#timer = this.#clock.setTimeout(() => this.#fire(), ms);
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#state === 'refresher') {
      this.#transition('refreshing');
      this.#o.onRefreshDue();
    } else if (this.#state === 'watching') {
      this.#transition('expired');
      this.#o.onExpired();
    }
  }

  #transition(to: SessionTimerState): void {
    const allowed: readonly SessionTimerState[] = SessionTimer.edges[this.#state];
    if (!allowed.includes(to)) throw new InvalidStateError(`session timer (${this.leg}): ${this.#state} → ${to}`);
    this.#state = to;
  }
}
