import { randomBytes } from 'node:crypto';

/**
 * Location conveyance for emergency calls (RFC 6442; Teams Direct Routing §5.9): with
 * `PidfLoSupported`, Teams sends the caller's location as a PIDF-LO part next to the SDP in a
 * multipart/mixed body (RFC 5621, RFC 2046 §5.1), referenced by a `Geolocation: <cid:…>` header.
 * The gateway anchors the media on the SDP part and carries the other parts to the carrier (the
 * path to the emergency service) unchanged.
 */

/** One body part: its headers as written (Content-Type, Content-ID, …) and its content. */
export interface BodyPart {
  headers: Array<[string, string]>;
  body: string;
}

/** A request body taken apart: the session description, and what rides with it. */
export interface SplitBody {
  sdp: string | undefined;
  /** Non-SDP parts, in order (PIDF-LO for location conveyance). Empty for a plain SDP body. */
  others: BodyPart[];
}

/** RFC 6442 §4 headers that travel with the location parts. */
export const LOCATION_HEADERS = ['Geolocation', 'Geolocation-Routing'] as const;

const BOUNDARY_RE = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i;

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function partType(p: BodyPart): string {
  return mediaType(p.headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1]);
}

/**
 * RFC 2046 §5.1.1: the parts of a multipart body, or undefined when it is not one (or has no
 * boundary, or no closing delimiter). Bare LF line ends are tolerated.
 */
export function parseMultipart(contentType: string | undefined, body: string): BodyPart[] | undefined {
  if (!mediaType(contentType).startsWith('multipart/')) return undefined;
  const m = BOUNDARY_RE.exec(contentType ?? '');
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) return undefined;
  const delim = `--${boundary}`;
  // Delimiters start a line (at the very start of the body or after a line break) and are
  // followed by "--" (the close-delimiter) or by optional white space and the line end: a line
  // that merely starts with the delimiter's text is content.
  const text = `\r\n${body}`;
  const find = (from: number): number => {
    for (let i = text.indexOf(`\n${delim}`, from); i >= 0; i = text.indexOf(`\n${delim}`, i + 1)) {
      const end = text.indexOf('\n', i + 1);
      if (/^(?:--|[ \t]*\r?$)/.test(text.slice(i + 1 + delim.length, end < 0 ? undefined : end))) return i;
    }
    return -1;
  };
  const parts: BodyPart[] = [];
  let at = find(0);
  if (at < 0) return undefined;
  for (;;) {
    const lineEnd = text.indexOf('\n', at + 1 + delim.length);
    const after = text.slice(at + 1 + delim.length, lineEnd < 0 ? undefined : lineEnd);
    if (after.startsWith('--')) return parts; // close-delimiter
    if (lineEnd < 0) return undefined;
    const next = find(lineEnd);
    if (next < 0) return undefined;
    // The line break before the next delimiter belongs to the delimiter.
    const raw = text.slice(lineEnd + 1, text[next - 1] === '\r' ? next - 1 : next);
    parts.push(parsePart(raw));
    at = next;
  }
}

function parsePart(raw: string): BodyPart {
  // No headers: the part starts with its blank line (RFC 2046 §5.1.1, implicit text/plain).
  if (/^\r?\n/.test(raw)) return { headers: [], body: raw.replace(/^\r?\n/, '') };
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : '';
  const headers: Array<[string, string]> = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length) {
      const last = headers[headers.length - 1]!;
      last[1] = `${last[1]} ${line.trim()}`.trim(); // folded
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { headers, body };
}

/** A multipart/mixed body of `parts`, with a fresh boundary. */
export function formatMultipart(parts: BodyPart[]): { contentType: string; body: string } {
  const boundary = `teamsgw-${randomBytes(9).toString('hex')}`;
  const out: string[] = [];
  for (const p of parts) {
    out.push(`--${boundary}`);
    for (const [k, v] of p.headers) out.push(`${k}: ${v}`);
    // The line break before the next delimiter is the delimiter's: the part keeps its own.
    out.push('', p.body);
  }
  out.push(`--${boundary}--`, '');
  return { contentType: `multipart/mixed;boundary=${boundary}`, body: out.join('\r\n') };
}

/** The SDP of a request body (plain, or the application/sdp part of a multipart) and the other parts. */
export function splitBody(contentType: string | undefined, body: string | undefined): SplitBody {
  if (!body) return { sdp: undefined, others: [] };
  const parts = parseMultipart(contentType, body);
  if (!parts) return { sdp: mediaType(contentType) === 'application/sdp' || !contentType ? body : undefined, others: [] };
  const i = parts.findIndex((p) => partType(p) === 'application/sdp');
  return { sdp: i < 0 ? undefined : parts[i]!.body, others: parts.filter((_, j) => j !== i) };
}

/** `sdp` with the parts that came with it, as a body plus its Content-Type (plain SDP when there are none). */
export function joinBody(sdp: string | undefined, others: BodyPart[]): { contentType: string; body: string } | undefined {
  if (!others.length) return sdp === undefined ? undefined : { contentType: 'application/sdp', body: sdp };
  const parts = sdp === undefined ? others : [{ headers: [['Content-Type', 'application/sdp']] as Array<[string, string]>, body: sdp }, ...others];
  return formatMultipart(parts);
}
