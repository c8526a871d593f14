/**
 * Dialogs of the fake Teams: calls the SBC sends to Teams (InboundCall, Teams as UAS) and
 * calls Teams sends to the SBC (OutboundCall, Teams as UAC), with the in-dialog requests
 * Teams makes (BYE, re-INVITE for hold/resume/refresh, REFER) and answers to the SBC's.
 */
import { newBranch, newTag } from '../../../src/util/ids.js';
import { type SipMessage, SipRequest, type SipResponse, parseNameAddr, parseUri } from '../../../src/sip/message/index.js';
import { createResponse } from '../../../src/sip/transaction/response.js';
import type { ServerTransactionHandle, TransactionLayer } from '../../../src/sip/transaction/index.js';
import type { Flow } from '../../../src/sip/transport/types.js';
import { type Direction, type ParsedSdp, type SdpCodec, type SdpCrypto, audioOf, newSrtpKey, parseSdp, teamsAnswer, teamsReoffer } from './sdp.js';
import type { FakeTeamsTransport, FtDestination } from './transport.js';

export type ProxyName = 'sip' | 'sip2' | 'sip3';
export type EndpointName = ProxyName | 'alt';

export interface EndpointInfo {
  name: EndpointName;
  fqdn: string;
  address: string;
  port: number;
}

/** Teams' Allow set (requirements doc §3.7). */
export const TEAMS_ALLOW = 'INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY';
export const TEAMS_SERVER = 'Microsoft.PSTNHub.SIPProxy v.2024.11.1.1 i.USEA.4 (fake-teams)';

export type HeaderList = Record<string, string> | ReadonlyArray<readonly [string, string]>;

function addHeaders(msg: SipMessage, h: HeaderList | undefined): void {
  if (!h) return;
  const pairs = Array.isArray(h) ? (h as ReadonlyArray<readonly [string, string]>) : Object.entries(h as Record<string, string>);
  for (const [k, v] of pairs) msg.add(k, v);
}

/** What the calls need from the FakeTeams that owns them. */
export interface CallHost {
  readonly txn: TransactionLayer;
  readonly transport: FakeTeamsTransport;
  endpoint(name: EndpointName): EndpointInfo;
  /** Where a request to `target` (a URI naming a tenant FQDN) goes. */
  sbcDestination(target: string, fallbackIp: string | undefined): { host: string; port: number; servername: string | undefined };
  /** Runs a client transaction; resolves with the final response (408 on timeout). */
  request(req: SipRequest, dest: FtDestination, onProvisional?: (res: SipResponse) => void): Promise<SipResponse>;
  /** Sends a request outside any transaction (ACK for 2xx). */
  sendRaw(req: SipRequest, dest: FtDestination): Promise<Flow>;
  allocateMediaPort(): number;
  mediaAddress(endpoint: EndpointName): string;
  ackTimeoutMs: number;
  ackMissing(call: InboundCall): void;
}

export interface LocalMedia {
  address: string;
  port: number;
  /** Base64 key||salt of our AES_CM_128_HMAC_SHA1_80 line. */
  key: string;
  sessionId: string;
  version: number;
  codecs: SdpCodec[];
  direction: Direction;
}

/** Keys and addresses for media tests (SRTP, AES_CM_128_HMAC_SHA1_80, rtcp-mux). */
export interface MediaInfo {
  /** What the gateway put in its SDP toward Teams (offer for SBC→Teams calls, answer otherwise). */
  gateway: { address: string | undefined; port: number; crypto: SdpCrypto | undefined; codecs: SdpCodec[]; rtcpMux: boolean } | undefined;
  /** What the fake Teams advertised. */
  teams: { address: string; port: number; suite: 'AES_CM_128_HMAC_SHA1_80'; key: string };
}

interface Waiter<T> {
  match: (v: T) => boolean;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A list that can be awaited for a matching entry (past or future). */
export class Awaitable<T> {
  readonly items: T[] = [];
  #waiters = new Set<Waiter<T>>();

  push(v: T): void {
    this.items.push(v);
    for (const w of [...this.#waiters]) {
      if (w.match(v)) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(v);
      }
    }
  }

  wait(match: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    const found = this.items.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`fake Teams: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  /** Rejects every pending wait (with `err`, default "fake Teams closed"). */
  close(err?: Error): void {
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(err ?? new Error('fake Teams closed'));
    }
    this.#waiters.clear();
  }
}

export interface ReferOptions {
  /** Refer-To value (default: `<sip:+15550009999@sip.pstnhub.microsoft.com;user=phone>`). */
  referTo?: string;
  /** Referred-By value (default: a ~400-character Teams-style value, see {@link teamsReferredBy}). */
  referredBy?: string;
  /** Endpoint the REFER is sent from (default 'alt': a different Teams address, §1.5). */
  from?: EndpointName;
  /** Over a new TLS connection (default true). */
  newConnection?: boolean;
  headers?: HeaderList;
}

/** A Teams-style Referred-By of about 400 characters (x-m, x-t, x-ti, x-tt; §6.3). */
export function teamsReferredBy(tenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47', user = '8:orgid:6a5d1c2e-1f0b-4c9a-9e43-1d2b3c4d5e6f'): string {
  const ti = 'b8a4c2d0-1234-4cde-9f00-aabbccddeeff';
  const tt = encodeURIComponent(`sip:+14255550100@sip.pstnhub.microsoft.com;user=phone;x-ti=${ti};x-callid=4f2a8c7e-5b1d-4e3f-8a9b-0c1d2e3f4a5b;x-ms-conv=19:meeting_replacement_call_${'a'.repeat(40)}`);
  return `<sip:sip.pstnhub.microsoft.com;x-m=${user};x-t=${tenantId};x-ti=${ti};x-tt=${tt}>`;
}

export const DEFAULT_REFER_TO = '<sip:+15550009999@sip.pstnhub.microsoft.com;user=phone>';

/**
 * One Teams-side dialog. The subclasses create it; the base class sends and answers
 * in-dialog requests.
 */
export abstract class TeamsDialog {
  readonly host: CallHost;
  readonly callId: string;
  /** The endpoint (proxy) this dialog lives on (an OutboundCall's retryFrom() moves it). */
  endpoint: EndpointName;
  localTag: string;
  remoteTag = '';
  /** From/To URIs without tags, as header values. */
  localUri: string;
  remoteUri: string;
  /** The SBC's Contact URI (remote target). */
  remoteTarget = '';
  localSeq = Math.floor(Math.random() * 1000) + 1;
  /** IP the SBC's messages came from (used when no SBC address was configured). */
  sbcIp: string | undefined;
  /** In-dialog requests the SBC sent on this dialog (re-INVITE, BYE, NOTIFY, …). */
  readonly requests = new Awaitable<SipRequest>();
  /** First SDP the SBC sent on this dialog (media must not move, §6.11). */
  firstGatewaySdp: ParsedSdp | undefined;
  lastGatewaySdp: ParsedSdp | undefined;
  /** Our last SDP offer on this dialog (what the SBC's answers are checked against). */
  lastOffer: ParsedSdp | undefined;
  local: LocalMedia | undefined;
  endedBy: 'teams' | 'sbc' | undefined;

  constructor(host: CallHost, init: { callId: string; endpoint: EndpointName; localTag: string; localUri: string; remoteUri: string }) {
    this.host = host;
    this.callId = init.callId;
    this.endpoint = init.endpoint;
    this.localTag = init.localTag;
    this.localUri = init.localUri;
    this.remoteUri = init.remoteUri;
  }

  abstract get ended(): boolean;
  protected abstract markEnded(by: 'teams' | 'sbc'): void;

  /** Our Contact for this dialog: the proxy FQDN (Teams never puts an IP there). */
  contact(from: EndpointName = this.endpoint): string {
    const ep = this.host.endpoint(from);
    return `<sip:${ep.fqdn}:${ep.port};transport=tls>`;
  }

  /** Builds an in-dialog request (RFC 3261 §12.2.1.1). */
  build(method: string, opts: { from?: EndpointName; headers?: HeaderList; body?: string; contentType?: string; seq?: number } = {}): SipRequest {
    const ep = this.host.endpoint(opts.from ?? this.endpoint);
    const req = new SipRequest(method, this.remoteTarget);
    req.add('Via', `SIP/2.0/TLS ${ep.address}:${ep.port};branch=${newBranch()};rport`);
    req.add('Max-Forwards', '70');
    req.add('From', `${this.localUri};tag=${this.localTag}`);
    req.add('To', `${this.remoteUri};tag=${this.remoteTag}`);
    req.add('Call-ID', this.callId);
    req.add('CSeq', `${opts.seq ?? (method === 'ACK' ? this.localSeq : ++this.localSeq)} ${method}`);
    // The dialog's proxy stays the Contact even when another Teams address sends (§1.5).
    if (method !== 'ACK' && method !== 'BYE') req.add('Contact', this.contact());
    req.add('User-Agent', TEAMS_SERVER);
    addHeaders(req, opts.headers);
    if (opts.body !== undefined) {
      req.add('Content-Type', opts.contentType ?? 'application/sdp');
      req.body = Buffer.from(opts.body, 'utf8');
    }
    return req;
  }

  destination(from: EndpointName = this.endpoint, newConnection = false): FtDestination {
    const d = this.host.sbcDestination(this.remoteTarget, this.sbcIp);
    const dest: FtDestination = { protocol: 'tls', host: d.host, port: d.port, localAddress: this.host.endpoint(from).address };
    if (d.servername) dest.servername = d.servername;
    if (newConnection) dest.newConnection = true;
    return dest;
  }

  /** Sends an in-dialog request; resolves with the final response. INVITE 2xx are ACKed. */
  async send(method: string, opts: { from?: EndpointName; newConnection?: boolean; headers?: HeaderList; body?: string; contentType?: string } = {}): Promise<SipResponse> {
    const req = this.build(method, opts);
    const dest = this.destination(opts.from, opts.newConnection);
    if (method === 'INVITE' && opts.body !== undefined) this.lastOffer = parseSdp(opts.body);
    const res = await this.host.request(req, dest);
    if (method === 'INVITE' && res.status >= 200 && res.status < 300) {
      const ack = this.build('ACK', { from: opts.from, seq: req.cseq.seq });
      await this.host.sendRaw(ack, { ...dest, newConnection: false }).catch(() => undefined);
      if (res.body.length) this.noteGatewaySdp(parseSdp(res.body.toString('utf8')));
    }
    return res;
  }

  /** BYE from Teams. */
  async bye(opts: { from?: EndpointName; headers?: HeaderList } = {}): Promise<SipResponse> {
    const res = await this.send('BYE', opts);
    this.markEnded('teams');
    return res;
  }

  /**
   * re-INVITE from Teams: hold (`direction: 'inactive'` or 'sendonly'), resume ('sendrecv'),
   * or a session refresh (same direction; `refresh: true` adds Session-Expires). Media address,
   * port and key stay the same (Teams keeps its media target).
   */
  async reinvite(opts: { direction?: Direction; sdp?: string; refresh?: boolean; from?: EndpointName; headers?: HeaderList } = {}): Promise<SipResponse> {
    const l = this.local;
    let body = opts.sdp;
    if (body === undefined) {
      if (!l) throw new Error('no local media on this dialog yet');
      l.version++;
      l.direction = opts.direction ?? l.direction;
      body = teamsReoffer({ ...l, direction: l.direction });
    }
    const headers: Array<[string, string]> = [['Allow', TEAMS_ALLOW]];
    if (opts.refresh) headers.push(['Supported', 'timer'], ['Session-Expires', '1800;refresher=uac']);
    if (opts.headers) {
      const extra = Array.isArray(opts.headers) ? (opts.headers as ReadonlyArray<readonly [string, string]>) : Object.entries(opts.headers as Record<string, string>);
      for (const [k, v] of extra) headers.push([k, v]);
    }
    return this.send('INVITE', { from: opts.from, headers, body });
  }

  /**
   * REFER from Teams (§6.3): by default from the 'alt' address over a new TLS connection
   * (§1.5), Refer-To an E.164 target on the Teams proxy and a ~400-character Referred-By.
   * Resolves with the SBC's response (202 expected); NOTIFYs arrive in {@link notifies}.
   */
  async refer(opts: ReferOptions = {}): Promise<{ response: SipResponse; referTo: string; referredBy: string }> {
    const referTo = opts.referTo ?? DEFAULT_REFER_TO;
    const referredBy = opts.referredBy ?? teamsReferredBy();
    const headers: Array<[string, string]> = [
      ['Refer-To', referTo],
      ['Referred-By', referredBy],
    ];
    if (opts.headers) {
      const extra = Array.isArray(opts.headers) ? (opts.headers as ReadonlyArray<readonly [string, string]>) : Object.entries(opts.headers as Record<string, string>);
      for (const [k, v] of extra) headers.push([k, v]);
    }
    const response = await this.send('REFER', { from: opts.from ?? 'alt', newConnection: opts.newConnection ?? true, headers });
    return { response, referTo, referredBy };
  }

  /** NOTIFYs (RFC 3515 progress) the SBC sent on this dialog. */
  get notifies(): SipRequest[] {
    return this.requests.items.filter((r) => r.method === 'NOTIFY');
  }

  /** Waits for a NOTIFY whose sipfrag status line carries `status` (e.g. 200). */
  waitForNotify(status: number, timeoutMs = 5000): Promise<SipRequest> {
    return this.requests.wait((r) => r.method === 'NOTIFY' && sipfragStatus(r) === status, timeoutMs, `NOTIFY with sipfrag ${status} on ${this.callId}`);
  }

  /** Waits for an in-dialog request from the SBC (past or future). */
  waitForRequest(method: string, timeoutMs = 5000, match: (r: SipRequest) => boolean = () => true): Promise<SipRequest> {
    return this.requests.wait((r) => r.method === method && match(r), timeoutMs, `${method} on ${this.callId}`);
  }

  protected noteGatewaySdp(sdp: ParsedSdp): void {
    if (!audioOf(sdp)) return;
    this.firstGatewaySdp ??= sdp;
    this.lastGatewaySdp = sdp;
  }

  /** Media keys and addresses (for SRTP tests). */
  media(): MediaInfo {
    const l = this.local;
    if (!l) throw new Error('no media negotiated on this dialog');
    const g = this.lastGatewaySdp ? audioOf(this.lastGatewaySdp) : undefined;
    return {
      gateway: g
        ? { address: g.address, port: g.port, crypto: g.crypto.find((c) => c.suite === 'AES_CM_128_HMAC_SHA1_80'), codecs: g.codecs, rtcpMux: g.rtcpMux }
        : undefined,
      teams: { address: l.address, port: l.port, suite: 'AES_CM_128_HMAC_SHA1_80', key: l.key },
    };
  }

  /** Records and answers an in-dialog request from the SBC (ACK/CANCEL have no `txn`). */
  onRequest(req: SipRequest, txn: ServerTransactionHandle | null, flow: Flow): void {
    this.sbcIp ??= flow.remoteAddress;
    if (req.method !== 'ACK') this.requests.push(req);
    if (!txn) return;
    const reply = (status: number, build?: (r: SipResponse) => void): void => {
      const res = createResponse(req, status);
      res.add('Server', TEAMS_SERVER);
      build?.(res);
      txn.respond(res).catch(() => undefined);
    };
    switch (req.method) {
      case 'BYE':
        reply(200);
        this.markEnded('sbc');
        return;
      case 'INVITE': {
        const offer = req.body.length ? parseSdp(req.body.toString('utf8')) : undefined;
        if (req.has('contact')) {
          try {
            this.remoteTarget = parseNameAddr(req.getAll('contact')[0]!).uri;
          } catch {
            // keep the old target
          }
        }
        if (!offer || !this.local) {
          reply(488);
          return;
        }
        this.noteGatewaySdp(offer);
        const l = this.local;
        l.version++;
        const ans = teamsAnswer(offer, { address: l.address, port: l.port, key: l.key, version: l.version, sessionId: l.sessionId });
        reply(200, (r) => {
          r.add('Contact', this.contact());
          r.add('Allow', TEAMS_ALLOW);
          if (req.get('session-expires')) {
            r.add('Session-Expires', `${(req.get('session-expires') ?? '1800').split(';')[0]!.trim()};refresher=uac`);
            r.add('Require', 'timer');
          }
          r.add('Content-Type', 'application/sdp');
          r.body = Buffer.from(ans.sdp);
        });
        return;
      }
      case 'NOTIFY':
      case 'OPTIONS':
        reply(200, (r) => r.add('Allow', TEAMS_ALLOW));
        return;
      default:
        reply(405, (r) => r.add('Allow', TEAMS_ALLOW));
    }
  }
}

/** Status code of a message/sipfrag NOTIFY body (`SIP/2.0 200 OK`). */
export function sipfragStatus(req: SipRequest): number | undefined {
  const m = /^SIP\/2\.0\s+(\d{3})/.exec(req.body.toString('utf8').trim());
  return m ? Number(m[1]) : undefined;
}

export type InboundCallState = 'incoming' | 'early' | 'answered' | 'confirmed' | 'rejected' | 'cancelled' | 'ended' | 'dropped';

export interface RespondOptions {
  reason?: string;
  /** Fork index: each fork gets its own To-tag (default 0). */
  fork?: number;
  /** Include an SDP answer (default: true for 183 and 2xx). */
  sdp?: boolean;
  headers?: HeaderList;
  /** Retry-After seconds (503). */
  retryAfter?: number;
  /** The codec of the SDP answer when it was offered (default: the first Teams codec offered). */
  codec?: string;
}

export interface AnswerOptions extends Omit<RespondOptions, 'sdp' | 'retryAfter'> {
  /** Media address/port to advertise (default: endpoint address + an allocated port). */
  media?: { address?: string; port?: number };
  /** Session-Expires in the 200 when the SBC supports timer (default 1800; false: none). */
  sessionExpires?: number | false;
}

/** A call the SBC sent to the fake Teams (PSTN → Teams). */
export class InboundCall extends TeamsDialog {
  readonly invite: SipRequest;
  readonly inviteFlow: Flow;
  readonly txn: ServerTransactionHandle;
  readonly receivedAt = Date.now();
  readonly offer: ParsedSdp | undefined;
  state: InboundCallState = 'incoming';
  /** Responses Teams sent to the INVITE, in order. */
  readonly sent: SipResponse[] = [];
  readonly forkTags: string[] = [];
  ackedAt: number | undefined;
  cancelledAt: number | undefined;
  #ack = new Awaitable<SipRequest>();
  #ackTimer: NodeJS.Timeout | undefined;

  constructor(host: CallHost, endpoint: ProxyName, invite: SipRequest, txn: ServerTransactionHandle, flow: Flow) {
    const to = invite.get('to') ?? '';
    const from = invite.get('from') ?? '';
    super(host, { callId: invite.callId, endpoint, localTag: newTag(), localUri: stripTag(to), remoteUri: stripTag(from) });
    this.invite = invite;
    this.txn = txn;
    this.inviteFlow = flow;
    this.sbcIp = flow.remoteAddress;
    this.remoteTag = invite.fromTag ?? '';
    try {
      this.remoteTarget = parseNameAddr(invite.getAll('contact')[0] ?? '').uri;
    } catch {
      this.remoteTarget = invite.uri;
    }
    this.offer = invite.body.length ? parseSdp(invite.body.toString('utf8')) : undefined;
    if (this.offer) this.noteGatewaySdp(this.offer);
    this.forkTags.push(this.localTag);
  }

  get ended(): boolean {
    return ['rejected', 'cancelled', 'ended', 'dropped'].includes(this.state);
  }

  protected markEnded(by: 'teams' | 'sbc'): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.endedBy = by;
    clearTimeout(this.#ackTimer);
  }

  /** The caller's number from From (`+E164`). */
  get caller(): string | undefined {
    try {
      return parseUri(parseNameAddr(this.invite.get('from') ?? '').uri).user;
    } catch {
      return undefined;
    }
  }

  /** The called number from the Request-URI. */
  get called(): string | undefined {
    try {
      return parseUri(this.invite.uri).user;
    } catch {
      return undefined;
    }
  }

  #tag(fork = 0): string {
    while (this.forkTags.length <= fork) this.forkTags.push(newTag());
    return this.forkTags[fork]!;
  }

  #ensureLocal(media?: { address?: string; port?: number }): LocalMedia {
    if (!this.local) {
      this.local = {
        address: media?.address ?? this.host.mediaAddress(this.endpoint),
        port: media?.port ?? this.host.allocateMediaPort(),
        key: newSrtpKey(),
        sessionId: String(Math.floor(Math.random() * 1e9)),
        version: 0,
        codecs: [],
        direction: 'sendrecv',
      };
    }
    return this.local;
  }

  /** Sends a response to the INVITE. 183 and 2xx carry an SDP answer unless `sdp: false`. */
  async respond(status: number, opts: RespondOptions & { media?: { address?: string; port?: number } } = {}): Promise<SipResponse> {
    if (this.txn.finalSent) throw new Error(`INVITE ${this.callId} already has a final response`);
    const tag = this.#tag(opts.fork ?? 0);
    const res = createResponse(this.invite, status, opts.reason, tag);
    res.add('Server', TEAMS_SERVER);
    if (status > 100 && status < 300) {
      res.add('Contact', this.contact());
      res.add('Allow', TEAMS_ALLOW);
    }
    if (opts.retryAfter !== undefined) res.add('Retry-After', String(opts.retryAfter));
    addHeaders(res, opts.headers);
    const withSdp = opts.sdp ?? (status === 183 || (status >= 200 && status < 300));
    if (withSdp && this.offer) {
      const l = this.#ensureLocal(opts.media);
      const ans = teamsAnswer(this.offer, { address: l.address, port: l.port, key: l.key, version: l.version, sessionId: l.sessionId, ...(opts.codec ? { codec: opts.codec } : {}) });
      l.codecs = ans.codecs;
      res.add('Content-Type', 'application/sdp');
      res.body = Buffer.from(ans.sdp);
    }
    this.sent.push(res);
    if (status >= 200 && status < 300) {
      this.localTag = tag;
      this.state = 'answered';
      this.#ackTimer = setTimeout(() => {
        if (this.ackedAt === undefined && this.state === 'answered') this.host.ackMissing(this);
      }, this.host.ackTimeoutMs);
    } else if (status >= 300) {
      this.state = 'rejected';
    } else if (status > 100) {
      this.state = 'early';
    }
    await this.txn.respond(res);
    return res;
  }

  /** 180 Ringing (each `fork` index gets its own To-tag, like Teams forking to several endpoints). */
  ringing(opts: Omit<RespondOptions, 'retryAfter'> = {}): Promise<SipResponse> {
    return this.respond(180, { sdp: false, ...opts });
  }

  /** 183 Session Progress with the media processor's SDP. */
  progress(opts: Omit<RespondOptions, 'retryAfter'> & { media?: { address?: string; port?: number } } = {}): Promise<SipResponse> {
    return this.respond(183, opts);
  }

  /** 200 OK with the SDP answer (SRTP _80 with our key, rtcp-mux). */
  answer(opts: AnswerOptions = {}): Promise<SipResponse> {
    const headers: Array<[string, string]> = [];
    const supported = this.invite.getAll('supported').flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase());
    if (opts.sessionExpires !== false && supported.includes('timer')) {
      headers.push(['Session-Expires', `${opts.sessionExpires ?? 1800};refresher=uac`], ['Require', 'timer']);
    }
    if (opts.headers) {
      const extra = Array.isArray(opts.headers) ? (opts.headers as ReadonlyArray<readonly [string, string]>) : Object.entries(opts.headers as Record<string, string>);
      for (const [k, v] of extra) headers.push([k, v]);
    }
    const o: RespondOptions & { media?: { address?: string; port?: number } } = { headers };
    if (opts.fork !== undefined) o.fork = opts.fork;
    if (opts.reason !== undefined) o.reason = opts.reason;
    if (opts.media !== undefined) o.media = opts.media;
    if (opts.codec !== undefined) o.codec = opts.codec;
    return this.respond(200, o);
  }

  /** Final failure response, e.g. reject(503, { retryAfter: 1 }), reject(603), reject(486). */
  reject(status: number, opts: Omit<RespondOptions, 'sdp'> = {}): Promise<SipResponse> {
    return this.respond(status, { sdp: false, ...opts });
  }

  /** Resets the TLS connection the INVITE arrived on. */
  drop(): void {
    const id = this.inviteFlow.connectionId;
    this.host.transport.drop((r) => r.id === id);
    if (!this.ended) this.state = 'dropped';
  }

  waitForAck(timeoutMs = 5000): Promise<SipRequest> {
    return this.#ack.wait(() => true, timeoutMs, `ACK for ${this.callId}`);
  }

  /** Waits until the SBC cancels the INVITE. */
  async waitForCancel(timeoutMs = 5000): Promise<void> {
    await this.requests.wait((r) => r.method === 'CANCEL', timeoutMs, `CANCEL for ${this.callId}`);
  }

  onAck(ack: SipRequest): void {
    this.ackedAt ??= Date.now();
    clearTimeout(this.#ackTimer);
    if (this.state === 'answered') this.state = 'confirmed';
    this.#ack.push(ack);
  }

  /** `answered487`: the CANCEL came before a final response (the layer sent 487, §9.2). */
  onCancel(cancel: SipRequest, answered487: boolean): void {
    this.cancelledAt = Date.now();
    if (answered487) this.state = 'cancelled';
    this.requests.push(cancel);
  }

  dispose(): void {
    clearTimeout(this.#ackTimer);
    this.requests.close();
    this.#ack.close();
  }
}

export type OutboundCallState = 'calling' | 'early' | 'confirmed' | 'failed' | 'cancelled' | 'ended';

/** A call the fake Teams sends to the SBC (Teams user → PSTN). */
export class OutboundCall extends TeamsDialog {
  invite: SipRequest;
  dest: FtDestination;
  /** retryFrom() calls so far: responses of an abandoned attempt are ignored. */
  #attempt = 0;
  readonly sentAt = Date.now();
  state: OutboundCallState = 'calling';
  readonly responses = new Awaitable<SipResponse>();
  /** ms from sending the INVITE to the first response (any status). */
  firstResponseMs: number | undefined;
  error: Error | undefined;
  #txnHandle: import('../../../src/sip/transaction/index.js').ClientTransactionHandle | undefined;

  constructor(host: CallHost, endpoint: EndpointName, invite: SipRequest, dest: FtDestination, local: LocalMedia) {
    super(host, {
      callId: invite.callId,
      endpoint,
      localTag: invite.fromTag ?? newTag(),
      localUri: stripTag(invite.get('from') ?? ''),
      remoteUri: stripTag(invite.get('to') ?? ''),
    });
    this.invite = invite;
    this.dest = dest;
    this.local = local;
    this.remoteTarget = invite.uri;
    this.localSeq = invite.cseq.seq;
    if (invite.body.length) this.lastOffer = parseSdp(invite.body.toString('utf8'));
  }

  get ended(): boolean {
    return ['failed', 'cancelled', 'ended'].includes(this.state);
  }

  protected markEnded(by: 'teams' | 'sbc'): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.endedBy = by;
  }

  /** Starts the INVITE client transaction (called by FakeTeams.originate). */
  start(): void {
    const attempt = this.#attempt;
    const current = () => attempt === this.#attempt;
    this.#txnHandle = this.host.txn.request(this.invite, this.dest, {
      onResponse: (res) => {
        if (current()) this.#onResponse(res);
      },
      onTimeout: () => {
        if (!current()) return;
        this.state = 'failed';
        this.error = new Error(`INVITE ${this.callId} timed out (Timer B)`);
        this.responses.close(this.error);
      },
      onTransportError: (err) => {
        if (!current()) return;
        this.state = 'failed';
        this.error = err;
        this.responses.close(new Error(`INVITE ${this.callId} not delivered: ${err.message}`));
      },
    });
  }

  /**
   * §1.10: Teams lost its path to the SBC and sends the same INVITE again from another
   * datacenter: same Call-ID, From (tag), To, CSeq and body, with `endpoint`'s Via and Contact,
   * over a new connection from its address. The first attempt's transaction is abandoned: what it
   * still reports is ignored. `responses` keeps what both attempts received.
   */
  retryFrom(endpoint: EndpointName): void {
    if (this.state !== 'calling' && this.state !== 'early') throw new Error(`retryFrom: INVITE ${this.callId} is ${this.state}`);
    this.#attempt++;
    this.#txnHandle?.close();
    const ep = this.host.endpoint(endpoint);
    const again = new SipRequest('INVITE', this.invite.uri);
    for (const h of this.invite.headers) {
      if (h.key === 'via') again.add('Via', `SIP/2.0/TLS ${ep.address}:${ep.port};branch=${newBranch()};rport`);
      else if (h.key === 'contact') again.add('Contact', `<sip:${ep.fqdn}:${ep.port};transport=tls>`);
      else again.add(h.name, h.value);
    }
    again.body = this.invite.body;
    this.invite = again;
    this.endpoint = endpoint;
    this.dest = { ...this.dest, localAddress: ep.address, newConnection: true };
    this.start();
  }

  #onResponse(res: SipResponse): void {
    this.firstResponseMs ??= Date.now() - this.sentAt;
    if (res.status >= 200 && res.status < 300) {
      const tag = res.toTag ?? '';
      if (this.state === 'confirmed' && tag !== this.remoteTag) {
        // §13.2.2.4: a 2xx from a second fork is ACKed and then ended.
        return;
      }
      this.remoteTag = tag;
      try {
        this.remoteTarget = parseNameAddr(res.getAll('contact')[0] ?? '').uri;
      } catch {
        // keep the Request-URI as target
      }
      if (res.body.length) this.noteGatewaySdp(parseSdp(res.body.toString('utf8')));
      const first = this.state !== 'confirmed';
      this.state = 'confirmed';
      const ack = this.build('ACK', { seq: this.invite.cseq.seq });
      void this.host.sendRaw(ack, { ...this.dest, newConnection: false }).catch(() => undefined);
      if (!first) return;
    } else if (res.status >= 300) {
      this.state = res.status === 487 ? 'cancelled' : 'failed';
    } else if (res.status > 100) {
      this.state = 'early';
      if (res.body.length) this.noteGatewaySdp(parseSdp(res.body.toString('utf8')));
    }
    this.responses.push(res);
  }

  /** Waits for a response with this status (or matching the predicate), past or future. */
  waitForResponse(status: number | ((r: SipResponse) => boolean), timeoutMs = 5000): Promise<SipResponse> {
    const m = typeof status === 'number' ? (r: SipResponse) => r.status === status : status;
    return this.responses.wait(m, timeoutMs, `response ${typeof status === 'number' ? status : '(predicate)'} to INVITE ${this.callId}`);
  }

  /** Waits for the final response. */
  waitForFinal(timeoutMs = 10_000): Promise<SipResponse> {
    return this.responses.wait((r) => r.status >= 200, timeoutMs, `final response to INVITE ${this.callId}`);
  }

  /** CANCEL the INVITE (sent once a provisional arrived, §9.1). */
  cancel(): void {
    if (!this.#txnHandle) throw new Error('INVITE not started');
    this.host.txn.sendCancel(this.#txnHandle);
  }

  dispose(): void {
    this.#txnHandle?.close();
    this.requests.close();
    this.responses.close();
  }
}

function stripTag(v: string): string {
  return v.replace(/;\s*tag=[^;>]*/i, '');
}
