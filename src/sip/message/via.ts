import { SipError } from './errors.js';
import { type Params, formatParams, parseParamsStrict } from './params.js';
import { formatHost } from './uri.js';

/** RFC 3261 §20.42: `SIP/2.0/UDP host:port;branch=...;received=...;rport=...` */
export interface Via {
  protocol: string;
  /** Upper-case transport token: UDP, TCP, TLS, SCTP, WS, WSS (or any other token, RFC 4475 §3.1.1.10) */
  transport: string;
  host: string;
  port?: number;
  params: Params;
}

// via-parm = sent-protocol LWS sent-by *( SEMI via-params ); SLASH = SWS "/" SWS; COLON = SWS ":" SWS.
// Linear-time: every repeated group is followed by a character it cannot contain.
const VIA_RE =
  /^[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]*\/[ \t]*([0-9.]+)[ \t]*\/[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)(?:[ \t]*:[ \t]*(\d{1,5}))?[ \t]*(;[^]*)?$/;

/** Parses one Via element (split the header with splitListStrict first). Throws SipError 400. */
export function parseVia(s: string): Via {
  const m = VIA_RE.exec(s);
  if (!m) throw new SipError('SIP_ERR_BAD_HEADER', `malformed Via: ${s.slice(0, 80)}`);
  const host = m[4]!.startsWith('[') ? m[4]!.slice(1, -1) : m[4]!;
  const v: Via = { protocol: `${m[1]}/${m[2]}`, transport: m[3]!.toUpperCase(), host, params: m[6] ? parseParamsStrict(m[6]) : new Map() };
  if (m[5] !== undefined) {
    const p = Number(m[5]);
    if (p > 65535) throw new SipError('SIP_ERR_BAD_HEADER', `invalid Via port: ${m[5]}`);
    v.port = p;
  }
  return v;
}

export function formatVia(v: Via): string {
  return `${v.protocol}/${v.transport} ${formatHost(v.host)}${v.port !== undefined ? `:${v.port}` : ''}${formatParams(v.params)}`;
}
