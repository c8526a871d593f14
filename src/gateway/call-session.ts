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
  #closed = false;
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

  /** Wires BYE from either leg to the other and to teardown. */
  bridge(): void {
    const { a, b } = this;
    if (!a || !b) return;
    a.on('destroy', () => void this.close('caller'));
    b.on('destroy', () => void this.close('callee'));
  }

  /** Ends the call everywhere: BYE on legs still up, media deleted, admission released. Idempotent. */
  async close(by: HangupBy = 'gateway', status?: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.endedAt = Date.now();
    this.hangupBy = by;
    if (status !== undefined) this.finalStatus = status;
    const byes: Promise<unknown>[] = [];
    if (this.a && by !== 'caller') byes.push(this.a.destroy().catch(() => {}));
    if (this.b && by !== 'callee') byes.push(this.b.destroy().catch(() => {}));
    await Promise.all(byes);
    await this.media?.delete().catch((err: Error) => this.log.warn({ err: err.message }, 'media delete failed'));
    if (this.#admission) await this.#admission.admission.release(this.#admission.tenantId, this.#admission.callId).catch(() => {});
    this.log.info({ hangupBy: by, durationMs: this.answeredAt ? this.endedAt - this.answeredAt : 0, status: this.finalStatus }, 'call ended');
    this.#onClose(this);
  }
}
