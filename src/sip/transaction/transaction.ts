import type { Clock } from '../../util/clock.js';
import { InvalidStateError } from '../../util/errors.js';
import type { SipMessage, SipRequest, SipResponse } from '../message/message.js';
import { parseMessage } from '../message/parser.js';
import type { Destination, Flow, TransportSender } from '../transport/types.js';
import type { FixedDelayQueue } from './fixed-delay-queue.js';
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
  /**
   * Shared fixed-delay timers (see FixedDelayQueue), by delay in ms: a transaction whose timer
   * has one of these delays waits in the queue instead of arming a timer of its own. Optional.
   */
  queues?: ReadonlyMap<number, FixedDelayQueue<Transaction>>;
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export const noop = (): void => {};

/** Timer values are the same for every transaction of a layer: computed once per settings object. */
const VALUES = new WeakMap<TimerSettings, { udp: TimerValues; stream: TimerValues }>();
function cachedTimerValues(settings: TimerSettings, reliable: boolean): TimerValues {
  let v = VALUES.get(settings);
  if (!v) {
    v = { udp: Object.freeze(timerValues(settings, false)), stream: Object.freeze(timerValues(settings, true)) };
    VALUES.set(settings, v);
  }
  return reliable ? v.stream : v.udp;
}

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
  /** The one timer this transaction has in a shared queue (name, queue, slot), if any. */
  #queuedName: string | undefined;
  #queue: FixedDelayQueue<Transaction> | undefined;
  #queueSlot = -1;

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
    this.t = cachedTimerValues(env.settings, reliable);
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
    return this.timers.size + (this.#queuedName !== undefined ? 1 : 0);
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
      this.#unqueue();
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

  /**
   * Starts the named timer; `onTimer(name)` runs when it fires. It waits in the layer's shared
   * queue for `ms` when there is one and this transaction has no other timer queued, else it is
   * a timer of its own. (The timers of the common path, 100 Trying and J/L, go through here.)
   */
  protected startTimer(name: string, ms: number): void {
    this.stopTimer(name); // re-arming, as TimerSet.start does
    const q = this.#queuedName === undefined ? this.env.queues?.get(ms) : undefined;
    if (!q) {
      this.timers.start(name, ms, () => this.onTimer(name));
      return;
    }
    this.#queuedName = name;
    this.#queue = q;
    this.#queueSlot = q.add(this);
  }

  /** Stops the named timer, wherever it waits. */
  protected stopTimer(name: string): void {
    if (this.#queuedName === name) this.#unqueue();
    else this.timers.stop(name);
  }

  #unqueue(): void {
    if (this.#queuedName === undefined) return;
    this.#queue!.cancel(this.#queueSlot, this);
    this.#queuedName = undefined;
    this.#queue = undefined;
  }

  /** Called by the layer's queue when this transaction's queued timer fires. */
  queuedTimerFired(): void {
    const name = this.#queuedName;
    if (name === undefined) return;
    this.#queuedName = undefined;
    this.#queue = undefined;
    this.onTimer(name);
  }

  /** A timer started with startTimer fired. */
  protected onTimer(_name: string): void {}

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
  /** The request serialized once: the first send and every retransmission use these bytes. */
  #requestWire: Buffer | undefined;

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

  /** The request already serialized by the TU (`request.toBuffer()`); set before start(). */
  set requestWire(wire: Buffer | undefined) {
    this.#requestWire = wire;
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
      const wire = msg === this.request ? (this.#requestWire ??= msg.toBuffer()) : undefined;
      p = this.env.transport.send(msg, this.destination, wire);
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

/**
 * Common part of IST and NIST (§17.2).
 *
 * After its final response a server transaction lingers (Timer J/L: 64*T1, 32 s by default) only
 * to absorb retransmissions. It then keeps only what that needs: the request is released, and so
 * is the response once no retransmission of it can be asked for (IST Accepted/Confirmed). At a
 * few hundred calls per second tens of thousands of transactions linger; holding full messages
 * for them would dominate the garbage collector's work.
 */
export abstract class ServerTransaction extends Transaction implements ServerTransactionHandle {
  readonly flow: Flow;
  /** Set by the transaction layer: the §17.2.3 key, and the §8.2.2.2 merge key it registered. */
  matchKey = '';
  mergeKey: string | undefined;
  /** Set by the transaction layer for RFC 2543 transactions: the request's To tag (§17.2.3). */
  requestToTag: string | undefined;
  protected readonly core: ServerCore;
  #request: SipRequest | undefined;
  #lastResponse: SipResponse | undefined;
  /** #lastResponse serialized: sent as is, and again for every retransmission. */
  #lastWire: Buffer | undefined;
  /** To tag of the last response, kept when the response itself was released. */
  #releasedToTag: string | undefined;
  /** The last response as bytes only (see compactResponse). */
  #compactWire: Buffer | undefined;
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
    this.#request = request;
    this.flow = flow;
    this.core = core;
  }

  /** The request that created the transaction; undefined once the final response was sent. */
  get request(): SipRequest | undefined {
    return this.#request;
  }

  /** The last response sent, while retransmissions may still need it (see the class comment). */
  get lastResponse(): SipResponse | undefined {
    const compact = this.#compactWire;
    if (!this.#lastResponse && compact) {
      // Parsed back from exactly the bytes that were sent (see compactResponse).
      this.#compactWire = undefined;
      try {
        this.#lastResponse = parseMessage(compact) as SipResponse;
        this.#lastWire = compact;
      } catch {
        // Only a response we could send but not parse (a reason phrase with control
        // characters from an app): it is not retransmitted.
      }
    }
    return this.#lastResponse;
  }

  /** The To tag of the last response sent (kept after the response itself was released). */
  get lastToTag(): string | undefined {
    const last = this.lastResponse;
    return last ? last.toTag : this.#releasedToTag;
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
   * `wire`, when given, is `res` already serialized (`res.toBuffer()`).
   */
  respond(res: SipResponse, wire?: Buffer): Promise<void> {
    let p: Promise<void>;
    try {
      p = this.handleResponse(res, wire);
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
  protected abstract handleResponse(res: SipResponse, wire?: Buffer): Promise<void>;

  /** A request retransmission (or, for IST, an ACK) matched this transaction. */
  abstract receiveRequest(req: SipRequest, flow: Flow): AbsorbVerdict;

  protected record(res: SipResponse, wire?: Buffer): void {
    this.#lastResponse = res;
    this.#lastWire = wire;
    this.#compactWire = undefined;
    if (res.status >= 200) this.#finalSent = true;
  }

  /** Passes `res` (the last recorded response) to the transport, serialized once. */
  protected sendResponse(res: SipResponse): Promise<void> {
    let p: Promise<void>;
    try {
      const wire = res === this.#lastResponse ? (this.#lastWire ??= res.toBuffer()) : undefined;
      p = this.env.transport.sendResponse(res, this.flow, wire);
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

  /** The final response went out: the request is not needed any more. */
  protected releaseRequest(): void {
    this.#request = undefined;
  }

  /**
   * Keeps the last response only as its bytes, in a buffer of its own (small buffers are slices
   * of a shared 8 KiB pool: keeping one for 32 s would keep its whole slab), for a transaction
   * that will rarely retransmit it (NIST Completed, §17.2.2). The object is parsed back from
   * those bytes if a retransmission or `lastResponse` asks for it.
   */
  protected compactResponse(): void {
    const last = this.#lastResponse;
    if (!last) return;
    const wire = this.#lastWire ?? last.toBuffer();
    const own = Buffer.allocUnsafeSlow(wire.length);
    wire.copy(own);
    this.#compactWire = own;
    this.#lastWire = undefined;
    this.#lastResponse = undefined;
  }

  /** No retransmission of the last response can be asked for any more: keep its To tag only. */
  protected releaseResponse(): void {
    const last = this.#lastResponse;
    if (!last) return;
    this.#releasedToTag = last.toTag;
    this.#lastResponse = undefined;
    this.#lastWire = undefined;
    this.#compactWire = undefined;
  }

  /** Retransmits the last response (request retransmission or timer G); failures end the txn. */
  protected resendLast(): void {
    const last = this.lastResponse;
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
