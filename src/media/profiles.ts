/**
 * rtpengine flag profiles as DATA. A profile says how rtpengine must present media toward one
 * leg; the builder below turns the two leg profiles into ng `offer`/`answer` dictionaries.
 * Config (JSON/YAML) can override any field through {@link mergeMediaProfiles}; nothing here
 * is specific to one call except the optional per-tenant codec allow-lists.
 *
 * Decisions (see ../shared/docs/teams-direct-routing.md §7):
 * - Teams: RTP/SAVP with SDES AES_CM_128_HMAC_SHA1_80 only, in offer and answer (§7.1, §7.2);
 *   rtcp-mux `require` (§7.4: Teams MUST support it, so the offer carries no separate RTCP
 *   port, and the same flag is sent on every later offer so the port layout never changes).
 * - ICE toward Teams is `remove` by default. Without media bypass the SBC talks to the Teams
 *   media processor, and the ICE-lite MUST (§7.11) and the "no candidates → 488 531027" rule
 *   (§7.12) are both bypass-only. Removing ICE keeps the SDP free of credentials that would
 *   otherwise have to stay identical across 183/200/re-INVITEs. A bypass deployment switches
 *   the teams profile to `ice: 'force', iceLite: true` (rtpengine then answers checks as an
 *   ICE-lite agent with one candidate and keeps ufrag/pwd stable across re-offers).
 * - Teams codecs limited to SILK, G.711, G.722, G.729 and CN (§7.6, §7.8); anything else a
 *   carrier offers is not passed on. Transcoding (§7.10): a call that may transcode (a tenant's
 *   `media.transcoding`) converts an offer with none of the allowed codecs (codecDict), and a
 *   `codecs.transcode` profile option always adds its codecs.
 * - Carrier: RTP/AVP, ICE removed, no rtcp-mux (classic separate RTCP port), SILK stripped
 *   (Teams-only codec), telephone-event always kept (§7.7).
 */
import type { MediaLeg, NgParams } from './types.js';

export type TransportProtocol = 'RTP/AVP' | 'RTP/SAVP' | 'RTP/AVPF' | 'RTP/SAVPF';

/** rtpengine `ICE` values. */
export type IceMode = 'remove' | 'force' | 'default' | 'optional';

/**
 * rtcp-mux policy toward a leg:
 * - `require`: always multiplexed, no separate RTCP port is ever advertised to this leg;
 * - `offer`: offer rtcp-mux (with a fallback RTCP port, RFC 5761) and accept it when offered;
 * - `off`: never multiplex toward this leg (reject it when the leg offers it).
 */
export type RtcpMuxPolicy = 'require' | 'offer' | 'off';

export interface SrtpPolicy {
  /** SDES crypto suites allowed toward this leg, in order of preference. */
  suites: string[];
  /** Offer/accept DTLS-SRTP as well (Teams: optional, off by default). */
  dtls: boolean;
  /** Keep base64 padding in a=crypto keys (SDES=pad; some peers need it). */
  pad: boolean;
}

export interface CodecPolicy {
  /** Codec names never sent toward this leg (rtpengine `codec.strip`). */
  strip: string[];
  /**
   * When set, only these codecs (plus telephone-event, always kept) are sent toward this leg.
   * A per-call (tenant) allow-list is intersected with it, so a tenant can narrow but never
   * widen what a leg accepts.
   */
  allow?: string[];
  /** Codecs rtpengine should add by transcoding (needs a transcoding-capable rtpengine). */
  transcode?: string[];
}

export interface LegProfile {
  transportProtocol: TransportProtocol;
  ice: IceMode;
  /** rtpengine acts as ICE-lite toward this leg (Teams media bypass). Needs ice force/default. */
  iceLite: boolean;
  rtcpMux: RtcpMuxPolicy;
  /** null: plain RTP toward this leg. */
  srtp: SrtpPolicy | null;
  codecs: CodecPolicy;
  /** rtpengine logical interface name facing this leg (`direction`), when several exist. */
  interface?: string;
  /** Extra ng `flags` sent when this leg receives an SDP from rtpengine. */
  flags: string[];
}

export interface MediaProfiles {
  carrier: LegProfile;
  teams: LegProfile;
  /** Sent with every offer and answer. */
  common: {
    /** ng `replace` list. */
    replace: string[];
    /** ng `flags` list. */
    flags: string[];
  };
}

/**
 * Every SDES suite rtpengine 10.5 can offer. rtpengine 10.5 does not understand `SDES-only-…`
 * (it is silently ignored there), so "only these suites" is expressed as `SDES-no-…` for every
 * other suite in this list.
 */
export const KNOWN_SDES_SUITES = [
  'AEAD_AES_256_GCM',
  'AEAD_AES_128_GCM',
  'AES_256_CM_HMAC_SHA1_80',
  'AES_256_CM_HMAC_SHA1_32',
  'AES_192_CM_HMAC_SHA1_80',
  'AES_192_CM_HMAC_SHA1_32',
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
  'F8_128_HMAC_SHA1_80',
  'F8_128_HMAC_SHA1_32',
  'NULL_HMAC_SHA1_80',
  'NULL_HMAC_SHA1_32',
] as const;

/** The only suite Teams Direct Routing uses (teams-direct-routing.md §7.1). */
export const TEAMS_SRTP_SUITE = 'AES_CM_128_HMAC_SHA1_80';

/** Codecs Teams accepts from an SBC without media bypass (teams-direct-routing.md §7.6, §7.8). */
export const TEAMS_CODECS = ['SILK', 'PCMU', 'PCMA', 'G722', 'G729', 'CN'] as const;

/** Never stripped and always added to allow-lists (teams-direct-routing.md §7.7). */
export const DTMF_CODEC = 'telephone-event';

const DEFAULTS: MediaProfiles = {
  carrier: {
    transportProtocol: 'RTP/AVP',
    ice: 'remove',
    iceLite: false,
    rtcpMux: 'off',
    srtp: null,
    codecs: { strip: ['SILK'] },
    flags: [],
  },
  teams: {
    transportProtocol: 'RTP/SAVP',
    ice: 'remove',
    iceLite: false,
    rtcpMux: 'require',
    srtp: { suites: [TEAMS_SRTP_SUITE], dtls: false, pad: false },
    // §7.6: the media processor speaks SILK, G.711, G.722, G.729 (non-bypass); CN per §7.8.
    codecs: { strip: [], allow: [...TEAMS_CODECS] },
    flags: [],
  },
  common: {
    replace: ['origin', 'session-connection'],
    flags: [],
  },
};

/** The built-in profiles (frozen; use mergeMediaProfiles to derive a config's own). */
export const DEFAULT_MEDIA_PROFILES: Readonly<MediaProfiles> = deepFreeze(DEFAULTS);

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export type LegProfileOverride = Partial<Omit<LegProfile, 'codecs' | 'srtp'>> & {
  /** `allow: null` removes the profile's allow-list. */
  codecs?: Partial<Omit<CodecPolicy, 'allow'>> & { allow?: string[] | null };
  srtp?: Partial<SrtpPolicy> | null;
};

export interface MediaProfilesOverride {
  carrier?: LegProfileOverride;
  teams?: LegProfileOverride;
  common?: Partial<MediaProfiles['common']>;
}

function mergeLeg(base: LegProfile, o: LegProfileOverride | undefined): LegProfile {
  if (!o) return cloneLeg(base);
  const { codecs, srtp, ...rest } = o;
  const out: LegProfile = { ...cloneLeg(base), ...stripUndefined(rest) };
  const { allow, ...codecRest } = codecs ?? {};
  out.codecs = { ...cloneLeg(base).codecs, ...stripUndefined(codecRest) };
  if (allow === null) delete out.codecs.allow;
  else if (allow) out.codecs.allow = [...allow];
  if (srtp === null) out.srtp = null;
  else if (srtp) out.srtp = { ...(base.srtp ?? { suites: [TEAMS_SRTP_SUITE], dtls: false, pad: false }), ...stripUndefined(srtp) };
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function cloneLeg(l: LegProfile): LegProfile {
  return {
    ...l,
    srtp: l.srtp ? { ...l.srtp, suites: [...l.srtp.suites] } : null,
    codecs: {
      strip: [...l.codecs.strip],
      ...(l.codecs.allow ? { allow: [...l.codecs.allow] } : {}),
      ...(l.codecs.transcode ? { transcode: [...l.codecs.transcode] } : {}),
    },
    flags: [...l.flags],
  };
}

/** Defaults ← config override; returns a fresh, validated object. */
export function mergeMediaProfiles(base: Readonly<MediaProfiles>, override?: MediaProfilesOverride): MediaProfiles {
  const out: MediaProfiles = {
    carrier: mergeLeg(base.carrier, override?.carrier),
    teams: mergeLeg(base.teams, override?.teams),
    common: {
      replace: [...(override?.common?.replace ?? base.common.replace)],
      flags: [...(override?.common?.flags ?? base.common.flags)],
    },
  };
  validateMediaProfiles(out);
  return out;
}

/** Throws TypeError on a profile rtpengine would misread. */
export function validateMediaProfiles(p: MediaProfiles): void {
  for (const leg of ['carrier', 'teams'] as const) {
    const l = p[leg];
    const secure = l.transportProtocol.includes('SAVP');
    if (secure && !l.srtp) throw new TypeError(`media profile ${leg}: ${l.transportProtocol} needs an srtp policy`);
    if (!secure && l.srtp) throw new TypeError(`media profile ${leg}: srtp policy given for plain ${l.transportProtocol}`);
    if (l.srtp) {
      if (l.srtp.suites.length === 0) throw new TypeError(`media profile ${leg}: srtp.suites is empty`);
      for (const s of l.srtp.suites) {
        if (!(KNOWN_SDES_SUITES as readonly string[]).includes(s)) throw new TypeError(`media profile ${leg}: unknown SDES suite ${s}`);
      }
    }
    if (l.iceLite && l.ice === 'remove') throw new TypeError(`media profile ${leg}: iceLite needs ice force/default`);
    if (l.codecs.strip.some((c) => c.toLowerCase() === DTMF_CODEC)) {
      throw new TypeError(`media profile ${leg}: ${DTMF_CODEC} must not be stripped`);
    }
    if (l.codecs.allow && l.codecs.allow.length === 0) throw new TypeError(`media profile ${leg}: codecs.allow is empty`);
  }
}

/** Per-call codec allow-lists (e.g. from the tenant), applied on top of the profiles. */
export type CodecAllowLists = Partial<Record<MediaLeg, string[]>>;

/** Names of the payload types that have no a=rtpmap line (RFC 3551 §6). */
const STATIC_PT: Readonly<Record<string, string>> = { 0: 'PCMU', 3: 'GSM', 4: 'G723', 8: 'PCMA', 9: 'G722', 13: 'CN', 18: 'G729' };

/** Encoding names of an SDP's first audio stream as written (static payload types upper case), in m= line order. */
export function offeredAudioCodecs(sdp: string): string[] {
  const lines = sdp.split(/\r?\n/);
  const start = lines.findIndex((l) => l.startsWith('m=audio '));
  if (start < 0) return [];
  let end = lines.findIndex((l, k) => k > start && l.startsWith('m='));
  if (end < 0) end = lines.length;
  const names = new Map<string, string>();
  for (const l of lines.slice(start + 1, end)) {
    const m = /^a=rtpmap:(\d+) ([^/\s]+)/.exec(l);
    if (m) names.set(m[1]!, m[2]!);
  }
  return lines[start]!.split(' ').slice(3).map((pt) => names.get(pt) ?? STATIC_PT[pt] ?? pt);
}

const lower = (c: string) => c.toLowerCase();
const listed = (list: readonly string[], c: string) => list.some((e) => lower(e) === lower(c));
const isDtmf = (c: string) => lower(c) === DTMF_CODEC;
/** An audio codec proper (not telephone-event, not comfort noise). */
const isVoice = (c: string) => !isDtmf(c) && lower(c) !== 'cn';

/**
 * The codecs allowed toward a leg: its profile's allow-list narrowed by a per-call one (a
 * tenant can narrow, never widen), minus its strip list; telephone-event always kept (§7.7),
 * and comfort noise kept when offered unless the leg's profile leaves it out (§7.8: Teams
 * supports CN; a tenant's codec list names voice codecs only). Undefined when neither gives a list.
 */
function allowedToward(leg: LegProfile, override: string[] | undefined): string[] | undefined {
  let allow = override ?? leg.codecs.allow;
  if (override && leg.codecs.allow) {
    const profileAllow = leg.codecs.allow;
    allow = override.filter((c) => listed(profileAllow, c) || isDtmf(c));
  }
  if (!allow) return undefined;
  const out = allow.filter((c) => !listed(leg.codecs.strip, c));
  if (!out.some(isDtmf)) out.push(DTMF_CODEC);
  const cnOk = !listed(leg.codecs.strip, 'CN') && (!leg.codecs.allow || listed(leg.codecs.allow, 'CN'));
  if (cnOk && !listed(out, 'CN')) out.push('CN');
  return out;
}

/**
 * rtpengine's `codec` dictionary toward a leg whose allowed codecs are `allowed`. `t` is set
 * for a call that may transcode (teams-direct-routing.md §7.10): the target codecs are those
 * the answering leg has used (`answererUses`, its last SDP; the allowed ones among them if
 * any), else the allowed ones. When the
 * offer has none of them, rtpengine adds them by transcoding; it may decode the offered codecs
 * allowed on the offering leg, or all of them when none is (they are that leg's own, the reason
 * to transcode): those are masked (received, not passed on), the rest stripped. An offer with a
 * target codec is never transcoded, and a transcoded call stays so across re-offers in both
 * directions (a GSM-only carrier is re-offered GSM when Teams puts the call on hold).
 */
function codecDict(toward: LegProfile, allowed: string[] | undefined, t?: TranscodeInput & { offererAllowed?: string[] | undefined }): NgParams | undefined {
  const dict: NgParams = {};
  const transcode = [...(toward.codecs.transcode ?? [])];
  if (allowed) {
    // What the answering leg used, narrowed to the allowed codecs when it has any of them
    // (Teams' offer lists SILK and G722 too); a leg using none of them keeps its own (GSM).
    const used = (t?.answererUses ?? []).filter(isVoice);
    const usedAllowed = used.filter((c) => listed(allowed, c));
    const targets = usedAllowed.length > 0 ? usedAllowed : used.length > 0 ? used : allowed.filter(isVoice);
    if (t && targets.length > 0 && !targets.some((c) => listed(t.offered, c))) {
      const offered = t.offered.filter((c) => !isDtmf(c));
      const fromOfferer = offered.filter((c) => isVoice(c) && (!t.offererAllowed || listed(t.offererAllowed, c)));
      const decodable = fromOfferer.length > 0 ? fromOfferer : offered.filter(isVoice);
      const dropped = offered.filter((c) => !listed(allowed, c));
      const strip = dropped.filter((c) => !listed(decodable, c));
      const mask = dropped.filter((c) => listed(decodable, c));
      if (strip.length > 0) dict.strip = strip;
      if (mask.length > 0) dict.mask = mask;
      for (const c of targets) if (!listed(transcode, c)) transcode.push(c);
    } else {
      dict.strip = ['all'];
      dict.except = allowed;
    }
  } else {
    const strip = toward.codecs.strip.filter((c) => !isDtmf(c));
    if (strip.length > 0) dict.strip = strip;
  }
  if (transcode.length > 0) dict.transcode = transcode;
  return Object.keys(dict).length > 0 ? dict : undefined;
}

/** `SDES` list for a message whose SDP involves an SRTP leg with a suite allow-list. */
function sdesList(policy: SrtpPolicy): string[] {
  const allowed = new Set(policy.suites);
  const out = KNOWN_SDES_SUITES.filter((s) => !allowed.has(s)).map((s) => `no-${s}`);
  if (policy.pad) out.push('pad');
  return out;
}

/**
 * rtcp-mux list for an offer from `from` toward `to` (rtpengine ng `rtcp-mux` semantics:
 * offer/require/demux act on the outgoing offer, accept/reject on what the offerer offered).
 */
function rtcpMuxList(from: LegProfile, to: LegProfile): string[] {
  const out: string[] = [];
  if (to.rtcpMux === 'require') out.push('require');
  else if (to.rtcpMux === 'offer') out.push('offer');
  else out.push('demux');
  if (from.rtcpMux === 'off') out.push('reject');
  else if (to.rtcpMux !== 'off') out.push('accept');
  return out;
}

function iceLiteValue(from: LegProfile, to: LegProfile): string | undefined {
  if (to.iceLite && from.iceLite) return 'both';
  if (to.iceLite) return 'forward';
  if (from.iceLite) return 'backward';
  return undefined;
}

function srtpFlags(params: NgParams, from: LegProfile, to: LegProfile): void {
  // The suite list of the secure leg governs both what is offered to it and what is accepted
  // from it (rtpengine removes disallowed suites from a received offer before answering).
  const policy = to.srtp ?? from.srtp;
  if (!policy) return;
  params.SDES = sdesList(policy);
  if (!(from.srtp?.dtls ?? true) || !(to.srtp?.dtls ?? true)) params.DTLS = 'off';
}

export interface BuildOptions {
  /** Per-call codec allow-lists by leg the SDP is sent toward. */
  codecs?: CodecAllowLists;
  /** The call may transcode (a tenant's `media.transcoding`, §7.10); see codecDict. */
  transcode?: TranscodeInput;
}

/** Encoding names (offeredAudioCodecs) for a call that may transcode. */
export interface TranscodeInput {
  /** The offer's audio codecs. */
  offered: readonly string[];
  /** The answering leg's codecs from its last SDP (a re-offer), if any. */
  answererUses?: readonly string[] | undefined;
}

/** ng dictionary (without call-id/tags/sdp) for an offer that came from `from`. */
export function buildOfferParams(profiles: MediaProfiles, from: MediaLeg, opts: BuildOptions = {}): NgParams {
  const to: MediaLeg = from === 'carrier' ? 'teams' : 'carrier';
  const f = profiles[from];
  const t = profiles[to];
  const params: NgParams = {
    'transport-protocol': t.transportProtocol,
    ICE: t.ice,
    'rtcp-mux': rtcpMuxList(f, t),
  };
  const lite = iceLiteValue(f, t);
  if (lite) params['ICE-lite'] = lite;
  srtpFlags(params, f, t);
  const codec = codecDict(t, allowedToward(t, opts.codecs?.[to]), opts.transcode && { ...opts.transcode, offererAllowed: allowedToward(f, opts.codecs?.[from]) });
  if (codec) params.codec = codec;
  if (f.interface && t.interface) params.direction = [f.interface, t.interface];
  const flags = [...profiles.common.flags, ...t.flags];
  if (flags.length > 0) params.flags = flags;
  if (profiles.common.replace.length > 0) params.replace = [...profiles.common.replace];
  return params;
}

/**
 * ng dictionary for an answer that came from `from` (it goes back to the offerer, the other
 * leg). rtpengine keeps the transport protocol and codecs negotiated in the offer; the ICE and
 * SDES policy of the offerer's leg are repeated so the answer matches the profile.
 */
export function buildAnswerParams(profiles: MediaProfiles, from: MediaLeg): NgParams {
  const to: MediaLeg = from === 'carrier' ? 'teams' : 'carrier';
  const f = profiles[from];
  const t = profiles[to];
  const params: NgParams = { ICE: t.ice };
  srtpFlags(params, f, t);
  const flags = [...profiles.common.flags, ...t.flags];
  if (flags.length > 0) params.flags = flags;
  if (profiles.common.replace.length > 0) params.replace = [...profiles.common.replace];
  return params;
}
