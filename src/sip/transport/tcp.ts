import net from 'node:net';
import tls from 'node:tls';
import type { Clock, TimerHandle } from '../../util/clock.js';
import { type FrameResult, StreamFramer } from '../message/framer.js';
import { TransportError } from './errors.js';
import { type TlsPeerInfo, serverTlsOptions, tlsPeerInfo } from './tls.js';
import type { Flow, ListenSpec, TlsOptions } from './types.js';
import { normalizeIp } from './via-received.js';

/** RFC 5626 §4.4.1: the answer to a double-CRLF ping. */
const PONG = Buffer.from('\r\n');

/** Bytes queued towards a peer beyond which the connection is considered dead. */
const MAX_WRITE_BUFFER = 4 * 1024 * 1024;

export type ConnectionState = 'open' | 'closing' | 'closed';

/** Legal state transitions of a stream connection. */
const TRANSITIONS = {
  open: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
} as const satisfies Record<ConnectionState, readonly ConnectionState[]>;

export interface StreamConnectionOptions {
  maxHeaderBytes?: number;
  maxMessageBytes: number;
  /** Close after this long without traffic in either direction. */
  idleTimeoutMs: number;
  /** Close when a message (or, for inbound connections, the first message) takes longer than this. */
  headerTimeoutMs: number;
  /** Inbound: arm the header timer at accept, so a silent connection is closed too. */
  armHeaderTimerAtStart: boolean;
  clock: Clock;
}

export interface StreamConnectionHooks {
  onFrame(conn: StreamConnection, r: FrameResult): void;
  onClosed(conn: StreamConnection, reason: string): void;
  onError(conn: StreamConnection, err: Error): void;
}

/** Public, secret-free description of a stream connection. */
export interface ConnectionInfo {
  id: number;
  protocol: 'tcp' | 'tls';
  direction: 'inbound' | 'outbound';
  flow: Flow;
  /** TLS only: SNI, peer certificate names, verification result. */
  tls?: TlsPeerInfo;
}

/**
 * One TCP or TLS connection carrying SIP (RFC 3261 §18.3 framing, RFC 5626 keep-alive pongs,
 * slowloris and idle timeouts).
 */
export class StreamConnection {
  readonly id: number;
  readonly protocol: 'tcp' | 'tls';
  readonly direction: 'inbound' | 'outbound';
  readonly flow: Flow;
  readonly tls: TlsPeerInfo | undefined;
  #socket: net.Socket;
  #framer: StreamFramer;
  #opts: StreamConnectionOptions;
  #hooks: StreamConnectionHooks;
  #state: ConnectionState = 'open';
  #headerTimer: TimerHandle | undefined;
  #killTimer: TimerHandle | undefined;
  #closeReason = 'closed';

  constructor(
    id: number,
    socket: net.Socket,
    protocol: 'tcp' | 'tls',
    direction: 'inbound' | 'outbound',
    opts: StreamConnectionOptions,
    hooks: StreamConnectionHooks,
  ) {
    this.id = id;
    this.protocol = protocol;
    this.direction = direction;
    this.#socket = socket;
    this.#opts = opts;
    this.#hooks = hooks;
    this.flow = {
      protocol,
      localAddress: normalizeIp(socket.localAddress ?? ''),
      localPort: socket.localPort ?? 0,
      remoteAddress: normalizeIp(socket.remoteAddress ?? ''),
      remotePort: socket.remotePort ?? 0,
      reliable: true,
      connectionId: id,
      direction,
    };
    this.tls = socket instanceof tls.TLSSocket ? tlsPeerInfo(socket) : undefined;
    const fo: ConstructorParameters<typeof StreamFramer>[0] = { maxMessageBytes: opts.maxMessageBytes };
    if (opts.maxHeaderBytes !== undefined) fo.maxHeaderBytes = opts.maxHeaderBytes;
    this.#framer = new StreamFramer(fo);

    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    if (opts.idleTimeoutMs > 0) socket.setTimeout(opts.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('timeout', () => this.close('idle timeout'));
    socket.on('error', (err) => {
      this.#closeReason = `socket error: ${err.message}`;
      this.#hooks.onError(this, err);
      socket.destroy();
    });
    socket.on('close', () => this.#onClose());
    if (opts.armHeaderTimerAtStart) this.#armHeaderTimer();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  info(): ConnectionInfo {
    const i: ConnectionInfo = { id: this.id, protocol: this.protocol, direction: this.direction, flow: { ...this.flow } };
    if (this.tls) i.tls = { ...this.tls };
    return i;
  }

  #transition(to: ConnectionState): boolean {
    if (!(TRANSITIONS[this.#state] as readonly ConnectionState[]).includes(to)) return false;
    this.#state = to;
    return true;
  }

  write(buf: Buffer): Promise<void> {
    if (this.#state !== 'open') {
      return Promise.reject(new TransportError('send', `connection ${this.id} is ${this.#state}`));
    }
    // A peer that stops reading must not make us buffer without bound.
    if (this.#socket.writableLength > MAX_WRITE_BUFFER) {
      this.close('peer not reading');
      return Promise.reject(new TransportError('send', `connection ${this.id}: peer is not reading (${this.#socket.writableLength} bytes queued)`));
    }
    return new Promise((resolve, reject) => {
      this.#socket.write(buf, (err) => {
        if (err) reject(new TransportError('send', `write on connection ${this.id}: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  /**
   * Closes the connection. `graceful`: flush pending writes (e.g. a 513 just queued) and send
   * FIN; the socket is destroyed if the peer does not finish within a second.
   */
  close(reason: string, graceful = false): void {
    if (this.#state === 'closed') return;
    this.#clearHeaderTimer();
    if (graceful && this.#state === 'open') {
      this.#closeReason = reason;
      this.#transition('closing');
      this.#socket.end();
      this.#killTimer = this.#opts.clock.setTimeout(() => this.#socket.destroy(), 1000);
      return;
    }
    if (this.#state === 'open') this.#closeReason = reason;
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#state !== 'open') return;
    let results: FrameResult[];
    try {
      results = this.#framer.push(chunk);
    } catch (err) {
      // The framer is written never to throw; treat a surprise as garbage.
      this.#hooks.onError(this, err as Error);
      this.close('framer failure');
      return;
    }
    let completed = false;
    for (const r of results) {
      if (this.#state !== 'open') return;
      if (r.type === 'ping') {
        completed = true;
        this.#socket.write(PONG);
      } else if (r.type === 'message') {
        completed = true;
      }
      try {
        this.#hooks.onFrame(this, r);
      } catch (err) {
        this.#hooks.onError(this, err as Error);
      }
    }
    if (this.#state !== 'open') return;
    // Slowloris: the timer runs from the first byte of a message until it is complete.
    if (completed) this.#clearHeaderTimer();
    if (this.#framer.partial) this.#armHeaderTimer();
  }

  #armHeaderTimer(): void {
    if (this.#headerTimer || this.#opts.headerTimeoutMs <= 0) return;
    this.#headerTimer = this.#opts.clock.setTimeout(() => {
      this.#headerTimer = undefined;
      this.close('header timeout');
    }, this.#opts.headerTimeoutMs);
  }

  #clearHeaderTimer(): void {
    if (this.#headerTimer) this.#opts.clock.clearTimeout(this.#headerTimer);
    this.#headerTimer = undefined;
  }

  #onClose(): void {
    this.#clearHeaderTimer();
    if (this.#killTimer) this.#opts.clock.clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
    if (!this.#transition('closed')) return;
    this.#hooks.onClosed(this, this.#closeReason);
  }
}

/** A TCP or TLS listen point. */
export class StreamListener {
  readonly spec: ListenSpec;
  readonly protocol: 'tcp' | 'tls';
  #server: net.Server;
  #port = 0;
  #closing: Promise<void> | undefined;
  readonly #handshakeTimeoutMs: number;

  /**
   * `onRawConnection` sees every accepted TCP socket first (before TLS) and returns false to
   * refuse it (connection limit). `onConnection` gets sockets ready for SIP (TLS: after the
   * handshake).
   */
  constructor(
    spec: ListenSpec,
    handshakeTimeoutMs: number,
    onRawConnection: (s: net.Socket) => boolean,
    onConnection: (s: net.Socket) => void,
    onError: (err: Error, where: string) => void,
  ) {
    this.spec = spec;
    this.#handshakeTimeoutMs = handshakeTimeoutMs;
    if (spec.protocol === 'udp') throw new TypeError('StreamListener needs tcp or tls');
    this.protocol = spec.protocol;
    if (spec.protocol === 'tls') {
      if (!spec.tls) throw new TransportError('listen', `tls listen point ${spec.host}:${spec.port} has no certificate`);
      const srv = tls.createServer(serverTlsOptions(spec.tls, handshakeTimeoutMs));
      srv.on('secureConnection', (s) => onConnection(s));
      srv.on('tlsClientError', (err) => onError(err, 'tls handshake'));
      this.#server = srv;
    } else {
      this.#server = net.createServer();
    }
    // For TLS this runs after the TLS wrapper's own listener: refusing destroys the raw socket
    // under it, which ends the handshake.
    this.#server.on('connection', (s: net.Socket) => {
      s.on('error', () => undefined); // errors on a refused/handshaking raw socket are expected
      if (!onRawConnection(s)) {
        s.destroy();
        return;
      }
      if (this.protocol === 'tcp') onConnection(s);
    });
    this.#server.on('error', (err) => onError(err, 'server'));
  }

  get port(): number {
    return this.#port;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (err: Error): void =>
        reject(new TransportError('listen', `${this.protocol} listen ${this.spec.host}:${this.spec.port}: ${err.message}`, { cause: err }));
      this.#server.once('error', onErr);
      this.#server.listen({ host: this.spec.host, port: this.spec.port, exclusive: true }, () => {
        this.#server.off('error', onErr);
        const a = this.#server.address();
        this.#port = typeof a === 'object' && a ? a.port : 0;
        resolve();
      });
    });
  }

  /** TLS: new handshakes present `t` (a renewed certificate); connections already up keep theirs. */
  setTls(t: TlsOptions): void {
    if (!(this.#server instanceof tls.Server)) throw new TypeError('setTls on a tcp listen point');
    this.#server.setSecureContext(serverTlsOptions(t, this.#handshakeTimeoutMs));
    this.spec.tls = t;
  }

  /** Stops accepting; existing connections are closed by their owner. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }
}
