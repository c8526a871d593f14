import type { Socket } from 'node:net';
import { newUuid } from '../util/ids.js';
import { type WireMessage, decode } from './wire/codec.js';
import { WireFramer } from './wire/framer.js';
import type { Logger } from './types.js';

let seq = 0;

/**
 * One app connection (an srf.connect client): authentication, routes, tags, and writing
 * framed messages. Protocol decisions are made by the server; this class only carries bytes.
 */
export class AppSession {
  readonly id = ++seq;
  readonly socket: Socket;
  readonly remote: string;
  authenticated = false;
  tags: string[] = [];
  /** Lower-case verbs (and cdr:* events) this app registered with `route`. */
  readonly routes = new Set<string>();
  #closed = false;
  /** Frames waiting for the end of this event-loop iteration: head text, SIP bytes or undefined, … */
  #pending: Array<string | Buffer | undefined> = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  readonly #framer = new WireFramer();
  readonly #log: Logger;
  readonly #onMessage: (s: AppSession, m: WireMessage) => void;
  readonly #onClose: (s: AppSession) => void;

  constructor(socket: Socket, log: Logger, onMessage: (s: AppSession, m: WireMessage) => void, onClose: (s: AppSession) => void) {
    this.socket = socket;
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#log = log;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#log.debug({ err: err.message, app: this.remote }, 'app socket error'));
    socket.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData(chunk: Buffer): void {
    let payloads: string[];
    try {
      payloads = this.#framer.push(chunk);
    } catch (err) {
      // §2: a non-numeric length is fatal for the connection.
      this.#log.warn({ app: this.remote, err: (err as Error).message }, 'closing app connection: bad framing');
      this.close();
      return;
    }
    for (const p of payloads) {
      if (this.#closed) return;
      const m = decode(p);
      if (!m) {
        this.send(`${newUuid()}|response||NO|Invalid message format`);
        continue;
      }
      try {
        this.#onMessage(this, m);
      } catch (err) {
        this.#log.error({ err, app: this.remote, type: m.type }, 'error handling app message');
        this.reply(m.msgId, ['NOK', 'internal server error']);
      }
    }
  }

  /** Writes one framed payload. */
  send(payload: string): void {
    const len = Buffer.byteLength(payload);
    this.#queue(`${len}#${payload}`, undefined, len);
  }

  /**
   * Writes one frame made of a text leader and raw SIP bytes (`<len>#<leader>\r\n<sip>`)
   * without decoding and re-encoding the SIP message.
   */
  sendWithSip(leader: string, sip: Buffer): void {
    const len = Buffer.byteLength(leader) + 2 + sip.length;
    this.#queue(`${len}#${leader}\r\n`, sip, len);
  }

  /**
   * Frames produced in one event-loop iteration leave in one write(2): they are queued and
   * copied into one buffer once the iteration's I/O callbacks have run (setImmediate), so the
   * frames for several datagrams read in one poll cost one system call and one wake-up of the
   * app, and no per-frame stream bookkeeping. (Nagle is off: the write goes out at once.)
   */
  #queue(head: string, sip: Buffer | undefined, payloadBytes: number): void {
    if (this.#closed) return;
    // Frame bytes: the decimal length, '#', then the payload.
    this.#pendingBytes += payloadBytes + head.indexOf('#') + 1;
    this.#pending.push(head, sip);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const parts = this.#pending;
    if (parts.length === 0) return;
    const out = Buffer.allocUnsafe(this.#pendingBytes);
    let off = 0;
    for (let i = 0; i < parts.length; i += 2) {
      off += out.write(parts[i] as string, off, 'utf8');
      const sip = parts[i + 1] as Buffer | undefined;
      if (sip) off += sip.copy(out, off);
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    if (!this.socket.destroyed) this.socket.write(off === out.length ? out : out.subarray(0, off));
  };

  /** `<id>|response|<appMsgId>|<fields>` + CRLF + SIP bytes, `fields` already joined with `|`. */
  replyWithSip(appMsgId: string, fields: string, sip: Buffer): void {
    this.sendWithSip(`${newUuid()}|response|${appMsgId}|${fields}`, sip);
  }

  /** `<id>|response|<appMsgId>|<fields>` [+ CRLF + SIP text]. */
  reply(appMsgId: string, fields: string[], sip?: string): void {
    this.send(`${newUuid()}|response|${appMsgId}|${fields.join('|')}${sip !== undefined ? `\r\n${sip}` : ''}`);
  }

  /** Flushes what was written (e.g. `NO|incorrect secret`), then closes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    // What was queued (e.g. `NO|incorrect secret`) goes out before the end.
    this.#flush();
    this.#closed = true;
    if (this.socket.destroyed) {
      this.#onClose(this);
      return;
    }
    this.socket.end();
    // A peer that never reads must not keep the socket: destroy it after a grace period.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.#onClose(this);
  }
}
