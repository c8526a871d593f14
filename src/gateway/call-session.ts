import type { Logger } from 'pino';
import type { Admission } from './admission.js';
import type { MediaSession } from './media-port.js';

export type Direction = 'inbound' | 'outbound';
export type HangupBy = 'caller' | 'callee' | 'gateway';

/** drachtio-srf Dialog (untyped package): the part we use. */
export interface SrfDialog {
  id: string;
  sip: { callId: string; localTag: string; remoteTag: string };
  local: { sdp: string };
  remote: { sdp: string };
  connected?: boolean;
  on(ev: string, fn: (...a: any[]) => void): void;
  destroy(opts?: { headers?: Record<string, string> }): Promise<void>;
  modify(sdp: string): Promise<string>;
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<any>;
}

/**
 * One call through the gateway: the A leg (the side that called us), the B leg, the media
 * session and the admission slot, with one idempotent teardown used by every way a call ends.
 */
export class CallSession {
  readonly log: Logger;
  readonly direction: Direction;
  readonly tenantId: string;
  readonly callId: string;
  a?: SrfDialog;
  b?: SrfDialog;
  media?: MediaSession;
  #admission?: { admission: Admission; tenantId: string; callId: string };
  readonly startedAt = Date.now();
  answeredAt?: number;
  endedAt?: number;
  finalStatus?: number;
  hangupBy?: HangupBy;
  /** Details for CDRs and metrics (read by src/ops/call-observer.ts). */
  carrier?: string;
  from?: string;
  to?: string;
  teamsProxy?: string;
  firstProvisionalAt?: number;
  #closed = false;
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

  holdAdmission(admission: Admission, tenantId: string, callId: string): void {
    this.#admission = { admission, tenantId, callId };
  }

  /**
   * Adopts the B leg the moment it is answered: a BYE on it may arrive before the A leg is
   * answered (drachtio-srf emits 'destroy' once, to the listeners present then).
   */
  attachB(b: SrfDialog): void {
    this.b = b;
    b.on('destroy', () => void this.close('callee'));
    if (this.#closed) void b.destroy().catch(() => {});
    else if (b.connected === false) void this.close('callee');
  }

  /** Adopts the answered A leg; if the call already ended meanwhile, hangs it up at once. */
  attachA(a: SrfDialog): void {
    this.a = a;
    a.on('destroy', () => void this.close('caller'));
    if (this.#closed) void a.destroy().catch(() => {});
    else if (a.connected === false) void this.close('caller');
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
    this.endedAt = Date.now();
    this.hangupBy = by;
    if (status !== undefined) this.finalStatus = status;
    const byes: Promise<unknown>[] = [];
    if (this.a && by !== 'caller') byes.push(this.a.destroy().catch(() => {}));
    if (this.b && by !== 'callee') byes.push(this.b.destroy().catch(() => {}));
    await this.media?.delete().catch((err: Error) => this.log.warn({ err: err.message }, 'media delete failed'));
    if (this.#admission) await this.#admission.admission.release(this.#admission.tenantId, this.#admission.callId).catch(() => {});
    this.log.info({ hangupBy: by, durationMs: this.answeredAt ? this.endedAt - this.answeredAt : 0, status: this.finalStatus }, 'call ended');
    this.#onClose(this);
    await Promise.all(byes);
  }
}
