import dgram from 'node:dgram';
import { type LookupOneOptions, lookup as dnsLookup } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { TransportError } from './errors.js';
import type { ListenSpec } from './types.js';

/** RFC 3261 §18: a UDP listen point. One socket both receives and sends (symmetric ports, RFC 3581). */
export class UdpEndpoint {
  readonly spec: ListenSpec;
  readonly family: 4 | 6;
  #socket: dgram.Socket;
  #port = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(
    spec: ListenSpec,
    bufferBytes: number,
    onDatagram: (buf: Buffer, remoteAddress: string, remotePort: number) => void,
    onError: (err: Error) => void,
  ) {
    this.spec = spec;
    this.family = isIPv6(spec.host) ? 6 : 4;
    this.#socket = dgram.createSocket({
      type: this.family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: bufferBytes,
      sendBufferSize: bufferBytes,
      lookup: literalLookup,
    });
    this.#socket.on('message', (buf, rinfo) => onDatagram(buf, rinfo.address, rinfo.port));
    this.#socket.on('error', onError);
  }

  get port(): number {
    return this.#port;
  }

  /** The address the socket is bound to. */
  get host(): string {
    return this.spec.host;
  }

  bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (err: Error): void => reject(new TransportError('listen', `udp bind ${this.spec.host}:${this.spec.port}: ${err.message}`, { cause: err }));
      this.#socket.once('error', onErr);
      this.#socket.bind({ address: this.spec.host, port: this.spec.port, exclusive: true }, () => {
        this.#socket.off('error', onErr);
        this.#port = this.#socket.address().port;
        resolve();
      });
    });
  }

  /** Kernel buffer sizes actually granted (Linux doubles and caps at net.core.[rw]mem_max). */
  bufferSizes(): { recv: number; send: number } {
    return { recv: this.#socket.getRecvBufferSize(), send: this.#socket.getSendBufferSize() };
  }

  /** Sends one datagram; `done` gets the outcome (a TransportError on failure). */
  send(buf: Buffer, port: number, host: string, done: (err: TransportError | undefined) => void): void {
    if (this.#closed) {
      done(new TransportError('closed', 'udp socket closed'));
      return;
    }
    // A v6 socket reaches an IPv4 destination through the IPv4-mapped form (dual stack).
    const to = this.family === 6 && !isIPv6(host) ? `::ffff:${host}` : host;
    this.#socket.send(buf, port, to, (err) => done(err ? new TransportError('send', `udp send to ${host}:${port}: ${err.message}`, { cause: err }) : undefined));
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = new Promise((resolve) => {
      try {
        this.#socket.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    });
    return this.#closing;
  }
}

/**
 * dgram's address lookup. Destinations reaching the transport are IP literals (names are
 * resolved above it), for which the default dns.lookup only defers the send by a tick: answer
 * those at once and leave anything else to dns.lookup.
 */
function literalLookup(host: string, options: LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const f = isIP(host);
  if (f !== 0) cb(null, host, f);
  else dnsLookup(host, options, cb);
}
