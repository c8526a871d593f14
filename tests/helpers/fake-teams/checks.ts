/**
 * The MUST items of the Teams Direct Routing requirements doc
 * (../shared/docs/teams-direct-routing.md), as checks on what the SBC sends to the fake Teams.
 * Every check returns violations; nothing here throws on bad input.
 */
import { isIP } from 'node:net';
import { type NameAddr, type SipRequest, type SipResponse, parseNameAddr, parseUri, type SipUri } from '../../../src/sip/message/index.js';
import { type ParsedSdp, TEAMS_AUDIO_CODECS, audioOf, parseSdp } from './sdp.js';

export type ViolationRule =
  | 'tls-handshake'
  | 'tls-client-eku'
  | 'tls-client-key'
  | 'tls-server-cert'
  | 'sips-uri'
  | 'ruri-host'
  | 'ruri-e164'
  | 'from-e164'
  | 'from-to-fqdn'
  | 'contact-missing'
  | 'contact-fqdn'
  | 'contact-format'
  | 'contact-tenant'
  | 'contact-cert'
  | 'record-route'
  | 'replaces'
  | 'require-100rel'
  | 'method-not-allowed'
  | 'x-ms-sbc'
  | 'allow'
  | 'sdp-missing'
  | 'sdp-savp'
  | 'sdp-crypto'
  | 'sdp-rtcp-mux'
  | 'sdp-codecs'
  | 'sdp-telephone-event'
  | 'sdp-hold'
  | 'sdp-media-moved'
  | 'answer-crypto'
  | 'ack-missing'
  | 'notify-format'
  | 'response-timing'
  | 'connection-reuse';

export interface Violation {
  rule: ViolationRule;
  message: string;
  /** Section of the requirements doc. */
  ref: string;
  /** Which fake Teams endpoint saw it ('sip', 'sip2', 'sip3', 'alt'). */
  endpoint?: string;
  /** The request method, or the method a response answered. */
  method?: string;
  status?: number;
  callId?: string;
  /** Date.now() when recorded. */
  at?: number;
}

export interface CheckContext {
  /** FQDN of the proxy endpoint that received the message. */
  endpointFqdn: string;
  /** Hosts an OPTIONS Request-URI may name (default: the endpoint's own FQDN). */
  optionsUriHosts?: readonly string[];
  /** Hosts accepted in an INVITE Request-URI (default: sip.pstnhub.microsoft.com). */
  requestUriHosts: readonly string[];
  /** Known tenant FQDNs; when non-empty, Contact must be one of them. */
  tenants: readonly string[];
  /** Carrier base domain; when set, Contact must be it or a subdomain of it. */
  baseDomain: string | undefined;
  /** subjectAltName string of the client certificate of the connection (Node format). */
  peerSubjectAltName: string | undefined;
  peerSubjectCN: string | undefined;
  /** Allow must list REFER and NOTIFY (transfer opt-in, §4.8/§5.12). */
  expectAllowRefer: boolean;
}

export const E164_RE = /^\+[1-9]\d{1,14}$/;

type V = Omit<Violation, 'endpoint' | 'at'>;

function v(rule: ViolationRule, ref: string, message: string): V {
  return { rule, ref, message };
}

function safeUri(s: string): SipUri | undefined {
  try {
    return parseUri(s);
  } catch {
    return undefined;
  }
}

function safeNameAddr(s: string): NameAddr | undefined {
  try {
    return parseNameAddr(s);
  } catch {
    return undefined;
  }
}

function userOf(u: SipUri): string {
  return (u.user ?? '').split(';')[0] ?? '';
}

/** RFC 6125 §6.4.3 / RFC 2818: `*.a.b` matches exactly one left-most label. */
export function certCovers(host: string, sanString: string | undefined, cn: string | undefined): boolean {
  const names: string[] = [];
  for (const part of (sanString ?? '').split(',')) {
    const p = part.trim();
    if (p.startsWith('DNS:')) names.push(p.slice(4).toLowerCase());
  }
  if (names.length === 0 && cn) names.push(cn.toLowerCase());
  const h = host.toLowerCase();
  return names.some((n) => {
    if (n === h) return true;
    if (!n.startsWith('*.')) return false;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === n.slice(2);
  });
}

/** Contact of a request or response from the SBC (§2.10, §3.2, §4.3, §4.4, §5.11, §8.3). */
export function checkContact(msg: SipRequest | SipResponse, ctx: CheckContext, requireE164User: boolean, options = false): V[] {
  const out: V[] = [];
  const raw = msg.getAll('contact')[0];
  if (raw === undefined) return [v('contact-missing', '§3.2/§4.3', 'no Contact header')];
  const na = safeNameAddr(raw);
  const uri = na ? safeUri(na.uri) : undefined;
  if (!na || !uri) return [v('contact-format', '§4.3', `unparseable Contact: ${raw}`)];
  if (uri.scheme !== 'sip') out.push(v('sips-uri', '§2.13', `Contact scheme must be sip: (with transport=tls), got ${uri.scheme}:`));
  if (isIP(uri.host)) out.push(v('contact-fqdn', '§2.10', `Contact host is an IP address (${uri.host}), must be the tenant FQDN`));
  else {
    const h = uri.host.toLowerCase();
    // OPTIONS carry the carrier trunk FQDN (§3.6), calls the tenant's derived FQDN (§4.4).
    if (!options && ctx.tenants.length > 0 && !ctx.tenants.some((t) => t.toLowerCase() === h)) {
      out.push(v('contact-tenant', '§4.4/§8.3', `Contact host ${uri.host} is not a provisioned tenant FQDN (${ctx.tenants.join(', ')})`));
    } else if (ctx.baseDomain && h !== ctx.baseDomain.toLowerCase() && !h.endsWith(`.${ctx.baseDomain.toLowerCase()}`)) {
      out.push(v('contact-tenant', '§4.4', `Contact host ${uri.host} is outside the carrier base domain ${ctx.baseDomain}`));
    }
    if ((ctx.peerSubjectAltName !== undefined || ctx.peerSubjectCN !== undefined) && !certCovers(uri.host, ctx.peerSubjectAltName, ctx.peerSubjectCN)) {
      out.push(v('contact-cert', '§2.10', `Contact host ${uri.host} is not covered by the SBC certificate (${ctx.peerSubjectAltName ?? ctx.peerSubjectCN})`));
    }
  }
  if (uri.port === undefined) out.push(v('contact-format', '§3.2/§4.3', `Contact has no port: ${na.uri}`));
  if ((uri.params.get('transport') ?? '').toLowerCase() !== 'tls') out.push(v('contact-format', '§4.3', `Contact lacks ;transport=tls: ${na.uri}`));
  if (requireE164User && !E164_RE.test(userOf(uri))) out.push(v('contact-format', '§4.3', `Contact user is not +E.164: ${na.uri}`));
  return out;
}

function sdpOf(msg: SipRequest | SipResponse): ParsedSdp | undefined {
  if (msg.body.length === 0) return undefined;
  const ct = (msg.contentType ?? '').toLowerCase();
  if (ct && !ct.startsWith('application/sdp')) return undefined;
  return parseSdp(msg.body.toString('utf8'));
}

/** SDP offer/answer sent toward Teams (§4.6, §7.1, §7.4, §7.6, §7.7, §6.10, §10.3). */
export function checkSdp(sdp: ParsedSdp, kind: 'offer' | 'answer'): V[] {
  const out: V[] = [];
  const a = audioOf(sdp);
  if (!a) return [v('sdp-missing', '§4.6', 'SDP has no audio m-line')];
  if (a.proto !== 'RTP/SAVP') out.push(v('sdp-savp', '§7.1', `audio transport is ${a.proto}, must be RTP/SAVP`));
  const c80 = a.crypto.filter((c) => c.suite === 'AES_CM_128_HMAC_SHA1_80');
  if (c80.length === 0) out.push(v('sdp-crypto', '§7.1', `no a=crypto AES_CM_128_HMAC_SHA1_80 (${a.crypto.map((c) => c.suite).join(', ') || 'none'})`));
  const others = a.crypto.filter((c) => c.suite !== 'AES_CM_128_HMAC_SHA1_80');
  if (others.length > 0) out.push(v('sdp-crypto', '§7.1', `crypto suites other than AES_CM_128_HMAC_SHA1_80 offered toward Teams: ${others.map((c) => c.suite).join(', ')}`));
  if (kind === 'answer' && a.crypto.length > 1) out.push(v('answer-crypto', '§7.2', `answer carries ${a.crypto.length} crypto lines, must pick one`));
  for (const c of c80) {
    if (!c.key || Buffer.from(c.key, 'base64').length !== 30) out.push(v('sdp-crypto', '§7.1', `a=crypto:${c.tag} key is not a 30-byte inline key: ${c.keyParams}`));
  }
  if (!a.rtcpMux) out.push(v('sdp-rtcp-mux', '§7.4', 'no a=rtcp-mux'));
  const bad = a.codecs.filter((c) => !TEAMS_AUDIO_CODECS.includes(c.name.toUpperCase()) && !['TELEPHONE-EVENT', 'CN'].includes(c.name.toUpperCase()));
  if (bad.length > 0) out.push(v('sdp-codecs', '§7.6', `codecs outside the Teams set: ${bad.map((c) => `${c.pt} ${c.name}`).join(', ')}`));
  if (!a.codecs.some((c) => TEAMS_AUDIO_CODECS.includes(c.name.toUpperCase())) && a.port !== 0) out.push(v('sdp-codecs', '§7.6', 'no Teams audio codec'));
  if (kind === 'offer' && !a.codecs.some((c) => c.name.toLowerCase() === 'telephone-event')) out.push(v('sdp-telephone-event', '§7.7', 'no telephone-event payload'));
  if (kind === 'offer' && (a.direction === 'sendonly' || a.direction === 'recvonly')) out.push(v('sdp-hold', '§6.10', `a=${a.direction} toward Teams; hold must be a=inactive`));
  if (a.address === '0.0.0.0') out.push(v('sdp-hold', '§10.3', 'c=0.0.0.0 hold is not supported by Teams'));
  return out;
}

/** Headers that must never reach Teams (§4.5, §4.7, §4.17). */
function checkForbiddenHeaders(msg: SipRequest | SipResponse): V[] {
  const out: V[] = [];
  if (msg.has('record-route')) out.push(v('record-route', '§3.3/§4.5', `Record-Route present: ${msg.getAll('record-route').join(', ')}`));
  if (msg.has('replaces')) out.push(v('replaces', '§4.7', `Replaces header sent to Teams: ${msg.get('replaces')}`));
  const req = msg.getAll('require').flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase());
  if (req.includes('100rel')) out.push(v('require-100rel', '§4.17', 'Require: 100rel sent to Teams'));
  return out;
}

function allowList(msg: SipRequest | SipResponse): string[] | undefined {
  if (!msg.has('allow')) return undefined;
  return msg.getAll('allow').flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean);
}

function checkAllow(msg: SipRequest | SipResponse, ctx: CheckContext, ref: string): V[] {
  const allow = allowList(msg);
  if (allow === undefined) return [v('allow', ref, 'no Allow header')];
  const need = ['INVITE', 'ACK', 'BYE', 'CANCEL', ...(ctx.expectAllowRefer ? ['REFER', 'NOTIFY'] : [])];
  const missing = need.filter((m) => !allow.includes(m));
  return missing.length ? [v('allow', ref, `Allow lacks ${missing.join(', ')} (got ${allow.join(',')})`)] : [];
}

export interface RequestCheckState {
  /** For in-dialog INVITEs: the SBC's first SDP on this dialog (media must not move, §6.11). */
  firstSdp?: ParsedSdp | undefined;
}

/** Checks one request the SBC sent to the fake Teams. */
export function checkRequest(req: SipRequest, ctx: CheckContext, state: RequestCheckState = {}): V[] {
  const out: V[] = [];
  const uri = safeUri(req.uri);
  if (uri && uri.scheme === 'sips') out.push(v('sips-uri', '§2.13', `sips: Request-URI ${req.uri}`));
  const m = req.method;
  if (m === 'UPDATE' || m === 'PRACK' || m === 'INFO' || m === 'REFER') {
    out.push(v('method-not-allowed', '§3.7/§4.17', `${m} sent to Teams (not in Teams' Allow set)`));
  }
  if (m === 'ACK' || m === 'CANCEL') return out;
  out.push(...checkForbiddenHeaders(req));
  const initial = req.toTag === undefined;

  if (m === 'OPTIONS') {
    const optionsHosts = ctx.optionsUriHosts ?? [ctx.endpointFqdn];
    if (!uri || !optionsHosts.includes(uri.host.toLowerCase())) out.push(v('ruri-host', '§3.2/§1.6', `OPTIONS Request-URI ${req.uri} must name ${optionsHosts.join(' or ')}`));
    for (const [name, na] of [['From', safeNameAddr(req.get('from') ?? '')], ['To', safeNameAddr(req.get('to') ?? '')]] as const) {
      const u = na ? safeUri(na.uri) : undefined;
      if (!u || isIP(u.host)) out.push(v('from-to-fqdn', '§3.2', `OPTIONS ${name} must carry an FQDN: ${req.get(name) ?? '(missing)'}`));
    }
    out.push(...checkContact(req, ctx, false, true));
    return out;
  }

  if (m === 'INVITE') {
    if (initial) {
      if (!uri || !ctx.requestUriHosts.map((h) => h.toLowerCase()).includes(uri.host.toLowerCase())) {
        out.push(v('ruri-host', '§4.1', `Request-URI host must be ${ctx.requestUriHosts.join(' or ')}: ${req.uri}`));
      }
      // A transfer to a Teams user (§6.3 Refer-To with x-m/x-t) has no user part; copying it is right.
      const teamsTarget = uri !== undefined && uri.params.has('x-m');
      if (!uri || (!teamsTarget && !E164_RE.test(userOf(uri)))) out.push(v('ruri-e164', '§4.1', `Request-URI user is not +E.164: ${req.uri}`));
      const from = safeNameAddr(req.get('from') ?? '');
      const fu = from ? safeUri(from.uri) : undefined;
      if (!fu || (!E164_RE.test(userOf(fu)) && userOf(fu).toLowerCase() !== 'anonymous')) out.push(v('from-e164', '§4.2', `From is not +E.164: ${req.get('from') ?? '(missing)'}`));
      const xms = req.get('x-ms-sbc');
      if (xms === undefined || xms.trim() === '') out.push(v('x-ms-sbc', '§4.9', 'no X-MS-SBC header'));
      out.push(...checkAllow(req, ctx, '§4.8'));
    }
    out.push(...checkContact(req, ctx, true));
    const sdp = sdpOf(req);
    if (!sdp) {
      out.push(v('sdp-missing', '§4.6', 'INVITE without SDP offer (Teams does not support delayed offer)'));
      return out;
    }
    out.push(...checkSdp(sdp, 'offer'));
    const first = state.firstSdp ? audioOf(state.firstSdp) : undefined;
    const now = audioOf(sdp);
    if (!initial && first && now && now.port !== 0 && (first.address !== now.address || first.port !== now.port)) {
      out.push(v('sdp-media-moved', '§6.11', `re-INVITE moves media from ${first.address}:${first.port} to ${now.address}:${now.port}`));
    }
    return out;
  }

  if (m === 'NOTIFY') {
    const ev = (req.get('event') ?? req.get('o') ?? '').split(';')[0]?.trim().toLowerCase();
    if (ev !== 'refer') out.push(v('notify-format', 'RFC 3515 §2.4.4', `NOTIFY Event must be refer, got ${ev || '(missing)'}`));
    if (!(req.contentType ?? '').toLowerCase().startsWith('message/sipfrag')) out.push(v('notify-format', 'RFC 3515 §2.4.5', `NOTIFY body must be message/sipfrag, got ${req.contentType ?? '(none)'}`));
    if (!req.has('subscription-state')) out.push(v('notify-format', 'RFC 6665 §8.2.3', 'NOTIFY without Subscription-State'));
    return out;
  }
  return out;
}

/**
 * Checks one response the SBC sent to a request of the fake Teams (§5.8, §5.11, §5.12,
 * §7.2, §4.17).
 */
export function checkResponse(res: SipResponse, ctx: CheckContext, offerSdp: ParsedSdp | undefined): V[] {
  const out: V[] = [];
  const method = res.cseq.method;
  if (method !== 'INVITE') return out;
  if (res.status === 100 || res.status >= 300) return out;
  out.push(...checkForbiddenHeaders(res));
  out.push(...checkContact(res, ctx, false));
  if (res.status >= 200) out.push(...checkAllow(res, ctx, '§5.12'));
  const sdp = sdpOf(res);
  if (sdp) {
    out.push(...checkSdp(sdp, 'answer'));
    const a = audioOf(sdp);
    const o = offerSdp ? audioOf(offerSdp) : undefined;
    if (a && o) {
      const notOffered = a.codecs.filter((c) => !o.codecs.some((oc) => oc.pt === c.pt));
      if (notOffered.length) out.push(v('sdp-codecs', 'RFC 3264 §6.1', `answer has payload types not offered: ${notOffered.map((c) => c.pt).join(', ')}`));
      if (o.rtcpMux && !a.rtcpMux) out.push(v('sdp-rtcp-mux', '§7.4', 'answer drops the offered rtcp-mux'));
    }
  } else if (res.status >= 200 && res.status < 300 && offerSdp) {
    out.push(v('sdp-missing', 'RFC 3264 §5', '2xx to an INVITE with an offer carries no answer'));
  }
  return out;
}
