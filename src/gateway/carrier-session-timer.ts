/**
 * RFC 4028 session timer on the carrier leg. Independent of the Teams leg's (mid-call.ts): each
 * leg negotiates its own interval and refresher, and a refresh on one leg restarts that leg's
 * timer only. A carrier that vanishes without a BYE (or stops answering our refreshes) gets the
 * call ended on both legs, media deleted, as for any call the gateway ends.
 *
 * Choices where RFC 4028 leaves one (config `calls.carrierSessionTimer`, features.ts):
 * - carrier INVITE (§9): a Session-Expires above ours is reduced to ours (never below the
 *   carrier's Min-SE); a carrier INVITE without a refresher parameter, without Session-Expires,
 *   or without `timer` support at all gets the gateway as the refresher (refresher=uas), so every
 *   answered carrier call is supervised;
 * - INVITE to a carrier (§7.1): Supported: timer, Session-Expires and Min-SE, no refresher
 *   parameter (left to the carrier); a 2xx without Session-Expires (no timer support) again makes
 *   the gateway the refresher with the interval it offered;
 * - our refresh: UPDATE without a body when the carrier's Allow lists UPDATE, otherwise a
 *   re-INVITE with the SDP we last sent it; 408, 481 or no answer ends the call; 422 is retried at
 *   once with its Min-SE; 491 is retried after 2.1–4 s (RFC 3261 §14.1); any other refusal keeps
 *   the call and tries again at the next refresh time (the carrier answered: it is there).
 */
import { randomInt } from 'node:crypto';
import type { CallSession } from './call-session.js';
import { type SipHeaders, hasOptionTag, headerOf } from './carrier-leg.js';
import type { GatewayContext } from './context.js';
import { type CarrierSessionTimerSettings, carrierSessionTimerFor, parseSessionExpires } from './features.js';
import { noteReceived } from './mid-call.js';
import { type LegTimerPlan, type Refresher, SessionTimer } from './session-timer.js';

/** RFC 4028 §4 (compact form `x`). */
export function sessionExpiresOf(m: SipHeaders): ReturnType<typeof parseSessionExpires> {
  return parseSessionExpires(headerOf(m, 'Session-Expires', 'x'));
}

/** RFC 4028 §5: `Min-SE: delta-seconds`. */
export function minSeOf(m: SipHeaders): number | undefined {
  const v = /^\s*(\d+)/.exec(headerOf(m, 'Min-SE') ?? '')?.[1];
  return v === undefined ? undefined : Number(v);
}

/** The peer lists the `timer` option tag (Supported, or Require). */
export function supportsTimer(m: SipHeaders): boolean {
  return hasOptionTag(m, 'Supported', 'timer') || hasOptionTag(m, 'Require', 'timer');
}

/** The peer's Allow lists UPDATE (RFC 3311). */
export function allowsUpdate(m: SipHeaders): boolean {
  return hasOptionTag(m, 'Allow', 'update');
}

/** An SDP body's lines, trimmed, without blank ones; `o=` without its <sess-version> when `anyVersion`. */
function sdpLines(x: string, anyVersion: boolean): string {
  return x
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => (anyVersion && l.startsWith('o=') ? l.replace(/^(o=\S+ \S+ )\S+/, '$1*') : l))
    .join('\n');
}

/** Two SDP bodies that are the same session description (line endings and blank lines aside). */
export function sameSdp(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && sdpLines(a, false) === sdpLines(b, false);
}

/**
 * Two SDP bodies that describe the same session, whatever their `o=` <sess-version>. RFC 3264
 * §8: a new version announces a change, but an offer whose every other line is the same changes
 * nothing (a session refresh that bumps the version anyway); it can be answered with the
 * previous answer as it was.
 */
export function sameSession(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && sdpLines(a, true) === sdpLines(b, true);
}

/**
 * RFC 4028 §9: the interval a UAS grants. "The UAS MUST NOT increase the value of the
 * Session-Expires header field"; it may reduce it, but not below the request's Min-SE. We reduce
 * it to our own `sessionExpires`. A request without `timer` support whose value is below our
 * minimum (a proxy put it there) cannot usefully be refused (§8.1, and for UAS erratum 1687): the
 * value is raised to our minimum.
 */
function grantedInterval(asked: number | undefined, theirMin: number | undefined, policy: CarrierSessionTimerSettings): number {
  const ours = Math.max(policy.sessionExpires, policy.minSeconds, theirMin ?? 0);
  if (asked === undefined) return ours;
  return Math.max(Math.min(asked, Math.max(policy.sessionExpires, theirMin ?? 0)), policy.minSeconds);
}

/** Session-Expires (and Require) of a 2xx we send; `refresher` names a role in the request answered. */
function uasHeaders(interval: number, refresher: Refresher, supports: boolean): Record<string, string> {
  const h: Record<string, string> = { 'Session-Expires': `${interval};refresher=${refresher}` };
  // §9: Require: timer MUST come with refresher=uac and SHOULD with refresher=uas when the
  // request's Supported listed timer; a peer that did not list it is never required to support it.
  if (supports) h.Require = 'timer';
  return h;
}

export type CarrierUasVerdict =
  | { kind: 'off' }
  /** 422 (Session Interval Too Small) with these headers (Min-SE). */
  | { kind: 'reject'; headers: Record<string, string> }
  /** Answer with `headers` in the 2xx; arm `plan` when the call is up. */
  | { kind: 'accept'; plan: LegTimerPlan; headers: Record<string, string> };

/**
 * RFC 4028 §9, a carrier's INVITE (PSTN → Teams):
 * - "If an incoming request contains a Supported header field with a value 'timer' and a
 *   Session Expires header field, the UAS MAY reject the INVITE request with a 422 ... if the
 *   session interval ... is smaller than the minimum interval defined by the UAS' local policy.
 *   When sending the 422 response, the UAS MUST include a Min-SE header field with the value of
 *   its minimum interval."
 * - refresher: the carrier's choice when it supports timers and made one; otherwise ours, the
 *   gateway (uas). A UAC without timer support cannot refresh, so refresher=uas is the only
 *   legal value then.
 */
export function negotiateCarrierUas(req: SipHeaders, policy: CarrierSessionTimerSettings): CarrierUasVerdict {
  if (!policy.enabled) return { kind: 'off' };
  const supports = supportsTimer(req);
  const se = sessionExpiresOf(req);
  if (se && supports && se.seconds < policy.minSeconds) return { kind: 'reject', headers: { 'Min-SE': String(policy.minSeconds) } };
  const interval = grantedInterval(se?.seconds, minSeOf(req), policy);
  const refresher: Refresher = supports && se?.refresher ? se.refresher : 'uas';
  return {
    kind: 'accept',
    plan: { interval, weRefresh: refresher === 'uas', peerSupportsTimer: supports, useUpdate: allowsUpdate(req), peerIsUac: true },
    headers: uasHeaders(interval, refresher, supports),
  };
}

/**
 * RFC 4028 §7.1, our INVITE to a carrier (Teams → PSTN): "A UAC which supports the session timer
 * extension defined here MUST include a Supported header field in each request (except ACK),
 * listing the option tag 'timer'" (outbound.ts merges it with 100rel). Session-Expires without a
 * refresher parameter (left to the carrier, as the RFC recommends), and our Min-SE. After a 422
 * `minSe` is the carrier's: the retry asks for at least that much and says so in Min-SE.
 */
export function carrierInviteHeaders(policy: CarrierSessionTimerSettings, minSe?: number): Record<string, string> | undefined {
  if (!policy.enabled) return undefined;
  const min = Math.max(policy.minSeconds, minSe ?? 0);
  return { 'Session-Expires': String(Math.max(policy.sessionExpires, min)), 'Min-SE': String(min) };
}

/**
 * RFC 4028 §7.1/§8.1: a 422 to our INVITE carries the carrier's Min-SE; the INVITE may be sent
 * again with a Session-Expires (and Min-SE) of at least that value. Undefined: no usable Min-SE
 * (missing, or not above what we asked), so no retry.
 */
export function headersAfter422(res: SipHeaders, policy: CarrierSessionTimerSettings, asked: number): Record<string, string> | undefined {
  const theirs = minSeOf(res);
  if (!policy.enabled || theirs === undefined || theirs <= asked) return undefined;
  return carrierInviteHeaders(policy, theirs);
}

/**
 * RFC 4028 §7.2, the carrier's 2xx to our INVITE: its Session-Expires sets the interval and its
 * refresher parameter the refresher (uac = the gateway). A 2xx without Session-Expires means the
 * carrier runs no timer; the gateway then refreshes by itself at the interval it offered (§3: a
 * refresh is an ordinary re-INVITE or UPDATE, which any UA answers).
 */
export function negotiateCarrierUac(res: SipHeaders, policy: CarrierSessionTimerSettings, offered: number): LegTimerPlan | undefined {
  if (!policy.enabled) return undefined;
  const se = sessionExpiresOf(res);
  const useUpdate = allowsUpdate(res);
  if (!se || se.seconds < 1) return { interval: offered, weRefresh: true, peerSupportsTimer: supportsTimer(res), useUpdate, peerIsUac: false };
  return { interval: se.seconds, weRefresh: se.refresher !== 'uas', peerSupportsTimer: true, useUpdate, peerIsUac: false };
}

/** Both legs are up: the carrier leg's timer starts with what its INVITE negotiated. */
export function armCarrierSessionTimer(s: CallSession): void {
  const plan = s.carrierTimerPlan;
  if (!plan || s.closed || !s.leg('carrier')) return;
  const st = (s.sessionTimers.carrier ??= new SessionTimer({
    leg: 'carrier',
    log: s.log,
    peerIsUac: plan.peerIsUac,
    onRefreshDue: () => void refreshCarrier(s),
    onExpired: () => {
      s.log.info({ sessionExpires: st.interval, carrier: s.carrier }, 'session timer expired: no refresh from the carrier; call ended on both legs');
      s.endCause = 'carrier_session_expired';
      void s.close('gateway', 408);
    },
  }));
  st.peerIsUac = plan.peerIsUac;
  st.start(plan.interval, plan.weRefresh);
}

/**
 * A re-INVITE or UPDATE from the carrier on an answered call: a session refresh (RFC 4028 §9
 * applies to it as to the INVITE). `reject`: answer 422 with these headers (its interval is
 * below our minimum); otherwise the timer restarts and `headers` go in the 2xx.
 * Undefined when the carrier leg runs no timer.
 */
export function carrierRefreshReceived(ctx: GatewayContext, s: CallSession, req: SipHeaders): { reject?: Record<string, string>; headers: Record<string, string> } | undefined {
  const st = s.sessionTimers.carrier;
  if (!st || st.closed || s.closed) return undefined;
  const policy = carrierSessionTimerFor(ctx, s.carrier);
  const supports = supportsTimer(req);
  const se = sessionExpiresOf(req);
  if (se && supports && se.seconds < policy.minSeconds) return { reject: { 'Min-SE': String(policy.minSeconds) }, headers: {} };
  const interval = se ? grantedInterval(se.seconds, minSeOf(req), policy) : st.interval;
  // The carrier is the UAC of this request, so refresher=uac names the carrier; without the
  // parameter (or the header) the roles stay as they were; without timer support it cannot refresh.
  const carrierRefreshes = !supports ? false : se?.refresher ? se.refresher === 'uac' : !st.weRefresh;
  st.start(interval, !carrierRefreshes);
  s.log.debug({ sessionExpires: interval, carrierRefreshes }, 'session refreshed by the carrier');
  return { headers: uasHeaders(interval, carrierRefreshes ? 'uac' : 'uas', supports) };
}

/**
 * Session timer headers for a re-INVITE we relay to the carrier (RFC 4028 §7.4: a request that
 * leaves them out may turn the carrier's timer off). We are the UAC of that request: refresher=uac
 * when we refresh, uas when the carrier does.
 */
export function carrierRequestHeaders(s: CallSession): Record<string, string> {
  const st = s.sessionTimers.carrier;
  if (!st || st.closed || st.state === 'expired') return {};
  return { Supported: 'timer', 'Session-Expires': `${st.interval};refresher=${st.weRefresh ? 'uac' : 'uas'}` };
}

/** A re-INVITE we relayed to the carrier succeeded: a session refresh with the roles unchanged. */
export function carrierRequestAnswered(s: CallSession): void {
  const st = s.sessionTimers.carrier;
  if (!st || st.closed || s.closed) return;
  st.start(st.interval, st.weRefresh);
}

/** RFC 4028 §10: the refresh the gateway sends the carrier when it is the refresher. */
async function refreshCarrier(s: CallSession): Promise<void> {
  const d = s.leg('carrier');
  const st = s.sessionTimers.carrier;
  const plan = s.carrierTimerPlan;
  if (!d || !st || !plan || s.closed) return;
  // An offer/answer in progress (relay, transfer) holds the dialog: try again shortly.
  if (s.busy) return st.retry(500);
  // §7.4: Supported: timer in every request; refresher=uac: we, this request's UAC, keep refreshing.
  const headers: Record<string, string> = { Supported: 'timer', 'Session-Expires': `${st.interval};refresher=uac` };
  let res: any;
  let error: string | undefined;
  s.busy = true;
  try {
    if (plan.useUpdate) {
      // RFC 3311 §5.1 / RFC 4028 §7.4: an UPDATE without a body refreshes the session and leaves
      // the media alone; it is a target refresh request, so it carries our Contact.
      if (d.local.contact) headers.Contact = d.local.contact;
      res = await d.request({ method: 'UPDATE', headers });
    } else {
      // A re-INVITE offering the SDP we last sent, unchanged (RFC 3264 §8: same version).
      res = await d.request({ method: 'INVITE', body: s.sdpTo.carrier ?? d.local.sdp, headers: { ...headers, 'Content-Type': 'application/sdp' } });
      if (res?.status >= 200 && res.status < 300) await takeRefreshAnswer(s, typeof res.body === 'string' ? res.body : undefined);
    }
  } catch (err) {
    error = (err as Error).message;
  } finally {
    s.busy = false;
  }
  if (s.closed || st.closed) return;
  const status: number | undefined = typeof res?.status === 'number' ? res.status : undefined;
  const method = plan.useUpdate ? 'UPDATE' : 'INVITE';
  if (status !== undefined && status >= 200 && status < 300) {
    // §7.2 for the refresh's 2xx: its Session-Expires is the new interval, its refresher (uac =
    // us) the new refresher; without one, we go on refreshing at the same interval.
    const se = sessionExpiresOf(res);
    st.start(se && se.seconds >= 1 ? se.seconds : st.interval, se ? se.refresher !== 'uas' : true);
    s.log.debug({ method, sessionExpires: st.interval }, 'session refreshed toward the carrier');
    return;
  }
  // §10: "If the session refresh request transaction times out or generates a 408 or 481
  // response, then the UAC sends a BYE request."
  if (status === undefined || status === 408 || status === 481) {
    s.log.info({ method, status, err: error, carrier: s.carrier }, 'session refresh toward the carrier failed: call ended on both legs');
    s.endCause = 'carrier_refresh_failed';
    void s.close('gateway', 408);
    return;
  }
  // §10: a 422 to a refresh: again at once, with at least the Min-SE it names.
  const theirMin = status === 422 ? minSeOf(res) : undefined;
  if (theirMin !== undefined && theirMin > st.interval) return st.retry(0, theirMin);
  // RFC 3261 §14.1: glare; the Call-ID owner waits 2.1–4 s, the other 0–2 s; one range serves.
  if (status === 491) return st.retry(randomInt(2100, 4001));
  s.log.warn({ method, status, carrier: s.carrier }, 'session refresh refused by the carrier: tried again at the next refresh time');
  st.start(st.interval, true);
}

/**
 * The carrier's answer to our refresh re-INVITE. Unchanged (the usual case): nothing to do. A
 * changed one moves the carrier's media: rtpengine is re-offered from Teams' last SDP and takes
 * the carrier's answer, so Teams keeps its session.
 */
async function takeRefreshAnswer(s: CallSession, answer: string | undefined): Promise<void> {
  if (!answer?.trim() || sameSdp(answer, s.sdpFrom.carrier)) return;
  noteReceived(s, 'carrier', answer);
  if (!s.media || !s.sdpFrom.teams) return;
  try {
    await s.media.offer('teams', s.sdpFrom.teams);
    await s.media.answer('carrier', answer);
  } catch (err) {
    s.log.warn({ err: (err as Error).message }, 'the carrier changed its media in a refresh answer; rtpengine not updated');
  }
}
