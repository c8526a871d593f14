/**
 * Stream framing for SIP over TCP/TLS (RFC 3261 §18.3) with RFC 5626 §4.4.1 CRLF keep-alives.
 *
 * RFC 3261 §18.3: "In the case of stream-oriented transports such as TCP, the Content-Length
 * header field indicates the size of the body. All stream-oriented transports MUST use
 * Content-Length." The framer cuts the byte stream into whole messages at the end of the
 * header section + Content-Length; it does not parse the message (parseMessage does that).
 *
 * RFC 5626 §4.4.1: a "ping" is a double CRLF sent between messages; the receiver answers it
 * with a single CRLF "pong". A lone CRLF between messages (a pong, or the leading CRLFs of
 * RFC 3261 §7.5) is skipped.
 *
 * The framer never throws. After an error it is `failed` and ignores further input: the
 * transport answers (513/400) if it can and closes the connection.
 */

export interface FramerOptions {
  /** Largest header section (start line + headers + blank line) accepted. Default 32 KiB. */
  maxHeaderBytes?: number;
  /** Largest whole message (header section + body) accepted. Default 64 KiB. */
  maxMessageBytes?: number;
  /** Called for every RFC 5626 ping (in addition to the `ping` result), so the transport can write a pong. */
  onPing?: () => void;
}

export type FramerErrorCode = 'SIP_ERR_TOO_LARGE' | 'SIP_ERR_CONTENT_LENGTH';

export type FrameResult =
  | { type: 'message'; data: Buffer }
  | { type: 'ping' }
  | {
      type: 'error';
      code: FramerErrorCode;
      /** SIP status to answer with when the request can be parsed far enough: 513 or 400. */
      statusCode: number;
      reason: string;
      /**
       * The header section received so far (complete lines only, without body), for a
       * best-effort parse that lets the transport answer the request.
       */
      head: Buffer;
    };

export const DEFAULT_MAX_HEADER_BYTES = 32 * 1024;
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);

// `Content-Length` or its compact form `l` (RFC 3261 §7.3.3), at the start of a header line.
const CL_LINE = /^(?:content-length|l)[ \t]*:[ \t]*(.*?)[ \t]*$/i;

export class StreamFramer {
  readonly maxHeaderBytes: number;
  readonly maxMessageBytes: number;
  #onPing: (() => void) | undefined;
  #buf: Buffer = EMPTY;
  /** Where the search for the end of the header section resumes (avoids O(n²) on slow drips). */
  #scanFrom = 0;
  /** Once the header section is known: total bytes of the message being assembled. */
  #need = -1;
  #failed = false;

  constructor(opts: FramerOptions = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxHeaderBytes = Math.min(opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES, this.maxMessageBytes);
    this.#onPing = opts.onPing;
  }

  /** True after an error: further input is ignored. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * True while part of a message (not just keep-alive CRLFs) is buffered: the transport's
   * header timer (slowloris protection) runs while this is set.
   */
  get partial(): boolean {
    if (this.#failed) return false;
    for (let i = 0; i < this.#buf.length; i++) {
      const c = this.#buf[i];
      if (c !== CR && c !== LF) return true;
    }
    return false;
  }

  /** Bytes currently buffered. */
  get buffered(): number {
    return this.#buf.length;
  }

  /** Feeds bytes; returns every complete message, ping and error found so far, in order. */
  push(chunk: Buffer): FrameResult[] {
    const out: FrameResult[] = [];
    if (this.#failed || chunk.length === 0) return out;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const r = this.#next();
      if (!r) break;
      out.push(r);
      if (r.type === 'error') break;
    }
    return out;
  }

  #consume(n: number): void {
    this.#buf = n >= this.#buf.length ? EMPTY : this.#buf.subarray(n);
    this.#scanFrom = 0;
    this.#need = -1;
  }

  #fail(code: FramerErrorCode, reason: string, head: Buffer): FrameResult {
    this.#failed = true;
    this.#buf = EMPTY;
    return { type: 'error', code, statusCode: code === 'SIP_ERR_TOO_LARGE' ? 513 : 400, reason, head };
  }

  #next(): FrameResult | undefined {
    if (this.#need < 0) {
      // Between messages: keep-alives and stray line ends.
      while (this.#buf.length > 0) {
        const c0 = this.#buf[0];
        if (c0 === LF) {
          this.#consume(1);
          continue;
        }
        if (c0 !== CR) break;
        if (this.#buf.length < 2) return undefined;
        if (this.#buf[1] !== LF) break; // a bare CR: let it be part of a (malformed) message
        // CRLF: a ping when another CRLF follows; wait until that can be decided.
        if (this.#buf.length < 3) return undefined;
        if (this.#buf[2] === CR) {
          if (this.#buf.length < 4) return undefined;
          if (this.#buf[3] === LF) {
            this.#consume(4);
            this.#onPing?.();
            return { type: 'ping' };
          }
        }
        this.#consume(2);
      }
      const buf = this.#buf;
      if (buf.length === 0) return undefined;
      const [end, sepLen] = findHeaderEnd(buf, Math.max(0, this.#scanFrom - 3));
      if (end < 0) {
        this.#scanFrom = buf.length;
        if (buf.length > this.maxHeaderBytes) {
          return this.#fail('SIP_ERR_TOO_LARGE', `header section exceeds ${this.maxHeaderBytes} bytes`, completeLines(buf, this.maxHeaderBytes));
        }
        return undefined;
      }
      const headLen = end + sepLen;
      const head = buf.subarray(0, headLen);
      if (headLen > this.maxHeaderBytes) {
        return this.#fail('SIP_ERR_TOO_LARGE', `header section exceeds ${this.maxHeaderBytes} bytes`, completeLines(head, this.maxHeaderBytes));
      }
      const cl = contentLength(head);
      if (typeof cl === 'string') return this.#fail('SIP_ERR_CONTENT_LENGTH', cl, head);
      if (headLen + cl > this.maxMessageBytes) {
        return this.#fail('SIP_ERR_TOO_LARGE', `message of ${headLen + cl} bytes exceeds ${this.maxMessageBytes}`, head);
      }
      this.#need = headLen + cl;
    }
    const buf = this.#buf;
    if (buf.length < this.#need) return undefined;
    // Copy so the message does not pin the (possibly much larger) socket chunk.
    const data = Buffer.from(buf.subarray(0, this.#need));
    this.#consume(this.#need);
    return { type: 'message', data };
  }
}

/** Index of the LF that starts the blank line ending the header section, and the separator length (LFLF=2, LFCRLF=3). */
function findHeaderEnd(buf: Buffer, from: number): [number, number] {
  let i = buf.indexOf(LF, from);
  while (i >= 0 && i < buf.length - 1) {
    const n = buf[i + 1];
    if (n === LF) return [i, 2];
    if (n === CR) {
      if (i + 2 >= buf.length) return [-1, 0];
      if (buf[i + 2] === LF) return [i, 3];
    }
    i = buf.indexOf(LF, i + 1);
  }
  return [-1, 0];
}

/** The header section's Content-Length, or a reason string when it is missing/invalid. */
function contentLength(head: Buffer): number | string {
  const lines = head.toString('latin1').split(/\r?\n/);
  let value: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const m = CL_LINE.exec(lines[i]!);
    if (!m) continue;
    const v = m[1]!;
    if (!/^\d{1,9}$/.test(v)) return `invalid Content-Length: ${v.slice(0, 20)}`;
    const n = Number(v);
    if (value !== undefined && value !== n) return 'conflicting Content-Length headers';
    value = n;
  }
  // RFC 3261 §18.3: mandatory over streams.
  if (value === undefined) return 'missing Content-Length on a stream transport';
  return value;
}

/** The bytes up to the last line end within `limit`, for a best-effort parse of an oversized head. */
function completeLines(buf: Buffer, limit: number): Buffer {
  const slice = buf.subarray(0, Math.min(buf.length, limit));
  const last = slice.lastIndexOf(LF);
  return last < 0 ? EMPTY : Buffer.from(slice.subarray(0, last + 1));
}
