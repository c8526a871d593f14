import { SipError } from './errors.js';
import { canonicalName } from './header-names.js';
import { SCHEME_PREFIX_RE, hasLws, isTokenChar, isWsp, sliceLws, trimLws } from './lex.js';
import { type Params, formatParams, parseParamsStrict, quotedEnd } from './params.js';

/**
 * RFC 3261 §20.10/§25.1: `name-addr / addr-spec` followed by header params
 * (From, To, Contact, Route, Record-Route, Refer-To, P-Asserted-Identity ...).
 * The URI is kept as text; parse it with parseUri() when needed (unknown schemes are legal
 * here, RFC 4475 §3.3.4).
 */
export interface NameAddr {
  /**
   * Display name as text: a quoted-string is unquoted and its quoted-pairs resolved
   * (`"J Rosenberg \\\""` gives `J Rosenberg \"`); a token display name is kept as written.
   */
  displayName?: string;
  uri: string;
  params: Params;
  /** true when written as `<uri>` */
  bracketed: boolean;
}

function bad(why: string, s: string): SipError {
  return new SipError('SIP_ERR_BAD_HEADER', `${why}: ${s.slice(0, 80)}`);
}

/** Throws SipError 400 (SIP_ERR_BAD_HEADER) for anything that is not `name-addr / addr-spec *(SEMI param)`. */
export function parseNameAddr(input: string): NameAddr {
  const s = trimLws(input);
  if (!s) throw bad('empty address', input);
  let displayName: string | undefined;
  let lt: number;
  if (s.charCodeAt(0) === 34) {
    // display-name = quoted-string; quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
    const close = quotedEnd(s, 0);
    if (close < 0) throw bad('unterminated quoted display name', s);
    displayName = unquote(s.slice(1, close));
    lt = close + 1;
    while (lt < s.length && isWsp(s.charCodeAt(lt))) lt++;
    if (s[lt] !== '<') throw bad('quoted display name without <uri>', s);
  } else {
    lt = s.indexOf('<');
    if (lt >= 0) {
      // display-name = *(token LWS): only token characters and whitespace (RFC 4475 §3.1.2.15).
      const dn = sliceLws(s, 0, lt);
      for (let k = 0; k < dn.length; k++) {
        const c = dn.charCodeAt(k);
        if (!isTokenChar(c) && !isWsp(c)) throw bad('display name has non-token characters (quote it)', s);
      }
      if (dn) displayName = dn;
    }
  }
  if (lt >= 0) {
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) throw bad('unterminated <uri>', s);
    const uri = s.slice(lt + 1, gt);
    // LAQUOT addr-spec RAQUOT: no whitespace inside the brackets (RFC 4475 §3.1.2.14).
    if (!uri || hasLws(uri)) throw bad('whitespace or nothing inside <>', s);
    if (!SCHEME_PREFIX_RE.test(uri)) throw bad('address without a URI scheme', s);
    const na: NameAddr = { uri, params: parseParamsStrict(s.slice(gt + 1)), bracketed: true };
    if (displayName !== undefined) na.displayName = displayName;
    return na;
  }
  // addr-spec: URI params cannot be told from header params, so (RFC 3261 §20) everything
  // after the first ';' is a header parameter, and a URI with ',' '?' or ';' MUST be in <>.
  const semi = s.indexOf(';');
  const uri = sliceLws(s, 0, semi < 0 ? s.length : semi);
  if (!uri) throw bad('empty address', s);
  if (hasLws(uri) || /[?,<>"]/.test(uri)) throw bad('addr-spec with whitespace or ?,<>" must be enclosed in <>', s);
  if (!SCHEME_PREFIX_RE.test(uri)) throw bad('address without a URI scheme', s);
  return { uri, params: semi < 0 ? new Map() : parseParamsStrict(s.slice(semi)), bracketed: false };
}

/** Resolves quoted-pairs of the inside of a quoted-string. */
export function unquote(inner: string): string {
  if (inner.indexOf('\\') < 0) return inner;
  let out = '';
  for (let k = 0; k < inner.length; k++) {
    if (inner.charCodeAt(k) === 92 && k + 1 < inner.length) k++;
    out += inner[k];
  }
  return out;
}

/** Makes a quoted-string of `text` (escapes `"` and `\`). */
export function quote(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Always writes the `<uri>` form; the display name (plain text, as parseNameAddr returns it)
 * is written as a quoted-string with `"` and `\` escaped, so parse ∘ format is the identity.
 */
export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName !== undefined ? quote(na.displayName) + ' ' : '';
  return `${dn}<${na.uri}>${formatParams(na.params)}`;
}

/** Splits a header value on commas that are outside quotes and angle brackets. Empty elements are dropped. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 92) i++;
      else if (c === 34) quoted = false;
    } else if (c === 34) quoted = true;
    else if (c === 60) depth++;
    else if (c === 62) depth = Math.max(0, depth - 1);
    else if (c === 44 && depth === 0) {
      const part = sliceLws(value, start, i);
      if (part) out.push(part);
      start = i + 1;
    }
  }
  const last = sliceLws(value, start, value.length);
  if (last) out.push(last);
  return out;
}

/**
 * RFC 3261 §7.3.1 `header = name HCOLON value *(COMMA value)`: like splitList, but an empty
 * element (`a,,b`, a trailing comma, an empty header), an unterminated quote or an unclosed
 * `<` is a syntax error (SipError 400). Used by the typed list views (Via, Contact, Route ...).
 */
export function splitListStrict(value: string, header: string): string[] {
  // Fast path: one element, nothing to balance (the common Via/Route/Contact line).
  if (value.indexOf(',') < 0 && value.indexOf('"') < 0 && value.indexOf('<') < 0) {
    const one = trimLws(value);
    if (!one) throw bad(`empty element in ${canonicalName(header)}`, value);
    return [one];
  }
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  const n = value.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? value.charCodeAt(i) : 44;
    if (quoted && i < n) {
      if (c === 92) i++;
      else if (c === 34) quoted = false;
      continue;
    }
    if (c === 34) quoted = true;
    else if (c === 60) depth++;
    else if (c === 62) depth = Math.max(0, depth - 1);
    else if (c === 44 && (depth === 0 || i === n)) {
      if (i === n && (quoted || depth > 0)) throw bad(`unbalanced quote or <> in ${canonicalName(header)}`, value);
      const part = sliceLws(value, start, i);
      if (!part) throw bad(`empty element in ${canonicalName(header)}`, value);
      out.push(part);
      start = i + 1;
    }
  }
  return out;
}
