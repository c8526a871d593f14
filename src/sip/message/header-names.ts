import { isToken } from './lex.js';

/** RFC 3261 §7.3.3 compact forms (+ RFC 3515 r, RFC 3892 b, RFC 4028 x, RFC 3841 j/d/a, RFC 3265 o/u, RFC 4474 y/n). */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type',
  f: 'from', s: 'subject', k: 'supported', t: 'to', v: 'via', r: 'refer-to', b: 'referred-by',
  x: 'session-expires', o: 'event', u: 'allow-events', a: 'accept-contact', j: 'reject-contact',
  d: 'request-disposition', y: 'identity', n: 'identity-info',
};

const CANONICAL: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID', cseq: 'CSeq', via: 'Via', from: 'From', to: 'To', contact: 'Contact',
  'content-length': 'Content-Length', 'content-type': 'Content-Type', 'max-forwards': 'Max-Forwards',
  'record-route': 'Record-Route', route: 'Route', www_authenticate: 'WWW-Authenticate',
  'www-authenticate': 'WWW-Authenticate', rseq: 'RSeq', rack: 'RAck', 'p-asserted-identity': 'P-Asserted-Identity',
  'p-preferred-identity': 'P-Preferred-Identity', 'mime-version': 'MIME-Version', 'sip-etag': 'SIP-ETag', 'sip-if-match': 'SIP-If-Match',
  'min-se': 'Min-SE',
};

// Header names repeat on every message: remember the keys of the names seen (bounded, so a
// peer inventing names cannot grow it without limit).
const KEY_CACHE = new Map<string, string>();
const KEY_CACHE_MAX = 1024;

// Names that passed the RFC 3261 §25.1 token check → their keys (bounded like KEY_CACHE).
const TOKEN_KEY_CACHE = new Map<string, string>();

/**
 * The key of a header name read from input (a network message or an app's SIP text), or
 * undefined when the name is not a token (RFC 3261 §25.1 `header-name = token`).
 */
export function tokenHeaderKey(name: string): string | undefined {
  const hit = TOKEN_KEY_CACHE.get(name);
  if (hit !== undefined) return hit;
  if (!isToken(name)) return undefined;
  const k = headerKey(name);
  if (TOKEN_KEY_CACHE.size < KEY_CACHE_MAX) TOKEN_KEY_CACHE.set(name, k);
  return k;
}

/**
 * Header names as they are usually written, by first character code: a parser that finds one
 * of these spellings in its input uses the constant (and its key) instead of cutting a new
 * string from the message and hashing it for the key lookup. Any other spelling takes the
 * general path (tokenHeaderKey).
 */
const COMMON_NAMES: ReadonlyArray<ReadonlyArray<readonly [string, string]>> = (() => {
  const names = [
    'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Type', 'Content-Length',
    'Record-Route', 'Route', 'Allow', 'Supported', 'Require', 'User-Agent', 'Server', 'Subject', 'Expires',
    'Session-Expires', 'Min-SE', 'P-Asserted-Identity', 'P-Preferred-Identity', 'Privacy', 'Accept', 'Reason',
    'RSeq', 'RAck', 'Event', 'Allow-Events', 'Date', 'Timestamp', 'Authorization', 'Proxy-Authorization',
    'WWW-Authenticate', 'Proxy-Authenticate', 'Refer-To', 'Referred-By', 'Replaces', 'Diversion',
    'Subscription-State', 'Content-Disposition', 'X-MS-SBC',
    'v', 'f', 't', 'i', 'm', 'l', 'c', 'k', 's', 'x', 'r', 'b', 'o', 'u',
  ];
  const byFirst: Array<Array<readonly [string, string]>> = Array.from({ length: 128 }, () => []);
  for (const n of names) byFirst[n.charCodeAt(0)]!.push([n, headerKey(n)]);
  return byFirst;
})();

/**
 * The constant spelling and key of the header name `text.slice(start, end)` when it is one of
 * the common spellings, else undefined (the caller then cuts the name and uses tokenHeaderKey).
 */
export function commonHeaderName(text: string, start: number, end: number): readonly [string, string] | undefined {
  const c = text.charCodeAt(start);
  if (c >= 128) return undefined;
  const len = end - start;
  for (const entry of COMMON_NAMES[c]!) {
    if (entry[0].length === len && text.startsWith(entry[0], start)) return entry;
  }
  return undefined;
}

/** Lower-case, compact-form-expanded key used for lookups. */
export function headerKey(name: string): string {
  const hit = KEY_CACHE.get(name);
  if (hit !== undefined) return hit;
  const l = name.toLowerCase();
  const k = l.length === 1 ? (COMPACT_FORMS[l] ?? l) : l;
  if (KEY_CACHE.size < KEY_CACHE_MAX) KEY_CACHE.set(name, k);
  return k;
}

// Every header added to a message is spelled through canonicalName: remember the answers.
const CANONICAL_CACHE = new Map<string, string>();

/** Canonical spelling of a header name: known names as the RFCs write them, others Word-Capitalized. */
export function canonicalName(name: string): string {
  const hit = CANONICAL_CACHE.get(name);
  if (hit !== undefined) return hit;
  const k = headerKey(name);
  const c = Object.hasOwn(CANONICAL, k) ? CANONICAL[k]! : k.replace(/(^|-)([a-z])/g, (_m, d: string, ch: string) => d + ch.toUpperCase());
  if (CANONICAL_CACHE.size < KEY_CACHE_MAX) CANONICAL_CACHE.set(name, c);
  return c;
}

/**
 * Headers whose values are comma-separated lists (RFC 3261 §7.3.1), so that several header
 * lines and one line with commas are equivalent. Authorization-style headers are NOT lists.
 */
export const LIST_HEADERS = new Set([
  'via', 'route', 'record-route', 'contact', 'allow', 'supported', 'require', 'proxy-require',
  'unsupported', 'accept', 'accept-encoding', 'accept-language', 'allow-events', 'content-encoding',
  'in-reply-to', 'p-asserted-identity', 'path', 'service-route', 'history-info', 'diversion', 'reason',
]);

/** RFC 3261 §25.1 token characters. */
export const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
