/**
 * One rtpengine instance reached over the ng protocol (bencode over UDP) through
 * rtpengine-client. Every command is bounded by a timeout; the instance keeps its own
 * up/down state from consecutive failures and per-command latency/error counters.
 */
import { createRequire } from 'node:module';
import type { CommandOutcome, CommandStats, InstanceStats, MediaLogger, NgCommand, NgParams, NgResponse } from './types.js';

/** The part of rtpengine-client's UDP Client we use (the package ships no types). */
interface RawNgClient {
  on(ev: 'error', fn: (err: unknown) => void): void;
  on(ev: 'listening', fn: () => void): void;
  close(): void;
  ping(dst: { host: string; port: number }): Promise<NgResponse>;
  offer(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  answer(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  delete(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  query(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  list(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  statistics(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  playMedia(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  stopMedia(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  blockMedia(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
  unblockMedia(dst: { host: string; port: number }, p: NgParams): Promise<NgResponse>;
}

interface RtpengineClientModule {
  Client: new (opts: { timeout?: number; localAddress?: string; localPort?: number }) => RawNgClient;
}

const requireCjs = createRequire(import.meta.url);
let clientModule: RtpengineClientModule | undefined;
function loadClientModule(): RtpengineClientModule {
  if (!clientModule) {
    clientModule = requireCjs('rtpengine-client') as RtpengineClientModule;
    makeEncodingBinarySafe();
  }
  return clientModule;
}

/**
 * rtpengine-client 0.4.x builds each datagram as `[cookie, bencode(dict)].join(' ')`, i.e. it
 * turns the bencoded bytes into a UTF-8 string and back: every byte >= 0x80 of a binary value
 * becomes U+FFFD and the bencode length prefix no longer matches (rtpengine answers "Could not
 * decode bencode dictionary"). Binary values are what `play media` `blob` carries, so the
 * encoder is replaced by one that concatenates the bytes. For the text-only dictionaries sent
 * before (SDP, tags, flags: valid UTF-8) the datagram is byte for byte the same.
 */
function makeEncodingBinarySafe(): void {
  // The library's own copies (bencode is its dependency, not ours).
  const fromClient = createRequire(requireCjs.resolve('rtpengine-client'));
  const base = fromClient('./lib/BaseClient') as { encodeMessage?: (id: string, data: unknown) => Buffer };
  const bencode = fromClient('bencode') as { encode(data: unknown): Buffer };
  if (typeof base.encodeMessage !== 'function' || typeof bencode.encode !== 'function') {
    throw new Error('rtpengine-client: BaseClient.encodeMessage or bencode.encode not found (library changed?)');
  }
  base.encodeMessage = (id: string, data: unknown): Buffer => Buffer.concat([Buffer.from(`${id} `, 'latin1'), bencode.encode(data)]);
}

/** Thrown (rejected) when an instance does not answer in time or the socket fails. */
export class NgTransportError extends Error {
  constructor(
    readonly address: string,
    readonly command: NgCommand,
    message: string,
  ) {
    super(message);
    this.name = 'NgTransportError';
  }
}

export function parseNgAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = i > 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : '';
  const port = i > 0 ? Number(address.slice(i + 1)) : NaN;
  if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TypeError(`invalid rtpengine ng address "${address}" (want host:port)`);
  }
  return { host, port };
}

export interface NgInstanceOptions {
  address: string;
  commandTimeoutMs: number;
  /** Consecutive failures after which the instance is marked down. */
  failuresBeforeDown: number;
  /** Local address for the ng socket (default: any). */
  localAddress?: string;
  logger: MediaLogger;
  /** Called on every up/down change and after every command. */
  onChange: (ev: { type: 'up' } | { type: 'down'; reason: string }) => void;
  onCommand: (command: NgCommand, outcome: CommandOutcome, latencyMs: number) => void;
}

/**
 * Up/down state of an instance. An instance starts `up` (optimistic: the first health check
 * or command corrects it), goes `down` after `failuresBeforeDown` consecutive transport
 * failures, and comes back `up` on the first answered command (any result).
 */
export class NgInstance {
  readonly address: string;
  readonly #dst: { host: string; port: number };
  readonly #opts: NgInstanceOptions;
  readonly #client: RawNgClient;
  #up = true;
  #failures = 0;
  #lastChangeAt = performance.now();
  #closed = false;
  /** Sessions living on this instance (maintained by the pool/sessions). */
  sessions = 0;
  readonly #stats: Partial<Record<NgCommand, CommandStats>> = {};

  constructor(opts: NgInstanceOptions) {
    this.address = opts.address;
    this.#dst = parseNgAddress(opts.address);
    this.#opts = opts;
    const { Client } = loadClientModule();
    this.#client = new Client({ timeout: opts.commandTimeoutMs, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    // Late answers to timed-out commands and undecodable datagrams arrive here; without a
    // listener the EventEmitter would throw.
    this.#client.on('error', (err) => opts.logger.debug({ instance: this.address, err: String(err) }, 'rtpengine ng client error'));
  }

  get up(): boolean {
    return this.#up;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one ng command. Resolves with rtpengine's answer (including `result: error`, which
   * counts as an error but proves the instance alive); rejects with NgTransportError on
   * timeout or socket failure.
   */
  async command(command: NgCommand, params: NgParams = {}): Promise<NgResponse> {
    if (this.#closed) throw new NgTransportError(this.address, command, `ng client for ${this.address} is closed`);
    const started = performance.now();
    let res: NgResponse;
    try {
      const fn = this.#client[command].bind(this.#client) as (dst: { host: string; port: number }, p: NgParams) => Promise<NgResponse>;
      res = await this.#withGuard(command, fn(this.#dst, params));
    } catch (err) {
      const latency = performance.now() - started;
      this.#record(command, 'timeout', latency);
      this.#failed(`${command}: ${err instanceof Error ? err.message : String(err)}`);
      throw err instanceof NgTransportError ? err : new NgTransportError(this.address, command, `rtpengine ${this.address} ${command} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const latency = performance.now() - started;
    const outcome: CommandOutcome = res.result === 'error' ? 'error' : 'ok';
    this.#record(command, outcome, latency);
    this.#succeeded();
    return res;
  }

  /** rtpengine-client already times out; this guard also covers a send callback that never fires. */
  #withGuard<T>(command: NgCommand, p: Promise<T>): Promise<T> {
    const ms = this.#opts.commandTimeoutMs + 250;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new NgTransportError(this.address, command, `rtpengine ${this.address} ${command} timed out after ${ms} ms`)), ms);
      t.unref?.();
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  #record(command: NgCommand, outcome: CommandOutcome, latencyMs: number): void {
    const s = (this.#stats[command] ??= { count: 0, errors: 0, timeouts: 0, totalLatencyMs: 0, maxLatencyMs: 0, lastLatencyMs: 0 });
    s.count++;
    if (outcome === 'error') s.errors++;
    if (outcome === 'timeout') s.timeouts++;
    s.totalLatencyMs += latencyMs;
    s.lastLatencyMs = latencyMs;
    if (latencyMs > s.maxLatencyMs) s.maxLatencyMs = latencyMs;
    this.#opts.onCommand(command, outcome, latencyMs);
  }

  #failed(reason: string): void {
    this.#failures++;
    if (this.#up && this.#failures >= this.#opts.failuresBeforeDown) {
      this.#up = false;
      this.#lastChangeAt = performance.now();
      this.#opts.onChange({ type: 'down', reason });
    }
  }

  #succeeded(): void {
    this.#failures = 0;
    if (!this.#up) {
      this.#up = true;
      this.#lastChangeAt = performance.now();
      this.#opts.onChange({ type: 'up' });
    }
  }

  stats(): InstanceStats {
    const commands: Partial<Record<NgCommand, CommandStats>> = {};
    for (const [k, v] of Object.entries(this.#stats) as Array<[NgCommand, CommandStats]>) commands[k] = { ...v };
    return {
      address: this.address,
      up: this.#up,
      consecutiveFailures: this.#failures,
      sessions: this.sessions,
      lastChangeAt: this.#lastChangeAt,
      commands,
    };
  }

  /** Closes the ng socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#client.close();
    } catch {
      // already closed
    }
  }
}
