import type { Clock } from '../../util/clock.js';
import { InvalidStateError } from '../../util/errors.js';
import type { SipMessage, SipRequest, SipResponse } from '../message/message.js';
import type { Destination, Flow, TransportSender } from '../transport/types.js';
import { TimerSet } from './timer-set.js';
import { type TimerValues, timerValues } from './timers.js';
import type {
  ClientTransactionHandle,
  ClientTransactionUser,
  ServerCore,
  ServerTransactionHandle,
  TimerSettings,
  TransactionState,
} from './types.js';

/** Legal state edges of one state machine; anything not listed throws InvalidStateError. */
export type EdgeTable = Readonly<Record<TransactionState, readonly TransactionState[]>>;

export type TransactionKind = 'ICT' | 'NICT' | 'IST' | 'NIST';

/** What every transaction gets from the layer that owns it. */
export interface TransactionEnv {
  transport: TransportSender;
  clock: Clock;
  settings: TimerSettings;
  /** Receives exceptions thrown by TU/core callbacks, so they cannot corrupt a transaction. */
  onCallbackError: (err: unknown) => void;
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export const noop = (): void => {};

/**
 * Base of the four RFC 3261 §17 state machines: id, state, the single `transition()` that
 * enforces the class's edge table, the per-transaction timer set and idempotent `dispose()`.
 */
export abstract class Transaction {
  abstract readonly kind: TransactionKind;
  readonly id: string;
  readonly reliable: boolean;
  protected readonly env: TransactionEnv;
  protected readonly t: TimerValues;
  protected readonly timers: TimerSet;
  #state: TransactionState;
  readonly #edges: EdgeTable;
  readonly #removed: (txn: Transaction) => void;

  protected constructor(
    env: TransactionEnv,
    id: string,
    initial: TransactionState,
    edges: EdgeTable,
    reliable: boolean,
    removed: (txn: Transaction) => void,
  ) {
    this.env = env;
    this.id = id;
    this.#state = initial;
    this.#edges = edges;
    this.reliable = reliable;
    this.t = timerValues(env.settings, reliable);
    this.timers = new TimerSet(env.clock);
    this.#removed = removed;
  }

  get state(): TransactionState {
    return this.#state;
  }

  get terminated(): boolean {
    return this.#state === 'Terminated';
  }

  /** Number of armed timers (for tests and leak checks). */
  get armedTimers(): number {
    return this.timers.size;
  }

  /** The one place the state changes. Throws InvalidStateError on an edge the table lacks. */
  protected transition(next: TransactionState): void {
    const from = this.#state;
    if (!this.#edges[from].includes(next)) {
      throw new InvalidStateError(`${this.kind} ${this.id}: illegal transition ${from} -> ${next}`);
    }
    this.#state = next;
    if (next === 'Terminated') {
      // §17.1.1.2 / §17.2.1: "Once the transaction is in the "Terminated" state, it MUST be
      // destroyed immediately."
      this.timers.clearAll();
      this.onTerminated();
      this.#removed(this);
      this.notifyTerminated();
    }
  }

  /**
   * Arms a timer; a value of 0 (reliable transports for D/I/J/K) means the transition happens
   * at once, as the RFC's "zero seconds" intends.
   */
  protected arm(name: string, ms: number, fn: () => void): void {
    if (ms <= 0) fn();
    else this.timers.start(name, ms, fn);
  }

  /** Runs a TU/core callback; an exception is reported, never propagated into the state machine. */
  protected safe(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.env.onCallbackError(e);
    }
  }

  /** Terminates now (no timeout/transport-error notification). Idempotent. */
  dispose(): void {
    if (this.#state !== 'Terminated') this.transition('Terminated');
  }

  /** Hook for subclasses, runs after timers are cleared and before the owner is told. */
  protected onTerminated(): void {}

  /** Tells the TU/core that the transaction ended (runs once). */
  protected abstract notifyTerminated(): void;
}

/** Common part of ICT and NICT (§17.1). */
export abstract class ClientTransaction extends Transaction implements ClientTransactionHandle {
  readonly request: SipRequest;
  readonly destination: Destination;
  protected readonly tu: ClientTransactionUser;
  #flow: Flow | undefined;
  #provisionalReceived = false;

  protected constructor(
    env: TransactionEnv,
    id: string,
    initial: TransactionState,
    edges: EdgeTable,
    request: SipRequest,
    destination: Destination,
    tu: ClientTransactionUser,
    reliable: boolean,
    removed: (txn: Transaction) => void,
  ) {
    super(env, id, initial, edges, reliable, removed);
    this.request = request;
    this.destination = destination;
    this.tu = tu;
  }

  get flow(): Flow | undefined {
    return this.#flow;
  }

  get provisionalReceived(): boolean {
    return this.#provisionalReceived;
  }

  protected markProvisional(): void {
    this.#provisionalReceived = true;
  }

  /** Sends the first request and arms the initial timers. Called once by the layer. */
  abstract start(): void;

  /** A response matched this transaction (§17.1.3). */
  abstract receiveResponse(res: SipResponse, flow: Flow): void;

  close(): void {
    this.dispose();
  }

  /**
   * Passes a message to the transport. "Retransmit" (§17.1.1.2) is "to take the message
   * previously sent to the transport layer and pass it to the transport layer once more", so
   * every retransmission goes to the same destination.
   */
  protected sendToTransport(msg: SipMessage): void {
    let p: Promise<Flow>;
    try {
      p = this.env.transport.send(msg, this.destination);
    } catch (e) {
      p = Promise.reject(toError(e));
    }
    p.then(
      (flow) => {
        if (this.#flow === undefined) this.#flow = flow;
      },
      (err: unknown) => this.onSendError(toError(err)),
    );
  }

  /**
   * §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has
   * occurred, and the client transaction SHOULD transition directly to the "Terminated" state."
   * Only while the request is outstanding; a failed ACK after the final response changes nothing.
   */
  protected onSendError(err: Error): void {
    if (this.state !== 'Calling' && this.state !== 'Trying' && this.state !== 'Proceeding') return;
    this.safe(() => this.tu.onTransportError(err));
    if (!this.terminated) this.transition('Terminated');
  }

  /**
   * The connection the request went out on closed (TCP/TLS reset, peer gone) before a final
   * response: for a reliable transport no response can arrive any more, which §17.1.4 treats as
   * a transport failure (RFC 5626 §4.4 likewise fails the flow's transactions).
   */
  connectionLost(reason: string): void {
    this.onSendError(new Error(`connection closed before a final response: ${reason}`));
  }

  protected passUp(res: SipResponse, flow: Flow): void {
    this.safe(() => this.tu.onResponse(res, flow));
  }

  protected notifyTerminated(): void {
    const cb = this.tu.onTerminated;
    if (cb) this.safe(() => cb.call(this.tu));
  }
}

/** What a server transaction does with a matching request (§17.2.3). */
export type AbsorbVerdict = 'absorbed' | 'pass-to-tu';

/** Common part of IST and NIST (§17.2). */
export abstract class ServerTransaction extends Transaction implements ServerTransactionHandle {
  readonly request: SipRequest;
  readonly flow: Flow;
  protected readonly core: ServerCore;
  #lastResponse: SipResponse | undefined;
  #finalSent = false;

  protected constructor(
    env: TransactionEnv,
    id: string,
    initial: TransactionState,
    edges: EdgeTable,
    request: SipRequest,
    flow: Flow,
    core: ServerCore,
    removed: (txn: Transaction) => void,
  ) {
    super(env, id, initial, edges, flow.reliable, removed);
    this.request = request;
    this.flow = flow;
    this.core = core;
  }

  get lastResponse(): SipResponse | undefined {
    return this.#lastResponse;
  }

  get finalSent(): boolean {
    return this.#finalSent;
  }

  /**
   * Sends a response through the state machine. Resolves when the transport took it; rejects
   * with InvalidStateError when the state does not allow it (nothing is sent), or with the
   * transport error (the transaction then terminates, §17.2.4, and the core's
   * onServerTransportError is called). The returned promise is pre-marked as handled, so a
   * caller that ignores it (`void txn.respond(...)`) never causes an unhandled rejection.
   */
  respond(res: SipResponse): Promise<void> {
    let p: Promise<void>;
    try {
      p = this.handleResponse(res);
    } catch (e) {
      p = Promise.reject(toError(e));
    }
    p.catch(noop);
    return p;
  }

  close(): void {
    this.dispose();
  }

  /** State-specific handling of a response from the TU; throws InvalidStateError when illegal. */
  protected abstract handleResponse(res: SipResponse): Promise<void>;

  /** A request retransmission (or, for IST, an ACK) matched this transaction. */
  abstract receiveRequest(req: SipRequest, flow: Flow): AbsorbVerdict;

  protected record(res: SipResponse): void {
    this.#lastResponse = res;
    if (res.status >= 200) this.#finalSent = true;
  }

  protected sendResponse(res: SipResponse): Promise<void> {
    let p: Promise<void>;
    try {
      p = this.env.transport.sendResponse(res, this.flow);
    } catch (e) {
      p = Promise.reject(toError(e));
    }
    return p.then(
      () => undefined,
      (err: unknown) => {
        const e = toError(err);
        this.onSendError(e);
        throw e;
      },
    );
  }

  /** Retransmits the last response (request retransmission or timer G); failures end the txn. */
  protected resendLast(): void {
    const last = this.#lastResponse;
    if (last) this.sendResponse(last).catch(noop);
  }

  /** §17.2.4: a response could not be sent: inform the TU, go to Terminated. */
  protected onSendError(err: Error): void {
    if (this.terminated) return;
    const cb = this.core.onServerTransportError;
    if (cb) this.safe(() => cb.call(this.core, this, err));
    if (!this.terminated) this.transition('Terminated');
  }

  protected notifyTerminated(): void {
    const cb = this.core.onServerTerminated;
    if (cb) this.safe(() => cb.call(this.core, this));
  }
}
