import { AppError } from '../../util/errors.js';

/** Wire-protocol errors (stable codes, see docs/errors.md). */
export class WireProtocolError extends AppError {
  constructor(message: string) {
    super('WIRE_ERR_FRAMING', message);
  }
}

const HASH = 0x23;

/**
 * drachtio wire framing: `<decimal byte length>#<payload>` repeated with no terminator.
 * The length counts UTF-8 BYTES (drachtio-srf writes Buffer.byteLength), so framing works on
 * Buffers and decodes only complete payloads. A non-numeric length is fatal for the connection.
 */
export class WireFramer {
  #buf: Buffer = Buffer.alloc(0);
  readonly #maxBytes: number;

  constructor(maxBytes = 16 * 1024 * 1024) {
    this.#maxBytes = maxBytes;
  }

  /** Feeds bytes; returns every complete payload. Throws WireProtocolError on bad framing. */
  push(chunk: Buffer): string[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: string[] = [];
    let off = 0;
    for (;;) {
      const hash = this.#buf.indexOf(HASH, off);
      if (hash < 0) {
        // No '#' yet: whatever is buffered must be (the start of) a length.
        if (this.#buf.length - off > 12) throw new WireProtocolError('invalid message length prefix');
        for (let i = off; i < this.#buf.length; i++) {
          const c = this.#buf[i]!;
          if (c < 0x30 || c > 0x39) throw new WireProtocolError('invalid message length prefix');
        }
        break;
      }
      if (hash === off || hash - off > 12) throw new WireProtocolError('invalid message length prefix');
      let len = 0;
      for (let i = off; i < hash; i++) {
        const c = this.#buf[i]!;
        if (c < 0x30 || c > 0x39) throw new WireProtocolError('invalid message length prefix');
        len = len * 10 + (c - 0x30);
      }
      if (len > this.#maxBytes) throw new WireProtocolError(`message of ${len} bytes exceeds the limit`);
      const start = hash + 1;
      if (this.#buf.length - start < len) break;
      out.push(this.#buf.toString('utf8', start, start + len));
      off = start + len;
    }
    this.#buf = off === 0 ? this.#buf : this.#buf.subarray(off);
    return out;
  }

  /** Encodes one payload with its byte-length prefix. */
  static encode(payload: string): Buffer {
    const body = Buffer.from(payload, 'utf8');
    return Buffer.concat([Buffer.from(`${body.length}#`, 'latin1'), body]);
  }
}
