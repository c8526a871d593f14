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
export function wireTime(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds() * 1000, 6)}`;
}

/** A field must never contain the separator or a line break. */
export function safeField(s: string | number | undefined): string {
  return s === undefined ? '' : String(s).replace(/[|\r\n]/g, ' ');
}
