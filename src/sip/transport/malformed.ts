import { TOKEN_RE, headerKey } from '../message/header-names.js';
import { type HeaderField, SipRequest, SipResponse } from '../message/message.js';
import { newTag } from '../../util/ids.js';
import { reasonPhrase as standardReason } from '../message/status.js';

/**
 * Best-effort handling of input that failed to parse or validate: recover enough of a request
 * (start line + header lines that look sane) to answer it with 400/513/505/416, as RFC 3261
 * §8.2 and §21 expect, instead of silently dropping it.
 */

const REQUEST_LINE = /^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP\/(\d+\.\d+)\s*$/;


/**
 * Recovers a request from bytes that parseMessage rejected. Returns undefined when the start
 * line is not a request line. Malformed header lines are skipped; no body is kept.
 */
export function recoverRequest(buf: Buffer): SipRequest | undefined {
  let text = buf.toString('utf8', 0, Math.min(buf.length, 256 * 1024)).replace(/^[\r\n]+/, '');
  const end = /\r?\n\r?\n/.exec(text);
  if (end) text = text.slice(0, end.index);
  const lines = text.split(/\r?\n/);
  const m = REQUEST_LINE.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: HeaderField[] = [];
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i]!;
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) line += ' ' + lines[++i]!.trim();
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trimEnd();
    if (!TOKEN_RE.test(name)) continue;
    const key = headerKey(name);
    if (key === 'content-length') continue;
    headers.push({ name, key, value: line.slice(colon + 1).trim() });
  }
  return new SipRequest(m[1]!, m[2]!, headers);
}

/** A reason phrase: the standard text plus a short, printable detail. */
export function reasonPhrase(status: number, detail?: string): string {
  const base = standardReason(status);
  if (!detail) return base;
  const clean = detail.replace(/[^\x20-\x7e]/g, '?').slice(0, 100).trim();
  return clean ? `${base} (${clean})` : base;
}

/**
 * RFC 3261 §8.2.6.2: a response copies Via (all values, in order), From, To, Call-ID and CSeq;
 * a To without a tag gets one. Works on a recovered request whose other headers may be broken.
 */
export function errorResponse(req: SipRequest, status: number, detail?: string): SipResponse {
  const res = new SipResponse(status, reasonPhrase(status, detail));
  for (const h of req.headers) {
    if (h.key === 'via') res.headers.push({ ...h });
  }
  for (const key of ['from', 'to', 'call-id', 'cseq']) {
    const h = req.headers.find((x) => x.key === key);
    if (!h) continue;
    let value = h.value;
    if (key === 'to' && !/;\s*tag\s*=/i.test(value)) value += `;tag=${newTag()}`;
    res.headers.push({ name: h.name, key: h.key, value });
  }
  return res;
}
