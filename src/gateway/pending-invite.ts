import type { Logger } from 'pino';
import type { CallSession } from './call-session.js';
import type { UacAttempt } from './uac-attempt.js';

/**
 * An INVITE the gateway is still working on, watched for the caller's CANCEL (RFC 3261 §9.2:
 * the UAS stops processing the request). Created first thing in a call flow, because the CANCEL
 * can come while the flow waits for the tenant store, admission or rtpengine: whatever step it
 * reached, the flow sees `canceled`, the attempt in flight toward the far end is cancelled, and
 * the call, once it exists, ends with 487.
 */
export class PendingInvite {
  canceled = false;
  /** The UAC attempt in flight toward the far end. */
  current: UacAttempt | undefined;
  /** The call, once the flow created it. */
  session: CallSession | undefined;

  /** `log` is read at CANCEL time: flows enrich their logger as they learn the tenant. */
  constructor(req: { on(event: 'cancel', fn: () => void): unknown }, log: () => Logger, from: 'carrier' | 'Teams') {
    req.on('cancel', () => {
      log().info(`CANCEL from ${from}`);
      this.abort('caller', 487);
    });
  }

  /** Stops the INVITE's processing as a CANCEL does: `by` ends the call with `status`. */
  abort(by: 'caller' | 'gateway', status: number): void {
    this.canceled = true;
    this.current?.cancel();
    void this.session?.close(by, status);
  }
}
