import { type Clock, realClock } from '../../util/clock.js';
import { InvalidStateError } from '../../util/errors.js';
import { newTag } from '../../util/ids.js';
import { SipError } from '../message/errors.js';
import { type HeaderField, type SipMessage, SipRequest, SipResponse } from '../message/message.js';
import type { Via } from '../message/via.js';
import type { Destination, Flow, TransportSender } from '../transport/types.js';
import { FixedDelayQueue } from './fixed-delay-queue.js';
import { InviteClientTransaction } from './invite-client.js';
import { InviteServerTransaction } from './invite-server.js';
import { NonInviteClientTransaction } from './non-invite-client.js';
import { NonInviteServerTransaction } from './non-invite-server.js';
import { buildCancel } from './requests.js';
import { createResponse } from './response.js';
import { isReliableProtocol, resolveTimerSettings } from './timers.js';
import { type ClientTransaction, type ServerTransaction, type Transaction, type TransactionEnv, noop } from './transaction.js';
import type {
  ClientTransactionHandle,
  ClientTransactionUser,
  ServerCore,
  ServerTransactionHandle,
  TimerSettings,
} from './types.js';

export interface TransactionLayerOptions {
  transport: TransportSender;
  core: ServerCore;
  clock?: Clock;
  timers?: Partial<TimerSettings>;
  /**
   * The INVITE server transaction sends 100 Trying itself (default true, §17.2.1). When false
   * the 100 is left to the TU.
   */
  autoTrying?: boolean;
  /**
   * With autoTrying: how long a new INVITE server transaction waits for the TU's first response
   * before it sends its own 100 Trying (§17.2.1 lets it skip the 100 when the TU responds within
   * 200 ms). 0 (default) sends the 100 at once; a retransmitted INVITE always gets it at once.
   * Values above 200 ms break the RFC's MUST and are rejected.
   */
  tryingDelayMs?: number;
  /** Receives exceptions thrown by TU/core callbacks (default: process.emitWarning). */
  onCallbackError?: (err: unknown) => void;
}

/** Live transactions by type. All four return to 0 once every transaction has ended. */
export interface TransactionStats {
  ict: number;
  nict: number;
  ist: number;
  nist: number;
  client: number;
  server: number;
}

/** Extra header lines for a CANCEL (e.g. RFC 3326 Reason): header fields, [name, value] pairs or a record. */
export type ExtraHeaders = ReadonlyArray<HeaderField> | ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string>>;

/** RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin with the characters "z9hG4bK"." */
const MAGIC_COOKIE = 'z9hG4bK';
/** Grid on which lingering server transactions end (see the FixedDelayQueue grain). */
export const LINGER_GRAIN_MS = 250;

/*
 * Matching keys live as long as their transaction (32 s when it lingers). They are built with
 * join(), which makes a flat string: a template literal would make a rope of slices of the
 * parsed message text, keeping that whole text alive with the key.
 */

function clientKey(branch: string, method: string): string {
  return `${branch} ${method}`;
}

function defaultCallbackError(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : String(err), { code: 'SIP_TXN_CALLBACK_ERROR' });
}

/**
 * RFC 3261 §17 transaction layer: creates client transactions for the TU, matches incoming
 * responses (§17.1.3) and requests (§17.2.3, with the RFC 2543 fallback), answers CANCEL (§9.2)
 * and merged requests (§8.2.2.2), and passes new requests to the core.
 */
export class TransactionLayer {
  readonly #core: ServerCore;
  readonly #autoTrying: boolean;
  readonly #tryingDelayMs: number;
  readonly #env: TransactionEnv;
  /** §17.1.3 key (branch + CSeq method) → client transaction. */
  readonly #client = new Map<string, ClientTransaction>();
  /** §17.2.3 key (branch + sent-by + method, ACK as INVITE) → server transaction. */
  readonly #server = new Map<string, ServerTransaction>();
  /** RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq, top Via → candidates (To tag checked apart). */
  readonly #server2543 = new Map<string, ServerTransaction[]>();
  /** §8.2.2.2: From tag + Call-ID + CSeq → the first ongoing server transaction with them. */
  readonly #merge = new Map<string, ServerTransaction>();
  /**
   * Live transactions by kind. Counted rather than kept in a set of their own: at a few hundred
   * calls per second tens of thousands linger, and the keyed maps above already hold each one.
   */
  readonly #live: Record<Transaction['kind'], number> = { ICT: 0, NICT: 0, IST: 0, NIST: 0 };
  readonly #queues = new Map<number, FixedDelayQueue<Transaction>>();
  #closed = false;

  constructor(opts: TransactionLayerOptions) {
    this.#core = opts.core;
    this.#autoTrying = opts.autoTrying ?? true;
    const delay = opts.tryingDelayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0 || delay > 200) throw new TypeError(`tryingDelayMs must be 0..200, got ${delay}`);
    this.#tryingDelayMs = delay;
    const clock = opts.clock ?? realClock;
    const settings = resolveTimerSettings(opts.timers);
    // Every call leaves an INVITE and a BYE server transaction lingering 64*T1 (Timer L/J),
    // and every INVITE arms the deferred 100 Trying: those wait in shared queues. The linger
    // ends on a LINGER_GRAIN_MS grid: Timers J and L only bound how long retransmissions are
    // absorbed (§17.2.2, RFC 6026 §8.7), so ending it a little later changes nothing on the
    // wire. The 100 Trying delay (at most 200 ms, §17.2.1) stays exact.
    const expire = (t: Transaction): void => t.queuedTimerFired();
    const linger = 64 * settings.T1;
    for (const ms of [linger, delay]) {
      if (ms > 0 && !this.#queues.has(ms)) this.#queues.set(ms, new FixedDelayQueue<Transaction>(clock, ms, expire, ms === linger ? LINGER_GRAIN_MS : 0));
    }
    this.#env = {
      transport: opts.transport,
      clock,
      settings,
      onCallbackError: opts.onCallbackError ?? defaultCallbackError,
      queues: this.#queues,
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The effective T1/T2/T4. */
  get timerSettings(): Readonly<TimerSettings> {
    return this.#env.settings;
  }

  stats(): TransactionStats {
    const l = this.#live;
    return { ict: l.ICT, nict: l.NICT, ist: l.IST, nist: l.NIST, client: l.ICT + l.NICT, server: l.IST + l.NIST };
  }

  /** Disposes every transaction (TU/core `onTerminated` hooks still run once each). Idempotent. */
  /** A TCP/TLS connection closed: client transactions waiting on it fail (§17.1.4). */
  connectionClosed(connectionId: number, reason: string): void {
    for (const t of [...this.#client.values()]) if (t.flow?.connectionId === connectionId) t.connectionLost(reason);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const all = new Set<Transaction>([...this.#client.values(), ...this.#server.values()]);
    for (const list of this.#server2543.values()) for (const t of list) all.add(t);
    for (const t of all) t.dispose();
    for (const q of this.#queues.values()) q.clear();
    this.#client.clear();
    this.#server.clear();
    this.#server2543.clear();
    this.#merge.clear();
  }

  // ---------------------------------------------------------------- client side

  /**
   * Starts a client transaction for `req` (anything but ACK) towards `dest`. The request's top
   * Via must carry the branch (§8.1.1.7). Transport failures reach `tu.onTransportError`.
   * `wire`, when given, is `req.toBuffer()` done already (sent as is, also on retransmission).
   */
  request(req: SipRequest, dest: Destination, tu: ClientTransactionUser, wire?: Buffer): ClientTransactionHandle {
    if (this.#closed) throw new InvalidStateError('transaction layer closed');
    if (req.method === 'ACK') throw new TypeError('ACK does not create a client transaction (§17.1.1.3, §13.2.2.4)');
    const branch = req.topVia.params.get('branch');
    if (!branch) throw new TypeError('request top Via has no branch parameter');
    if (req.cseq.method !== req.method) throw new TypeError(`CSeq method ${req.cseq.method} does not match ${req.method}`);
    const key = clientKey(branch, req.method);
    if (this.#client.has(key)) throw new InvalidStateError(`a client transaction with branch ${branch} and method ${req.method} exists`);
    const reliable = isReliableProtocol(dest.protocol);
    const removed = (t: Transaction): void => {
      if (this.#client.get(key) === t) this.#client.delete(key);
      this.#live[t.kind]--;
    };
    const txn =
      req.method === 'INVITE'
        ? new InviteClientTransaction(this.#env, key, req, dest, tu, reliable, removed)
        : new NonInviteClientTransaction(this.#env, key, req, dest, tu, reliable, removed);
    this.#client.set(key, txn);
    this.#live[txn.kind]++;
    if (wire) txn.requestWire = wire;
    txn.start();
    return txn;
  }

  /** §9.1 CANCEL for `invite` (see {@link buildCancel}). */
  buildCancel(invite: SipRequest): SipRequest {
    return buildCancel(invite);
  }

  /**
   * §9.1: cancels a pending INVITE client transaction and returns the CANCEL request (built at
   * once, see {@link buildCancel}). "If no provisional response has been received, the CANCEL
   * request MUST NOT be sent; rather, the client MUST wait for the arrival of a provisional
   * response before sending the request." So the CANCEL is sent, as its own non-INVITE client
   * transaction to the INVITE's destination, as soon as the INVITE transaction is in
   * Proceeding. "If the original request has generated a final response, the CANCEL SHOULD NOT
   * be sent": if the INVITE transaction reaches a final state first, nothing is sent and
   * `tu.onTerminated` (if given) is called. `tu` receives the CANCEL's responses.
   */
  sendCancel(inviteTxn: ClientTransactionHandle, extraHeaders?: ExtraHeaders, tu?: Partial<ClientTransactionUser>): SipRequest {
    if (!(inviteTxn instanceof InviteClientTransaction)) throw new TypeError('sendCancel needs an INVITE client transaction of this layer');
    const cancel = buildCancel(inviteTxn.request);
    if (extraHeaders) {
      if (Array.isArray(extraHeaders)) {
        for (const h of extraHeaders as ReadonlyArray<HeaderField | readonly [string, string]>) {
          if (Array.isArray(h)) cancel.add(h[0] as string, h[1] as string);
          else cancel.add((h as HeaderField).name, (h as HeaderField).value);
        }
      } else {
        for (const [name, value] of Object.entries(extraHeaders as Readonly<Record<string, string>>)) cancel.add(name, value);
      }
    }
    // Delegate (not spread): TUs are often class instances whose methods live on the prototype.
    const user: ClientTransactionUser = {
      onResponse: (res, flow) => tu?.onResponse?.call(tu, res, flow),
      onTimeout: () => tu?.onTimeout?.call(tu),
      onTransportError: (err) => tu?.onTransportError?.call(tu, err),
      onTerminated: () => tu?.onTerminated?.call(tu),
    };
    inviteTxn.whenCancellable((cancellable) => {
      if (!cancellable || this.#closed) {
        this.#safe(() => user.onTerminated?.());
        return;
      }
      const existing = this.#client.get(clientKey(cancel.topVia.params.get('branch') ?? '', 'CANCEL'));
      if (existing) return; // a CANCEL for this INVITE is already under way
      this.request(cancel, inviteTxn.destination, user);
    });
    return cancel;
  }

  // ---------------------------------------------------------------- incoming

  /**
   * Entry point for every message the transport received. Messages whose Via/CSeq/From/To
   * cannot be parsed are dropped (the transport validates mandatory headers first, §18.1.2/§18.2.1).
   */
  receive(msg: SipMessage, flow: Flow): void {
    if (this.#closed) return;
    try {
      if (msg instanceof SipResponse) this.#receiveResponse(msg, flow);
      else if (msg instanceof SipRequest) this.#receiveRequest(msg, flow);
    } catch (e) {
      if (e instanceof SipError) return;
      throw e;
    }
  }

  #receiveResponse(res: SipResponse, flow: Flow): void {
    // §17.1.3: "1. If the response has the same value of the branch parameter in the top Via
    // header field as the branch parameter in the top Via header field of the request that
    // created the transaction. 2. If the method parameter in the CSeq header field matches the
    // method of the request that created the transaction. The method is needed since a CANCEL
    // request constitutes a different transaction, but shares the same value of the branch
    // parameter."
    const branch = res.topVia.params.get('branch');
    const method = res.cseq.method;
    const txn = branch ? this.#client.get(clientKey(branch, method)) : undefined;
    if (txn) {
      txn.receiveResponse(res, flow);
      return;
    }
    // §18.1.2: "If there are any client transactions in existence, the client transport uses
    // the matching procedures of Section 17.1.3 to attempt to match the response to an
    // existing transaction. If there is a match, the response MUST be passed to that
    // transaction. Otherwise, the response MUST be passed to the core (whether it be stateless
    // proxy, stateful proxy, or UA) for further processing." Only 2xx to INVITE matter to our
    // core (the dialog layer re-ACKs them, §13.2.2.4); anything else is dropped.
    if (method === 'INVITE' && res.status >= 200 && res.status < 300) {
      const cb = this.#core.onStray2xx;
      if (cb) this.#safe(() => cb.call(this.#core, res, flow));
    }
  }

  #receiveRequest(req: SipRequest, flow: Flow): void {
    if (req.method === 'ACK') {
      // §17.2.3: "the ACK ... matches the INVITE transaction"; when none matches it is the ACK
      // for a 2xx, which forms no transaction and goes to the core (§17.1.1.3).
      const ist = this.#matchServer(req, 'ACK');
      if (ist instanceof InviteServerTransaction) {
        if (ist.receiveRequest(req, flow) === 'absorbed') return;
      }
      this.#safe(() => this.#core.onRequest(req, null, flow));
      return;
    }
    // The §17.2.3 key of the request is also the key of the transaction it would create.
    const key = this.#serverKey(req, req.method);
    const txn = this.#matchServer(req, req.method, key);
    if (txn) {
      txn.receiveRequest(req, flow);
      return;
    }

    // §8.2.2.2: "If the request has no tag in the To header field, the UAS core MUST check the
    // request against ongoing transactions. If the From tag, Call-ID, and CSeq exactly match
    // those associated with an ongoing transaction, but the request does not match that
    // transaction (based on the matching rules in Section 17.2.3), the UAS core SHOULD generate
    // a 482 (Loop Detected) response and pass it to the server transaction."
    const mkey = this.#mergeKey(req);
    const ongoing = mkey !== undefined ? this.#merge.get(mkey) : undefined;
    if (ongoing) {
      if (ongoing instanceof InviteServerTransaction && req.method === 'INVITE' && this.#adoptsRetry(req, ongoing, flow)) {
        // The retry becomes the request the merge index knows: a third copy is checked against it.
        const created = this.#createServer(req, flow, undefined, key);
        ongoing.mergeKey = undefined;
        this.#merge.set(mkey!, created);
        created.mergeKey = mkey;
        if (this.#autoTrying) (created as InviteServerTransaction).startTrying(this.#tryingDelayMs);
        this.#safe(() => this.#core.onRetryAdopted?.(req, created, ongoing, flow));
        return;
      }
      const looped = this.#createServer(req, flow, undefined, key);
      looped.respond(createResponse(req, 482)).catch(noop);
      return;
    }

    if (req.method === 'CANCEL') {
      this.#receiveCancel(req, flow, key);
      return;
    }

    const created = this.#createServer(req, flow, mkey, key);
    if (created instanceof InviteServerTransaction && this.#autoTrying) {
      // §17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it knows
      // that the TU will generate a provisional or final response within 200 ms".
      created.startTrying(this.#tryingDelayMs);
    }
    if (created.terminated) return;
    // §17.2.1: "The request MUST be passed to the TU."
    this.#safe(() => this.#core.onRequest(req, created, flow));
  }

  #adoptsRetry(req: SipRequest, ongoing: InviteServerTransaction, flow: Flow): boolean {
    const ask = this.#core.adoptsRetry;
    if (!ask || ongoing.terminated) return false;
    try {
      return ask.call(this.#core, req, ongoing, flow) === true;
    } catch {
      return false;
    }
  }

  /**
   * §9.2: "The CANCEL method requests that the TU at the server side cancel a pending
   * transaction. The TU determines the transaction to be cancelled by taking the CANCEL
   * request, and then assuming that the request method is anything but CANCEL or ACK and
   * applying the transaction matching procedures of Section 17.2.3." Only INVITE transactions
   * are looked up: cancelling a non-INVITE request has no effect (§9), so it gets 481 here.
   */
  #receiveCancel(cancel: SipRequest, flow: Flow, key: string): void {
    const nist = this.#createServer(cancel, flow, this.#mergeKey(cancel), key);
    const invite = this.#matchServer(cancel, 'INVITE');
    if (!(invite instanceof InviteServerTransaction)) {
      // "If the UAS did not find a matching transaction for the CANCEL according to the
      // procedure above, it SHOULD respond to the CANCEL with a 481 (Call Leg/Transaction Does
      // Not Exist)."
      nist.respond(createResponse(cancel, 481)).catch(noop);
      return;
    }
    // "The To tag of the response to the CANCEL and the To tag in the response to the original
    // request SHOULD be the same."
    const tag = invite.lastToTag ?? newTag();
    // "Regardless of the method of the original request, as long as the CANCEL matched an
    // existing transaction, the UAS answers the CANCEL request itself with a 200 (OK)
    // response."
    nist.respond(createResponse(cancel, 200, undefined, tag)).catch(noop);
    // "If the original request was an INVITE, the UAS SHOULD immediately respond to the INVITE
    // with a 487 (Request Terminated)." — only while it has no final response: "if the UAS has
    // already given a final response ... the CANCEL request has no effect".
    let answered487 = false;
    const inviteReq = invite.request;
    if (!invite.finalSent && !invite.terminated && inviteReq) {
      invite.respond(createResponse(inviteReq, 487, undefined, tag)).catch(noop);
      answered487 = true;
    }
    this.#safe(() => this.#core.onCancel(cancel, invite, answered487, flow));
  }

  // ---------------------------------------------------------------- server matching

  /**
   * §17.2.3 for a request treated as `method` (ACK and CANCEL look up their INVITE with
   * method INVITE). "1. the branch parameter in the request is equal to the one in the top Via
   * header field of the request that created the transaction, and 2. the sent-by value in the
   * top Via of the request is equal to the one in the request that created the transaction,
   * and 3. the method of the request matches the one that created the transaction, except for
   * ACK, where the method of the request that created the transaction is INVITE."
   */
  #matchServer(req: SipRequest, method: string, key?: string): ServerTransaction | undefined {
    const m = method === 'ACK' ? 'INVITE' : method;
    const via = req.topVia;
    const branch = via.params.get('branch');
    if (branch && branch.startsWith(MAGIC_COOKIE)) return this.#server.get(key ?? this.#key3261(branch, via, m));
    // §17.2.3: "If the branch parameter in the top Via header field is not present, or does not
    // contain the magic cookie, the following procedures are used. ... The INVITE request
    // matches a transaction if the Request-URI, To tag, From tag, Call-ID, CSeq, and top Via
    // header field match those of the INVITE request which created the transaction. ... The ACK
    // request matches a transaction if the Request-URI, From tag, Call-ID, CSeq number (not the
    // method), and top Via header field match those of the INVITE request which created the
    // transaction, and the To tag of the ACK matches the To tag of the response sent by the
    // server transaction. ... For all other request methods, a request is matched to a
    // transaction if the Request-URI, To tag, From tag, Call-ID, CSeq (including the method),
    // and top Via header field match those of the request that created the transaction."
    // Header fields are compared as written (after trimming).
    const candidates = this.#server2543.get(key ?? this.#key2543(req, m));
    if (!candidates) return undefined;
    const toTag = req.toTag;
    for (const t of candidates) {
      const expected = req.method === 'ACK' ? t.lastToTag : t.requestToTag;
      if (expected === toTag) return t;
    }
    return undefined;
  }

  /** The §17.2.3 key of a transaction created by `req` (RFC 3261 branch, else RFC 2543 fields). */
  #serverKey(req: SipRequest, method: string): string {
    const via = req.topVia;
    const branch = via.params.get('branch');
    return branch && branch.startsWith(MAGIC_COOKIE) ? this.#key3261(branch, via, method) : this.#key2543(req, method);
  }

  #key3261(branch: string, via: Via, method: string): string {
    return [branch, ' ', via.host.toLowerCase(), ':', via.port ?? '', ' ', method].join('');
  }

  #key2543(req: SipRequest, method: string): string {
    return [req.uri.trim(), req.fromTag ?? '', req.callId, String(req.cseq.seq), method, (req.getAll('via')[0] ?? '').trim()].join('\n');
  }

  /**
   * The §8.2.2.2 key (From tag, Call-ID, CSeq) of a request outside a dialog; undefined for one
   * with a To tag, which is never checked against the merge index.
   */
  #mergeKey(req: SipRequest): string | undefined {
    const ft = req.fromTag;
    if (ft === undefined || req.toTag !== undefined) return undefined;
    const cseq = req.cseq;
    return [ft, ' ', req.callId, ' ', cseq.seq, ' ', cseq.method].join('');
  }

  /**
   * Creates and indexes a server transaction under `key` (its #serverKey); `mkey`, when given,
   * registers it for §8.2.2.2 checks.
   */
  #createServer(req: SipRequest, flow: Flow, mkey: string | undefined, key: string): ServerTransaction {
    const branch = req.topVia.params.get('branch');
    const rfc3261 = !!branch && branch.startsWith(MAGIC_COOKIE);
    const id = rfc3261 ? key : `2543:${key.replace(/\n/g, ' ')}`;
    const txn: ServerTransaction =
      req.method === 'INVITE'
        ? new InviteServerTransaction(this.#env, id, req, flow, this.#core, this.#serverRemoved)
        : new NonInviteServerTransaction(this.#env, id, req, flow, this.#core, this.#serverRemoved);
    txn.matchKey = key;
    // RFC 2543 matching compares the request's To tag; RFC 3261 transactions never need it.
    if (!rfc3261) txn.requestToTag = req.toTag;
    if (rfc3261) this.#server.set(key, txn);
    else {
      const list = this.#server2543.get(key);
      if (list) list.push(txn);
      else this.#server2543.set(key, [txn]);
    }
    if (mkey !== undefined && !this.#merge.has(mkey)) {
      this.#merge.set(mkey, txn);
      txn.mergeKey = mkey;
    }
    this.#live[txn.kind]++;
    return txn;
  }

  /** One callback for every server transaction (no closure per transaction). */
  readonly #serverRemoved = (t: Transaction): void => {
    const txn = t as ServerTransaction;
    this.#live[txn.kind]--;
    const key = txn.matchKey;
    if (this.#server.get(key) === txn) this.#server.delete(key);
    else {
      const list = this.#server2543.get(key);
      if (list) {
        const i = list.indexOf(txn);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.#server2543.delete(key);
      }
    }
    const mkey = txn.mergeKey;
    if (mkey !== undefined && this.#merge.get(mkey) === txn) this.#merge.delete(mkey);
  };

  #safe(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#env.onCallbackError(e);
    }
  }

  /** For tests/diagnostics: the live server transaction a request would match, if any. */
  findServerTransaction(req: SipRequest): ServerTransactionHandle | undefined {
    return this.#matchServer(req, req.method);
  }
}
