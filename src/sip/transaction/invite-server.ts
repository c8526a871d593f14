import { InvalidStateError } from '../../util/errors.js';
import type { SipRequest, SipResponse } from '../message/message.js';
import type { Flow } from '../transport/types.js';
import { createResponse } from './response.js';
import { type AbsorbVerdict, type EdgeTable, ServerTransaction, type Transaction, type TransactionEnv, noop } from './transaction.js';
import type { ServerCore } from './types.js';

/**
 * INVITE server transaction, RFC 3261 §17.2.1 as amended by RFC 6026 §7.1 (Accepted state,
 * Timer L). https://www.rfc-editor.org/rfc/rfc3261#section-17.2.1 ·
 * https://www.rfc-editor.org/rfc/rfc6026#section-7.1
 */
export class InviteServerTransaction extends ServerTransaction {
  // RFC 3261 Figure 7 + RFC 6026 Figure 5 — allowed edges; anything else throws.
  static readonly edges = {
    Proceeding: ['Accepted', 'Completed', 'Terminated'],
    Completed: ['Confirmed', 'Terminated'],
    Confirmed: ['Terminated'],
    Accepted: ['Terminated'],
    Terminated: [],
    Calling: [],
    Trying: [],
  } as const satisfies EdgeTable;

  readonly kind = 'IST' as const;
  #timerG = 0;
  /** A 100 Trying of our own is armed and nothing has been sent yet (see startTrying). */
  #tryingPending = false;

  constructor(env: TransactionEnv, id: string, request: SipRequest, flow: Flow, core: ServerCore, removed: (txn: Transaction) => void) {
    // §17.2.1: "When a server transaction is constructed for a request, it enters the
    // "Proceeding" state."
    super(env, id, 'Proceeding', InviteServerTransaction.edges, request, flow, core, removed);
  }

  /**
   * §17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it knows that
   * the TU will generate a provisional or final response within 200 ms, in which case it MAY
   * generate a 100 (Trying) response." With `delayMs` 0 the 100 goes out at once; otherwise it
   * goes out only if the TU has sent nothing after `delayMs` (at most 200 ms keeps the MUST), or
   * at once when the INVITE is retransmitted before that (see receiveRequest).
   */
  startTrying(delayMs: number): void {
    if (delayMs <= 0) {
      this.#sendTrying();
      return;
    }
    this.#tryingPending = true;
    this.startTimer('Trying', delayMs);
  }

  #sendTrying(): void {
    this.#tryingPending = false;
    const req = this.request;
    if (this.state !== 'Proceeding' || this.lastResponse || !req) return;
    this.respond(createResponse(req, 100)).catch(noop);
  }

  protected handleResponse(res: SipResponse, wire?: Buffer): Promise<void> {
    if (this.#tryingPending) {
      // The TU answered first: our own 100 is not needed any more.
      this.#tryingPending = false;
      this.stopTimer('Trying');
    }
    const s = res.status;
    switch (this.state) {
      case 'Proceeding':
        if (s < 200) {
          // §17.2.1: "The TU passes any number of provisional responses to the server
          // transaction. So long as the server transaction is in the "Proceeding" state, each
          // of these MUST be passed to the transport layer for transmission. They are not sent
          // reliably by the transaction layer (they are not retransmitted by it) and do not
          // cause a change in the state of the server transaction."
          this.record(res, wire);
          return this.sendResponse(res);
        }
        if (s < 300) {
          // RFC 6026 §7.1: "If, while in the "Proceeding" state, the TU passes a 2xx response
          // to the server transaction, the server transaction MUST pass this response to the
          // transport layer for transmission. It is not retransmitted by the server
          // transaction; retransmissions of 2xx responses are handled by the TU. The server
          // transaction MUST then transition to the "Accepted" state." Timer L = 64*T1.
          this.record(res, wire);
          this.transition('Accepted');
          this.startTimer('L', this.t.L);
          return this.#sendThenLinger(res, true);
        }
        // §17.2.1: "While in the "Proceeding" state, if the TU passes a response with status
        // code from 300 to 699 to the server transaction, the response MUST be passed to the
        // transport layer for transmission, and the state machine MUST enter the "Completed"
        // state. For unreliable transports, timer G is set to fire in T1 seconds, and is not
        // set to fire for reliable transports." "When the "Completed" state is entered, timer
        // H MUST be set to fire in 64*T1 seconds for all transports."
        this.record(res, wire);
        this.transition('Completed');
        if (this.t.G !== null) {
          this.#timerG = this.t.G;
          this.timers.start('G', this.#timerG, () => this.#onTimerG());
        }
        this.timers.start('H', this.t.H, () => this.#onTimerH());
        // Completed keeps the response (G, INVITE retransmissions), not the request.
        return this.#sendThenLinger(res, false);
      case 'Accepted':
        // RFC 6026 §7.1: "While in the "Accepted" state, if the TU passes a 2xx response, the
        // server transaction MUST pass the response to the transport layer for transmission."
        if (s >= 200 && s < 300) {
          this.record(res, wire);
          return this.#sendThenLinger(res, true);
        }
        throw new InvalidStateError(`IST ${this.id}: ${s} not allowed in Accepted (a 2xx was sent)`);
      default:
        throw new InvalidStateError(`IST ${this.id}: cannot send ${s} in state ${this.state}`);
    }
  }

  /**
   * Sends a final response, then drops what the lingering state does not need: always the
   * request; in Accepted (RFC 6026 §7.1) the response too, since 2xx retransmissions are the
   * TU's job and INVITE retransmissions are absorbed.
   */
  #sendThenLinger(res: SipResponse, accepted: boolean): Promise<void> {
    const sent = this.sendResponse(res);
    this.releaseRequest();
    if (accepted) this.releaseResponse();
    return sent;
  }

  protected override onTimer(name: string): void {
    if (name === 'Trying') this.#sendTrying();
    else if (name === 'L') this.#onTimerL();
  }

  // §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
  // retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when
  // timer G fires, the response is passed to the transport again for transmission, and timer
  // G is reset with a value that doubles, unless that value exceeds T2, in which case it is
  // reset with the value of T2."
  #onTimerG(): void {
    if (this.state !== 'Completed') return;
    this.resendLast();
    if (this.state !== 'Completed') return;
    this.#timerG = Math.min(2 * this.#timerG, this.t.T2);
    this.timers.start('G', this.#timerG, () => this.#onTimerG());
  }

  // §17.2.1: "If timer H fires while in the "Completed" state, it implies that the ACK was
  // never received. In this case, the server transaction MUST transition to the "Terminated"
  // state, and MUST indicate to the TU that a transaction failure has occurred."
  #onTimerH(): void {
    if (this.state !== 'Completed') return;
    const cb = this.core.onServerTimeout;
    if (cb) this.safe(() => cb.call(this.core, this));
    if (!this.terminated) this.transition('Terminated');
  }

  // §17.2.1: "Once timer I fires, the server MUST transition to the "Terminated" state."
  #onTimerI(): void {
    if (this.state === 'Confirmed') this.transition('Terminated');
  }

  // RFC 6026 §7.1: "If Timer L fires while the INVITE server transaction is in the "Accepted"
  // state, the transaction MUST transition to the "Terminated" state."
  #onTimerL(): void {
    if (this.state === 'Accepted') this.transition('Terminated');
  }

  receiveRequest(req: SipRequest, _flow: Flow): AbsorbVerdict {
    if (req.method === 'ACK') {
      switch (this.state) {
        case 'Completed':
          // §17.2.1: "If an ACK is received while the server transaction is in the
          // "Completed" state, the server transaction MUST transition to the "Confirmed"
          // state. As Timer G is ignored in this state, any retransmissions of the response
          // will cease." "When this state is entered, timer I is set to fire in T4 seconds for
          // unreliable transports, and zero seconds for reliable transports."
          this.transition('Confirmed');
          this.timers.stop('G');
          this.timers.stop('H');
          // Confirmed only absorbs ACKs: the response will not be sent again.
          this.releaseResponse();
          this.arm('I', this.t.I, () => this.#onTimerI());
          return 'absorbed';
        case 'Accepted':
          // RFC 6026 §7.1, Figure 5: in "Accepted" the edge for ACK is "ACK / to TU" — an ACK
          // for the 2xx belongs to the TU (it forms its own transaction), it is not absorbed.
          return 'pass-to-tu';
        default:
          // Confirmed: "The purpose of the "Confirmed" state is to absorb any additional ACK
          // messages that arrive, triggered from retransmissions of the final response."
          return 'absorbed';
      }
    }
    switch (this.state) {
      case 'Proceeding':
        // §17.2.1: "If a request retransmission is received while in the "Proceeding" state,
        // the most recent provisional response that was received from the TU MUST be passed
        // to the transport layer for retransmission." A deferred 100 Trying goes out now: the
        // client is retransmitting, so it should hear from us at once.
        if (this.#tryingPending) this.#sendTrying();
        else this.resendLast();
        break;
      case 'Completed':
        // "Furthermore, while in the "Completed" state, if a request retransmission is
        // received, the server SHOULD pass the response to the transport for retransmission."
        this.resendLast();
        break;
      default:
        // RFC 6026 §7.1, Figure 5: in "Accepted" an INVITE retransmission is absorbed
        // ("INVITE / -"): it is neither answered nor passed to the TU, which retransmits the
        // 2xx itself (§13.3.1.4). In "Confirmed" retransmissions are absorbed as well.
        break;
    }
    return 'absorbed';
  }
}
