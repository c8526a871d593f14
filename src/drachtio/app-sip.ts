import { type HeaderField, TOKEN_RE, canonicalName, headerKey } from '../sip/message/index.js';

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
  let sepLen = 4;
  if (sep < 0) {
    sep = text.length;
    sepLen = 0;
  }
  const head = text.slice(0, sep);
  const bodyText = sepLen ? text.slice(sep + sepLen) : '';
  const lines = head.split('\r\n');
  const first = (lines[0] ?? '').trim();
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
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!name || !TOKEN_RE.test(name)) {
      out.dropped.push(line.slice(0, 80));
      continue;
    }
    const key = headerKey(name);
    if (IGNORED.has(key)) continue;
    out.headers.push({ name, key, value: line.slice(colon + 1).trim() });
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
