import type { SipRequest, SipResponse } from '../message/message.js';
import type { Destination, Flow } from '../transport/types.js';
import { buildNon2xxAck } from './requests.js';
import { ClientTransaction, type EdgeTable, type Transaction, type TransactionEnv } from './transaction.js';
import type { ClientTransactionUser } from './types.js';

/**
 * INVITE client transaction, RFC 3261 §17.1.1 as amended by RFC 6026 §7.2 (Accepted state,
 * Timer M). https://www.rfc-editor.org/rfc/rfc3261#section-17.1.1 ·
 * https://www.rfc-editor.org/rfc/rfc6026#section-7.2
 */
export class InviteClientTransaction extends ClientTransaction {
  // RFC 3261 Figure 5 + RFC 6026 Figure 3 — allowed edges; anything else throws.
  static readonly edges = {
    Calling: ['Proceeding', 'Completed', 'Accepted', 'Terminated'],
    Proceeding: ['Completed', 'Accepted', 'Terminated'],
    Completed: ['Terminated'],
    Accepted: ['Terminated'],
    Terminated: [],
    Trying: [],
    Confirmed: [],
  } as const satisfies EdgeTable;

  readonly kind = 'ICT' as const;
  #timerA = 0;
  #ack: SipRequest | undefined;
  #cancelWaiters: Array<(cancellable: boolean) => void> = [];

  constructor(
    env: TransactionEnv,
    id: string,
    request: SipRequest,
    destination: Destination,
    tu: ClientTransactionUser,
    reliable: boolean,
    removed: (txn: Transaction) => void,
  ) {
    super(env, id, 'Calling', InviteClientTransaction.edges, request, destination, tu, reliable, removed);
  }

  /** The ACK this transaction generated for a 3xx–6xx response, if any. */
  get ack(): SipRequest | undefined {
    return this.#ack;
  }

  start(): void {
    // §17.1.1.2: "The initial state, "calling", MUST be entered when the TU initiates a new
    // client transaction with an INVITE request. The client transaction MUST pass the request
    // to the transport layer for transmission."
    this.sendToTransport(this.request);
    if (this.terminated) return;
    // "If an unreliable transport is being used, the client transaction MUST start timer A
    // with a value of T1. If a reliable transport is being used, the client transaction SHOULD
    // NOT start timer A."
    if (this.t.A !== null) {
      this.#timerA = this.t.A;
      this.timers.start('A', this.#timerA, () => this.#onTimerA());
    }
    // "For any transport, the client transaction MUST start timer B with a value of 64*T1
    // seconds (Timer B controls transaction timeouts)."
    this.timers.start('B', this.t.B, () => this.#onTimerB());
  }

  // §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by
  // passing it to the transport layer, and MUST reset the timer with a value of 2*T1. ...
  // When timer A fires 2*T1 seconds later, the request MUST be retransmitted again (assuming
  // the client transaction is still in this state). This process MUST continue so that the
  // request is retransmitted with intervals that double after each transmission."
  #onTimerA(): void {
    if (this.state !== 'Calling') return;
    this.sendToTransport(this.request);
    if (this.state !== 'Calling') return;
    this.#timerA *= 2;
    this.timers.start('A', this.#timerA, () => this.#onTimerA());
  }

  // §17.1.1.2: "If the client transaction is still in the "Calling" state when timer B fires,
  // the client transaction SHOULD inform the TU that a timeout has occurred. The client
  // transaction MUST NOT generate an ACK."
  #onTimerB(): void {
    if (this.state !== 'Calling') return;
    this.safe(() => this.tu.onTimeout());
    if (!this.terminated) this.transition('Terminated');
  }

  receiveResponse(res: SipResponse, flow: Flow): void {
    const s = res.status;
    switch (this.state) {
      case 'Calling':
      case 'Proceeding':
        if (s < 200) {
          // "If the client transaction receives a provisional response while in the "Calling"
          // state, it transitions to the "Proceeding" state. In the "Proceeding" state, the
          // client transaction SHOULD NOT retransmit the request any longer. Furthermore, the
          // provisional response MUST be passed to the TU. Any further provisional responses
          // MUST be passed up to the TU while in the "Proceeding" state."
          this.markProvisional();
          if (this.state === 'Calling') {
            this.transition('Proceeding');
            this.timers.stop('A');
            this.timers.stop('B');
          }
          this.passUp(res, flow);
          if (this.state === 'Proceeding') this.#flushCancelWaiters(true);
        } else if (s < 300) {
          // RFC 6026 §7.2: "When in either the "Calling" or "Proceeding" states, reception of a
          // 2xx response MUST cause the client transaction to enter the "Accepted" state, and
          // the response MUST be passed up to the TU. The client transaction MUST NOT generate
          // an ACK to the 2xx response -- its handling is delegated to the TU." Timer M =
          // 64*T1 is started on entering Accepted.
          this.transition('Accepted');
          this.timers.stop('A');
          this.timers.stop('B');
          this.#flushCancelWaiters(false);
          this.timers.start('M', this.t.M, () => this.#onTimerM());
          this.passUp(res, flow);
        } else {
          // §17.1.1.2: "When in either the "Calling" or "Proceeding" states, reception of a
          // response with status code from 300-699 MUST cause the client transaction to
          // transition to "Completed". The client transaction MUST pass the received response
          // up to the TU, and the client transaction MUST generate an ACK request, even if the
          // transport is reliable ... and then send the ACK to the transport layer for
          // transmission. The ACK MUST be sent to the same address, port, and transport to
          // which the original request was sent."
          this.transition('Completed');
          this.timers.stop('A');
          this.timers.stop('B');
          this.#flushCancelWaiters(false);
          this.#ack = buildNon2xxAck(this.request, res);
          this.sendToTransport(this.#ack);
          this.passUp(res, flow);
          // "The client transaction SHOULD start timer D when it enters the "Completed" state,
          // with a value of at least 32 seconds for unreliable transports, and a value of zero
          // seconds for reliable transports."
          if (!this.terminated) this.arm('D', this.t.D, () => this.#onTimerD());
        }
        return;
      case 'Completed':
        // "Any retransmissions of the final response that are received while in the
        // "Completed" state MUST cause the ACK to be re-passed to the transport layer for
        // retransmission, but the newly received response MUST NOT be passed up to the TU."
        if (s >= 300 && this.#ack) this.sendToTransport(this.#ack);
        return;
      case 'Accepted':
        // RFC 6026 §7.2: "Any 2xx responses that match this client transaction and that are
        // received while in the "Accepted" state MUST be passed up to the TU. The client
        // transaction MUST NOT generate an ACK to the 2xx response."
        if (s >= 200 && s < 300) this.passUp(res, flow);
        return;
      default:
        return;
    }
  }

  // §17.1.1.2: "If timer D fires while the client transaction is in the "Completed" state, the
  // client transaction MUST move to the terminated state."
  #onTimerD(): void {
    if (this.state === 'Completed') this.transition('Terminated');
  }

  // RFC 6026 §7.2: "If Timer M fires while the client transaction is in the "Accepted" state,
  // the client transaction MUST move to the "Terminated" state."
  #onTimerM(): void {
    if (this.state === 'Accepted') this.transition('Terminated');
  }

  /**
   * Calls `cb(true)` once a provisional response has been received (now, if already), or
   * `cb(false)` if the transaction reaches a final state first. §9.1: "If no provisional
   * response has been received, the CANCEL request MUST NOT be sent; rather, the client MUST
   * wait for the arrival of a provisional response before sending the request. If the original
   * request has generated a final response, the CANCEL SHOULD NOT be sent".
   */
  whenCancellable(cb: (cancellable: boolean) => void): void {
    if (this.state === 'Proceeding') cb(true);
    else if (this.state === 'Calling') this.#cancelWaiters.push(cb);
    else cb(false);
  }

  #flushCancelWaiters(cancellable: boolean): void {
    const w = this.#cancelWaiters;
    if (w.length === 0) return;
    this.#cancelWaiters = [];
    for (const cb of w) this.safe(() => cb(cancellable));
  }

  protected override onTerminated(): void {
    this.#flushCancelWaiters(false);
  }
}
