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
  #corked = false;
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
    this.#write([WireFramer.encode(payload)]);
  }

  /**
   * Writes one frame made of a text leader and raw SIP bytes (`<len>#<leader>\r\n<sip>`)
   * without decoding and re-encoding the SIP message.
   */
  sendWithSip(leader: string, sip: Buffer): void {
    const head = Buffer.from(`${leader}\r\n`, 'utf8');
    this.#write([Buffer.from(`${head.length + sip.length}#`, 'latin1'), head, sip]);
  }

  /**
   * Frames written in one event-loop turn leave in one writev: the socket is corked on the first
   * write and uncorked on the next tick (Nagle is off, so each write would be its own segment).
   */
  #write(bufs: Buffer[]): void {
    if (this.#closed) return;
    if (!this.#corked) {
      this.#corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.socket.uncork();
      });
    }
    for (const b of bufs) this.socket.write(b);
  }

  /** `<id>|response|<appMsgId>|<fields>` [+ CRLF + SIP text]. */
  reply(appMsgId: string, fields: string[], sip?: string): void {
    this.send(`${newUuid()}|response|${appMsgId}|${fields.join('|')}${sip !== undefined ? `\r\n${sip}` : ''}`);
  }

  /** Flushes what was written (e.g. `NO|incorrect secret`), then closes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#corked) {
      this.#corked = false;
      this.socket.uncork();
    }
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
