import { SipError } from './errors.js';
import { type Params, formatParams, parseParams } from './params.js';

/**
 * RFC 3261 §20.10/§25.1: `name-addr / addr-spec` followed by header params
 * (From, To, Contact, Route, Record-Route, Refer-To, P-Asserted-Identity ...).
 * The URI is kept as text; parse it with parseUri() when needed.
 */
export interface NameAddr {
  displayName?: string;
  uri: string;
  params: Params;
  /** true when written as `<uri>` */
  bracketed: boolean;
}

export function parseNameAddr(input: string): NameAddr {
  const s = input.trim();
  let i = 0;
  let displayName: string | undefined;
  if (s.startsWith('"')) {
    let k = 1;
    while (k < s.length && s[k] !== '"') k += s[k] === '\\' ? 2 : 1;
    if (k >= s.length) throw new SipError('SIP_ERR_BAD_HEADER', 'unterminated quoted display name');
    displayName = s.slice(1, k);
    i = k + 1;
  }
  const lt = s.indexOf('<', i);
  if (lt >= 0) {
    const gt = s.indexOf('>', lt);
    if (gt < 0) throw new SipError('SIP_ERR_BAD_HEADER', 'unterminated <uri>');
    if (displayName === undefined) {
      const dn = s.slice(i, lt).trim();
      if (dn) displayName = dn;
    }
    const uri = s.slice(lt + 1, gt).trim();
    const na: NameAddr = { uri, params: parseParams(s.slice(gt + 1)), bracketed: true };
    if (displayName !== undefined) na.displayName = displayName;
    return na;
  }
  if (displayName !== undefined) throw new SipError('SIP_ERR_BAD_HEADER', 'display name without <uri>');
  // addr-spec: URI params cannot be distinguished from header params, so (RFC 3261 §20)
  // everything after the first ';' is a header parameter.
  const semi = s.indexOf(';');
  const uri = (semi < 0 ? s : s.slice(0, semi)).trim();
  if (!uri) throw new SipError('SIP_ERR_BAD_HEADER', 'empty address');
  return { uri, params: semi < 0 ? new Map() : parseParams(s.slice(semi)), bracketed: false };
}

export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName !== undefined ? (na.displayName.startsWith('"') ? na.displayName : `"${na.displayName}"`) + ' ' : '';
  return `${dn}<${na.uri}>${formatParams(na.params)}`;
}

/** Splits a header value on commas that are outside quotes and angle brackets. */
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
      const part = value.slice(start, i).trim();
      if (part) out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}
