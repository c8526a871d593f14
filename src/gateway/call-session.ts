import type { Logger } from 'pino';
import type { Admission } from './admission.js';
import type { MediaSession, MediaSide } from './media-port.js';
import type { TeamsPin } from './sdp-rules.js';
import type { LegTimerPlan, SessionTimer } from './session-timer.js';
import type { Tenant } from '../tenants/types.js';

export type Direction = 'inbound' | 'outbound';
export type HangupBy = 'caller' | 'callee' | 'gateway';

/** drachtio-srf Dialog (untyped package): the part we use. */
export interface SrfDialog {
  id: string;
  sip: { callId: string; localTag: string; remoteTag: string };
  local: { sdp: string; contact?: string };
  remote: { sdp: string };
  res?: any;
  connected?: boolean;
  on(ev: string, fn: (...a: any[]) => void): void;
  once?(ev: string, fn: (...a: any[]) => void): void;
  destroy(opts?: { headers?: Record<string, string> }): Promise<void>;
  modify(sdp: string | Record<string, unknown>, opts?: Record<string, unknown>): Promise<any>;
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<any>;
}

/**
 * One call through the gateway: the A leg (the side that called us), the B leg, the media
 * session and the admission slot, with one idempotent teardown used by every way a call ends.
 */
/**
 * RFC 4028 §10 endings, per leg: no refresh came from the peer before the session expired, or
 * our refresh failed (408, 481 or no answer).
 */
export type EndCause = `${'carrier' | 'teams'}_${'session_expired' | 'refresh_failed'}`;

/** The Reason header (RFC 3326) of the BYEs sent for each EndCause. */
const END_CAUSE_REASON: Record<EndCause, string> = {
  carrier_session_expired: 'SIP;cause=408;text="Session expired: no refresh from the carrier"',
  carrier_refresh_failed: 'SIP;cause=408;text="Session refresh toward the carrier failed"',
  teams_session_expired: 'SIP;cause=408;text="Session expired: no refresh from Teams"',
  teams_refresh_failed: 'SIP;cause=408;text="Session refresh toward Teams failed"',
};

export class CallSession {
  readonly log: Logger;
  readonly direction: Direction;
  readonly tenantId: string;
  readonly callId: string;
  a?: SrfDialog;
  b?: SrfDialog;
  media?: MediaSession;
  /** Admission slots this call holds (its tenant's, its carrier's), released when it ends. */
  readonly #admissions: Array<{ admission: Admission; key: string; callId: string }> = [];
  readonly startedAt = Date.now();
  answeredAt?: number;
  endedAt?: number;
  finalStatus?: number;
  hangupBy?: HangupBy;
  /** Why the gateway ended an answered call, when a session timer did it (CDR `endCause`, metrics). */
  endCause?: EndCause;
  /** Details for CDRs and metrics (read by src/ops/call-observer.ts). */
  carrier?: string;
  from?: string;
  to?: string;
  teamsProxy?: string;
  firstProvisionalAt?: number;
  /** Mid-call state (mid-call.ts): the tenant, what Teams-bound SDP is pinned to, last SDPs. */
  tenant?: Tenant;
  /** Contact for requests we send to Teams on this call (tenant FQDN, +E.164 user, §4.3). */
  teamsContact?: string;
  /** The PSTN party's number (+E.164 or 'anonymous'). */
  pstnNumber?: string;
  teamsPin?: TeamsPin;
  /** Last SDP received from / sent to each side. */
  readonly sdpFrom: Partial<Record<MediaSide, string>> = {};
  readonly sdpTo: Partial<Record<MediaSide, string>> = {};
  /** RFC 4028 session timers, one per leg (mid-call.ts for Teams, carrier-session-timer.ts); closed with the call. */
  readonly sessionTimers: Partial<Record<MediaSide, SessionTimer>> = {};
  /** What the carrier leg negotiated for its session timer, armed once the call is answered. */
  carrierTimerPlan?: LegTimerPlan;
  /** An offer/answer exchange (re-INVITE relay, transfer) is in progress. */
  busy = false;
  /** Teams legs replaced by a transfer, waiting for Teams' BYE (never BYEd early, §6.4). */
  readonly retired = new Set<SrfDialog>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;
  #answering = 0;
  #heldHangup: HangupBy | undefined;
  #closing: Promise<void> | undefined;
  readonly #onClose: (s: CallSession) => void;

  constructor(init: { log: Logger; direction: Direction; tenantId: string; callId: string; onClose: (s: CallSession) => void }) {
    this.log = init.log;
    this.direction = init.direction;
    this.tenantId = init.tenantId;
    this.callId = init.callId;
    this.#onClose = init.onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Keeps an admitted slot (`key`: a tenant id or `carrier:<name>`) until the call ends. */
  holdAdmission(admission: Admission, key: string, callId: string): void {
    this.#admissions.push({ admission, key, callId });
  }

  /** Gives a slot back before the call ends (a carrier the call moved away from). */
  async dropAdmission(key: string): Promise<void> {
    const i = this.#admissions.findIndex((a) => a.key === key);
    if (i < 0) return;
    const [a] = this.#admissions.splice(i, 1);
    await a!.admission.release(a!.key, a!.callId).catch(() => {});
  }

  /**
   * Adopts the B leg the moment it is answered: a BYE on it may arrive before the A leg is
   * answered (drachtio-srf emits 'destroy' once, to the listeners present then).
   */
  attachB(b: SrfDialog): void {
    this.b = b;
    b.on('destroy', () => {
      if (this.b === b) this.#legEnded('callee');
      else this.retired.delete(b);
    });
    if (this.#closed) void b.destroy().catch(() => {});
    else if (b.connected === false) this.#legEnded('callee');
  }

  /** Adopts the answered A leg; if the call already ended meanwhile, hangs it up at once. */
  attachA(a: SrfDialog): void {
    this.a = a;
    a.on('destroy', () => {
      if (this.a === a) this.#legEnded('caller');
      else this.retired.delete(a);
    });
    if (this.#closed) void a.destroy().catch(() => {});
    else if (a.connected === false) this.#legEnded('caller');
  }

  /**
   * Runs the answer of the A leg once the B leg answered (media answer, then the 200 to the
   * caller). A hangup on an answered leg during that window (Teams may send BYE right after its
   * ACK) is held back until the A leg is answered: the caller then gets 200 and BYE, as for any
   * call the far end ended at once, instead of a teardown racing the answer. A CANCEL from the
   * caller or a gateway shutdown still ends the call at once.
   */
  async answering<T>(fn: () => Promise<T>): Promise<T> {
    this.#answering++;
    try {
      return await fn();
    } finally {
      this.#answering--;
      const by = this.#heldHangup;
      if (this.#answering === 0 && by) {
        this.#heldHangup = undefined;
        void this.close(by);
      }
    }
  }

  #legEnded(by: HangupBy): void {
    if (this.#answering > 0) this.#heldHangup ??= by;
    else void this.close(by);
  }

  /** Which of a/b faces Teams. */
  get teamsSide(): 'a' | 'b' {
    return this.direction === 'inbound' ? 'b' : 'a';
  }

  /** The dialog facing `side` (carrier or Teams). */
  leg(side: MediaSide): SrfDialog | undefined {
    const teams = this.teamsSide;
    const which = side === 'teams' ? teams : teams === 'a' ? 'b' : 'a';
    return which === 'a' ? this.a : this.b;
  }

  /** The side a dialog of this call faces. */
  sideOf(d: SrfDialog): MediaSide | undefined {
    if (d === this.leg('teams')) return 'teams';
    if (d === this.leg('carrier')) return 'carrier';
    return undefined;
  }

  /**
   * A transfer (REFER) or Replaces gave one side a new dialog: the old one is kept in `retired`
   * (its BYE no longer ends the call) until that side, or `close()`, ends it.
   */
  replaceLeg(side: MediaSide, d: SrfDialog): SrfDialog | undefined {
    const old = this.leg(side);
    if (old) this.retired.add(old);
    if ((side === 'teams') === (this.teamsSide === 'a')) this.attachA(d);
    else this.attachB(d);
    return old;
  }

  /** A timer cleared when the call ends. */
  setTimer(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  clearTimer(t: NodeJS.Timeout | undefined): void {
    if (!t) return;
    clearTimeout(t);
    this.#timers.delete(t);
  }

  /**
   * Ends the call everywhere: BYE on legs still up, media deleted, admission released.
   * Idempotent; concurrent callers get the same promise. Media and admission are released
   * at once, without waiting for the BYE transactions (an unresponsive peer must not hold an
   * rtpengine session or a tenant slot for Timer F); the session leaves the live set when
   * both are done, and the returned promise settles once the BYEs completed too.
   */
  close(by: HangupBy = 'gateway', status?: number): Promise<void> {
    this.#closing ??= this.#doClose(by, status);
    return this.#closing;
  }

  async #doClose(by: HangupBy, status: number | undefined): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const st of Object.values(this.sessionTimers)) st?.close();
    this.endedAt = Date.now();
    this.hangupBy = by;
    if (status !== undefined) this.finalStatus = status;
    const byes: Promise<unknown>[] = [];
    // RFC 3326: a BYE the gateway sends because a session timer ran out says why (RFC 4028 §10).
    const byeOpts = this.endCause ? { headers: { Reason: END_CAUSE_REASON[this.endCause] } } : undefined;
    if (this.a && by !== 'caller') byes.push(this.a.destroy(byeOpts).catch(() => {}));
    if (this.b && by !== 'callee') byes.push(this.b.destroy(byeOpts).catch(() => {}));
    // A replaced Teams leg Teams never ended: the call is over, so it goes too.
    for (const d of this.retired) if (d.connected !== false) byes.push(d.destroy().catch(() => {}));
    this.retired.clear();
    await this.media?.delete().catch((err: Error) => this.log.warn({ err: err.message }, 'media delete failed'));
    for (const a of this.#admissions.splice(0)) await a.admission.release(a.key, a.callId).catch(() => {});
    this.log.info({ hangupBy: by, durationMs: this.answeredAt ? this.endedAt - this.answeredAt : 0, status: this.finalStatus, ...(this.endCause ? { endCause: this.endCause } : {}) }, 'call ended');
    this.#onClose(this);
    await Promise.all(byes);
  }
}
