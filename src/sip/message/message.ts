import { SipError } from './errors.js';
import { LIST_HEADERS, canonicalName, headerKey } from './header-names.js';
import { trimLws } from './lex.js';
import { type NameAddr, parseNameAddr, splitList, splitListStrict } from './name-addr.js';
import { type SipUri, parseUri } from './uri.js';
import { type Via, formatVia, parseVia } from './via.js';

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
  // Typed views, parsed on first use and dropped when their header changes: one slot per
  // header in VIEW_SLOT, allocated with the first view (a parse-only message pays nothing).
  #views: unknown[] | undefined;

  constructor(headers: HeaderField[] = [], body: Buffer = EMPTY) {
    this.headers = headers;
    this.body = body;
  }

  abstract get isRequest(): boolean;
  abstract startLine(): string;

  /** Number of header lines of `name` (compact forms included). */
  count(name: string): number {
    const k = headerKey(name);
    let n = 0;
    for (const h of this.headers) if (h.key === k) n++;
    return n;
  }

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
    this.#drop(k);
    this.headers.push({ name: canonicalName(name), key: k, value });
    return this;
  }

  /** Inserts before the first line of the same header, or at the top (Via, Record-Route). */
  prepend(name: string, value: string): this {
    const k = headerKey(name);
    this.#drop(k);
    const idx = this.headers.findIndex((h) => h.key === k);
    const f: HeaderField = { name: canonicalName(name), key: k, value };
    if (idx < 0) this.headers.unshift(f);
    else this.headers.splice(idx, 0, f);
    return this;
  }

  remove(name: string): this {
    const k = headerKey(name);
    this.#drop(k);
    for (let i = this.headers.length - 1; i >= 0; i--) if (this.headers[i]!.key === k) this.headers.splice(i, 1);
    return this;
  }

  /** Removes the first element of a list header (e.g. the top Via). */
  removeFirst(name: string): this {
    const k = headerKey(name);
    this.#drop(k);
    const idx = this.headers.findIndex((h) => h.key === k);
    if (idx < 0) return this;
    const parts = splitList(this.headers[idx]!.value);
    if (parts.length <= 1) this.headers.splice(idx, 1);
    else this.headers[idx] = { ...this.headers[idx]!, value: parts.slice(1).join(', ') };
    return this;
  }

  /** The parsed view in `slot`, if any. */
  #view<T>(slot: number): T | undefined {
    return this.#views?.[slot] as T | undefined;
  }

  #keep<T>(slot: number, v: T): T {
    // One slot per view (CALL_ID … RECORD_ROUTE below), as a literal: `new Array(n).fill()`
    // goes through a runtime call on every message.
    (this.#views ??= [undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined])[slot] = v;
    return v;
  }

  /** Drops the typed view of header key `k` (nothing when `k` has none). */
  #drop(k: string): void {
    const slot = VIEW_SLOT.get(k);
    if (slot !== undefined && this.#views) this.#views[slot] = undefined;
  }

  #required(name: string): string {
    const v = this.get(name);
    if (v === undefined) throw new SipError('SIP_ERR_MISSING_HEADER', `missing ${canonicalName(name)} header`);
    return v;
  }

  /** Every element of a list header, split strictly (empty elements are a 400), each parsed with `parse`. */
  #list<T>(key: string, parse: (s: string) => T): T[] {
    const out: T[] = [];
    for (const h of this.headers) {
      if (h.key !== key) continue;
      for (const part of splitListStrict(h.value, key)) out.push(parse(part));
    }
    return out;
  }

  /** RFC 3261 §20.8 `callid = word [ "@" word ]`; throws SipError 400 when missing or not a word. */
  get callId(): string {
    const seen = this.#view<string>(CALL_ID);
    if (seen !== undefined) return seen;
    const v = trimLws(this.#required('call-id'));
    if (!CALL_ID_RE.test(v)) throw new SipError('SIP_ERR_BAD_HEADER', `malformed Call-ID: ${v.slice(0, 80)}`);
    return this.#keep(CALL_ID, v);
  }

  /** RFC 3261 §8.1.1.5/§20.16: sequence number below 2**31, method a token. */
  get cseq(): CSeq {
    const seen = this.#view<CSeq>(CSEQ);
    if (seen !== undefined) return seen;
    const m = CSEQ_RE.exec(trimLws(this.#required('cseq')));
    if (!m || m[1]!.length > 10 || Number(m[1]) > 2 ** 31 - 1) throw new SipError('SIP_ERR_BAD_HEADER', 'malformed CSeq');
    return this.#keep(CSEQ, { seq: Number(m[1]), method: m[2]! });
  }

  get from(): NameAddr {
    return this.#view<NameAddr>(FROM) ?? this.#keep(FROM, parseNameAddr(this.#required('from')));
  }

  get to(): NameAddr {
    return this.#view<NameAddr>(TO) ?? this.#keep(TO, parseNameAddr(this.#required('to')));
  }

  get fromTag(): string | undefined {
    return this.from.params.get('tag') ?? undefined;
  }

  get toTag(): string | undefined {
    return this.to.params.get('tag') ?? undefined;
  }

  /** All Via entries, top first. Throws SipError 400 when missing or malformed (RFC 4475 §3.1.2.1). */
  get vias(): Via[] {
    const seen = this.#view<Via[]>(VIA);
    if (seen !== undefined) return seen;
    const all = this.#list('via', parseVia);
    if (all.length === 0) throw new SipError('SIP_ERR_MISSING_HEADER', 'missing Via header');
    return this.#keep(VIA, all);
  }

  get topVia(): Via {
    return this.vias[0]!;
  }

  /** Contact addresses; the `*` wildcard of a REGISTER is left out. */
  get contacts(): NameAddr[] {
    return this.#view<NameAddr[]>(CONTACT) ?? this.#keep(CONTACT, this.#list('contact', (c) => (c === '*' ? null : parseNameAddr(c))).filter((c): c is NameAddr => c !== null));
  }

  /** Route entries, top first (RFC 3261 §20.34). */
  get routes(): NameAddr[] {
    return this.#view<NameAddr[]>(ROUTE) ?? this.#keep(ROUTE, this.#list('route', parseNameAddr));
  }

  /** Record-Route entries, top first (RFC 3261 §20.30). */
  get recordRoutes(): NameAddr[] {
    return this.#view<NameAddr[]>(RECORD_ROUTE) ?? this.#keep(RECORD_ROUTE, this.#list('record-route', parseNameAddr));
  }

  /** RFC 3261 §20.22; 0..255 (RFC 4475 §3.1.2.4). Throws SipError 400 for anything else. */
  get maxForwards(): number | undefined {
    const v = this.get('max-forwards');
    if (v === undefined) return undefined;
    return parseDecimal(v, 255, 'Max-Forwards');
  }

  /** RFC 3261 §20.19 delta-seconds, 0..2**32-1. Throws SipError 400 when malformed or out of range. */
  get expires(): number | undefined {
    const v = this.get('expires');
    if (v === undefined) return undefined;
    return parseDecimal(v, 2 ** 32 - 1, 'Expires');
  }

  /** Content-Type as written (media type and parameters), or undefined. */
  get contentType(): string | undefined {
    return this.get('content-type');
  }

  /**
   * RFC 3261 §20.17: `Date: rfc1123-date`, always GMT. Throws SipError 400 for any other form
   * (RFC 4475 §3.1.2.12: a time zone such as EST is invalid).
   */
  get date(): Date | undefined {
    const v = this.get('date');
    if (v === undefined) return undefined;
    const m = DATE_RE.exec(v);
    const mon = m ? MONTHS.indexOf(m[3]!) : -1;
    if (!m || mon < 0) throw new SipError('SIP_ERR_BAD_HEADER', `malformed Date: ${v.slice(0, 60)}`);
    const d = new Date(Date.UTC(Number(m[4]), mon, Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7])));
    if (Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[2])) throw new SipError('SIP_ERR_BAD_HEADER', `invalid Date: ${v.slice(0, 60)}`);
    return d;
  }

  /**
   * For a message whose `name` lines were copied verbatim from `source` (the Via lines of a
   * response, §8.2.6.2): reuses the source's parsed view instead of parsing the same text again.
   * Typed views are never changed in place (see setTopVia), so they can be shared.
   */
  shareView(source: SipMessage, name: string): void {
    const k = headerKey(name);
    const slot = VIEW_SLOT.get(k);
    const v = slot === undefined ? undefined : source.#view(slot);
    if (v !== undefined) this.#keep(slot!, v);
  }

  /** Invalidate cached typed views (after direct edits of `headers`): all, or those of one header. */
  invalidate(name?: string): void {
    if (name === undefined) this.#views = undefined;
    else this.#drop(headerKey(name));
  }

  /**
   * Replaces the first Via element (e.g. with received/rport added, RFC 3261 §18.2.1) in the
   * header text and in the typed view, so the other parsed headers stay cached. Other elements
   * of the same header line are kept as they are.
   */
  setTopVia(via: Via): void {
    const idx = this.headers.findIndex((h) => h.key === 'via');
    if (idx < 0) throw new SipError('SIP_ERR_MISSING_HEADER', 'missing Via header');
    const f = this.headers[idx]!;
    const text = formatVia(via);
    const value = f.value.indexOf(',') < 0 ? text : [text, ...splitList(f.value).slice(1)].join(', ');
    this.headers[idx] = { name: f.name, key: f.key, value };
    const cached = this.#view<Via[]>(VIA);
    if (cached) {
      const next = cached.slice();
      next[0] = via;
      this.#keep(VIA, next);
    }
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

// The headers with a typed view in SipMessage, and the slot of each.
const CALL_ID = 0;
const CSEQ = 1;
const FROM = 2;
const TO = 3;
const VIA = 4;
const CONTACT = 5;
const ROUTE = 6;
const RECORD_ROUTE = 7;
const VIEW_SLOT: ReadonlyMap<string, number> = new Map([
  ['call-id', CALL_ID],
  ['cseq', CSEQ],
  ['from', FROM],
  ['to', TO],
  ['via', VIA],
  ['contact', CONTACT],
  ['route', ROUTE],
  ['record-route', RECORD_ROUTE],
]);

// callid = word [ "@" word ]; word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
//   "(" / ")" / "<" / ">" / ":" / "\\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
const CALL_ID_RE = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+)?$/;
const CSEQ_RE = /^(\d+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)$/;
const DATE_RE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** 1*DIGIT (leading zeros allowed, RFC 4475 §3.1.1.1) no greater than `max`; SipError 400 otherwise. */
function parseDecimal(v: string, max: number, what: string): number {
  const s = trimLws(v);
  let n = 0;
  if (s.length === 0) throw new SipError('SIP_ERR_BAD_HEADER', `malformed ${what}`);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) throw new SipError('SIP_ERR_BAD_HEADER', `malformed ${what}: ${s.slice(0, 40)}`);
    n = n * 10 + c;
    if (n > max) throw new SipError('SIP_ERR_BAD_HEADER', `${what} out of range: ${s.slice(0, 40)}`);
  }
  return n;
}

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
