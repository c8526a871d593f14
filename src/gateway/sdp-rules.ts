/**
 * SDP rules call control applies on top of rtpengine for mid-call offers and answers
 * (teams-direct-routing.md §6.10, §6.11, §7.4). Line-based: only the lines named are touched,
 * everything else rtpengine produced is kept as is.
 */
import { randomBytes } from 'node:crypto';

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

/** Static RTP payload types (RFC 3551 §6) a carrier SDP may list without an a=rtpmap. */
const STATIC_PT: Readonly<Record<number, string>> = { 0: 'PCMU', 3: 'GSM', 4: 'G723', 8: 'PCMA', 9: 'G722', 13: 'CN', 18: 'G729' };

/** Codec names (upper case) of the audio stream, in m= line order. */
export function audioCodecs(sdp: string): string[] {
  const ls = lines(sdp);
  const { start, end } = audioSection(ls);
  if (start < 0) return [];
  const pts = ls[start]!.split(' ').slice(3);
  const names = new Map<string, string>();
  for (const l of ls.slice(start, end)) {
    const m = /^a=rtpmap:(\d+) ([^/\s]+)/.exec(l);
    if (m) names.set(m[1]!, m[2]!.toUpperCase());
  }
  return pts.map((pt) => names.get(pt) ?? STATIC_PT[Number(pt)] ?? pt);
}

/**
 * Whether a leg must be sent a new offer, given the offer rtpengine produced for it (`next`)
 * and the SDP that leg last got from us (`prev`): the direction changed (hold, resume), or no
 * audio codec is left in common. Address, port, rtcp-mux and SDES keys toward a leg stay as
 * they are on rtpengine re-offers (§6.11), so those never require one.
 */
export function legMustBeReoffered(prev: string | undefined, next: string): boolean {
  if (!prev) return true;
  if (directionOf(prev) !== directionOf(next)) return true;
  const audio = (sdp: string) => audioCodecs(sdp).filter((c) => c !== 'TELEPHONE-EVENT' && c !== 'CN');
  const before = audio(prev);
  return !audio(next).some((c) => before.includes(c));
}

/** G.711 and the other static codecs a stand-in offer can list, by name. */
const STAND_IN_PT: Readonly<Record<string, number>> = { PCMU: 0, PCMA: 8, G722: 9, G729: 18 };

/** Session-level lines of a stand-in SDP (v=, o=, s=, c=, t=) at `address`. */
function standInSession(address: string): string[] {
  const ip = address.includes(':') ? 'IP6' : 'IP4';
  return ['v=0', `o=- ${Date.now()} 1 IN ${ip} ${address}`, 's=-', `c=IN ${ip} ${address}`, 't=0 0'];
}

/**
 * The carrier-side offer rtpengine is given for a late-offer INVITE (RFC 3261 §13.2.1: the
 * carrier's own offer-less INVITE leaves the answer to it for the ACK). It lists the tenant's
 * codecs that are static payload types (default G.711 µ-law and A-law) plus telephone-event,
 * at the carrier's signalling address on the discard port 9: a stand-in replaced by the
 * carrier's real SDP from the ACK. `single`: the first of those codecs only. For a carrier that
 * requires 100rel, whose offer may be made from a stand-in for Teams' answer naming one codec
 * (teamsAnswerStandIn): Teams, offered only that codec, cannot answer with another one.
 */
export function lateOfferStandIn(address: string, codecs: readonly string[] = [], o: { single?: boolean } = {}): string {
  const wanted = codecs.map((c) => c.toUpperCase()).filter((c) => c in STAND_IN_PT);
  const all = wanted.length > 0 ? [...new Set(wanted)] : ['PCMU', 'PCMA'];
  const list = o.single ? all.slice(0, 1) : all;
  const pts = list.map((c) => STAND_IN_PT[c]!);
  return join([
    ...standInSession(address),
    `m=audio 9 RTP/AVP ${[...pts, 101].join(' ')}`,
    ...list.map((c) => `a=rtpmap:${STAND_IN_PT[c]} ${c}/8000`),
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=sendrecv',
  ]);
}

/**
 * Late offer toward a carrier that requires 100rel, while Teams rings without SDP: a stand-in
 * for Teams' answer, given to rtpengine so that its carrier side (our offer in the reliable 183,
 * RFC 3262 §5) exists before Teams' SDP does. It answers `offer` (the SRTP offer Teams got)
 * with its first codec and telephone-event, a fresh SDES key, on the discard port 9 of the
 * offer's own address (rtpengine's: nothing leaves the host). sendrecv, so that the offer made
 * from it is sendrecv too (the 2xx repeats that offer). Teams' real SDP replaces it.
 */
export function teamsAnswerStandIn(offer: string): string {
  const ls = lines(offer);
  const { start, end } = audioSection(ls);
  const { address } = audioEndpoint(offer);
  if (start < 0 || !address) throw new Error('teamsAnswerStandIn: the offer has no audio stream or connection address');
  const section = ls.slice(start, end);
  const [, , proto, ...pts] = ls[start]!.split(' ');
  const names = audioCodecs(offer); // one per payload type, in m= line order
  const te = pts.find((_, k) => names[k] === 'TELEPHONE-EVENT');
  const codec = pts.find((_, k) => names[k] !== 'TELEPHONE-EVENT' && names[k] !== 'CN');
  if (!codec) throw new Error('teamsAnswerStandIn: the offer has no audio codec');
  const listed = te ? [codec, te] : [codec];
  const suite = section.map((l) => /^a=crypto:\d+ (\S+) /.exec(l)?.[1]).find(Boolean);
  return join([
    ...standInSession(address),
    `m=audio 9 ${proto} ${listed.join(' ')}`,
    ...section.filter((l) => listed.some((pt) => l.startsWith(`a=rtpmap:${pt} `))),
    ...(te ? [`a=fmtp:${te} 0-16`] : []),
    ...(suite ? [`a=crypto:1 ${suite} inline:${randomBytes(30).toString('base64')}`] : []),
    'a=sendrecv',
  ]);
}
