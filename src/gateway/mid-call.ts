/**
 * Mid-call behaviour of an answered call (issue 5): re-INVITEs relayed through rtpengine
 * re-offers with the Teams hold rules, offer-less re-INVITEs, SIP INFO, session timers, and
 * the entry points for REFER (transfer.ts).
 */
import type { CallSession, SrfDialog } from './call-session.js';
import { type GatewayContext, sendFailure, teamsAllow } from './context.js';
import { armCarrierSessionTimer, carrierRefreshReceived, carrierRequestAnswered, carrierRequestHeaders, sameSession } from './carrier-session-timer.js';
import { featuresOf, parseSessionExpires } from './features.js';
import type { MediaSide } from './media-port.js';
import { isHoldOffer, legMustBeReoffered, pinOf, towardTeams } from './sdp-rules.js';
import { SessionTimer } from './session-timer.js';
import { handleRefer } from './transfer.js';
import { InvalidStateError } from '../util/errors.js';

const other = (s: MediaSide): MediaSide => (s === 'teams' ? 'carrier' : 'teams');
const wired = new WeakSet<SrfDialog>();

/** Waits (bounded) until the call has both legs: the B leg can see a re-INVITE before the A leg is answered. */
async function bothLegs(s: CallSession, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!s.closed && (!s.a || !s.b || s.answeredAt === undefined)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !s.closed;
}

/** Headers for requests we send to Teams inside a dialog (tenant Contact, §4.3/§5.11). */
export function teamsInDialogHeaders(s: CallSession): Record<string, string> {
  return s.teamsContact ? { Contact: s.teamsContact } : {};
}

/** Records the SDP sent toward a side; the first one toward Teams pins media (§6.11). */
export function noteSent(s: CallSession, side: MediaSide, sdp: string | undefined): void {
  if (!sdp) return;
  s.sdpTo[side] = sdp;
  if (side === 'teams') s.teamsPin ??= pinOf(sdp);
}

export function noteReceived(s: CallSession, side: MediaSide, sdp: string | undefined): void {
  if (sdp) s.sdpFrom[side] = sdp;
}

/** An offer rtpengine produced for `to`, with the Teams rules when `to` is Teams. */
function outgoingOffer(s: CallSession, to: MediaSide, sdp: string, hold: boolean): string {
  return to === 'teams' ? towardTeams(sdp, s.teamsPin, { offer: true, hold }) : sdp;
}

function outgoingAnswer(s: CallSession, to: MediaSide, sdp: string): string {
  return to === 'teams' ? towardTeams(sdp, s.teamsPin, { offer: false }) : sdp;
}

/**
 * The answer in the ACK of a 2xx that carried our offer (RFC 3261 §13.2.1: "If the initial
 * offer is in the first reliable non-failure message from the UAS back to the UAC, the answer
 * MUST be in the acknowledgement for that message"). drachtio-srf emits the ACK as the dialog's
 * 'ack' event (and records its body as remote.sdp). Undefined when the ACK has no body or none
 * came within 64*T1.
 */
export function ackAnswer(d: SrfDialog, timeoutMs = 32_000): Promise<string | undefined> {
  return new Promise<string | undefined>((resolve) => {
    const t = setTimeout(() => resolve(undefined), timeoutMs);
    t.unref?.();
    d.once?.('ack', (ack: any) => {
      clearTimeout(t);
      resolve(typeof ack?.body === 'string' && ack.body.trim() ? ack.body : undefined);
    });
    d.once?.('destroy', () => {
      clearTimeout(t);
      resolve(undefined);
    });
  });
}

/**
 * An offer from `from` that the other leg need not see (RFC 3264 §8 with the other leg's
 * session unchanged): rtpengine is re-offered with it, so media goes to the new address, port
 * and codecs, then re-answered with the other leg's last SDP, which that leg keeps. Returns the
 * answer for `from`.
 */
export async function answerLocally(s: CallSession, from: MediaSide, sdp: string): Promise<string> {
  if (!s.media || !s.sdpFrom[other(from)]) throw new InvalidStateError(`no SDP from ${other(from)} to answer an offer from ${from} with`);
  noteReceived(s, from, sdp);
  await s.media.offer(from, sdp);
  return answerWithLast(s, from);
}

/** Second half of answerLocally: rtpengine answered with the other leg's last SDP (an offer from `from` is pending). */
async function answerWithLast(s: CallSession, from: MediaSide): Promise<string> {
  const to = other(from);
  const answer = outgoingAnswer(s, from, await s.media!.answer(to, s.sdpFrom[to]!));
  noteSent(s, from, answer);
  return answer;
}

/**
 * Wires one answered leg: re-INVITE, INFO, REFER (Teams legs of tenants that advertise it).
 * Called for both legs once the call is up, and for every new Teams leg (transfer, Replaces).
 */
export function wireLeg(ctx: GatewayContext, s: CallSession, d: SrfDialog): void {
  if (wired.has(d)) return;
  wired.add(d);
  d.on('modify', (req: any, res: any) => {
    const side = s.sideOf(d);
    if (!side || s.closed) return void res.send(481);
    void relayReinvite(ctx, s, side, req, res);
  });
  d.on('update', (req: any, res: any) => {
    const side = s.sideOf(d);
    if (!side || s.closed) return void res.send(481);
    // RFC 3311 §5.2 / RFC 4028 §7.4: an UPDATE without an offer only refreshes the session
    // (the carrier leg's timer, when it runs one; never passed to the other leg).
    if (!String(req.body ?? '').trim()) {
      const refresh = side === 'carrier' ? carrierRefreshReceived(ctx, s, req) : undefined;
      if (refresh?.reject) return void res.send(422, { headers: refresh.reject });
      return void res.send(200, refresh ? { headers: refresh.headers } : {});
    }
    void relayReinvite(ctx, s, side, req, res, 'UPDATE');
  });
  d.on('info', (req: any, res: any) => {
    const side = s.sideOf(d);
    if (!side || s.closed) return void res.send(481);
    void relayInfo(ctx, s, side, req, res);
  });
  d.on('refer', (req: any, res: any) => {
    const side = s.sideOf(d);
    // §6.13: carrier REFERs are terminated on the gateway; Teams REFERs only where advertised.
    if (side !== 'teams' || !s.tenant?.teams.advertiseRefer) return void res.send(405, { headers: { Allow: 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO' } });
    void handleRefer(ctx, s, d, req, res);
  });
}

/**
 * The B leg answered: adopt and wire it, translate its SDP through rtpengine (from `bSide`),
 * answer the A leg (from `aSide`) with it, record the SDPs and start mid-call handling.
 * Returns false when the call ended meanwhile (CANCEL, BYE, shutdown).
 */
export async function bridgeAnswered(
  ctx: GatewayContext,
  s: CallSession,
  o: {
    req: any;
    res: any;
    b: SrfDialog;
    /** The offer we sent on the B leg. */
    offerSent: string | undefined;
    aSide: MediaSide;
    bSide: MediaSide;
    gone: () => boolean;
    uasHeaders?: Record<string, string>;
    /** The A leg's answer when already known (rtpengine done): B's 2xx ended an offer/answer made earlier (RFC 3262 §5). */
    aAnswer?: string;
    /** Session-Expires negotiated toward Teams, and whether Teams was the UAC of that INVITE. */
    teamsSessionExpires: string | undefined;
    teamsIsUac: boolean;
  },
): Promise<boolean> {
  const { b } = o;
  return s.answering(async () => {
    s.attachB(b);
    wireLeg(ctx, s, b);
    if (o.gone() || s.closed) {
      await s.close('gateway');
      return false;
    }
    let answer = o.aAnswer ?? b.remote.sdp;
    try {
      if (s.media && answer && o.aAnswer === undefined) answer = await s.media.answer(o.bSide, answer);
    } catch (err) {
      if (o.gone() || s.closed) return false; // the caller cancelled, or shutdown: media is gone
      throw err;
    }
    if (o.gone() || s.closed) return false;
    const a: SrfDialog = await ctx.srf.createUAS(o.req, o.res, { localSdp: answer, ...(o.uasHeaders ? { headers: o.uasHeaders } : {}) });
    s.answeredAt = Date.now();
    s.finalStatus = 200;
    s.attachA(a);
    noteReceived(s, o.aSide, o.req.body);
    noteSent(s, o.bSide, o.offerSent);
    noteReceived(s, o.bSide, b.remote.sdp);
    noteSent(s, o.aSide, answer);
    callAnswered(ctx, s, o.teamsSessionExpires, o.teamsIsUac);
    return true;
  });
}

/** Both legs are up: wire them and start the session timers (one per leg). */
export function callAnswered(ctx: GatewayContext, s: CallSession, teamsSessionExpires: string | undefined, teamsIsUac: boolean): void {
  // The B leg was wired when it answered (earlyWire): a re-INVITE may come on it at once.
  for (const d of [s.a, s.b]) if (d && !wired.has(d)) wireLeg(ctx, s, d);
  armSessionTimer(ctx, s, teamsSessionExpires, teamsIsUac);
  armCarrierSessionTimer(s);
}

/**
 * The Teams leg's session timer (session-timer.ts runs the clock). RFC 4028 §10: the refresher
 * sends a refresh at half the interval; "If no session refresh request ... is received before
 * the session expires, the UA SHOULD send a BYE" — with the expiry taken as
 * interval - min(32, interval/3) for the side that waits.
 * `value` is the negotiated Session-Expires toward Teams; `teamsIsUac` whether Teams sent the
 * INVITE that set it (refresher=uac then names Teams).
 */
export function armSessionTimer(ctx: GatewayContext, s: CallSession, value: string | undefined, teamsIsUac: boolean): void {
  const se = parseSessionExpires(value);
  if (!se || s.closed) return;
  const min = featuresOf(ctx).sessionTimer.minSeconds;
  const interval = Math.max(se.seconds, min);
  const weRefresh = se.refresher === (teamsIsUac ? 'uas' : 'uac');
  const st = (s.sessionTimers.teams ??= new SessionTimer({
    leg: 'teams',
    log: s.log,
    peerIsUac: teamsIsUac,
    onRefreshDue: () => void refreshTeams(ctx, s),
    onExpired: () => {
      s.log.info({ sessionExpires: st.interval }, 'session timer expired: no refresh from Teams');
      s.endCause = 'teams_session_expired';
      void s.close('gateway', 408);
    },
  }));
  st.peerIsUac = teamsIsUac;
  st.start(interval, weRefresh);
}

/** Our refresh toward Teams: a re-INVITE with the SDP we last sent (unchanged session). */
async function refreshTeams(ctx: GatewayContext, s: CallSession): Promise<void> {
  const d = s.leg('teams');
  const st = s.sessionTimers.teams;
  if (!d || !st || s.closed) return;
  // an exchange in progress refreshes the session itself; try again shortly
  if (s.busy) return st.retry(500);
  const teamsIsUac = st.peerIsUac;
  const sdp = s.sdpTo.teams ?? d.local.sdp;
  // RFC 4028 §7.4/§9: the refresher parameter of a request names a role in that request. We
  // send this re-INVITE, so `refresher=uac` keeps the refreshing with us; once it succeeds we
  // go on refreshing (the roles of the INVITE that set up the leg, what armSessionTimer reads).
  const keepRefreshing = teamsIsUac ? 'uas' : 'uac';
  try {
    s.busy = true;
    const answer = await d.modify(sdp, { headers: { ...teamsInDialogHeaders(s), Supported: 'timer', 'Session-Expires': `${st.interval};refresher=uac` } });
    noteReceived(s, 'teams', typeof answer === 'string' ? answer : undefined);
    s.log.debug('session refreshed toward Teams');
    armSessionTimer(ctx, s, `${st.interval};refresher=${keepRefreshing}`, teamsIsUac);
  } catch (err) {
    // RFC 4028 §10: a refresh that fails with 408/481 ends the session.
    s.log.info({ err: (err as Error).message, status: (err as { status?: number }).status }, 'session refresh toward Teams failed: call ended');
    s.endCause = 'teams_refresh_failed';
    void s.close('gateway', 408);
  } finally {
    s.busy = false;
  }
}

/** A re-INVITE from Teams restarts the timer (it is a refresh when it carries Session-Expires or not). */
function teamsRefreshed(ctx: GatewayContext, s: CallSession, req: any): Record<string, string> {
  const st = s.sessionTimers.teams;
  if (!st) return {};
  // Whether Teams sent the INVITE of the current Teams leg (a transfer's new leg is ours).
  const teamsIsUac = st.peerIsUac;
  const se = parseSessionExpires(req.get?.('Session-Expires'));
  const interval = Math.max(se?.seconds ?? st.interval, featuresOf(ctx).sessionTimer.minSeconds);
  // RFC 4028 §9: the sender of this re-INVITE is the UAC of this transaction; without a
  // refresher parameter (or without the header) the roles stay as they were.
  const teamsRefreshes = se?.refresher ? se.refresher === 'uac' : !st.weRefresh;
  const value = `${interval};refresher=${teamsRefreshes ? 'uac' : 'uas'}`;
  // Re-expressed relative to the INVITE that set up the call (what armSessionTimer expects).
  armSessionTimer(ctx, s, `${interval};refresher=${teamsRefreshes === teamsIsUac ? 'uac' : 'uas'}`, teamsIsUac);
  return se ? { 'Session-Expires': value, Require: 'timer' } : {};
}

/**
 * A re-INVITE (or an UPDATE with an offer) from `from`, relayed to the other leg through an
 * rtpengine re-offer. RFC 3264 §8: a new offer in the session; RFC 3261 §14.2: a second one
 * while one is in progress gets 491 (RFC 3311 §5.2 likewise for UPDATE).
 * The other leg always gets a re-INVITE, never an UPDATE (Teams' Allow lacks it, §4.17).
 */
async function relayReinvite(ctx: GatewayContext, s: CallSession, from: MediaSide, req: any, res: any, method: 'INVITE' | 'UPDATE' = 'INVITE'): Promise<void> {
  if (s.busy) return void res.send(491);
  if (!(await bothLegs(s))) return void res.send(491);
  if (s.busy) return void res.send(491);
  const to = other(from);
  const toDlg = s.leg(to);
  const fromDlg = s.leg(from);
  if (!toDlg || !fromDlg) return void res.send(481);
  // A re-INVITE or UPDATE from the carrier is a session refresh of the carrier leg (RFC 4028
  // §9): a too-short interval gets 422; the Session-Expires of the 2xx goes in `ok` only.
  const refresh = from === 'carrier' ? carrierRefreshReceived(ctx, s, req) : undefined;
  if (refresh?.reject) return void res.send(422, { headers: refresh.reject });
  s.busy = true;
  const extra = from === 'teams' ? { ...teamsResponseHeaders(s), ...teamsRefreshed(ctx, s, req) } : {};
  const ok = { ...extra, ...refresh?.headers };
  try {
    const body: string = req.body ?? '';
    const lastTo = s.sdpTo[from];
    if (body.trim() && lastTo && sameSession(body, s.sdpFrom[from])) {
      // RFC 3264 §8: the sender's session unchanged (a session refresh re-INVITE, RFC 4028
      // §10; its o= version may be the same or bumped): answered here with the SDP we last
      // sent it, unchanged too. Each leg runs its own session timer, so the other leg never
      // sees it.
      res.send(200, { body: lastTo, headers: { ...ok, 'Content-Type': 'application/sdp' } });
      s.log.debug({ method, from }, 'unchanged offer answered locally');
      return;
    }
    if (body.trim()) {
      noteReceived(s, from, body);
      const hold = isHoldOffer(body);
      let out = s.media ? await s.media.offer(from, body) : body;
      out = outgoingOffer(s, to, out, hold);
      if (method === 'UPDATE' && s.media && s.sdpFrom[to] && !legMustBeReoffered(s.sdpTo[to], out)) {
        // RFC 3311 §5.2: the 2xx to an UPDATE carries the answer. An UPDATE that moves only
        // the sender's own media (address, port, codecs the other leg already shares) is
        // answered here; the other leg keeps its session (§6.11 toward Teams).
        const back = await answerWithLast(s, from);
        res.send(200, { body: back, headers: { ...ok, 'Content-Type': 'application/sdp' } });
        s.log.info({ from }, 'UPDATE answered locally');
        return;
      }
      const toHeaders = to === 'teams' ? teamsInDialogHeaders(s) : carrierRequestHeaders(s);
      let answer: string;
      try {
        answer = await toDlg.modify(out, { headers: toHeaders });
        if (to === 'carrier') carrierRequestAnswered(s);
      } catch (err) {
        // The other leg refused: give the same status back; rtpengine returns to the last answer.
        const status = (err as { status?: number }).status ?? 500;
        if (s.media && s.sdpFrom[to]) await s.media.answer(to, s.sdpFrom[to]!).catch(() => undefined);
        s.log.info({ from, status }, 're-INVITE refused by the other leg');
        return void res.send(status >= 300 && status < 700 ? status : 500, { headers: extra });
      }
      noteSent(s, to, out);
      noteReceived(s, to, answer);
      let back = s.media ? await s.media.answer(to, answer) : answer;
      back = outgoingAnswer(s, from, back);
      noteSent(s, from, back);
      res.send(200, { body: back, headers: { ...ok, 'Content-Type': 'application/sdp' } });
      s.log.info({ from, hold, method }, method === 'UPDATE' ? 'UPDATE relayed as a re-INVITE' : 're-INVITE relayed');
      return;
    }
    // RFC 3261 §14.1 / RFC 3264 §5: an INVITE without an offer gets the offer in the 2xx and
    // the answer in the ACK. The offer is an rtpengine re-offer of the other leg's last SDP,
    // so the Teams-facing crypto, address and port stay as they are.
    const last = s.sdpFrom[to];
    if (!last || !s.media) {
      const mine = s.sdpTo[from] ?? fromDlg.local.sdp;
      res.send(200, { body: mine, headers: { ...ok, 'Content-Type': 'application/sdp' } });
      return;
    }
    let offer = await s.media.offer(to, last);
    offer = outgoingOffer(s, from, offer, isHoldOffer(last));
    const acked = ackAnswer(fromDlg);
    noteSent(s, from, offer);
    res.send(200, { body: offer, headers: { ...ok, 'Content-Type': 'application/sdp' } });
    const answer = await acked;
    if (answer && !s.closed) {
      noteReceived(s, from, answer);
      await s.media.answer(from, answer);
      s.log.info({ from }, 'offer-less re-INVITE completed');
    } else if (!s.closed) {
      s.log.warn({ from }, 'offer-less re-INVITE: ACK carried no answer');
    }
  } catch (err) {
    s.log.warn({ err: (err as Error).message, from }, 're-INVITE relay failed');
    sendFailure(res, 500, undefined, undefined, extra);
  } finally {
    s.busy = false;
  }
}

/** Contact and Allow on responses we send to Teams (§5.11, §5.12). */
export function teamsResponseHeaders(s: CallSession): Record<string, string> {
  const out: Record<string, string> = {};
  if (s.teamsContact) out.Contact = s.teamsContact;
  if (s.tenant) out.Allow = teamsAllow(s.tenant.teams.advertiseRefer);
  return out;
}

/** SIP INFO (RFC 6086): passed to the other leg with its body, or answered here. */
async function relayInfo(ctx: GatewayContext, s: CallSession, from: MediaSide, req: any, res: any): Promise<void> {
  const mode = featuresOf(ctx).info;
  const to = s.leg(other(from));
  // Teams' Allow lacks INFO (§3.7): INFO from carriers is never sent toward Teams.
  if (mode === 'local' || !to || other(from) === 'teams') {
    s.log.info({ from, contentType: req.get('Content-Type') }, 'INFO answered locally');
    return void res.send(200);
  }
  try {
    const headers: Record<string, string> = {};
    if (req.has('Content-Type')) headers['Content-Type'] = req.get('Content-Type');
    const r = await to.request({ method: 'INFO', headers, body: req.body });
    res.send(r?.status ?? 200);
    s.log.info({ from, status: r?.status }, 'INFO passed through');
  } catch (err) {
    res.send(500);
    s.log.warn({ err: (err as Error).message }, 'INFO relay failed');
  }
}
