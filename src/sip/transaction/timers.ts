import type { TimerSettings } from './types.js';

/**
 * RFC 3261 §17.1.1.1 / Table 4: "T1 is an estimate of the round-trip time (RTT), and it
 * defaults to 500 ms." T2 (4 s) caps non-INVITE request and INVITE response retransmission
 * intervals; T4 (5 s) is the maximum time a message remains in the network.
 */
export const DEFAULT_TIMER_SETTINGS: Readonly<TimerSettings> = Object.freeze({ T1: 500, T2: 4000, T4: 5000 });

/** Merges overrides onto the defaults and checks them (positive, T1 ≤ T2). */
export function resolveTimerSettings(overrides: Partial<TimerSettings> = {}): TimerSettings {
  const s: TimerSettings = {
    T1: overrides.T1 ?? DEFAULT_TIMER_SETTINGS.T1,
    T2: overrides.T2 ?? DEFAULT_TIMER_SETTINGS.T2,
    T4: overrides.T4 ?? DEFAULT_TIMER_SETTINGS.T4,
  };
  for (const k of ['T1', 'T2', 'T4'] as const) {
    if (!Number.isFinite(s[k]) || s[k] <= 0) throw new TypeError(`timer ${k} must be a positive number of ms, got ${s[k]}`);
  }
  if (s.T2 < s.T1) throw new TypeError(`timer T2 (${s.T2}) must not be smaller than T1 (${s.T1})`);
  return s;
}

/**
 * Timer values in ms for one transaction (RFC 3261 Table 4 + RFC 6026 §8.1).
 * A, E and G are the *initial* retransmission intervals and are `null` over reliable
 * transports, where they are never started. A value of 0 means "transition at once".
 */
export interface TimerValues {
  /** INVITE request retransmit interval, initially T1, doubles without cap (§17.1.1.2). */
  A: number | null;
  /** INVITE client transaction timeout, 64*T1. */
  B: number;
  /** Wait time for response retransmits: ≥ 32 s unreliable, 0 reliable. */
  D: number;
  /** non-INVITE request retransmit interval, initially T1, capped at T2 (§17.1.2.2). */
  E: number | null;
  /** non-INVITE client transaction timeout, 64*T1. */
  F: number;
  /** INVITE response retransmit interval, initially T1, capped at T2 (§17.2.1). */
  G: number | null;
  /** Wait time for ACK receipt, 64*T1. */
  H: number;
  /** Wait time for ACK retransmits: T4 unreliable, 0 reliable. */
  I: number;
  /** Wait time for non-INVITE request retransmits: 64*T1 unreliable, 0 reliable. */
  J: number;
  /** Wait time for response retransmits: T4 unreliable, 0 reliable. */
  K: number;
  /** RFC 6026: wait time for accepted INVITE request retransmits, 64*T1. */
  L: number;
  /** RFC 6026: wait time for retransmission of 2xx to INVITE or additional 2xx from other branches, 64*T1. */
  M: number;
  /** T2, the retransmission interval cap. */
  T2: number;
}

export function timerValues(s: TimerSettings, reliable: boolean): TimerValues {
  const t64 = 64 * s.T1;
  return {
    A: reliable ? null : s.T1,
    B: t64,
    // §17.1.1.2: "The client transaction SHOULD start timer D when it enters the "Completed"
    // state, with a value of at least 32 seconds for unreliable transports, and a value of
    // zero seconds for reliable transports."
    D: reliable ? 0 : Math.max(32_000, t64),
    E: reliable ? null : s.T1,
    F: t64,
    G: reliable ? null : s.T1,
    H: t64,
    I: reliable ? 0 : s.T4,
    J: reliable ? 0 : t64,
    K: reliable ? 0 : s.T4,
    L: t64,
    M: t64,
    T2: s.T2,
  };
}

/** True for transports that §17.1.1.2 treats as reliable (no retransmission timers). */
export function isReliableProtocol(protocol: string): boolean {
  return protocol.toLowerCase() !== 'udp';
}
