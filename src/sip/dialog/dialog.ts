import { InvalidStateError } from '../../util/errors.js';
import { detached } from '../../util/strings.js';
import type { Flow } from '../transport/types.js';

export type DialogState = 'Early' | 'Confirmed' | 'Terminated';
export type DialogRole = 'uac' | 'uas';

/**
 * RFC 3261 §12: the state of one dialog as seen by one side.
 * The dialog ID is (Call-ID, local tag, remote tag); the route set, remote target and the
 * local/remote CSeq numbers are what later in-dialog requests are built from (§12.2).
 */
export class Dialog {
  // §12.3 / RFC 3261 §12.1: early → confirmed on 2xx; either → terminated.
  static readonly edges: Readonly<Record<DialogState, readonly DialogState[]>> = {
    Early: ['Confirmed', 'Terminated'],
    Confirmed: ['Terminated'],
    Terminated: [],
  };

  #state: DialogState;
  readonly role: DialogRole;
  // The strings below are kept for the life of the dialog, so they are stored detached from the
  // messages they were read from (see util/strings.ts): a dialog must not keep a parsed INVITE.
  readonly callId: string;
  readonly localTag: string;
  #remoteTag: string;
  #routeSet: string[];
  #remoteTarget: string;
  /** Local URI with tag as it appears in From (UAC) / To (UAS): full header value. */
  readonly localUri: string;
  #remoteUri: string;
  #localContact: string;
  /** §12.2.1.1: local CSeq; incremented for each new request. */
  localSeq: number;
  /** §12.2.2: remote CSeq; undefined until the first request from the peer. */
  remoteSeq: number | undefined;
  /** Whether this dialog was created by INVITE or SUBSCRIBE (or REFER's implicit subscription). */
  readonly usage: 'invite' | 'subscribe';
  /** The flow the dialog-creating message travelled (for TCP/TLS reuse). */
  flow: Flow | undefined;
  /** §12.1.1: secure (sips) dialog. */
  secure = false;

  constructor(init: {
    role: DialogRole;
    callId: string;
    localTag: string;
    remoteTag: string;
    routeSet: string[];
    remoteTarget: string;
    localUri: string;
    remoteUri: string;
    localContact: string;
    localSeq: number;
    remoteSeq?: number;
    usage: 'invite' | 'subscribe';
    flow?: Flow;
    state?: DialogState;
  }) {
    this.role = init.role;
    this.callId = detached(init.callId);
    this.localTag = detached(init.localTag);
    this.#remoteTag = detached(init.remoteTag);
    this.#routeSet = init.routeSet.map(detached);
    this.#remoteTarget = detached(init.remoteTarget);
    this.localUri = detached(init.localUri);
    this.#remoteUri = detached(init.remoteUri);
    this.#localContact = detached(init.localContact);
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.usage = init.usage;
    this.flow = init.flow;
    this.#state = init.state ?? 'Confirmed';
  }

  get state(): DialogState {
    return this.#state;
  }

  get remoteTag(): string {
    return this.#remoteTag;
  }

  set remoteTag(tag: string) {
    this.#remoteTag = detached(tag);
  }

  /** §12.1.1/§12.1.2: Record-Route values, in the order requests must carry them as Route. */
  get routeSet(): readonly string[] {
    return this.#routeSet;
  }

  set routeSet(routes: readonly string[]) {
    this.#routeSet = routes.map(detached);
  }

  /** Remote target URI (the peer's Contact), updated by target-refresh requests (§12.2). */
  get remoteTarget(): string {
    return this.#remoteTarget;
  }

  set remoteTarget(uri: string) {
    this.#remoteTarget = detached(uri);
  }

  /** The peer's URI with tag as it appears in To (UAC, completed by the 2xx) / From (UAS). */
  get remoteUri(): string {
    return this.#remoteUri;
  }

  set remoteUri(value: string) {
    this.#remoteUri = detached(value);
  }

  /** Our Contact header value for this dialog. */
  get localContact(): string {
    return this.#localContact;
  }

  set localContact(value: string) {
    this.#localContact = detached(value);
  }

  transition(to: DialogState): void {
    if (to === this.#state) return;
    if (!Dialog.edges[this.#state].includes(to)) throw new InvalidStateError(`dialog ${this.#state} → ${to} is not allowed`);
    this.#state = to;
  }

  /** §12.2.1.1: "the CSeq number MUST be incremented by one" (an explicit value may raise it). */
  nextSeq(explicit?: number): number {
    if (explicit !== undefined && explicit > this.localSeq) this.localSeq = explicit;
    else this.localSeq += 1;
    return this.localSeq;
  }

  /**
   * §12.2.2: a request whose CSeq is lower than the remote sequence number is out of order
   * (answered 500). Returns false for such a request; records the number otherwise.
   */
  acceptRemoteSeq(seq: number, method: string): boolean {
    if (method === 'ACK' || method === 'CANCEL') return true;
    if (this.remoteSeq !== undefined && seq < this.remoteSeq) return false;
    this.remoteSeq = seq;
    return true;
  }
}
