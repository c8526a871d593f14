import type { SipRequest, SipResponse } from '../message/message.js';
import type { Destination, Flow } from '../transport/types.js';
import { ClientTransaction, type EdgeTable, type Transaction, type TransactionEnv } from './transaction.js';
import type { ClientTransactionUser } from './types.js';

/**
 * Non-INVITE client transaction, RFC 3261 §17.1.2.
 * https://www.rfc-editor.org/rfc/rfc3261#section-17.1.2
 */
export class NonInviteClientTransaction extends ClientTransaction {
  // RFC 3261 Figure 6 — allowed edges; anything else throws.
  static readonly edges = {
    Trying: ['Proceeding', 'Completed', 'Terminated'],
    Proceeding: ['Completed', 'Terminated'],
    Completed: ['Terminated'],
    Terminated: [],
    Calling: [],
    Accepted: [],
    Confirmed: [],
  } as const satisfies EdgeTable;

  readonly kind = 'NICT' as const;
  #timerE = 0;

  constructor(
    env: TransactionEnv,
    id: string,
    request: SipRequest,
    destination: Destination,
    tu: ClientTransactionUser,
    reliable: boolean,
    removed: (txn: Transaction) => void,
  ) {
    super(env, id, 'Trying', NonInviteClientTransaction.edges, request, destination, tu, reliable, removed);
  }

  start(): void {
    // §17.1.2.2: "The "Trying" state is entered when the TU initiates a new client
    // transaction with a request. When entering this state, the client transaction SHOULD set
    // timer F to fire in 64*T1 seconds. The request MUST be passed to the transport layer for
    // transmission. If an unreliable transport is in use, the client transaction MUST set
    // timer E to fire in T1 seconds."
    this.timers.start('F', this.t.F, () => this.#onTimerF());
    this.sendToTransport(this.request);
    if (this.terminated) return;
    if (this.t.E !== null) {
      this.#timerE = this.t.E;
      this.timers.start('E', this.#timerE, () => this.#onTimerE());
    }
  }

  #onTimerE(): void {
    if (this.state === 'Trying') {
      // "If timer E fires while still in this state, the timer is reset, but this time with a
      // value of MIN(2*T1, T2). When the timer fires again, it is reset to a MIN(4*T1, T2).
      // This process continues so that retransmissions occur with an exponentially increasing
      // interval that caps at T2."
      this.sendToTransport(this.request);
      if (this.state !== 'Trying') return;
      this.#timerE = Math.min(2 * this.#timerE, this.t.T2);
    } else if (this.state === 'Proceeding') {
      // "If Timer E fires while in the "Proceeding" state, the request MUST be passed to the
      // transport layer for retransmission, and Timer E MUST be reset with a value of T2
      // seconds."
      this.sendToTransport(this.request);
      if (this.state !== 'Proceeding') return;
      this.#timerE = this.t.T2;
    } else {
      return;
    }
    this.timers.start('E', this.#timerE, () => this.#onTimerE());
  }

  // "If Timer F fires while the client transaction is still in the "Trying" state, the client
  // transaction SHOULD inform the TU about the timeout, and then it SHOULD enter the
  // "Terminated" state." / "If timer F fires while in the "Proceeding" state, the TU MUST be
  // informed of a timeout, and the client transaction MUST transition to the terminated state."
  #onTimerF(): void {
    if (this.state !== 'Trying' && this.state !== 'Proceeding') return;
    this.safe(() => this.tu.onTimeout());
    if (!this.terminated) this.transition('Terminated');
  }

  receiveResponse(res: SipResponse, flow: Flow): void {
    if (this.state !== 'Trying' && this.state !== 'Proceeding') {
      // §17.1.2.2: "The "Completed" state exists to buffer any additional response
      // retransmissions that may be received (which is why the client transaction remains
      // there only for unreliable transports)." They are absorbed.
      return;
    }
    if (res.status < 200) {
      // "If a provisional response is received while in the "Trying" state, the response
      // MUST be passed to the TU, and then the client transaction SHOULD move to the
      // "Proceeding" state." / "If a provisional response is received while in the
      // "Proceeding" state, it MUST be passed to the TU."
      this.markProvisional();
      this.passUp(res, flow);
      if (this.state === 'Trying') this.transition('Proceeding');
      return;
    }
    // "If a final response (status codes 200-699) is received while in the "Trying" state, the
    // response MUST be passed to the TU, and the client transaction MUST transition to the
    // "Completed" state." (same from "Proceeding")
    this.transition('Completed');
    this.timers.stop('E');
    this.timers.stop('F');
    this.passUp(res, flow);
    // "Once the client transaction enters the "Completed" state, it MUST set Timer K to fire in
    // T4 seconds for unreliable transports, and zero seconds for reliable transports."
    if (!this.terminated) this.arm('K', this.t.K, () => this.#onTimerK());
  }

  // "If Timer K fires while in this state, the client transaction MUST transition to the
  // "Terminated" state."
  #onTimerK(): void {
    if (this.state === 'Completed') this.transition('Terminated');
  }
}
