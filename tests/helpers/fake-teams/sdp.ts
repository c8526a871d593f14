/**
 * Minimal SDP (RFC 4566) reading and writing for the fake Teams: enough to check what the
 * gateway offers/answers and to build Teams-like offers and answers with SDES SRTP
 * (RFC 4568) and rtcp-mux (RFC 8035).
 */
import { randomBytes } from 'node:crypto';

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpCrypto {
  tag: number;
  suite: string;
  /** key-params as written, e.g. `inline:base64key|2^31`. */
  keyParams: string;
  /** The base64 key||salt of the first inline key. */
  key?: string;
}

export interface SdpCodec {
  pt: number;
  /** Encoding name as written (rtpmap), or the static name for well-known payload types. */
  name: string;
  rate: number;
  fmtp?: string;
}

export interface SdpMedia {
  type: string;
  port: number;
  proto: string;
  formats: number[];
  /** Connection address that applies to this m-line (media-level c= or session-level). */
  address: string | undefined;
  codecs: SdpCodec[];
  crypto: SdpCrypto[];
  rtcpMux: boolean;
  direction: Direction;
  /** Explicit direction attribute present (otherwise sendrecv is implied). */
  directionExplicit: boolean;
  iceUfrag?: string;
  icePwd?: string;
  candidates: string[];
  /** Every a= line of the m-section (name → values). */
  attributes: Array<{ name: string; value: string | undefined }>;
}

export interface ParsedSdp {
  origin: { username: string; sessionId: string; version: string; address: string } | undefined;
  sessionAddress: string | undefined;
  media: SdpMedia[];
  raw: string;
}

const STATIC_PT: Record<number, [string, number]> = {
  0: ['PCMU', 8000],
  3: ['GSM', 8000],
  4: ['G723', 8000],
  8: ['PCMA', 8000],
  9: ['G722', 8000],
  13: ['CN', 8000],
  18: ['G729', 8000],
};

function connAddress(v: string): string | undefined {
  // c=IN IP4 192.0.2.1[/ttl]
  const parts = v.trim().split(/\s+/);
  return parts[2]?.split('/')[0];
}

/** Parses SDP text. Never throws: unknown lines are kept in `attributes` or ignored. */
export function parseSdp(text: string): ParsedSdp {
  const out: ParsedSdp = { origin: undefined, sessionAddress: undefined, media: [], raw: text };
  let cur: SdpMedia | undefined;
  let sessionDirection: Direction | undefined;
  const fmtp = new Map<SdpMedia, Map<number, string>>();
  for (const line of text.split(/\r?\n/)) {
    if (line.length < 2 || line[1] !== '=') continue;
    const k = line[0];
    const v = line.slice(2);
    if (k === 'o') {
      const p = v.trim().split(/\s+/);
      out.origin = { username: p[0] ?? '', sessionId: p[1] ?? '', version: p[2] ?? '', address: p[5] ?? '' };
    } else if (k === 'c') {
      if (cur) cur.address = connAddress(v);
      else out.sessionAddress = connAddress(v);
    } else if (k === 'm') {
      const p = v.trim().split(/\s+/);
      cur = {
        type: p[0] ?? '',
        port: Number((p[1] ?? '0').split('/')[0]),
        proto: p[2] ?? '',
        formats: p.slice(3).map(Number).filter((n) => Number.isInteger(n)),
        address: undefined,
        codecs: [],
        crypto: [],
        rtcpMux: false,
        direction: sessionDirection ?? 'sendrecv',
        directionExplicit: sessionDirection !== undefined,
        candidates: [],
        attributes: [],
      };
      out.media.push(cur);
      fmtp.set(cur, new Map());
    } else if (k === 'a') {
      const colon = v.indexOf(':');
      const name = colon < 0 ? v.trim() : v.slice(0, colon);
      const value = colon < 0 ? undefined : v.slice(colon + 1);
      if (!cur) {
        if (name === 'sendrecv' || name === 'sendonly' || name === 'recvonly' || name === 'inactive') sessionDirection = name;
        continue;
      }
      cur.attributes.push({ name, value });
      if (name === 'sendrecv' || name === 'sendonly' || name === 'recvonly' || name === 'inactive') {
        cur.direction = name;
        cur.directionExplicit = true;
      } else if (name === 'rtcp-mux') cur.rtcpMux = true;
      else if (name === 'ice-ufrag' && value !== undefined) cur.iceUfrag = value.trim();
      else if (name === 'ice-pwd' && value !== undefined) cur.icePwd = value.trim();
      else if (name === 'candidate' && value !== undefined) cur.candidates.push(value.trim());
      else if (name === 'rtpmap' && value !== undefined) {
        const m = /^(\d+)\s+([^/\s]+)\/(\d+)/.exec(value.trim());
        if (m) cur.codecs.push({ pt: Number(m[1]), name: m[2]!, rate: Number(m[3]) });
      } else if (name === 'fmtp' && value !== undefined) {
        const m = /^(\d+)\s+(.*)$/.exec(value.trim());
        if (m) fmtp.get(cur)!.set(Number(m[1]), m[2]!);
      } else if (name === 'crypto' && value !== undefined) {
        const m = /^(\d+)\s+(\S+)\s+(\S+)/.exec(value.trim());
        if (m) {
          const c: SdpCrypto = { tag: Number(m[1]), suite: m[2]!, keyParams: m[3]! };
          const km = /^inline:([^|;]+)/.exec(m[3]!);
          if (km) c.key = km[1]!;
          cur.crypto.push(c);
        }
      }
    }
  }
  for (const m of out.media) {
    if (m.address === undefined) m.address = out.sessionAddress;
    // Static payload types without rtpmap.
    for (const pt of m.formats) {
      if (!m.codecs.some((c) => c.pt === pt) && STATIC_PT[pt]) m.codecs.push({ pt, name: STATIC_PT[pt][0], rate: STATIC_PT[pt][1] });
    }
    // Only payload types of the m-line, in m-line order (stray rtpmap lines are ignored).
    m.codecs = m.codecs.filter((c) => m.formats.includes(c.pt));
    m.codecs.sort((a, b) => m.formats.indexOf(a.pt) - m.formats.indexOf(b.pt));
    for (const c of m.codecs) {
      const f = fmtp.get(m)!.get(c.pt);
      if (f !== undefined) c.fmtp = f;
    }
  }
  return out;
}

/** The first audio m-section, if any. */
export function audioOf(sdp: ParsedSdp): SdpMedia | undefined {
  return sdp.media.find((m) => m.type === 'audio');
}

/** RFC 4568 §6.1: AES_CM_128 key (16) + salt (14) = 30 bytes, base64 encoded. */
export function newSrtpKey(): string {
  return randomBytes(30).toString('base64');
}

export interface TeamsOfferOptions {
  address: string;
  port: number;
  /** Session version (o= line). */
  version?: number;
  sessionId?: string;
  direction?: Direction;
  /** Base64 key for the _80 line (default random); the _32 line always gets its own key. */
  key80?: string;
  key32?: string;
  iceUfrag?: string;
  icePwd?: string;
}

/**
 * An SDP offer shaped like the one the Teams media processor sends (requirements doc §5.8):
 * RTP/SAVP, two crypto lines (_32 first, then _80), rtcp-mux, SILK/G722/PCMU/PCMA, CN,
 * telephone-event and ICE attributes.
 */
export function teamsOffer(o: TeamsOfferOptions): string {
  const ufrag = o.iceUfrag ?? randomBytes(3).toString('hex');
  const pwd = o.icePwd ?? randomBytes(12).toString('base64').replace(/[+/=]/g, 'x');
  const lines = [
    'v=0',
    `o=- ${o.sessionId ?? '1'} ${o.version ?? 0} IN IP4 ${o.address}`,
    's=session',
    `c=IN IP4 ${o.address}`,
    'b=CT:10000000',
    't=0 0',
    `m=audio ${o.port} RTP/SAVP 104 9 103 0 8 101 13 118`,
    `c=IN IP4 ${o.address}`,
    `a=rtcp:${o.port}`,
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    `a=candidate:1 1 UDP 2130706431 ${o.address} ${o.port} typ host`,
    `a=candidate:1 2 UDP 2130705918 ${o.address} ${o.port} typ host`,
    `a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:${o.key32 ?? newSrtpKey()}|2^31`,
    `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${o.key80 ?? newSrtpKey()}|2^31`,
    `a=${o.direction ?? 'sendrecv'}`,
    'a=rtcp-mux',
    'a=label:main-audio',
    'a=x-source:main-audio',
    'a=rtpmap:104 SILK/16000',
    'a=fmtp:104 useinbandfec=1; usedtx=0',
    'a=rtpmap:9 G722/8000',
    'a=rtpmap:103 SILK/8000',
    'a=fmtp:103 useinbandfec=1; usedtx=0',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=rtpmap:13 CN/8000',
    'a=rtpmap:118 CN/16000',
    'a=ptime:20',
  ];
  return lines.join('\r\n') + '\r\n';
}

/** RFC 3264 §6.1: the answerer's direction for an offered direction. */
export function answerDirection(offered: Direction): Direction {
  if (offered === 'sendonly') return 'recvonly';
  if (offered === 'recvonly') return 'sendonly';
  return offered;
}

export interface SdpAnswerOptions {
  address: string;
  port: number;
  /** Base64 key||salt for our a=crypto line. */
  key: string;
  version: number;
  sessionId: string;
  /** Force a direction (default: RFC 3264 answer to the offered one). */
  direction?: Direction;
  /** Answer with this codec when it was offered (a Teams that prefers it); default the first Teams codec offered. */
  codec?: string;
}

export interface AnswerResult {
  sdp: string;
  /** The offered crypto line we accepted (the _80 one), if any. */
  acceptedCrypto: SdpCrypto | undefined;
  codecs: SdpCodec[];
}

/** Codecs the Teams media processor accepts (requirements doc §7.6, non-bypass). */
export const TEAMS_AUDIO_CODECS = ['SILK', 'PCMU', 'PCMA', 'G722', 'G729'];

/**
 * Answers an offer the way the Teams media processor would: RTP/SAVP, one crypto line
 * (AES_CM_128_HMAC_SHA1_80, with our own key, using the offered tag), rtcp-mux when offered,
 * the first Teams-supported codec plus telephone-event and CN when offered.
 */
export function teamsAnswer(offer: ParsedSdp, o: SdpAnswerOptions): AnswerResult {
  const a = audioOf(offer);
  const lines = ['v=0', `o=- ${o.sessionId} ${o.version} IN IP4 ${o.address}`, 's=session', `c=IN IP4 ${o.address}`, 't=0 0'];
  if (!a) return { sdp: lines.join('\r\n') + '\r\n', acceptedCrypto: undefined, codecs: [] };
  const main = a.codecs.find((c) => c.name.toUpperCase() === o.codec?.toUpperCase()) ?? a.codecs.find((c) => TEAMS_AUDIO_CODECS.includes(c.name.toUpperCase()));
  const te = a.codecs.find((c) => c.name.toLowerCase() === 'telephone-event' && c.rate === (main?.rate ?? 8000));
  const cn = a.codecs.find((c) => c.name.toUpperCase() === 'CN' && c.rate === (main?.rate ?? 8000));
  const codecs = [main, te, cn].filter((c): c is SdpCodec => c !== undefined);
  const crypto = a.crypto.find((c) => c.suite === 'AES_CM_128_HMAC_SHA1_80');
  const proto = a.proto;
  lines.push(`m=audio ${codecs.length ? o.port : 0} ${proto} ${codecs.map((c) => c.pt).join(' ') || '0'}`);
  lines.push(`c=IN IP4 ${o.address}`);
  if (crypto) lines.push(`a=crypto:${crypto.tag} AES_CM_128_HMAC_SHA1_80 inline:${o.key}|2^31`);
  for (const c of codecs) {
    lines.push(`a=rtpmap:${c.pt} ${c.name}/${c.rate}`);
    if (c.fmtp !== undefined) lines.push(`a=fmtp:${c.pt} ${c.fmtp}`);
  }
  if (a.rtcpMux) lines.push('a=rtcp-mux');
  lines.push(`a=${o.direction ?? answerDirection(a.direction)}`);
  lines.push('a=ptime:20');
  return { sdp: lines.join('\r\n') + '\r\n', acceptedCrypto: crypto, codecs };
}

/**
 * A fresh Teams offer for a re-INVITE (hold/resume/refresh) built from our previous SDP:
 * same address/port, direction changed, version bumped.
 */
export function teamsReoffer(o: { address: string; port: number; key: string; version: number; sessionId: string; direction: Direction; codecs: SdpCodec[] }): string {
  const codecs = o.codecs.length ? o.codecs : [{ pt: 0, name: 'PCMU', rate: 8000 }];
  const lines = [
    'v=0',
    `o=- ${o.sessionId} ${o.version} IN IP4 ${o.address}`,
    's=session',
    `c=IN IP4 ${o.address}`,
    't=0 0',
    `m=audio ${o.port} RTP/SAVP ${codecs.map((c) => c.pt).join(' ')}`,
    `c=IN IP4 ${o.address}`,
    `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${o.key}|2^31`,
  ];
  for (const c of codecs) {
    lines.push(`a=rtpmap:${c.pt} ${c.name}/${c.rate}`);
    if (c.fmtp !== undefined) lines.push(`a=fmtp:${c.pt} ${c.fmtp}`);
  }
  lines.push('a=rtcp-mux', `a=${o.direction}`, 'a=ptime:20');
  return lines.join('\r\n') + '\r\n';
}
