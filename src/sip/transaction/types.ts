import type { SipRequest, SipResponse } from '../message/message.js';
import type { Destination, Flow } from '../transport/types.js';

/** RFC 3261 §17 + RFC 6026 §7 transaction states. */
export type TransactionState =
  | 'Calling'
  | 'Trying'
  | 'Proceeding'
  | 'Accepted'
  | 'Completed'
  | 'Confirmed'
  | 'Terminated';

/** RFC 3261 §17.1.1.1 / Table 4. */
export interface TimerSettings {
  /** RTT estimate, default 500 ms */
  T1: number;
  /** max retransmit interval for non-INVITE requests and INVITE responses, default 4 s */
  T2: number;
  /** max duration a message remains in the network, default 5 s */
  T4: number;
}

/** Events a client transaction reports to its TU. */
export interface ClientTransactionUser {
  /** Every response except those absorbed (retransmitted non-2xx finals, 100 is passed too). */
  onResponse(res: SipResponse, flow: Flow): void;
  /** Timer B/F fired with no final response (the TU typically fabricates a 408). */
  onTimeout(): void;
  /** §17.1.4: the transport could not send the request (connect/TLS failure, socket closed). */
  onTransportError(err: Error): void;
  /** The transaction reached Terminated and was removed (always called exactly once). */
  onTerminated?(): void;
}

/** Events the transaction layer reports to the core (the TU on the server side). */
export interface ServerCore {
  /**
   * A new request (not a retransmission). `txn` is null for requests that form no server
   * transaction: ACK for a 2xx (§17.1.1.3 / RFC 6026 passes these up).
   * For INVITE, 100 Trying has already been sent (when autoTrying is on).
   */
  onRequest(req: SipRequest, txn: ServerTransactionHandle | null, flow: Flow): void;
  /**
   * §9.2: a CANCEL matched a pending INVITE server transaction. The layer has already answered
   * 200 to the CANCEL and, if the INVITE had no final response yet, 487 to the INVITE.
   * `answered487` tells whether the 487 was sent by this call.
   */
  onCancel(cancel: SipRequest, invite: ServerTransactionHandle, answered487: boolean, flow: Flow): void;
  /**
   * §8.2.2.2 leaves the 482 for a merged request a SHOULD: a core that recognises `req` as a
   * retry of the still pending INVITE `ongoing` (its sender lost the path of the first copy and
   * sent it again another way) returns true, and the layer then creates a transaction for `req`
   * and hands both to onRetryAdopted instead of answering 482. Only asked for INVITEs.
   */
  adoptsRetry?(req: SipRequest, ongoing: ServerTransactionHandle, flow: Flow): boolean;
  /** The retry's own transaction (100 Trying already sent when autoTrying is on) and the one it takes over. */
  onRetryAdopted?(req: SipRequest, txn: ServerTransactionHandle, ongoing: ServerTransactionHandle, flow: Flow): void;
  /** A server transaction ended (final response delivered + timers done, or transport error). */
  onServerTerminated?(txn: ServerTransactionHandle): void;
  /**
   * A 2xx response to INVITE that matched no client transaction (its ICT already left the RFC 6026
   * Accepted state, or it never existed): the dialog layer re-ACKs retransmitted 2xx
   * (§13.2.2.4). Other unmatched responses are dropped (§18.1.2).
   */
  onStray2xx?(res: SipResponse, flow: Flow): void;
  /**
   * §17.2.1: timer H fired in Completed, "it implies that the ACK was never received": the
   * transaction failed and is about to terminate.
   */
  onServerTimeout?(txn: ServerTransactionHandle): void;
  /** §17.2.4: the transport could not send a response of this transaction; it terminates. */
  onServerTransportError?(txn: ServerTransactionHandle, err: Error): void;
}

export interface ServerTransactionHandle {
  readonly id: string;
  /**
   * The request that created the transaction; undefined once the final response was sent (a
   * lingering transaction keeps only what retransmissions need).
   */
  readonly request: SipRequest | undefined;
  readonly flow: Flow;
  readonly state: TransactionState;
  /**
   * The last response sent (retransmitted on request retransmissions); released, like the
   * request, once no retransmission of it can be asked for any more (IST Accepted/Confirmed).
   */
  readonly lastResponse: SipResponse | undefined;
  /** True once a final (>=200) response was sent. */
  readonly finalSent: boolean;
  /**
   * Sends a response through the transaction (RFC 3261 §17.2.1/§17.2.2 rules apply). `wire`,
   * when given, is `res.toBuffer()` done already; it is sent, and re-sent on retransmission.
   */
  respond(res: SipResponse, wire?: Buffer): Promise<void>;
  /**
   * Terminates the transaction without sending anything more (e.g. silently discarding a
   * request); later retransmissions of the request start a new transaction. Idempotent.
   * Always present on the layer's transactions (optional only so test doubles may omit it).
   */
  close?(): void;
}

export interface ClientTransactionHandle {
  readonly id: string;
  readonly request: SipRequest;
  readonly destination: Destination;
  readonly state: TransactionState;
  /** Flow the request went out on, once sent. */
  readonly flow: Flow | undefined;
  /** True once any provisional response arrived (CANCEL may then be sent, §9.1). */
  readonly provisionalReceived: boolean;
  /** Stops retransmissions and terminates without notifying onTimeout. Idempotent. */
  close(): void;
}
