import { SipError } from './errors.js';
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

export function parseUri(input: string): SipUri {
  const s = input.trim();
  const m = SCHEME_RE.exec(s);
  if (!m) throw new SipError('SIP_ERR_BAD_URI', `unsupported URI scheme: ${s.slice(0, 64)}`);
  const scheme = m[1]!.toLowerCase() as SipUri['scheme'];
  let rest = s.slice(m[0].length);
  if (scheme === 'tel') {
    const semi = rest.indexOf(';');
    const num = semi < 0 ? rest : rest.slice(0, semi);
    if (!num || !/^[+0-9A-Fa-f*#().\-pPwW]+$/.test(num)) throw new SipError('SIP_ERR_BAD_URI', `invalid tel URI: ${s.slice(0, 64)}`);
    return { scheme, user: num, host: '', params: semi < 0 ? new Map() : parseParams(rest.slice(semi)) };
  }
  let headers: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
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
    if (!user || /[\s<>"]/.test(user)) throw new SipError('SIP_ERR_BAD_URI', `invalid user part in URI: ${s.slice(0, 64)}`);
  }
  const semi = rest.indexOf(';');
  const hostport = semi < 0 ? rest : rest.slice(0, semi);
  const params = semi < 0 ? new Map<string, string | null>() : parseParams(rest.slice(semi));
  let host: string;
  let portStr: string | undefined;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) throw new SipError('SIP_ERR_BAD_URI', `invalid IPv6 reference: ${s.slice(0, 64)}`);
    host = hostport.slice(1, close);
    const after = hostport.slice(close + 1);
    if (after) {
      if (!after.startsWith(':')) throw new SipError('SIP_ERR_BAD_URI', `invalid host:port: ${s.slice(0, 64)}`);
      portStr = after.slice(1);
    }
  } else {
    const colon = hostport.indexOf(':');
    host = colon < 0 ? hostport : hostport.slice(0, colon);
    if (colon >= 0) portStr = hostport.slice(colon + 1);
  }
  if (!host || !/^[A-Za-z0-9.\-_:]+$/.test(host)) throw new SipError('SIP_ERR_BAD_URI', `invalid host in URI: ${s.slice(0, 64)}`);
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
