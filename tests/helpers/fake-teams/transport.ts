/**
 * TLS transport of the fake Teams. It implements the project's TransportSender contract (so
 * the project's TransactionLayer runs on it) with the framer and parser of src/sip/message,
 * but owns its sockets: tests need to drop a connection, refuse or hang a handshake, send from
 * a chosen address over a new connection, and inspect the client certificate (EKU, key type),
 * which the gateway's TransportLayer deliberately hides.
 *
 * Connection behaviour follows the Microsoft proxy (requirements doc §2.14): connections the
 * SBC opens carry the SBC's requests and our responses; our own requests go over connections
 * we open (reused per remote address unless a new one is asked for).
 */
import net from 'node:net';
import tls from 'node:tls';
import { StreamFramer } from '../../../src/sip/message/framer.js';
import { type SipMessage, SipRequest, type SipResponse, parseMessage, validateMandatory } from '../../../src/sip/message/index.js';
import { applyReceived } from '../../../src/sip/transport/via-received.js';
import type { Destination, Flow, TransportSender } from '../../../src/sip/transport/types.js';

/** The four suites Microsoft lists for TLS 1.2 (requirements doc §2.2). */
export const TEAMS_TLS12_CIPHERS = 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256';

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface EndpointSpec {
  /** 'sip', 'sip2', 'sip3', 'alt' … */
  name: string;
  /** The FQDN this endpoint stands in for. */
  fqdn: string;
  address: string;
  port: number;
  /** Accept connections (false: only used to open connections from `address`). */
  listen: boolean;
}

/**
 * Fault knobs of a listening endpoint (requirements doc harness section B):
 * - up: normal mutual TLS;
 * - down: listener closed (connection refused);
 * - hang: TCP accepted, the TLS handshake never answered;
 * - reset: TCP accepted, then reset at once;
 * - slow: the handshake starts only after `delayMs`.
 */
export type EndpointMode = 'up' | 'down' | 'hang' | 'reset' | 'slow';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** Trust anchors for the SBC's certificates (client certificate and server certificate). */
  ca: string;
}

/** What the peer proved on one TLS connection. */
export interface TlsSessionInfo {
  /** Inbound: SNI the SBC sent. Outbound: SNI we sent. */
  servername?: string;
  authorized: boolean;
  authorizationError?: string;
  peerSubjectCN?: string;
  peerSubjectAltName?: string;
  /** Extended key usage OIDs of the peer certificate. */
  peerEku?: string[];
  /** SHA-256 fingerprint of the peer certificate (tells a renewed certificate from the old one). */
  peerFingerprint256?: string;
  /** 'rsa', 'ec', … */
  peerKeyType?: string;
  peerKeyBits?: number;
  protocol?: string;
  cipher?: string;
}

/**
 * The proxy's idle rule (requirements doc §2.14): a connection with nothing from the SBC for
 * `timeoutMs` (2 min on the real proxy) is closed with a FIN. The proxy's own CRLF keep-alives
 * (every `keepaliveMs`) and the SBC's pongs to them do not count as activity; the SBC's own
 * CRLF pings and SIP messages do.
 */
export interface IdlePolicy {
  timeoutMs: number;
  keepaliveMs?: number;
}

export interface ConnectionRecord {
  id: number;
  endpoint: string;
  direction: 'inbound' | 'outbound';
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  openedAt: number;
  closedAt?: number;
  closeReason?: string;
  tls: TlsSessionInfo;
  /** CRLF keep-alives we sent on it, and single-CRLF pongs the SBC sent back (RFC 5626 §4.4.1). */
  keepalives: number;
  pongs: number;
}

export interface TlsFailure {
  endpoint: string;
  direction: 'inbound' | 'outbound';
  at: number;
  remoteAddress?: string;
  remotePort?: number;
  error: string;
}

/** Destination with fake-Teams extras. */
export interface FtDestination extends Destination {
  /** Open a new connection even if one to this address is open. */
  newConnection?: boolean;
}

export interface TransportHooks {
  onMessage(msg: SipMessage, flow: Flow, endpoint: string): void;
  onSent(msg: SipMessage, flow: Flow, endpoint: string): void;
  onConnection(rec: ConnectionRecord): void;
  onTlsFailure(f: TlsFailure): void;
}

interface Conn {
  rec: ConnectionRecord;
  socket: tls.TLSSocket;
  framer: StreamFramer;
  flow: Flow;
  idleTimer?: NodeJS.Timeout;
  keepaliveTimer?: NodeJS.Timeout;
}

interface Ep {
  spec: EndpointSpec;
  mode: EndpointMode;
  delayMs: number;
  raw: net.Server | undefined;
  tlsServer: tls.Server;
  /** Connections accepted in 'hang' mode, their handshake never answered. */
  hung: Set<net.Socket>;
}

function sessionInfo(s: tls.TLSSocket, servername: string | undefined): TlsSessionInfo {
  const info: TlsSessionInfo = { authorized: s.authorized };
  if (servername) info.servername = servername;
  if (s.authorizationError) info.authorizationError = String(s.authorizationError);
  const p = s.getProtocol();
  if (p) info.protocol = p;
  const c = s.getCipher();
  if (c) info.cipher = c.standardName ?? c.name;
  const cert = s.getPeerCertificate();
  if (cert && Object.keys(cert).length > 0) {
    const cn = cert.subject?.CN;
    if (cn) info.peerSubjectCN = Array.isArray(cn) ? cn.join(',') : cn;
    if (cert.subjectaltname) info.peerSubjectAltName = cert.subjectaltname;
  }
  const x = s.getPeerX509Certificate();
  if (x) {
    info.peerEku = x.keyUsage ?? [];
    info.peerFingerprint256 = x.fingerprint256;
    const kt = x.publicKey.asymmetricKeyType;
    if (kt) info.peerKeyType = kt;
    const bits = x.publicKey.asymmetricKeyDetails?.modulusLength;
    if (bits) info.peerKeyBits = bits;
  }
  return info;
}

/** EKU / key problems of a peer certificate (requirements doc §2.3, §2.6). */
export function certProblems(info: TlsSessionInfo): Array<{ rule: 'tls-client-eku' | 'tls-client-key'; message: string }> {
  const out: Array<{ rule: 'tls-client-eku' | 'tls-client-key'; message: string }> = [];
  if (info.peerEku !== undefined) {
    const missing = [OID_SERVER_AUTH, OID_CLIENT_AUTH].filter((o) => !info.peerEku!.includes(o));
    if (missing.length) {
      out.push({ rule: 'tls-client-eku', message: `SBC certificate EKU lacks ${missing.map((o) => (o === OID_SERVER_AUTH ? 'serverAuth' : 'clientAuth')).join(' and ')}` });
    }
  }
  if (info.peerKeyType !== undefined && info.peerKeyType !== 'rsa') out.push({ rule: 'tls-client-key', message: `SBC certificate key is ${info.peerKeyType}; the ECDHE-RSA suites need RSA` });
  return out;
}

export class FakeTeamsTransport implements TransportSender {
  readonly #eps = new Map<string, Ep>();
  readonly #tls: TlsMaterial;
  readonly #hooks: TransportHooks;
  readonly #requireClientCert: boolean;
  readonly #conns = new Map<number, Conn>();
  readonly #sockets = new Set<net.Socket>();
  /** Peer of every accepted raw socket (a failed TLS socket no longer knows it). */
  readonly #peers = new WeakMap<net.Socket, { address: string | undefined; port: number | undefined }>();
  /** `${endpoint}|${host}|${port}` → current outbound connection id. */
  readonly #outbound = new Map<string, number>();
  readonly #connecting = new Map<string, Promise<Conn>>();
  /** top Via branch of requests we sent → connection id (ACK/CANCEL follow their INVITE). */
  readonly #branchConn = new Map<string, number>();
  readonly records: ConnectionRecord[] = [];
  #nextId = 1;
  #closed = false;
  #closing: Promise<void> | undefined;
  #idle: IdlePolicy | undefined;

  constructor(endpoints: EndpointSpec[], material: TlsMaterial, hooks: TransportHooks, opts: { requireClientCert?: boolean; idle?: IdlePolicy } = {}) {
    this.#tls = material;
    this.#hooks = hooks;
    this.#requireClientCert = opts.requireClientCert ?? true;
    this.#idle = opts.idle;
    for (const spec of endpoints) {
      const tlsServer = tls.createServer({
        key: material.key,
        cert: material.cert,
        ca: material.ca,
        // §2.4: mutual TLS; an SBC without a valid client certificate is refused.
        requestCert: true,
        // Verified in 'secureConnection' instead, so the reason of a refusal is recorded.
        rejectUnauthorized: false,
        // §2.1: TLS 1.2 or later; §2.2: the ECDHE-RSA suites (TLS 1.3 suites stay available).
        minVersion: 'TLSv1.2',
        ciphers: `${TEAMS_TLS12_CIPHERS}:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256`,
        handshakeTimeout: 10_000,
      });
      tlsServer.on('secureConnection', (s) => {
        if (this.#requireClientCert && !s.authorized) {
          const raw = (s as tls.TLSSocket & { _parent?: net.Socket })._parent;
          const peer = (raw && this.#peers.get(raw)) ?? { address: s.remoteAddress, port: s.remotePort };
          const why = s.authorizationError ? String(s.authorizationError) : 'no client certificate';
          this.#hooks.onTlsFailure({ endpoint: spec.name, direction: 'inbound', at: Date.now(), remoteAddress: peer.address, remotePort: peer.port, error: `client certificate refused: ${why}` });
          s.destroy();
          return;
        }
        this.#adopt(s, spec.name, 'inbound', (s as tls.TLSSocket & { servername?: string | false }).servername || undefined);
      });
      tlsServer.on('tlsClientError', (err, s) => {
        // The TLS socket wraps the raw socket we accepted (`_parent`); its peer was noted at accept.
        const raw = (s as tls.TLSSocket & { _parent?: net.Socket })._parent;
        const peer = (raw && this.#peers.get(raw)) ?? { address: s.remoteAddress, port: s.remotePort };
        this.#hooks.onTlsFailure({ endpoint: spec.name, direction: 'inbound', at: Date.now(), remoteAddress: peer.address, remotePort: peer.port, error: err.message });
      });
      this.#eps.set(spec.name, { spec, mode: 'up', delayMs: 0, raw: undefined, tlsServer, hung: new Set() });
    }
  }

  async start(): Promise<void> {
    for (const ep of this.#eps.values()) if (ep.spec.listen) await this.#listen(ep);
  }

  endpoint(name: string): EndpointSpec {
    const ep = this.#eps.get(name);
    if (!ep) throw new Error(`unknown fake Teams endpoint ${name}`);
    return ep.spec;
  }

  endpointByAddress(address: string | undefined): EndpointSpec | undefined {
    for (const ep of this.#eps.values()) if (ep.spec.address === address) return ep.spec;
    return undefined;
  }

  #listen(ep: Ep): Promise<void> {
    if (ep.raw) return Promise.resolve();
    const srv = net.createServer((s) => this.#onRaw(ep, s));
    ep.raw = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen({ host: ep.spec.address, port: ep.spec.port, exclusive: true }, () => {
        srv.off('error', reject);
        const a = srv.address();
        if (typeof a === 'object' && a) ep.spec.port = a.port;
        resolve();
      });
    });
  }

  #onRaw(ep: Ep, s: net.Socket): void {
    if (this.#closed) {
      s.destroy();
      return;
    }
    this.#sockets.add(s);
    this.#peers.set(s, { address: s.remoteAddress, port: s.remotePort });
    s.on('error', () => undefined);
    s.once('close', () => this.#sockets.delete(s));
    switch (ep.mode) {
      case 'hang':
        // Never answer the ClientHello (until the endpoint leaves 'hang', see setMode).
        ep.hung.add(s);
        s.once('close', () => ep.hung.delete(s));
        return;
      case 'reset':
        s.resetAndDestroy(); // a plain TCP socket here
        return;
      case 'slow': {
        const t = setTimeout(() => {
          if (!s.destroyed) ep.tlsServer.emit('connection', s);
        }, ep.delayMs);
        s.once('close', () => clearTimeout(t));
        return;
      }
      default:
        ep.tlsServer.emit('connection', s);
    }
  }

  /** Changes the fault mode of a listening endpoint. 'down' closes the listener (connection refused). */
  async setMode(name: string, mode: EndpointMode, delayMs = 0): Promise<void> {
    const ep = this.#eps.get(name);
    if (!ep) throw new Error(`unknown fake Teams endpoint ${name}`);
    ep.mode = mode;
    ep.delayMs = delayMs;
    // A proxy that stops hanging (restarted) resets the handshakes it left hanging.
    if (mode !== 'hang') for (const h of [...ep.hung]) h.resetAndDestroy();
    if (mode === 'down') {
      const srv = ep.raw;
      ep.raw = undefined;
      if (srv) await new Promise<void>((r) => srv.close(() => r()));
    } else if (ep.spec.listen && !this.#closed) {
      await this.#listen(ep);
    }
  }

  mode(name: string): EndpointMode {
    return this.#eps.get(name)?.mode ?? 'down';
  }

  #adopt(socket: tls.TLSSocket, endpoint: string, direction: 'inbound' | 'outbound', servername: string | undefined): Conn {
    const id = this.#nextId++;
    const rec: ConnectionRecord = {
      id,
      endpoint,
      direction,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      openedAt: Date.now(),
      tls: sessionInfo(socket, servername),
      keepalives: 0,
      pongs: 0,
    };
    const flow: Flow = {
      protocol: 'tls',
      localAddress: rec.localAddress,
      localPort: rec.localPort,
      remoteAddress: rec.remoteAddress,
      remotePort: rec.remotePort,
      reliable: true,
      connectionId: id,
    };
    const conn: Conn = { rec, socket, flow, framer: new StreamFramer() };
    this.#conns.set(id, conn);
    this.#sockets.add(socket);
    this.records.push(rec);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk));
    socket.on('error', (err) => {
      rec.closeReason ??= `error: ${err.message}`;
    });
    socket.once('close', () => {
      this.#stopIdle(conn);
      rec.closedAt = Date.now();
      rec.closeReason ??= 'closed by peer';
      this.#conns.delete(id);
      this.#sockets.delete(socket);
      for (const [k, v] of this.#outbound) if (v === id) this.#outbound.delete(k);
    });
    this.#startIdle(conn);
    try {
      this.#hooks.onConnection(rec);
    } catch {
      // hooks never break the transport
    }
    return conn;
  }

  /** Applies an idle rule (§2.14) to every connection, open ones included; undefined: none. */
  setIdlePolicy(policy: IdlePolicy | undefined): void {
    this.#idle = policy;
    for (const c of this.#conns.values()) this.#startIdle(c);
  }

  #startIdle(conn: Conn): void {
    this.#stopIdle(conn);
    const p = this.#idle;
    if (!p) return;
    this.#touch(conn);
    if (p.keepaliveMs) {
      conn.keepaliveTimer = setInterval(() => {
        if (conn.socket.writable) {
          conn.socket.write('\r\n\r\n');
          conn.rec.keepalives++;
        }
      }, p.keepaliveMs);
    }
  }

  #stopIdle(conn: Conn): void {
    clearTimeout(conn.idleTimer);
    clearInterval(conn.keepaliveTimer);
    conn.idleTimer = conn.keepaliveTimer = undefined;
  }

  /** Something from the SBC: the idle clock starts again. */
  #touch(conn: Conn): void {
    const p = this.#idle;
    if (!p) return;
    clearTimeout(conn.idleTimer);
    conn.idleTimer = setTimeout(() => {
      clearInterval(conn.keepaliveTimer);
      conn.rec.closeReason ??= 'idle timeout (FIN)';
      conn.socket.end();
    }, p.timeoutMs);
  }

  #onData(conn: Conn, chunk: Buffer): void {
    // A lone CRLF is the SBC's pong to our keep-alive: it does not reset the idle clock.
    if (chunk.length === 2 && chunk[0] === 0x0d && chunk[1] === 0x0a) conn.rec.pongs++;
    else this.#touch(conn);
    for (const r of conn.framer.push(chunk)) {
      if (r.type === 'ping') {
        conn.socket.write('\r\n'); // RFC 5626 §4.4.1 pong
        continue;
      }
      if (r.type === 'error') {
        conn.rec.closeReason = `framing error: ${r.reason}`;
        conn.socket.destroy();
        return;
      }
      let msg: SipMessage;
      try {
        msg = parseMessage(r.data);
        validateMandatory(msg);
        if (msg instanceof SipRequest) applyReceived(msg, conn.flow.remoteAddress, conn.flow.remotePort);
      } catch (err) {
        conn.rec.closeReason = `unparseable message: ${(err as Error).message}`;
        continue;
      }
      try {
        this.#hooks.onMessage(msg, { ...conn.flow }, conn.rec.endpoint);
      } catch {
        // never throw inside socket handlers
      }
    }
  }

  /** Open connections (records). */
  connections(): ConnectionRecord[] {
    return [...this.#conns.values()].map((c) => c.rec);
  }

  /**
   * Drops connections. `graceful` sends FIN (end), otherwise the socket is destroyed (the
   * peer sees a reset or close).
   */
  drop(filter: (r: ConnectionRecord) => boolean, graceful = false): number {
    let n = 0;
    for (const c of [...this.#conns.values()]) {
      if (!filter(c.rec)) continue;
      c.rec.closeReason = graceful ? 'dropped by fake Teams (FIN)' : 'dropped by fake Teams';
      if (graceful) c.socket.end();
      else this.#reset(c);
      n++;
    }
    return n;
  }

  /**
   * Resets a connection (TCP RST). A TLSSocket's own handle is a TLS wrap, so the RST goes
   * through the raw TCP socket under it when we have it (inbound connections).
   */
  #reset(c: Conn): void {
    for (const raw of this.#sockets) {
      if (raw === c.socket || raw instanceof tls.TLSSocket) continue;
      if (raw.remoteAddress === c.socket.remoteAddress && raw.remotePort === c.socket.remotePort && raw.localPort === c.socket.localPort) {
        try {
          raw.resetAndDestroy();
        } catch {
          raw.destroy();
        }
      }
    }
    try {
      c.socket.resetAndDestroy();
    } catch {
      c.socket.destroy();
    }
  }

  /** Sends a CRLF keep-alive ping (RFC 5626 §4.4.1) on a connection. */
  ping(connectionId: number): boolean {
    const c = this.#conns.get(connectionId);
    if (!c) return false;
    c.socket.write('\r\n\r\n');
    c.rec.keepalives++;
    return true;
  }

  async send(msg: SipMessage, dest: FtDestination): Promise<Flow> {
    if (this.#closed) throw new Error('fake Teams transport closed');
    const ep = this.endpointByAddress(dest.localAddress) ?? [...this.#eps.values()][0]!.spec;
    let conn: Conn | undefined;
    const branch = msg instanceof SipRequest ? msg.topVia.params.get('branch') ?? undefined : undefined;
    if (msg instanceof SipRequest && (msg.method === 'ACK' || msg.method === 'CANCEL') && branch) {
      const id = this.#branchConn.get(branch);
      if (id !== undefined) conn = this.#conns.get(id);
    }
    if (!conn) conn = await this.#connection(ep, dest);
    if (branch && msg instanceof SipRequest && msg.method !== 'ACK') this.#branchConn.set(branch, conn.rec.id);
    await this.#write(conn, msg);
    this.#hooks.onSent(msg, { ...conn.flow }, ep.name);
    return { ...conn.flow };
  }

  async sendResponse(res: SipResponse, flow: Flow): Promise<void> {
    const conn = flow.connectionId !== undefined ? this.#conns.get(flow.connectionId) : undefined;
    if (!conn) throw new Error(`connection ${flow.connectionId} is gone; response ${res.status} not sent`);
    await this.#write(conn, res);
    this.#hooks.onSent(res, { ...conn.flow }, conn.rec.endpoint);
  }

  #write(conn: Conn, msg: SipMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      if (conn.socket.destroyed) {
        reject(new Error(`connection ${conn.rec.id} is closed`));
        return;
      }
      conn.socket.write(msg.toBuffer(), (err) => (err ? reject(err) : resolve()));
    });
  }

  async #connection(ep: EndpointSpec, dest: FtDestination): Promise<Conn> {
    const key = `${ep.name}|${dest.host}|${dest.port}`;
    if (!dest.newConnection) {
      const id = this.#outbound.get(key);
      const c = id !== undefined ? this.#conns.get(id) : undefined;
      if (c && !c.socket.destroyed) return c;
      const pending = this.#connecting.get(key);
      if (pending) return pending;
    }
    const p = this.#connect(ep, dest).then((c) => {
      this.#outbound.set(key, c.rec.id);
      return c;
    });
    if (!dest.newConnection) {
      this.#connecting.set(key, p);
      void p.catch(() => undefined).finally(() => this.#connecting.delete(key));
    }
    return p;
  }

  #connect(ep: EndpointSpec, dest: FtDestination): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
      const servername = dest.servername && net.isIP(dest.servername) === 0 ? dest.servername : undefined;
      const opts: tls.ConnectionOptions & { localAddress?: string } = {
        host: dest.host,
        port: dest.port,
        localAddress: ep.address,
        key: this.#tls.key,
        cert: this.#tls.cert,
        ca: this.#tls.ca,
        minVersion: 'TLSv1.2',
        // Verified below, so that a failure is recorded with its reason.
        rejectUnauthorized: false,
      };
      if (servername) opts.servername = servername;
      const s = tls.connect(opts);
      this.#sockets.add(s);
      const timer = setTimeout(() => fail(`no TLS connection to ${dest.host}:${dest.port} within 10 s`), 10_000);
      const fail = (why: string): void => {
        clearTimeout(timer);
        this.#sockets.delete(s);
        s.destroy();
        this.#hooks.onTlsFailure({ endpoint: ep.name, direction: 'outbound', at: Date.now(), remoteAddress: dest.host, remotePort: dest.port, error: why });
        reject(new Error(why));
      };
      s.once('error', (err) => fail(err.message));
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        // §2.4 / §5.4: Teams validates the SBC's server certificate against the FQDN it dialled.
        if (!s.authorized) return fail(`SBC certificate not trusted: ${String(s.authorizationError)}`);
        if (servername) {
          const bad = tls.checkServerIdentity(servername, s.getPeerCertificate());
          if (bad) return fail(`SBC certificate does not match ${servername}: ${bad.message}`);
        }
        resolve(this.#adopt(s, ep.name, 'outbound', servername));
      });
    });
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      const servers = [...this.#eps.values()].map((ep) => {
        const srv = ep.raw;
        ep.raw = undefined;
        return srv ? new Promise<void>((r) => srv.close(() => r())) : Promise.resolve();
      });
      const closed = [...this.#sockets].map(
        (s) =>
          new Promise<void>((r) => {
            if (s.destroyed) return r();
            s.once('close', () => r());
            s.destroy();
          }),
      );
      await Promise.all([...servers, ...closed]);
      this.#sockets.clear();
      this.#conns.clear();
    })();
    return this.#closing;
  }
}
