/**
 * Tokenising and formatting of drachtio wire messages (docs: drachtio-wire-protocol.md §2–§4).
 * A payload is `<msgId>|<type>|<fields...>` (the "leader"), optionally followed by CRLF and a
 * SIP message. Only the leader (text before the first CR) is split on `|`.
 */
export interface WireMessage {
  msgId: string;
  type: string;
  /** Leader fields after msgId and type. */
  args: string[];
  /** Text after the first CRLF (a SIP message), or '' */
  body: string;
}

export function decode(payload: string): WireMessage | undefined {
  const cr = payload.indexOf('\r');
  const leader = cr < 0 ? payload : payload.slice(0, cr);
  const body = cr < 0 ? '' : payload.slice(payload[cr + 1] === '\n' ? cr + 2 : cr + 1);
  const tok = leader.split('|');
  if (tok.length < 2 || !tok[0] || !tok[1]) return undefined;
  return { msgId: tok[0], type: tok[1], args: tok.slice(2), body };
}

/** UTC time of day as drachtio prints it: HH:MM:SS.uuuuuu */
export function wireTime(d?: Date): string {
  if (d) return formatTime(d.getTime());
  // Every message carries one: format it once per millisecond.
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastText = formatTime(now);
  }
  return lastText;
}

let lastMs = -1;
let lastText = '';

function formatTime(ms: number): string {
  const day = ms % 86_400_000;
  const t = day < 0 ? day + 86_400_000 : day;
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor(t / 60_000) % 60;
  const s = Math.floor(t / 1000) % 60;
  const milli = t % 1000;
  return `${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${s < 10 ? '0' : ''}${s}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}000`;
}

/** A field must never contain the separator or a line break. */
export function safeField(s: string | number | undefined): string {
  if (s === undefined) return '';
  const t = String(s);
  // Almost every field is clean: look before running the replacement.
  return t.indexOf('|') < 0 && t.indexOf('\r') < 0 && t.indexOf('\n') < 0 ? t : t.replace(/[|\r\n]/g, ' ');
}
