import { SipError } from './errors.js';
import { trimLws } from './lex.js';
import { type Params, formatParams, parseParams } from './params.js';

/**
 * RFC 3261 §19.1 SIP and SIPS URIs, and RFC 3966 tel URIs.
 * `sip:user:password@host:port;uri-parameters?headers`
 */
export interface SipUri {
  scheme: 'sip' | 'sips' | 'tel';
  /** User part, still %-escaped as written. For tel: the number. */
  user?: string;
  password?: string;
  /** Host without brackets for IPv6 (`::1`); empty for tel. */
  host: string;
  port?: number;
  params: Params;
  /** Raw `?` header part without the `?`. */
  headers?: string;
}

const SCHEME_RE = /^(sips?|tel):/i;
const HOST_RE = /^[A-Za-z0-9.\-_]+$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;
const TEL_RE = /^[+0-9A-Fa-f*#().\-pPwW]+$/;
/** Characters never allowed unescaped in a URI: CTLs, SP, DQUOTE, `<`, `>` (RFC 3986 §2; RFC 3261 §25.1). */
const FORBIDDEN_RE = /[\x00-\x20"<>\x7f]/;

/**
 * RFC 3261 §19.1.1 / §25.1. Throws SipError SIP_ERR_BAD_URI (416) for a scheme other than
 * sip/sips/tel and for a malformed URI. The userinfo ends at the first `@`, so a user part may
 * carry `;` and `?` (RFC 4475 §3.1.1.2, §3.1.1.9); `?` after the host starts the headers.
 */
export function parseUri(input: string): SipUri {
  const s = trimLws(input);
  const m = SCHEME_RE.exec(s);
  if (!m) throw new SipError('SIP_ERR_BAD_URI', `unsupported URI scheme: ${s.slice(0, 64)}`);
  if (FORBIDDEN_RE.test(s)) throw new SipError('SIP_ERR_BAD_URI', `invalid character in URI: ${s.slice(0, 64)}`);
  const scheme = m[1]!.toLowerCase() as SipUri['scheme'];
  let rest = s.slice(m[0].length);
  if (scheme === 'tel') {
    // RFC 3966: telephone-subscriber = global-number / local-number, then ;par
    const semi = rest.indexOf(';');
    const num = semi < 0 ? rest : rest.slice(0, semi);
    if (!num || !TEL_RE.test(num)) throw new SipError('SIP_ERR_BAD_URI', `invalid tel URI: ${s.slice(0, 64)}`);
    return { scheme, user: num, host: '', params: semi < 0 ? new Map() : uriParams(rest.slice(semi)) };
  }
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const ui = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = ui.indexOf(':');
    if (colon >= 0) {
      user = ui.slice(0, colon);
      password = ui.slice(colon + 1);
    } else {
      user = ui;
    }
    if (!user) throw new SipError('SIP_ERR_BAD_URI', `empty user part in URI: ${s.slice(0, 64)}`);
  }
  let headers: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const semi = rest.indexOf(';');
  const hostport = semi < 0 ? rest : rest.slice(0, semi);
  const params = semi < 0 ? new Map<string, string | null>() : uriParams(rest.slice(semi));
  let host: string;
  let portStr: string | undefined;
  if (hostport.startsWith('[')) {
    // IPv6reference = "[" IPv6address "]"
    const close = hostport.indexOf(']');
    if (close < 0) throw new SipError('SIP_ERR_BAD_URI', `invalid IPv6 reference: ${s.slice(0, 64)}`);
    host = hostport.slice(1, close);
    if (!IPV6_RE.test(host) || !host.includes(':')) throw new SipError('SIP_ERR_BAD_URI', `invalid IPv6 reference: ${s.slice(0, 64)}`);
    const after = hostport.slice(close + 1);
    if (after) {
      if (!after.startsWith(':')) throw new SipError('SIP_ERR_BAD_URI', `invalid host:port: ${s.slice(0, 64)}`);
      portStr = after.slice(1);
    }
  } else {
    const colon = hostport.indexOf(':');
    host = colon < 0 ? hostport : hostport.slice(0, colon);
    if (colon >= 0) portStr = hostport.slice(colon + 1);
    if (!host || !HOST_RE.test(host)) throw new SipError('SIP_ERR_BAD_URI', `invalid host in URI: ${s.slice(0, 64)}`);
  }
  let port: number | undefined;
  if (portStr !== undefined) {
    if (!/^\d{1,5}$/.test(portStr) || Number(portStr) > 65535) throw new SipError('SIP_ERR_BAD_URI', `invalid port in URI: ${s.slice(0, 64)}`);
    port = Number(portStr);
  }
  const uri: SipUri = { scheme, host, params };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (port !== undefined) uri.port = port;
  if (headers !== undefined) uri.headers = headers;
  return uri;
}

/**
 * URI parameters. Values stay as written (still escaped); a name written with %-escapes is
 * stored unescaped when that yields plain characters, so `;%6C%72` is found as `lr`
 * (RFC 3261 §19.1.4: escaped and unescaped characters compare equal; RFC 4475 §3.1.1.3).
 */
function uriParams(s: string): Params {
  const p = parseParams(s);
  let escaped = false;
  for (const k of p.keys()) if (k.includes('%')) escaped = true;
  if (!escaped) return p;
  const out: Params = new Map();
  for (const [k, v] of p) {
    const u = k.includes('%') ? unescapeUri(k).toLowerCase() : k;
    out.set(/^[A-Za-z0-9\-_.!~*'()[\]/:&+$]+$/.test(u) ? u : k, v);
  }
  return out;
}

/**
 * Resolves RFC 3986 %-escapes (`%75se%72` gives `user`, `%00` gives NUL). Escaped octets are
 * decoded as UTF-8; a `%` not followed by two hex digits is kept as it is (RFC 4475 §3.1.1.5).
 */
export function unescapeUri(s: string): string {
  if (s.indexOf('%') < 0) return s;
  let out = '';
  const bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length) {
      out += Buffer.from(bytes).toString('utf8');
      bytes.length = 0;
    }
  };
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) === 37 && i + 2 < s.length && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      flush();
      out += s[i];
    }
  }
  flush();
  return out;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

export function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export function formatUri(u: SipUri): string {
  if (u.scheme === 'tel') return `tel:${u.user ?? ''}${formatParams(u.params)}`;
  let s = `${u.scheme}:`;
  if (u.user !== undefined) s += u.password !== undefined ? `${u.user}:${u.password}@` : `${u.user}@`;
  s += formatHost(u.host);
  if (u.port !== undefined) s += `:${u.port}`;
  s += formatParams(u.params);
  if (u.headers) s += `?${u.headers}`;
  return s;
}

/** Transport named by a URI: its `transport` param, else tls for sips, else udp. */
export function uriTransport(u: SipUri): 'udp' | 'tcp' | 'tls' | 'ws' | 'wss' | undefined {
  const t = u.params.get('transport');
  if (t) return t.toLowerCase() as 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  return undefined;
}
