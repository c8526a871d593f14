import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { StreamFramer } from '../../../../src/sip/message/framer.js';
import { type SipMessage, parseMessage } from '../../../../src/sip/message/index.js';
import type { Flow } from '../../../../src/sip/transport/types.js';
import type { TransportLayer } from '../../../../src/sip/transport/transport-layer.js';

export interface ReqOpts {
  method?: string;
  via?: string;
  callId?: string;
  body?: string;
  extra?: string[];
  noContentLength?: boolean;
}

export function request(o: ReqOpts = {}): string {
  const method = o.method ?? 'OPTIONS';
  const body = o.body ?? '';
  const lines = [
    `${method} sip:sbc@127.0.1.1 SIP/2.0`,
    `Via: ${o.via ?? 'SIP/2.0/UDP 10.9.9.9:5099;branch=z9hG4bKtest1;rport'}`,
    'Max-Forwards: 70',
    'From: <sip:alice@test.invalid>;tag=a1',
    'To: <sip:sbc@test.invalid>',
    `Call-ID: ${o.callId ?? 'call-1'}`,
    `CSeq: 1 ${method}`,
    ...(o.extra ?? []),
  ];
  if (!o.noContentLength) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

/** A queue of values with `next()` that waits for the next one (or fails after `ms`). */
export class Inbox<T> {
  #items: T[] = [];
  #waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.#waiters.shift();
    if (w) w(v);
    else this.#items.push(v);
  }
  get length(): number {
    return this.#items.length;
  }
  next(ms = 2000): Promise<T> {
    const v = this.#items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(done), 1);
        reject(new Error(`nothing arrived within ${ms} ms`));
      }, ms);
      const done = (x: T): void => {
        clearTimeout(t);
        resolve(x);
      };
      this.#waiters.push(done);
    });
  }
}

/** Collects 'message' events of a transport layer. */
export function collect(tl: TransportLayer): Inbox<{ msg: SipMessage; flow: Flow }> {
  const box = new Inbox<{ msg: SipMessage; flow: Flow }>();
  tl.on('message', (msg, flow) => box.push({ msg, flow }));
  return box;
}

export interface UdpPeer {
  socket: dgram.Socket;
  port: number;
  inbox: Inbox<{ msg: SipMessage; raw: Buffer; port: number; address: string }>;
  send(data: string | Buffer, port: number, host: string): Promise<void>;
  close(): Promise<void>;
}

export async function udpPeer(host: string): Promise<UdpPeer> {
  const socket = dgram.createSocket('udp4');
  const inbox = new Inbox<{ msg: SipMessage; raw: Buffer; port: number; address: string }>();
  socket.on('message', (raw, rinfo) => inbox.push({ msg: parseMessage(raw, { datagram: true }), raw, port: rinfo.port, address: rinfo.address }));
  await new Promise<void>((r) => socket.bind(0, host, r));
  return {
    socket,
    port: socket.address().port,
    inbox,
    send: (data, port, h) => new Promise<void>((res, rej) => socket.send(typeof data === 'string' ? Buffer.from(data) : data, port, h, (e) => (e ? rej(e) : res()))),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

export interface StreamPeer {
  socket: net.Socket;
  inbox: Inbox<SipMessage>;
  /** Every byte received, for pong checks. */
  raw: Buffer[];
  closed: Promise<void>;
  isClosed(): boolean;
  write(data: string | Buffer): Promise<void>;
  close(): void;
}

function wrapStream(socket: net.Socket): StreamPeer {
  const inbox = new Inbox<SipMessage>();
  const framer = new StreamFramer();
  const raw: Buffer[] = [];
  let closedFlag = false;
  socket.on('data', (chunk: Buffer) => {
    raw.push(chunk);
    for (const r of framer.push(chunk)) if (r.type === 'message') inbox.push(parseMessage(r.data));
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) =>
    socket.once('close', () => {
      closedFlag = true;
      r();
    }),
  );
  return {
    socket,
    inbox,
    raw,
    closed,
    isClosed: () => closedFlag,
    write: (d) => new Promise<void>((res, rej) => socket.write(d, (e) => (e ? rej(e) : res()))),
    close: () => socket.destroy(),
  };
}

export async function tcpPeer(host: string, port: number, localAddress: string): Promise<StreamPeer> {
  const socket = net.connect({ host, port, localAddress });
  await once(socket, 'connect');
  return wrapStream(socket);
}

export async function tlsPeer(opts: tls.ConnectionOptions & { localAddress?: string }): Promise<StreamPeer> {
  const socket = tls.connect(opts);
  await once(socket, 'secureConnect');
  return wrapStream(socket);
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until true or `ms` elapse. */
export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(10);
  }
}
