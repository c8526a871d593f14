import { type Logger, silentLogger } from '../../util/logger.js';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { type Clock, type TimerHandle, realClock } from '../../util/clock.js';
import { SipError } from '../message/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type FrameResult } from '../message/framer.js';
import { type SipMessage, SipRequest, type SipResponse } from '../message/message.js';
import { parseMessage, validateMandatory } from '../message/parser.js';
import { TransportError } from './errors.js';
import { errorResponse, recoverRequest } from './malformed.js';
import { type ConnectionInfo, StreamConnection, type StreamConnectionOptions, StreamListener } from './tcp.js';
import { checkTlsMaterial, clientTlsOptions } from './tls.js';
import type { Destination, Flow, ListenPoint, ListenSpec, Protocol, TlsOptions, TransportSender } from './types.js';
import { UdpEndpoint } from './udp.js';
import { applyReceived, defaultPort, normalizeIp, responseTarget } from './via-received.js';

/** The transport logs through the project's pino-shaped interface (src/sip must not import pino). */
export type TransportLogger = Logger;

/**
 * How long a connection renewed for its age still carries what is bound to it: the responses to
 * requests sent on it, an INVITE's final response included, which may come minutes later (a
 * Teams user ringing; Timer C, RFC 3261 §16.6, is over 3 min). Nothing new is sent on it.
 */
const RENEW_GRACE_MS = 600_000;

export interface TransportLayerOptions {
  listen: ListenSpec[];
  /** SO_RCVBUF and SO_SNDBUF of UDP sockets. Default 4 MiB (the kernel caps at net.core.*mem_max). */
  udpBufferBytes?: number;
  /** Largest message accepted (header + body). Default 64 KiB. */
  maxMessageBytes?: number;
  /** Largest header section accepted on streams. Default 32 KiB (capped at maxMessageBytes). */
  maxHeaderBytes?: number;
  /** Stream connections without traffic for this long are closed. Default 10 min; 0 disables. */
  idleTimeoutMs?: number;
  /**
   * Slowloris protection: a stream message must be complete this long after its first byte,
   * an inbound connection must deliver its first message (or ping) this long after accept, and
   * a TLS handshake must finish within it. Default 20 s.
   */
  headerTimeoutMs?: number;
  /** Concurrent inbound stream connections (all listen points together). Default 10 000. */
  maxConnections?: number;
  /** Outbound connect + TLS handshake deadline. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Connections this layer opened are not reused past this age: the next request to that peer
   * opens a new one and the old one is retired (teams-direct-routing §2.14: the SBC renews its
   * own connections at least hourly). Default 1 h; 0 disables.
   */
  maxConnectionAgeMs?: number;
  logger?: TransportLogger;
  /** Called for every message, like the 'message' event. */
  onMessage?: (msg: SipMessage, flow: Flow) => void;
  clock?: Clock;
}

export interface TransportStats {
  messagesIn: number;
  messagesOut: number;
  /** Input that could not be framed, parsed or validated. */
  parseErrors: number;
  /** Malformed requests answered with 400/513/… */
  errorResponses: number;
  /** RFC 5626 pings answered, and UDP CRLF keep-alives received. */
  keepAlives: number;
  connectionsOpen: number;
  connectionsAccepted: number;
  connectionsOutbound: number;
  /** Inbound connections refused because maxConnections was reached. */
  connectionsRejected: number;
  /** Connections closed by the header (slowloris) or idle timer. */
  connectionsTimedOut: number;
  sendErrors: number;
}

export interface MalformedEvent {
  flow: Flow;
  reason: string;
  /** The status answered, or undefined when the input was dropped. */
  answered?: number;
}

/** Typed events of the transport layer. */
export interface TransportEvents {
  message: [msg: SipMessage, flow: Flow];
  connection: [info: ConnectionInfo];
  connectionClosed: [info: ConnectionInfo, reason: string];
  malformed: [ev: MalformedEvent];
  /** An RFC 5626 ping (streams) or CRLF keep-alive (UDP) arrived on this flow. */
  keepalive: [flow: Flow];
}

type Endpoint = UdpEndpoint | StreamListener;

/**
 * RFC 3261 §18 transport layer: listen points (any mix of UDP/TCP/TLS on several addresses),
 * framing, received/rport (§18.2.1, RFC 3581), response routing (§18.2.2, RFC 3581 §4),
 * connection reuse and aliasing (RFC 5923), keep-alives (RFC 5626 §4.4.1).
 */
export class TransportLayer extends EventEmitter<TransportEvents> implements TransportSender {
  readonly #opts: Required<Omit<TransportLayerOptions, 'listen' | 'logger' | 'onMessage' | 'clock' | 'maxHeaderBytes'>> & {
    maxHeaderBytes: number | undefined;
  };
  readonly #specs: ListenSpec[];
  readonly #log: TransportLogger;
  readonly #clock: Clock;
  #udp: UdpEndpoint[] = [];
  #listeners: StreamListener[] = [];
  #conns = new Map<number, StreamConnection>();
  /** `proto|ip|port` of the remote end → connection (RFC 5923 alias / reuse). */
  #aliases = new Map<string, StreamConnection>();
  #connecting = new Map<string, Promise<StreamConnection>>();
  /** Connections taken out of reuse (retire()), with their close timers. */
  #retired = new Map<StreamConnection, TimerHandle>();
  /** When this layer opened each of its outbound connections (clock ms), for maxConnectionAgeMs. */
  #openedAt = new WeakMap<StreamConnection, number>();
  #pendingSockets = new Set<net.Socket>();
  /** Accepted inbound sockets (before and after TLS), destroyed on close. */
  #rawSockets = new Set<net.Socket>();
  #onDrained: (() => void) | undefined;
  #handshakeTimers = new Map<net.Socket, TimerHandle | undefined>();
  #nextConnId = 1;
  #inbound = 0;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #stats: TransportStats = {
    messagesIn: 0,
    messagesOut: 0,
    parseErrors: 0,
    errorResponses: 0,
    keepAlives: 0,
    connectionsOpen: 0,
    connectionsAccepted: 0,
    connectionsOutbound: 0,
    connectionsRejected: 0,
    connectionsTimedOut: 0,
    sendErrors: 0,
  };

  constructor(opts: TransportLayerOptions) {
    super();
    this.#specs = opts.listen.map((s) => ({ ...s }));
    this.#log = opts.logger ?? silentLogger;
    this.#clock = opts.clock ?? realClock;
    this.#opts = {
      udpBufferBytes: opts.udpBufferBytes ?? 4 * 1024 * 1024,
      maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxHeaderBytes: opts.maxHeaderBytes,
      idleTimeoutMs: opts.idleTimeoutMs ?? 600_000,
      headerTimeoutMs: opts.headerTimeoutMs ?? 20_000,
      maxConnections: opts.maxConnections ?? 10_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      maxConnectionAgeMs: opts.maxConnectionAgeMs ?? 3_600_000,
    };
    if (opts.onMessage) this.on('message', opts.onMessage);
  }

  /** Binds every listen point. On failure, whatever was bound is closed again. */
  async start(): Promise<void> {
    if (this.#closed) throw new TransportError('closed', 'transport layer is closed');
    if (this.#started) return;
    this.#started = true;
    try {
      for (const spec of this.#specs) {
        if (spec.protocol === 'udp') {
          const ep = new UdpEndpoint(
            spec,
            this.#opts.udpBufferBytes,
            (buf, addr, port) => this.#onDatagram(ep, buf, addr, port),
            (err) => this.#log.error({ err: err.message, host: spec.host, port: ep.port }, 'udp socket error'),
          );
          this.#udp.push(ep);
          await ep.bind();
        } else {
          const l: StreamListener = new StreamListener(
            spec,
            this.#opts.headerTimeoutMs,
            (s) => this.#admit(s),
            (s) => this.#accepted(l, s),
            (err, where) => this.#log.debug({ err: err.message, where, protocol: spec.protocol, port: l.port }, 'stream listener error'),
          );
          this.#listeners.push(l);
          await l.listen();
        }
      }
    } catch (err) {
      await this.close();
      throw err instanceof TransportError ? err : new TransportError('listen', (err as Error).message, { cause: err });
    }
    this.#log.info({ listen: this.listenPoints().map((p) => `${p.protocol}:${p.host}:${p.port}`) }, 'sip transport listening');
  }

  /** The bound listen points (actual ports). TLS key material is not included. */
  listenPoints(): ListenPoint[] {
    const out: ListenPoint[] = [];
    for (const ep of [...this.#udp, ...this.#listeners] as Endpoint[]) {
      const lp: ListenPoint = { protocol: ep.spec.protocol, host: ep.spec.host, port: ep.port };
      if (ep.spec.externalIp) lp.externalIp = ep.spec.externalIp;
      out.push(lp);
    }
    return out;
  }

  get stats(): TransportStats {
    return { ...this.#stats, connectionsOpen: this.#conns.size };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Open stream connections. */
  connections(): ConnectionInfo[] {
    return [...this.#conns.values()].map((c) => c.info());
  }

  connection(id: number): ConnectionInfo | undefined {
    return this.#conns.get(id)?.info();
  }

  /** The connection, if it is open and still takes new messages (not retired). */
  usableConnection(id: number | undefined): ConnectionInfo | undefined {
    const c = id === undefined ? undefined : this.#conns.get(id);
    return c?.isOpen && !this.#retired.has(c) ? c.info() : undefined;
  }

  /** Kernel UDP buffer sizes granted per UDP listen point. */
  udpBufferSizes(): { host: string; port: number; recv: number; send: number }[] {
    return this.#udp.map((u) => ({ host: u.host, port: u.port, ...u.bufferSizes() }));
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends a request (or ACK/CANCEL/stateless response) to `dest`; resolves with the flow used.
   * `wire`, when given, is `msg` already serialized (`msg.toBuffer()`), sent as is.
   */
  send(msg: SipMessage, dest: Destination, wire?: Buffer): Promise<Flow> {
    let buf: Buffer;
    try {
      this.#assertOpen();
      buf = wire ?? msg.toBuffer();
    } catch (err) {
      return Promise.reject(err);
    }
    if (dest.protocol !== 'udp') return this.#sendStream(buf, dest);
    // UDP: one promise, no async layers; the datagram leaves synchronously (see UdpEndpoint).
    return new Promise<Flow>((resolve, reject) => {
      const host = normalizeIp(dest.host);
      let ep: UdpEndpoint;
      try {
        ep = this.#pickUdp(dest, host);
      } catch (err) {
        reject(this.#sendFailed(err));
        return;
      }
      ep.send(buf, dest.port, host, (err) => {
        if (err) {
          reject(this.#sendFailed(err));
          return;
        }
        this.#stats.messagesOut++;
        this.#logWire('send', buf, 'udp', host, dest.port);
        resolve({ protocol: 'udp', localAddress: ep.host, localPort: ep.port, remoteAddress: host, remotePort: dest.port, reliable: false });
      });
    });
  }

  async #sendStream(buf: Buffer, dest: Destination): Promise<Flow> {
    try {
      const conn = await this.#getConnection(dest);
      await conn.write(buf);
      this.#stats.messagesOut++;
      this.#logWire('send', buf, conn.protocol, conn.flow.remoteAddress, conn.flow.remotePort);
      return { ...conn.flow };
    } catch (err) {
      throw this.#sendFailed(err);
    }
  }

  #sendFailed(err: unknown): TransportError {
    this.#stats.sendErrors++;
    return err instanceof TransportError ? err : new TransportError('send', (err as Error).message, { cause: err });
  }

  /**
   * RFC 3261 §18.2.2: "If the 'sent-protocol' is a reliable transport protocol such as TCP or
   * SCTP, or TLS over those, the response MUST be sent using the existing connection to the
   * source of the original request that created the transaction, if that connection is still
   * open. […] If the connection is no longer open, the server SHOULD open a connection to the IP
   * address in the 'received' parameter, if present, using the port in the 'sent-by' value, or
   * the default port for that transport, if no port is specified."
   * Unreliable: RFC 3581 §4 — to the source address and `rport` port (see responseTarget).
   * `wire`, when given, is `res` already serialized. Resolves once the message was sent.
   */
  sendResponse(res: SipResponse, flow: Flow, wire?: Buffer): Promise<void> {
    let dest: Destination;
    try {
      this.#assertOpen();
      if (flow.reliable) return this.#sendResponseStream(res, flow, wire);
      const target = responseTarget(res.topVia, flow.remoteAddress);
      dest = { protocol: 'udp', host: target.host, port: target.port, localAddress: flow.localAddress, localPort: flow.localPort };
    } catch (err) {
      return Promise.reject(err);
    }
    // The flow it resolves with is not part of this method's contract (void).
    return this.send(res, dest, wire) as Promise<unknown> as Promise<void>;
  }

  async #sendResponseStream(res: SipResponse, flow: Flow, wire: Buffer | undefined): Promise<void> {
    const open = (flow.connectionId !== undefined ? this.#conns.get(flow.connectionId) : undefined) ?? this.#aliases.get(aliasKey(flow.protocol, flow.remoteAddress, flow.remotePort));
    if (open?.isOpen) {
      const buf = wire ?? res.toBuffer();
      try {
        await open.write(buf);
      } catch (err) {
        this.#stats.sendErrors++;
        throw err;
      }
      this.#stats.messagesOut++;
      this.#logWire('send', buf, open.protocol, open.flow.remoteAddress, open.flow.remotePort);
      return;
    }
    const via = res.topVia;
    const received = via.params.get('received');
    let host = received && net.isIP(received) ? received : via.host;
    if (!net.isIP(host)) host = flow.remoteAddress;
    await this.send(res, { protocol: flow.protocol, host, port: via.port ?? defaultPort(flow.protocol) }, wire);
  }

  /**
   * Takes a stream connection out of reuse and closes it after `graceMs`: new requests to its
   * peer open a new connection, while what is already bound to it (the ACK of the response that
   * caused this, responses on its flow) still goes over it until then. Used after a 503 with
   * Retry-After from the peer (RFC 3261 §21.5.4: do not send it more requests for that long;
   * Teams Direct Routing asks the SBC to drop that connection). Returns false if the connection
   * is unknown or already closed.
   */
  retire(connectionId: number, graceMs: number): boolean {
    const conn = this.#conns.get(connectionId);
    if (!conn?.isOpen || this.#retired.has(conn)) return false;
    for (const [k, c] of this.#aliases) if (c === conn) this.#aliases.delete(k);
    this.#retired.set(
      conn,
      this.#clock.setTimeout(() => conn.close('retired', true), graceMs),
    );
    this.#log.info({ conn: conn.id, peer: `${conn.flow.remoteAddress}:${conn.flow.remotePort}` }, 'connection retired');
    return true;
  }

  /**
   * A renewed certificate (teams-direct-routing §2.12): every TLS listen point presents `t` on
   * new handshakes, connections opened from now on present it as client certificate, and every
   * TLS connection up now (or still connecting) is retired: Teams keeps warning about the old
   * certificate until the connections that carried it are rebuilt. What is already bound to a
   * retired connection completes on it for up to `graceMs`. Unusable material throws
   * (TransportError 'tls-config') and changes nothing. Returns the connections retired.
   */
  setTls(t: TlsOptions, graceMs = RENEW_GRACE_MS): number {
    this.#assertOpen();
    checkTlsMaterial(t);
    // Each TLS listener holds its #specs entry, where outbound connections read the TLS conf too.
    for (const l of this.#listeners) if (l.protocol === 'tls') l.setTls(t);
    let retired = 0;
    for (const c of [...this.#conns.values()]) if (c.protocol === 'tls' && this.retire(c.id, graceMs)) retired++;
    for (const [key, p] of this.#connecting) {
      if (key.startsWith('tls|')) p.then((c) => this.retire(c.id, graceMs), () => undefined);
    }
    this.#log.info({ retired, graceMs }, 'tls material replaced');
    return retired;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TransportError('closed', 'transport layer is closed');
    if (!this.#started) throw new TransportError('closed', 'transport layer not started');
  }

  /** UDP: the listen socket of the destination's family, preferring the pinned local address/port. */
  #pickUdp(dest: Destination, host: string): UdpEndpoint {
    // `host` is normalizeIp(dest.host): an IPv6 literal is the only form with a colon.
    const fam = host.indexOf(':') >= 0 ? 6 : 4;
    const only = this.#udp.length === 1 ? this.#udp[0]! : undefined;
    if (only && (only.family === fam || (fam === 4 && only.family === 6 && isAny(only.host)))) return only;
    const cands = this.#udp.filter((u) => u.family === fam || (fam === 4 && u.family === 6 && isAny(u.host)));
    const pinned =
      cands.find((u) => sameAddr(u.host, dest.localAddress) && u.port === dest.localPort) ??
      cands.find((u) => sameAddr(u.host, dest.localAddress)) ??
      cands.find((u) => dest.localPort !== undefined && u.port === dest.localPort) ??
      cands.find((u) => u.family === fam) ??
      cands[0];
    if (!pinned) throw new TransportError('no-listen-point', `no udp listen point for ${dest.host}`);
    return pinned;
  }

  /** The listen point whose address (and TLS identity) an outbound stream connection uses. */
  #pickStreamListen(dest: Destination, fam: 4 | 6): ListenSpec | undefined {
    const cands = this.#specs.filter((s) => s.protocol === dest.protocol && (isAny(s.host) || (net.isIPv6(s.host) ? 6 : 4) === fam));
    return cands.find((s) => sameAddr(s.host, dest.localAddress)) ?? cands[0];
  }

  async #getConnection(dest: Destination): Promise<StreamConnection> {
    const key = aliasKey(dest.protocol, dest.host, dest.port);
    const existing = this.#aliases.get(key);
    if (existing?.isOpen) {
      const opened = this.#openedAt.get(existing);
      const maxAge = this.#opts.maxConnectionAgeMs;
      if (opened === undefined || maxAge <= 0 || this.#clock.now() - opened < maxAge) return existing;
      // Renewed: what is bound to it (responses to transactions in progress) still arrives on it.
      this.retire(existing.id, RENEW_GRACE_MS);
    }
    const pending = this.#connecting.get(key);
    if (pending) return pending;
    const p = this.#connect(dest).finally(() => this.#connecting.delete(key));
    this.#connecting.set(key, p);
    return p;
  }

  #connect(dest: Destination): Promise<StreamConnection> {
    const protocol = dest.protocol as 'tcp' | 'tls';
    const host = normalizeIp(dest.host);
    const fam = net.isIPv6(host) ? 6 : 4;
    const lp = this.#pickStreamListen(dest, fam);
    const localAddress = lp && !isAny(lp.host) ? lp.host : undefined;
    let tlsConf: TlsOptions | undefined;
    if (protocol === 'tls') {
      tlsConf = lp?.tls ?? this.#specs.find((s) => s.protocol === 'tls' && s.tls)?.tls;
    }
    return new Promise<StreamConnection>((resolve, reject) => {
      let socket: net.Socket;
      let sni: string | undefined;
      let tcpUp = false;
      const timer: { h?: TimerHandle } = {};
      const fail = (reason: 'connect' | 'timeout' | 'tls', msg: string, cause?: unknown): void => {
        this.#clock.clearTimeout(timer.h);
        this.#pendingSockets.delete(socket);
        socket.destroy();
        const r = this.#closed ? 'closed' : reason;
        reject(new TransportError(r, `${protocol} ${host}:${dest.port}: ${msg}`, { cause }));
      };
      const ready = (): void => {
        this.#clock.clearTimeout(timer.h);
        this.#pendingSockets.delete(socket);
        socket.removeAllListeners('error');
        if (this.#closed) {
          socket.destroy();
          reject(new TransportError('closed', 'transport layer closed while connecting'));
          return;
        }
        const conn = this.#adopt(socket, protocol, 'outbound');
        // The name this connection was verified against, for whoever reuses it (the SNI we sent).
        if (conn.tls && sni) conn.tls.servername = sni;
        this.#stats.connectionsOutbound++;
        this.#alias(aliasKey(protocol, dest.host, dest.port), conn);
        resolve(conn);
      };
      try {
        if (protocol === 'tls') {
          // tls.connect passes net.connect options (localAddress) through to the socket.
          const o: tls.ConnectionOptions & { localAddress?: string } = clientTlsOptions(tlsConf, dest.servername);
          sni = o.servername;
          o.host = host;
          o.port = dest.port;
          if (localAddress) o.localAddress = localAddress;
          socket = tls.connect(o, ready);
        } else {
          const o: net.NetConnectOpts = { host, port: dest.port };
          if (localAddress) o.localAddress = localAddress;
          socket = net.connect(o, ready);
        }
      } catch (err) {
        reject(new TransportError('connect', `${protocol} ${host}:${dest.port}: ${(err as Error).message}`, { cause: err }));
        return;
      }
      this.#pendingSockets.add(socket);
      socket.once('connect', () => {
        tcpUp = true;
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        const tlsFailure = protocol === 'tls' && tcpUp;
        fail(tlsFailure ? 'tls' : 'connect', err.message, err);
      });
      socket.once('close', () => {
        if (this.#pendingSockets.has(socket)) fail(protocol === 'tls' && tcpUp ? 'tls' : 'connect', 'connection closed before it was ready');
      });
      timer.h = this.#clock.setTimeout(() => fail('timeout', `no connection within ${this.#opts.connectTimeoutMs} ms`), this.#opts.connectTimeoutMs);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Stream connections

  /** Connection limit, checked on the raw TCP socket before any TLS work. */
  #admit(s: net.Socket): boolean {
    if (this.#closed || this.#inbound >= this.#opts.maxConnections) {
      this.#stats.connectionsRejected++;
      this.#log.warn({ remote: `${s.remoteAddress}:${s.remotePort}`, limit: this.#opts.maxConnections }, 'inbound connection refused: limit reached');
      return false;
    }
    this.#inbound++;
    this.#rawSockets.add(s);
    // Until the connection is ready for SIP (TLS: handshake done) the header timer guards it.
    const t = this.#opts.headerTimeoutMs > 0 ? this.#clock.setTimeout(() => this.#handshakeTimedOut(s), this.#opts.headerTimeoutMs) : undefined;
    this.#handshakeTimers.set(s, t);
    s.once('close', () => {
      this.#inbound--;
      this.#rawSockets.delete(s);
      this.#clock.clearTimeout(this.#handshakeTimers.get(s));
      this.#handshakeTimers.delete(s);
    });
    return true;
  }

  #handshakeTimedOut(s: net.Socket): void {
    if (!this.#handshakeTimers.has(s)) return;
    this.#handshakeTimers.delete(s);
    this.#stats.connectionsTimedOut++;
    this.#log.debug({ remote: `${s.remoteAddress}:${s.remotePort}` }, 'handshake timeout');
    s.destroy();
  }

  #accepted(l: StreamListener, s: net.Socket): void {
    // The handshake phase is over. TLS: `s` wraps the raw socket admitted earlier (same 4-tuple).
    for (const raw of this.#handshakeTimers.keys()) {
      if (raw === s || (raw.remoteAddress === s.remoteAddress && raw.remotePort === s.remotePort && raw.localPort === s.localPort)) {
        this.#clock.clearTimeout(this.#handshakeTimers.get(raw));
        this.#handshakeTimers.delete(raw);
      }
    }
    if (this.#closed || s.destroyed) {
      s.destroy();
      return;
    }
    this.#stats.connectionsAccepted++;
    const conn = this.#adopt(s, l.protocol, 'inbound');
    this.#alias(aliasKey(conn.protocol, conn.flow.remoteAddress, conn.flow.remotePort), conn);
  }

  #adopt(s: net.Socket, protocol: 'tcp' | 'tls', direction: 'inbound' | 'outbound'): StreamConnection {
    const o: StreamConnectionOptions = {
      maxMessageBytes: this.#opts.maxMessageBytes,
      idleTimeoutMs: this.#opts.idleTimeoutMs,
      headerTimeoutMs: this.#opts.headerTimeoutMs,
      armHeaderTimerAtStart: direction === 'inbound',
      clock: this.#clock,
    };
    if (this.#opts.maxHeaderBytes !== undefined) o.maxHeaderBytes = this.#opts.maxHeaderBytes;
    const conn = new StreamConnection(this.#nextConnId++, s, protocol, direction, o, {
      onFrame: (c, r) => this.#onFrame(c, r),
      onClosed: (c, reason) => this.#onConnClosed(c, reason),
      onError: (c, err) => this.#log.debug({ conn: c.id, err: err.message }, 'connection error'),
    });
    this.#conns.set(conn.id, conn);
    if (direction === 'outbound') this.#openedAt.set(conn, this.#clock.now());
    this.#log.debug({ conn: conn.id, direction, protocol, remote: `${conn.flow.remoteAddress}:${conn.flow.remotePort}` }, 'connection open');
    this.#safeEmit('connection', conn.info());
    return conn;
  }

  #alias(key: string, conn: StreamConnection): void {
    if (this.#retired.has(conn)) return;
    const prev = this.#aliases.get(key);
    if (prev && prev !== conn && prev.isOpen) return; // first connection wins until it closes
    this.#aliases.set(key, conn);
  }

  #onConnClosed(conn: StreamConnection, reason: string): void {
    this.#conns.delete(conn.id);
    this.#clock.clearTimeout(this.#retired.get(conn));
    this.#retired.delete(conn);
    for (const [k, c] of this.#aliases) if (c === conn) this.#aliases.delete(k);
    if (reason === 'header timeout' || reason === 'idle timeout') this.#stats.connectionsTimedOut++;
    this.#log.debug({ conn: conn.id, reason }, 'connection closed');
    this.#safeEmit('connectionClosed', conn.info(), reason);
    if (this.#conns.size === 0) this.#onDrained?.();
  }

  #onFrame(conn: StreamConnection, r: FrameResult): void {
    if (r.type === 'ping') {
      this.#stats.keepAlives++;
      this.#safeEmit('keepalive', { ...conn.flow });
      return;
    }
    if (r.type === 'message') {
      this.#receive(r.data, conn.flow, false, conn);
      return;
    }
    // Framing error: answer if the request can be recovered, then close (the stream position is lost).
    this.#stats.parseErrors++;
    const answered = this.#replyMalformed(r.head, conn.flow, r.statusCode, r.reason);
    this.#safeEmit('malformed', withAnswer({ flow: { ...conn.flow }, reason: r.reason }, answered));
    conn.close(`framing error: ${r.reason}`, true);
  }

  // ---------------------------------------------------------------------------------------
  // Receiving

  #onDatagram(ep: UdpEndpoint, buf: Buffer, addr: string, port: number): void {
    const flow: Flow = {
      protocol: 'udp',
      localAddress: ep.host,
      localPort: ep.port,
      remoteAddress: normalizeIp(addr),
      remotePort: port,
      reliable: false,
    };
    try {
      // Keep-alives seen on UDP in the wild: CRLF(s), NUL bytes, or a few spaces.
      if (buf.length <= 8 && /^[\r\n\0 \t]*$/.test(buf.toString('latin1'))) {
        this.#stats.keepAlives++;
        this.#safeEmit('keepalive', flow);
        return;
      }
      if (buf.length > this.#opts.maxMessageBytes) {
        this.#stats.parseErrors++;
        const reason = `datagram of ${buf.length} bytes exceeds ${this.#opts.maxMessageBytes}`;
        const answered = this.#replyMalformed(buf, flow, 513, reason);
        this.#safeEmit('malformed', withAnswer({ flow, reason }, answered));
        return;
      }
      this.#receive(buf, flow, true, undefined);
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'udp receive failed');
    }
  }

  /** Parses, validates, applies received/rport and delivers one message. Never throws. */
  #receive(buf: Buffer, flow: Flow, datagram: boolean, conn: StreamConnection | undefined): void {
    let msg: SipMessage;
    try {
      msg = parseMessage(buf, { datagram });
      validateMandatory(msg);
      if (msg instanceof SipRequest) applyReceived(msg, flow.remoteAddress, flow.remotePort);
    } catch (err) {
      this.#stats.parseErrors++;
      const status = err instanceof SipError ? err.statusCode : 400;
      const reason = (err as Error).message;
      const answered = this.#replyMalformed(buf, flow, status, reason);
      this.#log.debug({ remote: `${flow.remoteAddress}:${flow.remotePort}`, protocol: flow.protocol, reason, answered }, 'malformed message');
      this.#safeEmit('malformed', withAnswer({ flow: { ...flow }, reason }, answered));
      return;
    }
    this.#stats.messagesIn++;
    this.#logWire('recv', buf, flow.protocol, flow.remoteAddress, flow.remotePort);
    if (conn && msg instanceof SipRequest) this.#viaAlias(msg, conn);
    // A datagram's flow was made for it; a connection's is shared, so listeners get a copy.
    this.#safeEmit('message', msg, conn ? { ...flow } : flow);
  }

  /**
   * RFC 5923 §5: a request whose top Via carries `alias` lets the connection be reused for
   * requests towards the sender's advertised port. Over TLS only when the peer certificate was
   * verified (§6 requires the alias to be backed by the certificate).
   */
  #viaAlias(req: SipRequest, conn: StreamConnection): void {
    const via = req.topVia;
    if (!via.params.has('alias')) return;
    if (conn.protocol === 'tls' && !conn.tls?.authorized) return;
    this.#alias(aliasKey(conn.protocol, conn.flow.remoteAddress, via.port ?? defaultPort(conn.protocol)), conn);
  }

  /**
   * Answers input that failed framing/parsing when it is a request with a usable Via (never an
   * ACK, §17.1.1.3). Returns the status sent, or undefined when the input was dropped.
   */
  #replyMalformed(buf: Buffer, flow: Flow, status: number, reason: string): number | undefined {
    let req: SipRequest | undefined;
    try {
      req = recoverRequest(buf);
      if (!req || req.method === 'ACK') return undefined;
      void req.topVia; // throws when there is no parseable Via
      applyReceived(req, flow.remoteAddress, flow.remotePort);
    } catch {
      return undefined;
    }
    const res = errorResponse(req, status, reason);
    this.#stats.errorResponses++;
    this.sendResponse(res, flow).catch((err: Error) => this.#log.debug({ err: err.message }, 'error response not sent'));
    return status;
  }

  #safeEmit<K extends keyof TransportEvents>(event: K, ...args: TransportEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: TransportEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error({ event, err: (err as Error).message }, 'transport listener threw');
    }
  }

  #logWire(dir: 'send' | 'recv', buf: Buffer, protocol: Protocol, host: string, port: number): void {
    const l = this.#log as TransportLogger & { isLevelEnabled?: (level: string) => boolean };
    if (l.isLevelEnabled && !l.isLevelEnabled('debug')) return;
    // Only the start line: headers may carry credentials (Authorization, Proxy-Authorization).
    const eol = buf.indexOf('\r\n');
    const first = buf.toString('utf8', 0, eol < 0 ? Math.min(buf.length, 120) : Math.min(eol, 200));
    l.debug({ dir, protocol, peer: `${host}:${port}`, bytes: buf.length, first }, 'sip wire');
  }

  // ---------------------------------------------------------------------------------------

  /** Closes every listen point and connection. Idempotent; resolves when all sockets are closed. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      for (const s of this.#pendingSockets) s.destroy();
      this.#pendingSockets.clear();
      const drained = new Promise<void>((resolve) => {
        this.#onDrained = resolve;
        if (this.#conns.size === 0) resolve();
      });
      for (const t of this.#retired.values()) this.#clock.clearTimeout(t);
      this.#retired.clear();
      for (const c of [...this.#conns.values()]) c.close('transport closed');
      // Inbound sockets still in their TLS handshake.
      for (const s of this.#rawSockets) s.destroy();
      await Promise.all([drained, ...this.#listeners.map((l) => l.close()), ...this.#udp.map((u) => u.close())]);
      this.#aliases.clear();
      this.#connecting.clear();
      this.#log.info({}, 'sip transport closed');
    })();
    return this.#closing;
  }
}

function aliasKey(protocol: Protocol, host: string, port: number): string {
  return `${protocol}|${normalizeIp(host)}|${port}`;
}

function isAny(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function sameAddr(a: string, b: string | undefined): boolean {
  return b !== undefined && normalizeIp(a) === normalizeIp(b);
}

function withAnswer(ev: MalformedEvent, answered: number | undefined): MalformedEvent {
  if (answered !== undefined) ev.answered = answered;
  return ev;
}
