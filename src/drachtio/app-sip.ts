import { type HeaderField, canonicalName, commonHeaderName, tokenHeaderKey } from '../sip/message/index.js';

/**
 * SIP text as an app sends it (drachtio-wire-protocol.md §5): any header case, no Via, a
 * Content-Length that may be wrong (srf counts JS characters), a body that is everything after
 * the blank line. This is NOT network input; it is parsed leniently and then rebuilt.
 */
export interface AppSip {
  isResponse: boolean;
  method: string;
  uri: string;
  status: number;
  reason: string;
  /** Headers the app supplied, minus the ones the server always computes. */
  headers: HeaderField[];
  body: Buffer;
  /** Header lines dropped as invalid (logged by the caller). */
  dropped: string[];
}

/** §5: supplied by the app but always computed by the server. */
const IGNORED = new Set(['via', 'route', 'record-route', 'rseq', 'content-length']);

export function parseAppSip(text: string): AppSip | undefined {
  let sep = text.indexOf('\r\n\r\n');
  let bodyText = '';
  if (sep < 0) sep = text.length;
  else bodyText = text.slice(sep + 4);
  // One pass over the header section, line by line (no intermediate array of lines).
  let eol = text.indexOf('\r\n');
  if (eol < 0 || eol > sep) eol = sep;
  const first = text.slice(0, eol).trim();
  const out: AppSip = { isResponse: false, method: '', uri: '', status: 0, reason: '', headers: [], body: Buffer.from(bodyText, 'utf8'), dropped: [] };
  const sm = /^SIP\/2\.0\s+(\d{3})\s*(.*)$/i.exec(first);
  if (sm) {
    out.isResponse = true;
    out.status = Number(sm[1]);
    out.reason = sm[2] ?? '';
  } else {
    const rm = /^([A-Za-z]+)\s+(\S+)(?:\s+SIP\/2\.0)?$/i.exec(first);
    if (!rm) return undefined;
    out.method = rm[1]!.toUpperCase();
    out.uri = rm[2]!;
  }
  for (let pos = eol + 2; pos < sep; ) {
    let end = text.indexOf('\r\n', pos);
    if (end < 0 || end > sep) end = sep;
    if (end > pos) {
      const colon = text.indexOf(':', pos);
      const common = colon > pos && colon < end ? commonHeaderName(text, pos, colon) : undefined;
      const name = common ? common[0] : colon > pos && colon < end ? text.slice(pos, colon).trim() : '';
      const key = common ? common[1] : name ? tokenHeaderKey(name) : undefined;
      if (key === undefined) out.dropped.push(text.slice(pos, Math.min(end, pos + 80)));
      else if (!IGNORED.has(key)) out.headers.push({ name, key, value: text.slice(colon + 1, end).trim() });
    }
    pos = end + 2;
  }
  return out;
}

/**
 * Name used on the wire for an app header: well-known ones canonical; custom ones with each
 * dash-separated word capitalised, except `X-…`/`x-…` names which are kept as given (§5).
 */
export function wireHeaderName(name: string): string {
  if (/^x-/i.test(name)) return name;
  return canonicalName(name);
}
