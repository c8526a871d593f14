/**
 * SDP rules call control applies on top of rtpengine for mid-call offers and answers
 * (teams-direct-routing.md §6.10, §6.11, §7.4). Line-based: only the lines named are touched,
 * everything else rtpengine produced is kept as is.
 */

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

const DIR_RE = /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/;

function lines(sdp: string): string[] {
  return sdp.split(/\r?\n/).filter((l, i, all) => l !== '' || i < all.length - 1);
}

function join(ls: string[]): string {
  const body = ls.filter((l) => l !== '').join('\r\n');
  return `${body}\r\n`;
}

/** Index of the first audio m= line (or -1) and the end of its section. */
function audioSection(ls: string[]): { start: number; end: number } {
  const start = ls.findIndex((l) => l.startsWith('m=audio'));
  if (start < 0) return { start: -1, end: -1 };
  let end = ls.findIndex((l, i) => i > start && l.startsWith('m='));
  if (end < 0) end = ls.length;
  return { start, end };
}

/** Effective direction of the audio stream (media level wins over session level; default sendrecv). */
export function directionOf(sdp: string): Direction {
  const ls = lines(sdp);
  const { start, end } = audioSection(ls);
  const media = start >= 0 ? ls.slice(start, end).map((l) => DIR_RE.exec(l)?.[1]).find(Boolean) : undefined;
  const session = ls.slice(0, start < 0 ? ls.length : start).map((l) => DIR_RE.exec(l)?.[1]).find(Boolean);
  return (media ?? session ?? 'sendrecv') as Direction;
}

/** Connection address and port of the audio stream. */
export function audioEndpoint(sdp: string): { address: string | undefined; port: number | undefined; rtcpMux: boolean } {
  const ls = lines(sdp);
  const { start, end } = audioSection(ls);
  if (start < 0) return { address: undefined, port: undefined, rtcpMux: false };
  const port = Number(/^m=audio (\d+)/.exec(ls[start]!)?.[1]);
  const mediaC = ls.slice(start, end).find((l) => l.startsWith('c='));
  const sessionC = ls.slice(0, start).find((l) => l.startsWith('c='));
  const address = /^c=IN IP[46] (\S+)/.exec(mediaC ?? sessionC ?? '')?.[1];
  return { address, port, rtcpMux: ls.slice(start, end).some((l) => /^a=rtcp-mux\s*$/.test(l)) };
}

/**
 * RFC 3264 §8.4: "a=sendonly" / "c=0.0.0.0" (RFC 2543 style) mean hold. True when the offer
 * puts the stream on hold in any of those ways.
 */
export function isHoldOffer(sdp: string): boolean {
  const d = directionOf(sdp);
  return d === 'sendonly' || d === 'inactive' || audioEndpoint(sdp).address === '0.0.0.0';
}

/** Sets the audio direction (media level), removing other direction attributes. */
export function withDirection(sdp: string, dir: Direction): string {
  const ls = lines(sdp).filter((l) => !DIR_RE.test(l));
  const { start, end } = audioSection(ls);
  if (start < 0) return sdp;
  ls.splice(end, 0, `a=${dir}`);
  return join(ls);
}

/** What the first SDP we sent toward Teams fixed for the whole call (§6.11, §7.4). */
export interface TeamsPin {
  address: string;
  port: number;
  rtcpMux: boolean;
}

export function pinOf(sdp: string): TeamsPin | undefined {
  const e = audioEndpoint(sdp);
  if (!e.address || e.address === '0.0.0.0' || !e.port) return undefined;
  return { address: e.address, port: e.port, rtcpMux: e.rtcpMux };
}

/**
 * Makes an SDP safe to send to Teams mid-call:
 * - §6.11 "Do not change media IP, port or transport mid-call": c= and the audio port are the
 *   pinned ones (rtpengine keeps them anyway; c=0.0.0.0 hold is never passed on);
 * - §6.10 "Hold from the SBC toward Teams must use a=inactive": sendonly/recvonly (and
 *   c=0.0.0.0 hold, `hold`) become inactive in offers;
 * - §7.4 / anchors §3.6: rtcp-mux stays as first negotiated (Teams answers 488
 *   "CannotChangeRtcpMultiplexing" otherwise).
 */
export function towardTeams(sdp: string, pin: TeamsPin | undefined, opts: { offer: boolean; hold?: boolean }): string {
  let ls = lines(sdp);
  const { start, end } = audioSection(ls);
  if (start < 0) return sdp;
  if (pin) {
    ls = ls.map((l, i) => {
      if (l.startsWith('c=IN IP')) return `c=IN IP4 ${pin.address}`;
      if (i === start) return l.replace(/^m=audio \d+/, `m=audio ${pin.port}`);
      return l;
    });
    const hasMux = ls.slice(start, end).some((l) => /^a=rtcp-mux\s*$/.test(l));
    if (pin.rtcpMux && !hasMux) ls.splice(end, 0, 'a=rtcp-mux');
    if (!pin.rtcpMux && hasMux) ls = ls.filter((l, i) => !(i > start && i < end && /^a=rtcp-mux\s*$/.test(l)));
  }
  let out = join(ls);
  if (opts.offer) {
    const d = directionOf(out);
    if (opts.hold || d === 'sendonly' || d === 'recvonly') out = withDirection(out, 'inactive');
  }
  return out;
}

/** True when the SDP lists a telephone-event payload (RFC 4733). */
export function hasTelephoneEvent(sdp: string): boolean {
  return /^a=rtpmap:\d+ telephone-event\//im.test(sdp);
}
