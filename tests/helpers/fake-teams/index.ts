/**
 * A fake Microsoft Teams Direct Routing SIP proxy for tests (issue 4, acceptance; requirements
 * doc ../shared/docs/teams-direct-routing.md, "What a test harness must simulate").
 *
 *   const ft = await FakeTeams.start({ tenants: ['acme.customers.example.net'] });
 *   // gateway config: teams.proxies = ft.proxies, teams.hosts = ft.hosts,
 *   //   TLS cert/key = ft.pki.sbc.server, CA = ft.pki.teams.ca
 *   ft.script([step.ringing(0), step.ringing(1), step.progress(), step.answer(200)]);
 *   … make a carrier call …
 *   const call = await ft.waitForCall();
 *   expect(ft.violations).toEqual([]);
 *   await ft.close();
 *
 * Three mutual-TLS endpoints stand in for sip/sip2/sip3.pstnhub.microsoft.com (127.0.5.1-3),
 * plus an 'alt' address (127.0.5.4) that only sends (a "different Teams address", §1.5).
 * Every message from the SBC is recorded and checked; problems land in `violations` (nothing
 * throws inside socket handlers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newBranch, newCallId, newTag } from '../../../src/util/ids.js';
import { type SipMessage, SipRequest, SipResponse, parseNameAddr, parseUri } from '../../../src/sip/message/index.js';
import { type ServerCore, type ServerTransactionHandle, TransactionLayer, createResponse } from '../../../src/sip/transaction/index.js';
import type { Flow } from '../../../src/sip/transport/types.js';
import {
  Awaitable,
  type CallHost,
  type EndpointInfo,
  type EndpointName,
  type HeaderList,
  InboundCall,
  type LocalMedia,
  OutboundCall,
  type ProxyName,
  TEAMS_ALLOW,
  TEAMS_SERVER,
  type TeamsDialog,
} from './calls.js';
import { type CheckContext, type Violation, checkRequest, checkResponse } from './checks.js';
import { type FakeTeamsPki, TEAMS_GOV_PROXY_FQDNS, TEAMS_PROXY_FQDNS, createFakeTeamsPki } from './pki.js';
import { newSrtpKey, parseSdp, teamsOffer } from './sdp.js';
import { type ConnectionRecord, type EndpointMode, FakeTeamsTransport, type FtDestination, type IdlePolicy, type TlsFailure, certProblems } from './transport.js';

export * from './calls.js';
export * from './checks.js';
export * from './pki.js';
export * from './sdp.js';
export type { ConnectionRecord, EndpointMode, IdlePolicy, TlsFailure, TlsSessionInfo } from './transport.js';

export interface FakeTeamsOptions {
  /** Both test PKIs (default: created in a temp dir, removed by close()). */
  pki?: FakeTeamsPki;
  /** Carrier base domain (default: pki.baseDomain). Contact must be it or below it. */
  baseDomain?: string;
  /** Provisioned tenant FQDNs; when given, Contact must be one of them (unknown → 403). */
  tenants?: string[];
  /** Addresses (default 127.0.5.1, .2, .3 and alt 127.0.5.4). */
  addresses?: Partial<Record<EndpointName, string>>;
  /** TLS port of every endpoint (default 5061; 0 = ephemeral, see `proxies`). */
  port?: number;
  /**
   * Where Teams → SBC requests go (tenant FQDNs resolve to it). Default: the address the
   * SBC's own connections come from, port 5061. Can be set later with setSbc().
   */
  sbc?: { host: string; port?: number };
  /**
   * The Microsoft cloud played (§1.2). gcch / dod: the `sip` endpoint is that cloud's only proxy
   * (sip.pstnhub.gov.teams.microsoft.us / sip.pstnhub.dod.teams.microsoft.us) and `proxies`
   * lists it alone; sip2 and sip3 still listen, so a gateway that tried them would be seen.
   */
  cloud?: 'commercial' | keyof typeof TEAMS_GOV_PROXY_FQDNS;
  /** Request-URI hosts accepted in INVITEs (default: the `sip` endpoint's FQDN). */
  requestUriHosts?: string[];
  /**
   * Every endpoint stands for an upstream certified SBC in front of all three proxies
   * ("beside a certified SBC"): an OPTIONS may name any Teams proxy, not only the endpoint's.
   */
  upstreamSbc?: boolean;
  /** Allow must list REFER and NOTIFY (default true). */
  expectAllowRefer?: boolean;
  /** Refuse SBCs without a client certificate from the SBC CA (default true). */
  requireClientCert?: boolean;
  /**
   * Behave like Teams on gross violations (default true): an IP or unknown FQDN in Contact
   * gets 403, an INVITE without SRTP gets 488 (the violation is recorded either way).
   */
  enforce?: boolean;
  /**
   * §3.1: after answering an SBC OPTIONS, open a new connection to its Contact FQDN:port and
   * send Teams' own OPTIONS (result in OptionsRecord.probe). Default false.
   */
  probeOptions?: boolean;
  /** A 200 from Teams not ACKed within this time is a violation (default 4000, §4.15). */
  ackTimeoutMs?: number;
  /** First RTP port advertised by fake Teams media (default 49152, step 2). */
  mediaPortBase?: number;
  /** Transaction timers (default RFC 3261 values). */
  timers?: { T1?: number; T2?: number; T4?: number };
  /** §2.14: close connections idle for `timeoutMs` (FIN), CRLF keep-alives every `keepaliveMs`. Default: never. */
  idle?: IdlePolicy;
}

/** One message in or out, in order. */
export interface RecordedMessage {
  seq: number;
  at: number;
  dir: 'in' | 'out';
  endpoint: string;
  connectionId: number | undefined;
  /** `ip:port` of the SBC side. */
  remote: string;
  msg: SipMessage;
}

/** One OPTIONS the SBC sent (cadence and Contact, §3). */
export interface OptionsRecord {
  at: number;
  endpoint: string;
  requestUri: string;
  from: string | undefined;
  to: string | undefined;
  contact: string | undefined;
  connectionId: number | undefined;
  /** What the fake Teams answered (undefined: not answered). */
  status: number | undefined;
  /** With probeOptions: status of Teams' OPTIONS back to the Contact, or the error text. */
  probe?: number | string;
}

/** A scripted step for an INVITE from the SBC. */
export type ScriptStep =
  | { do: 'respond'; status: number; fork?: number; sdp?: boolean; retryAfter?: number; reason?: string; headers?: HeaderList; delayMs?: number }
  | { do: 'drop'; delayMs?: number }
  | { do: 'wait'; ms: number };

/** Builders for {@link ScriptStep}s. A script without a final response never answers. */
export const step = {
  /** 180 Ringing on fork `fork` (own To-tag per fork). */
  ringing: (fork = 0, delayMs?: number): ScriptStep => ({ do: 'respond', status: 180, fork, sdp: false, ...(delayMs !== undefined ? { delayMs } : {}) }),
  /** 183 Session Progress with SDP (media processor). */
  progress: (delayMs?: number, fork = 0): ScriptStep => ({ do: 'respond', status: 183, fork, ...(delayMs !== undefined ? { delayMs } : {}) }),
  /** 200 OK with SDP after `delayMs` (slow answer: a large delay). */
  answer: (delayMs?: number, fork = 0): ScriptStep => ({ do: 'respond', status: 200, fork, ...(delayMs !== undefined ? { delayMs } : {}) }),
  /** A final failure: reject(503, { retryAfter: 1 }), reject(603), reject(486), reject(408). */
  reject: (status: number, opts: { retryAfter?: number; reason?: string; headers?: HeaderList; delayMs?: number } = {}): ScriptStep => ({ do: 'respond', status, sdp: false, ...opts }),
  /** Reset the TLS connection the INVITE came on. */
  drop: (delayMs?: number): ScriptStep => ({ do: 'drop', ...(delayMs !== undefined ? { delayMs } : {}) }),
  wait: (ms: number): ScriptStep => ({ do: 'wait', ms }),
};

interface Script {
  steps: ScriptStep[];
  endpoint: ProxyName | undefined;
  times: number;
}

export interface OriginateOptions {
  /** Called number (+E.164, '#' allowed unescaped). */
  to: string;
  /** Tenant (derived trunk) FQDN: Request-URI host and TLS SNI. */
  tenant: string;
  /** Calling number (default +14255550100); 'anonymous' gives an anonymous From. */
  from?: string;
  /** Port in the Request-URI (default: the SBC port). */
  port?: number;
  /** Endpoint the call comes from (default 'sip'; 'alt' = another Teams address). */
  endpoint?: EndpointName;
  /** Full Request-URI override. */
  requestUri?: string;
  /** SDP offer (default: a Teams-like SDES offer, see teamsOffer()). */
  sdp?: string | false;
  /** Media address/port advertised in the default offer. */
  media?: { address?: string; port?: number };
  /** Session-Expires (default 1800; false: no session timer). */
  sessionExpires?: number | false;
  /** Replaces (call-queue pickup / consultative transfer, §6.7): a dialog or explicit ids. */
  replaces?: TeamsDialog | { callId: string; toTag: string; fromTag: string };
  /** P-Asserted-Identity + Privacy: id (ForwardPai). */
  pai?: string;
  privacy?: string;
  /** History-Info / Referred-By (ForwardCallHistory). */
  historyInfo?: string[];
  referredBy?: string;
  headers?: HeaderList;
  /**
   * §5.9 (PidfLoSupported): the caller's location as a PIDF-LO part next to the SDP, in a
   * multipart/mixed body referenced by `Geolocation: <cid:…>` (RFC 6442). `true`: a default
   * civic-address document.
   */
  location?: true | { pidf: string; routing?: 'yes' | 'no' };
  /** A raw body instead of the SDP offer (malformed-input tests). */
  body?: { contentType: string; text: string };
  /** Open a new TLS connection (a Teams retry from another datacenter). */
  newConnection?: boolean;
  callId?: string;
}

/** A PIDF-LO document (RFC 4119 / RFC 5139 civic address) as Teams sends for an emergency call. */
export function pidfLo(entity: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="${entity}">`,
    '  <tuple id="teams-emergency-location">',
    '    <status><gp:geopriv><gp:location-info><ca:civicAddress>',
    '      <ca:country>US</ca:country><ca:A1>WA</ca:A1><ca:A3>Redmond</ca:A3>',
    '      <ca:RD>Microsoft Way</ca:RD><ca:HNO>1</ca:HNO><ca:PC>98052</ca:PC>',
    '    </ca:civicAddress></gp:location-info>',
    '    <gp:usage-rules/><gp:method>Manual</gp:method></gp:geopriv></status>',
    '  </tuple>',
    '</presence>',
    '',
  ].join('\r\n');
}

const DEFAULT_ADDRESSES: Record<EndpointName, string> = { sip: '127.0.5.1', sip2: '127.0.5.2', sip3: '127.0.5.3', alt: '127.0.5.4' };
const PROXIES: readonly ProxyName[] = ['sip', 'sip2', 'sip3'];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class FakeTeams {
  readonly pki: FakeTeamsPki;
  /** Resolver override for the gateway config (teams.hosts). */
  readonly hosts: Record<string, string>;
  /** Proxy list for the gateway config (teams.proxies), failover order. */
  readonly proxies: Array<{ host: string; port: number }>;
  readonly endpoints: Record<EndpointName, EndpointInfo>;
  /** MUST-item violations seen so far (see checks.ts for rule names). */
  readonly violations: Violation[] = [];
  /** Every TLS handshake that failed, both directions. */
  readonly tlsFailures: TlsFailure[] = [];
  /** OPTIONS the SBC sent, in order. */
  readonly options: OptionsRecord[] = [];
  /** Calls the SBC sent to Teams, in arrival order. */
  readonly calls: InboundCall[] = [];
  /** Calls Teams sent to the SBC. */
  readonly outboundCalls: OutboundCall[] = [];

  readonly #opts: FakeTeamsOptions;
  readonly #transport: FakeTeamsTransport;
  readonly #txn: TransactionLayer;
  readonly #host: CallHost;
  readonly #optionsReplyByContact = new Map<string, number | null>();
  readonly #messages = new Awaitable<RecordedMessage>();
  readonly #callQueue = new Awaitable<InboundCall>();
  readonly #claimed = new Set<InboundCall>();
  readonly #dialogs = new Map<string, TeamsDialog[]>();
  readonly #connRecords = new Map<number, ConnectionRecord>();
  #scripts: Script[] = [];
  #optionsReply = new Map<string, number | null>();
  #sbc: { host: string; port: number } | undefined;
  #lastSbcIp: string | undefined;
  #mediaPort: number;
  #ownPkiDir: string | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;

  private constructor(opts: FakeTeamsOptions, pki: FakeTeamsPki, ownPkiDir: string | undefined) {
    this.#opts = opts;
    this.pki = pki;
    this.#ownPkiDir = ownPkiDir;
    this.#mediaPort = opts.mediaPortBase ?? 49152;
    if (opts.sbc) this.#sbc = { host: opts.sbc.host, port: opts.sbc.port ?? 5061 };
    const port = opts.port ?? 5061;
    const addr = { ...DEFAULT_ADDRESSES, ...opts.addresses };
    const cloud = opts.cloud ?? 'commercial';
    const fqdn: Record<EndpointName, string> = { sip: cloud === 'commercial' ? TEAMS_PROXY_FQDNS[0] : TEAMS_GOV_PROXY_FQDNS[cloud], sip2: TEAMS_PROXY_FQDNS[1], sip3: TEAMS_PROXY_FQDNS[2], alt: 'sip-du-a-alt.pstnhub.microsoft.com' };
    const specs = (['sip', 'sip2', 'sip3', 'alt'] as const).map((name) => ({ name, fqdn: fqdn[name], address: addr[name], port: name === 'alt' ? 5061 : port, listen: name !== 'alt' }));
    this.#transport = new FakeTeamsTransport(
      specs,
      { key: pki.teams.server.key, cert: pki.teams.server.cert, ca: pki.sbc.ca.cert },
      {
        onMessage: (msg, flow, endpoint) => this.#onMessage(msg, flow, endpoint),
        onSent: (msg, flow, endpoint) => this.#record('out', msg, flow, endpoint),
        onConnection: (rec) => this.#onConnection(rec),
        onTlsFailure: (f) => this.#onTlsFailure(f),
      },
      { requireClientCert: opts.requireClientCert ?? true, ...(opts.idle ? { idle: opts.idle } : {}) },
    );
    const core: ServerCore = {
      onRequest: (req, txn, flow) => this.#onRequest(req, txn, flow),
      onCancel: (cancel, invite, answered487) => {
        for (const d of this.#dialogs.get(cancel.callId) ?? []) if (d instanceof InboundCall && d.txn === invite) d.onCancel(cancel, answered487);
      },
    };
    this.#txn = new TransactionLayer({ transport: this.#transport, core, onCallbackError: () => undefined, ...(opts.timers ? { timers: opts.timers } : {}) });
    this.#host = this.#makeHost();
    // Filled after start() (ports may be ephemeral).
    this.endpoints = {} as Record<EndpointName, EndpointInfo>;
    this.hosts = {};
    this.proxies = [];
  }

  /** Creates the PKI (unless given) and starts the three TLS endpoints. */
  static async start(opts: FakeTeamsOptions = {}): Promise<FakeTeams> {
    let pki = opts.pki;
    let own: string | undefined;
    if (!pki) {
      own = await mkdtemp(join(tmpdir(), 'fake-teams-pki-'));
      const po: { baseDomain?: string } = {};
      if (opts.baseDomain) po.baseDomain = opts.baseDomain;
      pki = await createFakeTeamsPki(own, po);
    }
    const ft = new FakeTeams(opts, pki, own);
    try {
      await ft.#transport.start();
    } catch (err) {
      await ft.close();
      throw err;
    }
    for (const name of ['sip', 'sip2', 'sip3', 'alt'] as const) {
      const s = ft.#transport.endpoint(name);
      ft.endpoints[name] = { name, fqdn: s.fqdn, address: s.address, port: s.port };
    }
    for (const name of (opts.cloud ?? 'commercial') === 'commercial' ? PROXIES : (['sip'] as const)) {
      const e = ft.endpoints[name];
      ft.hosts[e.fqdn] = e.address;
      ft.proxies.push({ host: e.fqdn, port: e.port });
    }
    ft.hosts[ft.endpoints.alt.fqdn] = ft.endpoints.alt.address;
    return ft;
  }

  get baseDomain(): string {
    return this.#opts.baseDomain ?? this.pki.baseDomain;
  }

  /** Sets where Teams → SBC requests go. */
  setSbc(host: string, port = 5061): void {
    this.#sbc = { host, port };
  }

  // ------------------------------------------------------------------ recording

  /** Every message in and out, in order. */
  get messages(): readonly RecordedMessage[] {
    return this.#messages.items;
  }

  /** Every TLS connection, open or closed. */
  connections(): ConnectionRecord[] {
    return [...this.#connRecords.values()];
  }

  /** A sequence mark: pass as `after` to waitForRequest to skip what came before. */
  mark(): number {
    return this.#messages.items.length;
  }

  /** Requests the SBC sent (optionally of one method / to one endpoint). */
  requests(method?: string, endpoint?: EndpointName): SipRequest[] {
    return this.#messages.items
      .filter((r) => r.dir === 'in' && r.msg instanceof SipRequest && (!method || r.msg.method === method) && (!endpoint || r.endpoint === endpoint))
      .map((r) => r.msg as SipRequest);
  }

  /** Responses the SBC sent to fake-Teams requests. */
  responses(method?: string): SipResponse[] {
    return this.#messages.items.filter((r) => r.dir === 'in' && r.msg instanceof SipResponse && (!method || r.msg.cseq.method === method)).map((r) => r.msg as SipResponse);
  }

  /** Seconds between consecutive OPTIONS to one endpoint (cadence check, §3.4). */
  optionsIntervals(endpoint: ProxyName): number[] {
    const t = this.options.filter((o) => o.endpoint === endpoint).map((o) => o.at);
    return t.slice(1).map((x, i) => (x - t[i]!) / 1000);
  }

  /** Violations of one rule (convenience for negative tests). */
  violationsOf(rule: Violation['rule']): Violation[] {
    return this.violations.filter((v) => v.rule === rule);
  }

  #record(dir: 'in' | 'out', msg: SipMessage, flow: Flow, endpoint: string): RecordedMessage {
    const rec: RecordedMessage = {
      seq: this.#messages.items.length,
      at: Date.now(),
      dir,
      endpoint,
      connectionId: flow.connectionId,
      remote: `${flow.remoteAddress}:${flow.remotePort}`,
      msg,
    };
    this.#messages.push(rec);
    return rec;
  }

  #violate(vs: Array<Omit<Violation, 'endpoint' | 'at'>>, endpoint: string, msg: SipMessage | undefined): void {
    for (const v of vs) {
      const full: Violation = { ...v, endpoint, at: Date.now() };
      if (msg) {
        try {
          full.method = msg instanceof SipRequest ? msg.method : msg.cseq.method;
          full.callId = msg.callId;
        } catch {
          // malformed headers: keep what we have
        }
        if (msg instanceof SipResponse) full.status = msg.status;
      }
      this.violations.push(full);
    }
  }

  #onConnection(rec: ConnectionRecord): void {
    this.#connRecords.set(rec.id, rec);
    if (rec.direction === 'inbound') {
      this.#lastSbcIp = rec.remoteAddress;
      this.#violate(certProblems(rec.tls).map((p) => ({ ...p, ref: p.rule === 'tls-client-eku' ? '§2.6' : '§2.3' })), rec.endpoint, undefined);
    }
  }

  #onTlsFailure(f: TlsFailure): void {
    this.tlsFailures.push(f);
    if (f.direction === 'inbound') this.#violate([{ rule: 'tls-handshake', ref: '§2.4', message: `TLS handshake from ${f.remoteAddress}:${f.remotePort} failed: ${f.error}` }], f.endpoint, undefined);
    else this.#violate([{ rule: 'tls-server-cert', ref: '§2.4/§5.4', message: `TLS to SBC ${f.remoteAddress}:${f.remotePort} failed: ${f.error}` }], f.endpoint, undefined);
  }

  #context(endpoint: string, flow: Flow): CheckContext {
    const rec = flow.connectionId !== undefined ? this.#connRecords.get(flow.connectionId) : undefined;
    return {
      endpointFqdn: this.#transport.endpoint(endpoint).fqdn,
      ...(this.#opts.upstreamSbc ? { optionsUriHosts: TEAMS_PROXY_FQDNS } : {}),
      requestUriHosts: this.#opts.requestUriHosts ?? [this.#transport.endpoint('sip').fqdn],
      tenants: this.#opts.tenants ?? [],
      baseDomain: this.baseDomain,
      peerSubjectAltName: rec?.tls.peerSubjectAltName,
      peerSubjectCN: rec?.tls.peerSubjectCN,
      expectAllowRefer: this.#opts.expectAllowRefer ?? true,
    };
  }

  #dialogFor(msg: SipMessage): TeamsDialog | undefined {
    let list: TeamsDialog[] | undefined;
    try {
      list = this.#dialogs.get(msg.callId);
    } catch {
      return undefined;
    }
    if (!list || list.length === 0) return undefined;
    // Our tag is the To tag of SBC requests and the From tag of responses to our requests.
    const ours = msg instanceof SipRequest ? msg.toTag : msg.fromTag;
    return list.find((d) => d.localTag === ours || (d instanceof InboundCall && d.forkTags.includes(ours ?? ''))) ?? list[0];
  }

  #addDialog(d: TeamsDialog): void {
    const list = this.#dialogs.get(d.callId) ?? [];
    list.push(d);
    this.#dialogs.set(d.callId, list);
  }

  #onMessage(msg: SipMessage, flow: Flow, endpoint: string): void {
    this.#record('in', msg, flow, endpoint);
    // §2.14: "connections the proxy opens carry only its own requests and their responses". An
    // SBC request on one is a violation, and like the proxy we do not act on it.
    if (msg instanceof SipRequest && flow.connectionId !== undefined && this.#connRecords.get(flow.connectionId)?.direction === 'outbound') {
      this.#violate([{ rule: 'connection-reuse', ref: '§2.14', message: `${msg.method} sent on a connection Teams opened (${flow.remoteAddress}:${flow.remotePort} → ${flow.localAddress}:${flow.localPort})` }], endpoint, msg);
      return;
    }
    try {
      const ctx = this.#context(endpoint, flow);
      if (msg instanceof SipRequest) {
        const d = msg.toTag !== undefined ? this.#dialogFor(msg) : undefined;
        this.#violate(checkRequest(msg, ctx, { firstSdp: d?.firstGatewaySdp }), endpoint, msg);
      } else if (msg instanceof SipResponse) {
        const d = this.#dialogFor(msg);
        this.#violate(checkResponse(msg, ctx, d?.lastOffer), endpoint, msg);
      }
    } catch (err) {
      this.#violate([{ rule: 'contact-format', ref: 'RFC 3261', message: `message could not be checked: ${(err as Error).message}` }], endpoint, msg);
    }
    this.#txn.receive(msg, flow);
  }

  // ------------------------------------------------------------------ requests from the SBC

  #onRequest(req: SipRequest, txn: ServerTransactionHandle | null, flow: Flow): void {
    const ep = this.#transport.endpointByAddress(flow.localAddress)?.name ?? 'sip';
    this.#lastSbcIp = flow.remoteAddress;
    if (req.method === 'OPTIONS' && req.toTag === undefined) return this.#onOptions(req, txn, flow, ep);
    if (req.method === 'INVITE' && req.toTag === undefined && txn) return this.#onInvite(req, txn, flow, ep);
    const d = this.#dialogFor(req);
    if (req.method === 'ACK') {
      if (d instanceof InboundCall && !d.ackedAt && req.cseq.seq === d.invite.cseq.seq) d.onAck(req);
      else d?.onRequest(req, null, flow);
      return;
    }
    if (!txn) return;
    if (!d) {
      const res = createResponse(req, req.toTag === undefined ? 405 : 481);
      res.add('Allow', TEAMS_ALLOW);
      txn.respond(res).catch(() => undefined);
      return;
    }
    d.onRequest(req, txn, flow);
  }

  #onOptions(req: SipRequest, txn: ServerTransactionHandle | null, flow: Flow, ep: string): void {
    const rec: OptionsRecord = {
      at: Date.now(),
      endpoint: ep,
      requestUri: req.uri,
      from: req.get('from'),
      to: req.get('to'),
      contact: req.getAll('contact')[0],
      connectionId: flow.connectionId,
      status: undefined,
    };
    this.options.push(rec);
    if (!txn) return;
    let status = this.#optionsReply.has(ep) ? this.#optionsReply.get(ep)! : this.#optionsReply.has('*') ? this.#optionsReply.get('*')! : 200;
    const contactHost = rec.contact ? safeContactHost(rec.contact) : undefined;
    if (contactHost && this.#optionsReplyByContact.has(contactHost)) status = this.#optionsReplyByContact.get(contactHost)!;
    if (status === null) return; // silent proxy
    // §3.2: an IP (or missing FQDN) Contact gets 403.
    if ((this.#opts.enforce ?? true) && this.#grossContact(req, ep)) status = 403;
    const res = createResponse(req, status);
    res.add('Allow', TEAMS_ALLOW);
    res.add('Server', TEAMS_SERVER);
    rec.status = status;
    txn.respond(res).catch(() => undefined);
    if (this.#opts.probeOptions && status === 200) void this.#probe(rec, flow);
  }

  async #probe(rec: OptionsRecord, flow: Flow): Promise<void> {
    try {
      const na = rec.contact ? parseNameAddr(rec.contact) : undefined;
      const u = na ? parseUri(na.uri) : undefined;
      if (!u) throw new Error('no Contact to probe');
      const o: { to: string; port?: number; from?: EndpointName } = { to: u.host, from: rec.endpoint as EndpointName };
      if (u.port !== undefined) o.port = u.port;
      this.#lastSbcIp ??= flow.remoteAddress;
      const res = await this.sendOptions(o);
      rec.probe = res.status;
    } catch (err) {
      rec.probe = (err as Error).message;
    }
  }

  #grossContact(msg: SipMessage, ep: string): boolean {
    return this.violations.some((v) => v.endpoint === ep && (v.rule === 'contact-fqdn' || v.rule === 'contact-missing' || v.rule === 'contact-tenant') && v.callId === msg.callId);
  }

  #onInvite(req: SipRequest, txn: ServerTransactionHandle, flow: Flow, ep: string): void {
    const proxy = (PROXIES as readonly string[]).includes(ep) ? (ep as ProxyName) : 'sip';
    const call = new InboundCall(this.#host, proxy, req, txn, flow);
    this.calls.push(call);
    this.#addDialog(call);
    this.#callQueue.push(call);
    if (this.#opts.enforce ?? true) {
      const mine = this.violations.filter((v) => v.callId === req.callId && v.method === 'INVITE');
      if (mine.some((v) => v.rule === 'contact-fqdn' || v.rule === 'contact-missing')) {
        void call.reject(403, { reason: 'Forbidden' }).catch(() => undefined);
        return;
      }
      if (mine.some((v) => v.rule === 'contact-tenant')) {
        void call.reject(403, { headers: { Reason: 'Q.850;cause=21;text="510532;No trunk config was found"' } }).catch(() => undefined);
        return;
      }
      if (mine.some((v) => v.rule === 'sdp-savp' || v.rule === 'sdp-missing' || (v.rule === 'sdp-crypto' && v.message.startsWith('no a=crypto')))) {
        void call.reject(488, { headers: { Reason: 'Q.850;cause=88;text="531000;SrtpEncryptionRequired"' } }).catch(() => undefined);
        return;
      }
    }
    const script = this.#scripts.find((s) => s.times > 0 && (s.endpoint === undefined || s.endpoint === proxy));
    if (script) {
      script.times--;
      void this.#runScript(call, script.steps);
    }
  }

  async #runScript(call: InboundCall, steps: ScriptStep[]): Promise<void> {
    for (const s of steps) {
      const delay = s.do === 'wait' ? s.ms : (s.delayMs ?? 0);
      if (delay > 0) await sleep(delay);
      if (this.#closed || call.ended || call.txn.finalSent) return;
      try {
        if (s.do === 'drop') call.drop();
        else if (s.do === 'respond') {
          const o: Parameters<InboundCall['respond']>[1] = {};
          if (s.fork !== undefined) o.fork = s.fork;
          if (s.sdp !== undefined) o.sdp = s.sdp;
          if (s.retryAfter !== undefined) o.retryAfter = s.retryAfter;
          if (s.reason !== undefined) o.reason = s.reason;
          if (s.headers !== undefined) o.headers = s.headers;
          if (s.status >= 200 && s.status < 300) await call.answer(o);
          else await call.respond(s.status, o);
        }
      } catch {
        return; // connection gone, CANCEL raced us …
      }
    }
  }

  // ------------------------------------------------------------------ scripting

  /**
   * Scripts the answer to the next INVITE(s) from the SBC (to `endpoint`, or any). Scripts are
   * used in the order given, each `times` times (default: every INVITE). Without a script a
   * call waits for the test to drive it (waitForCall()).
   */
  script(steps: ScriptStep[], opts: { endpoint?: ProxyName; times?: number } = {}): void {
    this.#scripts.push({ steps, endpoint: opts.endpoint, times: opts.times ?? Number.POSITIVE_INFINITY });
  }

  clearScripts(): void {
    this.#scripts = [];
  }

  /** How an endpoint answers the SBC's OPTIONS: a status (default 200) or null (never answer). */
  setOptionsReply(status: number | null, endpoint: ProxyName | '*' = '*'): void {
    this.#optionsReply.set(endpoint, status);
  }

  /**
   * OPTIONS whose Contact names `fqdn` get `status` on every endpoint (403: an FQDN Teams has no
   * trunk for, e.g. a tenant not activated yet); `undefined` removes the rule.
   */
  setOptionsReplyFor(fqdn: string, status: number | null | undefined): void {
    if (status === undefined) this.#optionsReplyByContact.delete(fqdn.toLowerCase());
    else this.#optionsReplyByContact.set(fqdn.toLowerCase(), status);
  }

  /** Fault knob of one proxy endpoint: 'up' | 'down' (refused) | 'hang' | 'reset' | 'slow'. */
  setMode(endpoint: ProxyName, mode: EndpointMode, delayMs = 0): Promise<void> {
    return this.#transport.setMode(endpoint, mode, delayMs);
  }

  /** Resets (or with graceful, FINs) open connections; returns how many. */
  dropConnections(filter: { endpoint?: EndpointName; direction?: 'inbound' | 'outbound' } = {}, graceful = false): number {
    return this.#transport.drop((r) => (!filter.endpoint || r.endpoint === filter.endpoint) && (!filter.direction || r.direction === filter.direction), graceful);
  }

  /** §2.14 idle rule for every connection, open ones included (undefined: connections never idle out). */
  setIdlePolicy(policy: IdlePolicy | undefined): void {
    this.#transport.setIdlePolicy(policy);
  }

  /** Sends an RFC 5626 CRLF ping on every open connection of an endpoint. */
  ping(endpoint: EndpointName): number {
    let n = 0;
    for (const c of this.#transport.connections()) if (c.endpoint === endpoint && this.#transport.ping(c.id)) n++;
    return n;
  }

  // ------------------------------------------------------------------ waiting

  /**
   * Waits for a request from the SBC (already received or future). `filter`: a predicate, or
   * `{ endpoint, callId, after: mark(), where }`.
   */
  async waitForRequest(
    method: string,
    filter?: ((req: SipRequest, rec: RecordedMessage) => boolean) | { endpoint?: EndpointName; callId?: string; after?: number; where?: (req: SipRequest, rec: RecordedMessage) => boolean },
    timeoutMs = 5000,
  ): Promise<SipRequest> {
    const f = typeof filter === 'function' ? { where: filter } : (filter ?? {});
    const rec = await this.#messages.wait(
      (r) => {
        if (r.dir !== 'in' || !(r.msg instanceof SipRequest) || r.msg.method !== method) return false;
        if (f.endpoint && r.endpoint !== f.endpoint) return false;
        if (f.after !== undefined && r.seq < f.after) return false;
        if (f.callId && r.msg.callId !== f.callId) return false;
        return f.where ? f.where(r.msg, r) : true;
      },
      timeoutMs,
      `${method} from the SBC`,
    );
    return rec.msg as SipRequest;
  }

  /** Next call from the SBC not yet returned by waitForCall (optionally to one endpoint). */
  async waitForCall(filter: { endpoint?: ProxyName } | ((c: InboundCall) => boolean) = {}, timeoutMs = 5000): Promise<InboundCall> {
    const f = typeof filter === 'function' ? filter : (c: InboundCall) => !filter.endpoint || c.endpoint === filter.endpoint;
    const call = await this.#callQueue.wait((c) => !this.#claimed.has(c) && f(c), timeoutMs, 'an INVITE from the SBC');
    this.#claimed.add(call);
    return call;
  }

  // ------------------------------------------------------------------ requests from Teams

  /**
   * Teams → SBC call (§5): INVITE `sip:+E164@<tenant>:<port>;user=phone;transport=tls` over TLS
   * (SNI = tenant FQDN, the SBC certificate is verified against it), with a Teams-like SDES
   * offer. Returns at once; use call.waitForResponse()/waitForFinal().
   */
  originate(o: OriginateOptions): OutboundCall {
    const epName = o.endpoint ?? 'sip';
    const ep = this.endpoints[epName];
    const sbcPort = o.port ?? this.#sbc?.port ?? 5061;
    const uri = o.requestUri ?? `sip:${o.to}@${o.tenant}:${sbcPort};user=phone;transport=tls`;
    const req = new SipRequest('INVITE', uri);
    const callId = o.callId ?? newCallId();
    req.add('Via', `SIP/2.0/TLS ${ep.address}:${ep.port};branch=${newBranch()};rport`);
    req.add('Max-Forwards', '69');
    const fromNum = o.from ?? '+14255550100';
    req.add('From', fromNum === 'anonymous' ? `"Anonymous" <sip:anonymous@anonymous.invalid>;tag=${newTag()}` : `<sip:${fromNum}@${ep.fqdn}:${ep.port};user=phone>;tag=${newTag()}`);
    req.add('To', `<sip:${o.to}@${o.tenant};user=phone>`);
    req.add('Call-ID', callId);
    req.add('CSeq', '1 INVITE');
    req.add('Contact', `<sip:${ep.fqdn}:${ep.port};transport=tls>`);
    req.add('Allow', TEAMS_ALLOW);
    req.add('User-Agent', TEAMS_SERVER);
    if (o.sessionExpires !== false) {
      req.add('Supported', 'timer');
      req.add('Session-Expires', String(o.sessionExpires ?? 1800));
      req.add('Min-SE', '90');
    }
    if (o.pai) req.add('P-Asserted-Identity', o.pai);
    if (o.privacy) req.add('Privacy', o.privacy);
    for (const h of o.historyInfo ?? []) req.add('History-Info', h);
    if (o.referredBy) req.add('Referred-By', o.referredBy);
    if (o.replaces) {
      const r = 'remoteTag' in o.replaces ? { callId: o.replaces.callId, toTag: o.replaces.remoteTag, fromTag: o.replaces.localTag } : o.replaces;
      // RFC 3891 §6.1: to-tag is the recipient's local tag, from-tag its remote tag.
      req.add('Replaces', `${r.callId};to-tag=${r.toTag};from-tag=${r.fromTag}`);
      req.add('Require', 'replaces');
    }
    if (o.headers) {
      const pairs = Array.isArray(o.headers) ? (o.headers as ReadonlyArray<readonly [string, string]>) : Object.entries(o.headers as Record<string, string>);
      for (const [k, v] of pairs) req.add(k, v);
    }
    const local: LocalMedia = {
      address: o.media?.address ?? this.#host.mediaAddress(epName),
      port: o.media?.port ?? this.#host.allocateMediaPort(),
      key: newSrtpKey(),
      sessionId: String(Math.floor(Math.random() * 1e9)),
      version: 0,
      codecs: [],
      direction: 'sendrecv',
    };
    if (o.body) {
      req.add('Content-Type', o.body.contentType);
      req.body = Buffer.from(o.body.text);
    } else if (o.sdp !== false) {
      const body = o.sdp ?? teamsOffer({ address: local.address, port: local.port, key80: local.key, sessionId: local.sessionId });
      if (o.location) {
        const loc = o.location === true ? { pidf: pidfLo(`pres:${fromNum}@${ep.fqdn}`) } : o.location;
        const cid = `${newTag()}@${ep.fqdn}`;
        const boundary = `ms-${newTag()}`;
        req.add('Geolocation', `<cid:${cid}>`);
        req.add('Geolocation-Routing', loc.routing ?? 'no');
        req.add('Content-Type', `multipart/mixed;boundary=${boundary}`);
        const parts = [`--${boundary}`, 'Content-Type: application/sdp', '', body, `--${boundary}`, 'Content-Type: application/pidf+xml', `Content-ID: <${cid}>`, '', loc.pidf, `--${boundary}--`, ''];
        req.body = Buffer.from(parts.join('\r\n'));
      } else {
        req.add('Content-Type', 'application/sdp');
        req.body = Buffer.from(body);
      }
      const a = parseSdp(body).media.find((m) => m.type === 'audio');
      if (a) local.codecs = a.codecs.filter((c) => ['PCMU', 'PCMA', 'G722', 'SILK', 'TELEPHONE-EVENT', 'CN'].includes(c.name.toUpperCase()));
    }
    let uriHost = o.tenant;
    try {
      uriHost = parseUri(uri).host;
    } catch {
      // keep the tenant
    }
    const d = this.#host.sbcDestination(`sip:${uriHost}:${sbcPort}`, this.#lastSbcIp);
    const dest: FtDestination = { protocol: 'tls', host: d.host, port: d.port, localAddress: ep.address };
    if (d.servername) dest.servername = d.servername;
    if (o.newConnection) dest.newConnection = true;
    const call = new OutboundCall(this.#host, epName, req, dest, local);
    call.sbcIp = d.host;
    this.outboundCalls.push(call);
    this.#addDialog(call);
    call.start();
    return call;
  }

  /**
   * Teams' own OPTIONS to the SBC (§3.1: over a new connection to the Contact FQDN:port).
   * Resolves with the SBC's final response.
   */
  async sendOptions(o: { to: string; port?: number; from?: EndpointName; newConnection?: boolean }): Promise<SipResponse> {
    const ep = this.endpoints[o.from ?? 'sip'];
    const port = o.port ?? this.#sbc?.port ?? 5061;
    const req = new SipRequest('OPTIONS', `sip:${o.to}:${port};transport=tls`);
    req.add('Via', `SIP/2.0/TLS ${ep.address}:${ep.port};branch=${newBranch()};rport`);
    req.add('Max-Forwards', '70');
    req.add('From', `<sip:${ep.fqdn}>;tag=${newTag()}`);
    req.add('To', `<sip:${o.to}>`);
    req.add('Call-ID', newCallId());
    req.add('CSeq', '1 OPTIONS');
    req.add('Contact', `<sip:${ep.fqdn}:${ep.port};transport=tls>`);
    req.add('User-Agent', TEAMS_SERVER);
    const d = this.#host.sbcDestination(`sip:${o.to}:${port}`, this.#lastSbcIp);
    const dest: FtDestination = { protocol: 'tls', host: d.host, port: d.port, localAddress: ep.address, newConnection: o.newConnection ?? true };
    if (d.servername) dest.servername = d.servername;
    return this.#host.request(req, dest);
  }

  // ------------------------------------------------------------------ call host

  #makeHost(): CallHost {
    return {
      txn: this.#txn,
      transport: this.#transport,
      endpoint: (name) => this.endpoints[name],
      sbcDestination: (target, fallbackIp) => {
        let host = '';
        let port: number | undefined;
        try {
          const u = parseUri(target);
          host = u.host;
          port = u.port;
        } catch {
          // fall through to the configured SBC
        }
        const servername = host && isIP(host) === 0 ? host : undefined;
        const ip = host && isIP(host) !== 0 ? host : (this.#sbc?.host ?? fallbackIp ?? this.#lastSbcIp);
        if (!ip) throw new Error(`fake Teams: no address for ${target}; call setSbc()`);
        return { host: ip, port: port ?? this.#sbc?.port ?? 5061, servername };
      },
      request: (req, dest, onProvisional) =>
        new Promise<SipResponse>((resolve, reject) => {
          this.#txn.request(req, dest, {
            onResponse: (res) => {
              if (res.status < 200) onProvisional?.(res);
              else resolve(res);
            },
            onTimeout: () => resolve(createResponse(req, 408, 'Request Timeout (no response)')),
            onTransportError: (err) => reject(new Error(`fake Teams: ${req.method} not delivered: ${err.message}`)),
          });
        }),
      sendRaw: (req, dest) => this.#transport.send(req, dest),
      allocateMediaPort: () => {
        const p = this.#mediaPort;
        this.#mediaPort += 2;
        return p;
      },
      mediaAddress: (name) => this.endpoints[name].address,
      ackTimeoutMs: this.#opts.ackTimeoutMs ?? 4000,
      ackMissing: (call) =>
        this.#violate([{ rule: 'ack-missing', ref: '§4.15', message: `no ACK within ${this.#opts.ackTimeoutMs ?? 4000} ms for the 200 OK` }], call.endpoint, call.invite),
    };
  }

  // ------------------------------------------------------------------ lifecycle

  /** Closes every socket, ends pending waits, removes a PKI it created. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      for (const c of this.calls) c.dispose();
      for (const c of this.outboundCalls) c.dispose();
      this.#messages.close();
      this.#callQueue.close();
      this.#txn.close();
      await this.#transport.close();
      if (this.#ownPkiDir) await rm(this.#ownPkiDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }
}

function safeContactHost(contact: string): string | undefined {
  try {
    return parseUri(parseNameAddr(contact).uri).host.toLowerCase();
  } catch {
    return undefined;
  }
}
