import type { SrfDialog } from './call-session.js';

/** How one outgoing INVITE attempt (to a Teams proxy or a carrier target) ended. */
export interface AttemptResult {
  /** Answered: the B-leg dialog. */
  dialog?: SrfDialog;
  /** Final status of a failed attempt (undefined: transport failure or abandoned). */
  status?: number;
  /** The final response (for Reason / Retry-After). */
  res?: any;
  error?: unknown;
  /** The INVITE as sent (the last one, after a 401/407 challenge): a retry in the same call reuses its Call-ID, From and CSeq. */
  request?: any;
  /** No provisional response (> 100) within the attempt timeout: the attempt was cancelled. */
  timedOut: boolean;
  /** Cancelled on timeout but no final response came either: given up without one. */
  abandoned: boolean;
}

export interface AttemptOptions {
  srf: any;
  uri: string;
  opts: Record<string, unknown>;
  /** No provisional (> 100) within this time: CANCEL and report `timedOut`. */
  timeoutMs: number;
  /**
   * After that CANCEL, wait at most this long for the final response, then give up on the
   * attempt (the next hop is tried). A connection that died after 100 Trying never delivers a
   * final response: RFC 3261 §17.1.1.2 runs no timer in Proceeding, so without this the call
   * would hang (the role Timer C plays for proxies, §16.8).
   */
  cancelGraceMs: number;
  onProvisional(res: any): void;
  /**
   * An UPDATE from the callee in the early dialog (RFC 3311). Without it drachtio-srf answers
   * such an UPDATE itself (200 with the INVITE's SDP).
   */
  onUpdate?(req: any, res: any): void;
}

/**
 * drachtio-srf's createUAC answers an UPDATE on the INVITE it sent with a listener it adds to
 * the request right after cbRequest returns; this one takes its place (and follows the request
 * re-sent with credentials after a 401/407, which drachtio-srf announces as 'authenticate').
 */
function takeOverUpdates(r: any, fn: (req: any, res: any) => void): void {
  const adopt = (q: any) => {
    q.removeAllListeners?.('update');
    q.on?.('update', fn);
  };
  queueMicrotask(() => adopt(r));
  r.on?.('authenticate', (next: any) => adopt(next));
}

/**
 * One outgoing INVITE through drachtio-srf's createUAC with the gateway's attempt rules:
 * a provisional-response timeout, CANCEL on request (caller gave up), and a late answer to an
 * attempt already given up is hung up at once (never left as an orphan dialog).
 */
export class UacAttempt {
  readonly result: Promise<AttemptResult>;
  #req: any;
  /** The last INVITE sent (drachtio-srf re-sends it with credentials after a challenge). */
  #sent: any;
  #cancelWanted = false;
  #gotProvisional = false;
  #settled = false;

  constructor(o: AttemptOptions) {
    this.result = new Promise<AttemptResult>((resolve) => {
      let timedOut = false;
      let grace: NodeJS.Timeout | undefined;
      const finish = (r: Omit<AttemptResult, 'timedOut'> & { timedOut?: boolean }): void => {
        if (this.#settled) return;
        this.#settled = true;
        clearTimeout(timer);
        clearTimeout(grace);
        resolve({ timedOut, ...(this.#sent ? { request: this.#sent } : {}), ...r });
      };
      const timer = setTimeout(() => {
        if (this.#gotProvisional || this.#settled) return;
        timedOut = true;
        this.#sendCancel();
        grace = setTimeout(() => finish({ abandoned: true }), o.cancelGraceMs);
      }, o.timeoutMs);
      const p: Promise<SrfDialog> = o.srf.createUAC(o.uri, o.opts, {
        cbRequest: (_err: unknown, r: any) => {
          this.#req = r;
          this.#sent = r;
          r?.on?.('authenticate', (next: any) => (this.#sent = next));
          if (r && o.onUpdate) takeOverUpdates(r, o.onUpdate);
          if (this.#cancelWanted) this.#sendCancel();
        },
        cbProvisional: (res: any) => {
          if (this.#settled) return;
          if (res.status > 100) this.#gotProvisional = true;
          o.onProvisional(res);
        },
      });
      p.then(
        (dialog) => {
          if (this.#settled) {
            // Answered after we gave up (or after the caller left): hang up at once.
            void dialog.destroy().catch(() => {});
            return;
          }
          finish({ dialog, abandoned: false });
        },
        (err: any) => finish({ status: typeof err?.status === 'number' ? err.status : undefined, res: err?.res, error: err, abandoned: false }),
      );
    });
  }

  /** The caller went away: CANCEL the attempt (now, or as soon as the INVITE is out). */
  cancel(): void {
    this.#cancelWanted = true;
    this.#sendCancel();
  }

  #sendCancel(): void {
    try {
      this.#req?.cancel?.();
    } catch {
      // already final
    }
  }
}
