import { InvalidStateError } from '../../util/errors.js';
import type { SipRequest, SipResponse } from '../message/message.js';
import type { Flow } from '../transport/types.js';
import { type AbsorbVerdict, type EdgeTable, ServerTransaction, type Transaction, type TransactionEnv } from './transaction.js';
import type { ServerCore } from './types.js';

/**
 * Non-INVITE server transaction, RFC 3261 §17.2.2.
 * https://www.rfc-editor.org/rfc/rfc3261#section-17.2.2
 */
export class NonInviteServerTransaction extends ServerTransaction {
  // RFC 3261 Figure 8 — allowed edges; anything else throws.
  static readonly edges = {
    Trying: ['Proceeding', 'Completed', 'Terminated'],
    Proceeding: ['Completed', 'Terminated'],
    Completed: ['Terminated'],
    Terminated: [],
    Calling: [],
    Accepted: [],
    Confirmed: [],
  } as const satisfies EdgeTable;

  readonly kind = 'NIST' as const;

  constructor(env: TransactionEnv, id: string, request: SipRequest, flow: Flow, core: ServerCore, removed: (txn: Transaction) => void) {
    // §17.2.2: "The state machine is initialized in the "Trying" state and is passed a request
    // other than INVITE or ACK when initialized."
    super(env, id, 'Trying', NonInviteServerTransaction.edges, request, flow, core, removed);
  }

  protected handleResponse(res: SipResponse, wire?: Buffer): Promise<void> {
    if (this.state !== 'Trying' && this.state !== 'Proceeding') {
      // §17.2.2: "Any other final responses passed by the TU to the server transaction MUST be
      // discarded while in the "Completed" state." We discard and tell the caller.
      throw new InvalidStateError(`NIST ${this.id}: cannot send ${res.status} in state ${this.state}`);
    }
    this.record(res, wire);
    if (res.status < 200) {
      // "While in the "Trying" state, if the TU passes a provisional response to the server
      // transaction, the server transaction MUST enter the "Proceeding" state. The response
      // MUST be passed to the transport layer for transmission." "Any further provisional
      // responses that are received from the TU while in the "Proceeding" state MUST be passed
      // to the transport layer for transmission."
      if (this.state === 'Trying') this.transition('Proceeding');
      return this.sendResponse(res);
    }
    // "If the TU passes a final response (status codes 200-699) to the server while in the
    // "Proceeding" state, the transaction MUST enter the "Completed" state, and the response
    // MUST be passed to the transport layer for transmission." (same from "Trying")
    this.transition('Completed');
    const sent = this.sendResponse(res);
    // Completed keeps only the final response (as bytes), for request retransmissions.
    this.releaseRequest();
    this.compactResponse();
    // "When the server transaction enters the "Completed" state, it MUST set Timer J to fire in
    // 64*T1 seconds for unreliable transports, and zero seconds for reliable transports."
    if (this.t.J <= 0) this.#onTimerJ();
    else this.startTimer('J', this.t.J);
    return sent;
  }

  protected override onTimer(name: string): void {
    if (name === 'J') this.#onTimerJ();
  }

  // "The server transaction remains in this state until Timer J fires, at which point it MUST
  // transition to the "Terminated" state."
  #onTimerJ(): void {
    if (this.state === 'Completed') this.transition('Terminated');
  }

  receiveRequest(_req: SipRequest, _flow: Flow): AbsorbVerdict {
    switch (this.state) {
      case 'Trying':
        // "Once in the "Trying" state, any further request retransmissions are discarded."
        break;
      case 'Proceeding':
        // "If a retransmission of the request is received while in the "Proceeding" state,
        // the most recently sent provisional response MUST be passed to the transport layer
        // for retransmission."
        this.resendLast();
        break;
      case 'Completed':
        // "While in the "Completed" state, the server transaction MUST pass the final response
        // to the transport layer for retransmission whenever a retransmission of the request
        // is received."
        this.resendLast();
        break;
      default:
        break;
    }
    return 'absorbed';
  }
}
