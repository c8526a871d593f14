import { SipError } from './errors.js';
import { LIST_HEADERS, canonicalName, headerKey } from './header-names.js';
import { type NameAddr, parseNameAddr, splitList } from './name-addr.js';
import { type SipUri, parseUri } from './uri.js';
import { type Via, parseVia } from './via.js';

/** One header line as it appeared (or will appear) on the wire. */
export interface HeaderField {
  /** The name as written (may be compact). */
  name: string;
  /** Lower-case, compact-expanded key. */
  key: string;
  value: string;
}

export interface CSeq {
  seq: number;
  method: string;
}

/**
 * A SIP message (RFC 3261 §7). Headers keep their order and spelling; typed views (Via, From,
 * To, CSeq ...) are parsed on first use and cached until the header is changed.
 */
export abstract class SipMessage {
  readonly headers: HeaderField[];
  body: Buffer;
  /** The bytes this message was parsed from, if it came from the network. */
  raw?: Buffer;
  #cache = new Map<string, unknown>();

  constructor(headers: HeaderField[] = [], body: Buffer = EMPTY) {
    this.headers = headers;
    this.body = body;
  }

  abstract get isRequest(): boolean;
  abstract startLine(): string;

  has(name: string): boolean {
    const k = headerKey(name);
    return this.headers.some((h) => h.key === k);
  }

  /** First header line's value, or undefined. */
  get(name: string): string | undefined {
    const k = headerKey(name);
    for (const h of this.headers) if (h.key === k) return h.value;
    return undefined;
  }

  /** All values; list headers are split on top-level commas (§7.3.1). */
  getAll(name: string): string[] {
    const k = headerKey(name);
    const list = LIST_HEADERS.has(k);
    const out: string[] = [];
    for (const h of this.headers) {
      if (h.key !== k) continue;
      if (list) out.push(...splitList(h.value));
      else out.push(h.value);
    }
    return out;
  }

  /** Replaces every line of `name` with one line (appended where the first one was, else at the end). */
  set(name: string, value: string): this {
    const k = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === k);
    this.remove(name);
    const f: HeaderField = { name: canonicalName(name), key: k, value };
    if (idx < 0) this.headers.push(f);
    else this.headers.splice(idx, 0, f);
    return this;
  }

  add(name: string, value: string): this {
    const k = headerKey(name);
    this.#cache.delete(k);
    this.headers.push({ name: canonicalName(name), key: k, value });
    return this;
  }

  /** Inserts before the first line of the same header, or at the top (Via, Record-Route). */
  prepend(name: string, value: string): this {
    const k = headerKey(name);
    this.#cache.delete(k);
    const idx = this.headers.findIndex((h) => h.key === k);
    const f: HeaderField = { name: canonicalName(name), key: k, value };
    if (idx < 0) this.headers.unshift(f);
    else this.headers.splice(idx, 0, f);
    return this;
  }

  remove(name: string): this {
    const k = headerKey(name);
    this.#cache.delete(k);
    for (let i = this.headers.length - 1; i >= 0; i--) if (this.headers[i]!.key === k) this.headers.splice(i, 1);
    return this;
  }

  /** Removes the first element of a list header (e.g. the top Via). */
  removeFirst(name: string): this {
    const k = headerKey(name);
    this.#cache.delete(k);
    const idx = this.headers.findIndex((h) => h.key === k);
    if (idx < 0) return this;
    const parts = splitList(this.headers[idx]!.value);
    if (parts.length <= 1) this.headers.splice(idx, 1);
    else this.headers[idx] = { ...this.headers[idx]!, value: parts.slice(1).join(', ') };
    return this;
  }

  #cached<T>(key: string, make: () => T): T {
    if (this.#cache.has(key)) return this.#cache.get(key) as T;
    const v = make();
    this.#cache.set(key, v);
    return v;
  }

  #required(name: string): string {
    const v = this.get(name);
    if (v === undefined) throw new SipError('SIP_ERR_MISSING_HEADER', `missing ${canonicalName(name)} header`);
    return v;
  }

  get callId(): string {
    return this.#cached('call-id', () => this.#required('call-id').trim());
  }

  get cseq(): CSeq {
    return this.#cached('cseq', () => {
      const m = /^\s*(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)\s*$/.exec(this.#required('cseq'));
      if (!m || Number(m[1]) > 2 ** 31 - 1) throw new SipError('SIP_ERR_BAD_HEADER', 'malformed CSeq');
      return { seq: Number(m[1]), method: m[2]! };
    });
  }

  get from(): NameAddr {
    return this.#cached('from', () => parseNameAddr(this.#required('from')));
  }

  get to(): NameAddr {
    return this.#cached('to', () => parseNameAddr(this.#required('to')));
  }

  get fromTag(): string | undefined {
    return this.from.params.get('tag') ?? undefined;
  }

  get toTag(): string | undefined {
    return this.to.params.get('tag') ?? undefined;
  }

  /** All Via entries, top first. */
  get vias(): Via[] {
    return this.#cached('via', () => {
      const all = this.getAll('via');
      if (all.length === 0) throw new SipError('SIP_ERR_MISSING_HEADER', 'missing Via header');
      return all.map(parseVia);
    });
  }

  get topVia(): Via {
    return this.vias[0]!;
  }

  get contacts(): NameAddr[] {
    return this.#cached('contact', () => this.getAll('contact').filter((c) => c.trim() !== '*').map(parseNameAddr));
  }

  get maxForwards(): number | undefined {
    const v = this.get('max-forwards');
    if (v === undefined) return undefined;
    if (!/^\s*\d{1,3}\s*$/.test(v)) throw new SipError('SIP_ERR_BAD_HEADER', 'malformed Max-Forwards');
    return Number(v);
  }

  /** Invalidate cached typed views (after direct edits of `headers`). */
  invalidate(): void {
    this.#cache.clear();
  }

  /** RFC 3261 §7.5/§20.14: serialize; Content-Length is always recomputed in bytes. */
  toBuffer(): Buffer {
    let head = this.startLine() + '\r\n';
    for (const h of this.headers) {
      if (h.key === 'content-length') continue;
      head += `${h.name}: ${h.value}\r\n`;
    }
    head += `Content-Length: ${this.body.length}\r\n\r\n`;
    const hb = Buffer.from(head, 'utf8');
    return this.body.length ? Buffer.concat([hb, this.body], hb.length + this.body.length) : hb;
  }

  toString(): string {
    return this.toBuffer().toString('utf8');
  }
}

export const EMPTY: Buffer = Buffer.alloc(0);

export class SipRequest extends SipMessage {
  method: string;
  uri: string;
  #parsedUri?: SipUri;
  #parsedFor?: string;

  constructor(method: string, uri: string, headers?: HeaderField[], body?: Buffer) {
    super(headers, body);
    this.method = method;
    this.uri = uri;
  }

  get isRequest(): true {
    return true;
  }

  get parsedUri(): SipUri {
    if (this.#parsedFor !== this.uri || !this.#parsedUri) {
      this.#parsedUri = parseUri(this.uri);
      this.#parsedFor = this.uri;
    }
    return this.#parsedUri;
  }

  startLine(): string {
    return `${this.method} ${this.uri} SIP/2.0`;
  }
}

export class SipResponse extends SipMessage {
  status: number;
  reason: string;

  constructor(status: number, reason: string, headers?: HeaderField[], body?: Buffer) {
    super(headers, body);
    this.status = status;
    this.reason = reason;
  }

  get isRequest(): false {
    return false;
  }

  startLine(): string {
    return `SIP/2.0 ${this.status} ${this.reason}`;
  }
}

export function field(name: string, value: string): HeaderField {
  return { name, key: headerKey(name), value };
}
