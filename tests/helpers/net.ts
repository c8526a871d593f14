/**
 * Small network helpers for integration tests: free ports, polling, raw UDP/TCP peers.
 * Everything here binds loopback only and every object has an idempotent close().
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { execFileSync } from 'node:child_process';

export type PortProtocol = 'udp' | 'tcp';

function bindTcp(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host, port, exclusive: true }, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    sock.once('error', reject);
    sock.bind({ address: host, port, exclusive: true }, () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

/**
 * A port that is free on `host` for every protocol in `protocols` at the time of the call
 * (the same number for UDP and TCP, as SIP listen points use). Racy by nature, but on a
 * per-test loopback address nothing else competes for it.
 */
export async function freePort(host: string, protocols: PortProtocol[] = ['udp', 'tcp']): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await bindTcp(host, 0);
    const addr = first.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const held: Array<{ close(cb?: () => void): unknown }> = [first];
    let ok = port > 0;
    if (ok && protocols.includes('udp')) {
      try {
        held.push(await bindUdp(host, port));
      } catch {
        ok = false;
      }
    }
    await Promise.all(held.map((h) => new Promise<void>((r) => h.close(() => r()))));
    if (ok) return port;
  }
  throw new Error(`freePort: no free port on ${host} for ${protocols.join('+')}`);
}

/** Several distinct free ports on one host. */
export async function freePorts(host: string, count: number, protocols: PortProtocol[] = ['udp', 'tcp']): Promise<number[]> {
  const out: number[] = [];
  while (out.length < count) {
    const p = await freePort(host, protocols);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Included in the timeout error. */
  what?: string;
}

/** Polls `fn` until it returns a truthy value (which is returned) or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (true) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastErr instanceof Error ? `; last error: ${lastErr.message}` : last !== undefined ? `; last value: ${JSON.stringify(last)}` : '';
      throw new Error(`waitFor timed out after ${timeoutMs} ms: ${opts.what ?? 'condition'}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Rejects with a descriptive error when `p` does not settle within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** True when something listens on host:port for `protocol` (uses iproute2 `ss`, read-only). */
export function isListening(protocol: PortProtocol, host: string, port: number): boolean {
  const flag = protocol === 'udp' ? '-Hlun' : '-Hlnt';
  try {
    const out = execFileSync('ss', [flag, `src ${host}:${port}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim().length > 0;
  } catch {
    return false;
  }
}

export async function waitListening(protocol: PortProtocol, host: string, port: number, timeoutMs = 5000): Promise<void> {
  await waitFor(() => isListening(protocol, host, port), { timeoutMs, intervalMs: 25, what: `${protocol} listener on ${host}:${port}` });
}

// ---------------------------------------------------------------------------------------------
// Raw UDP peer

export interface Datagram {
  data: Buffer;
  text: string;
  from: { address: string; port: number };
  at: number;
}

/** A bound UDP socket that records everything it receives (a "black hole" unless you reply). */
export class UdpPeer {
  readonly received: Datagram[] = [];
  private closed = false;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: dgram.Socket, readonly host: string, readonly port: number) {
    socket.on('message', (data, rinfo) => {
      this.received.push({ data, text: data.toString('latin1'), from: { address: rinfo.address, port: rinfo.port }, at: Date.now() });
      const w = this.waiters;
      this.waiters = [];
      for (const fn of w) fn();
    });
    socket.on('error', () => undefined);
  }

  static async bind(host: string, port = 0): Promise<UdpPeer> {
    const sock = await bindUdp(host, port);
    const addr = sock.address();
    return new UdpPeer(sock, host, addr.port);
  }

  send(data: string | Buffer, host: string, port: number): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return new Promise((resolve, reject) => this.socket.send(buf, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** Waits for a datagram (received from now on or already buffered after index `from`) matching `pred`. */
  async waitFor(pred: (d: Datagram) => boolean, timeoutMs = 5000, from = 0): Promise<Datagram> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const hit = this.received.slice(from).find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`UdpPeer ${this.host}:${this.port}: no matching datagram within ${timeoutMs} ms (got ${this.received.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// Raw TCP peer

/** A TCP client connection that buffers everything it receives and reports when it closes. */
export class TcpPeer {
  private chunks: Buffer[] = [];
  readonly closedAt: Promise<number>;
  private isClosed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => this.chunks.push(d));
    socket.on('error', () => undefined);
    this.closedAt = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve(Date.now());
      }),
    );
  }

  static connect(host: string, port: number, localAddress?: string, timeoutMs = 3000): Promise<TcpPeer> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`TCP connect to ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
      sock.once('connect', () => {
        clearTimeout(t);
        sock.setNoDelay(true);
        resolve(new TcpPeer(sock));
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed || !this.socket.writable) return reject(new Error('socket not writable'));
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  async waitForText(pred: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    return waitFor(() => (pred(this.text) ? this.text : undefined), { timeoutMs, intervalMs: 10, what: 'TCP data' });
  }

  /** Resolves true when the peer closed the connection within `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.isClosed) return true;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.closedAt.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return r;
  }

  close(): void {
    this.socket.destroy();
  }
}
