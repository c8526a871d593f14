/**
 * Transfers (teams-direct-routing.md §6): REFER from Teams with the gateway as transferee
 * (§6.3–§6.6), and INVITE with Replaces from Teams (§6.7) or from the carrier (§6.13).
 */
import type { CallSession, SrfDialog } from './call-session.js';
import type { MediaSide } from './media-port.js';
import { type GatewayContext, sendFailure, teamsAllow } from './context.js';
import { carrierRequestAnswered, carrierRequestHeaders } from './carrier-session-timer.js';
import { featuresOf } from './features.js';
import { armSessionTimer, noteReceived, noteSent, teamsInDialogHeaders, wireLeg } from './mid-call.js';
import { directionOf, pinOf, towardTeams, withDirection } from './sdp-rules.js';
import { inviteTeams } from './teams-invite.js';
import { TransferRingback } from './transfer-ringback.js';
import type { UacAttempt } from './uac-attempt.js';
import { uriUser } from './numbers.js';

/** The URI inside a Refer-To value, without header parameters (RFC 3515 §2.1, RFC 3261 §19.1.5). */
export function referTarget(referTo: string): string {
  const v = referTo.trim();
  const inner = v.startsWith('<') || v.includes('<') ? (/<([^>]*)>/.exec(v)?.[1] ?? v) : v.split(';')[0]!;
  // "?Replaces=..." and other embedded headers never go to Teams (§4.7).
  return inner.split('?')[0]!.trim();
}

const REASONS: Record<number, string> = { 100: 'Trying', 180: 'Ringing', 183: 'Session Progress', 200: 'OK', 408: 'Request Timeout', 480: 'Temporarily Unavailable', 486: 'Busy Here', 487: 'Request Terminated', 500: 'Server Internal Error', 503: 'Service Unavailable', 603: 'Decline' };

/**
 * A Teams leg is wired (and can receive REFER or be named by Replaces) as soon as Teams
 * answers, while the carrier leg may still be being answered; transfers need both legs, so they
 * wait for that (at most 2 s). False when the call ended or never got answered.
 */
async function untilAnswered(s: CallSession): Promise<boolean> {
  for (let i = 0; i < 100 && !s.answeredAt && !s.closed; i++) await new Promise((r) => setTimeout(r, 20));
  return !s.closed && s.answeredAt !== undefined;
}

/**
 * REFER from Teams on the Teams leg `oldLeg`. RFC 3515 §2.4.4/§2.4.5: 202, then NOTIFYs with a
 * message/sipfrag body carrying the status line of the new INVITE's responses; the last one
 * terminates the implicit subscription. §6.4: the new INVITE goes to the Teams SIP proxy with
 * Request-URI = the Refer-To URI and Referred-By copied byte for byte; the old leg is ended by
 * Teams (never BYEd here).
 */
export async function handleRefer(ctx: GatewayContext, s: CallSession, oldLeg: SrfDialog, req: any, res: any): Promise<void> {
  const referTo: string | undefined = req.get('Refer-To');
  const referredBy: string | undefined = req.has('Referred-By') ? req.get('Referred-By') : undefined;
  const tenant = s.tenant;
  if (!referTo || !tenant) return void res.send(400);
  if (!(await untilAnswered(s))) return void res.send(481);
  if (s.busy) return void res.send(491);
  const log = s.log.child({ transfer: true });
  res.send(202, { headers: teamsInDialogHeaders(s) });
  let cseqNotify = 0;
  const notify = async (status: number, reason: string | undefined, final: boolean): Promise<void> => {
    if (oldLeg.connected === false) return;
    cseqNotify++;
    try {
      await oldLeg.request({
        method: 'NOTIFY',
        headers: {
          Event: 'refer',
          'Subscription-State': final ? 'terminated;reason=noresource' : 'active;expires=60',
          'Content-Type': 'message/sipfrag;version=2.0',
        },
        body: `SIP/2.0 ${status} ${reason ?? REASONS[status] ?? 'Unknown'}\r\n`,
      });
    } catch (err) {
      log.debug({ err: (err as Error).message, n: cseqNotify }, 'NOTIFY failed');
    }
  };
  await notify(100, 'Trying', false);

  const uri = referTarget(referTo);
  const sig = ctx.config.teams.signalingPort;
  const pstn = s.pstnNumber && s.pstnNumber !== 'anonymous' ? s.pstnNumber : undefined;
  // §6.5: every §4 rule for Teams-bound INVITEs: tenant FQDN Contact, SDP offer, no Replaces.
  const headers: Record<string, string> = {
    From: pstn ? `<sip:${uriUser(pstn)}@${tenant.fqdn};user=phone>` : `"Anonymous" <sip:anonymous@${tenant.fqdn};user=phone>`,
    To: `<${uri}>`,
    Contact: pstn ? `<sip:${uriUser(pstn)}@${tenant.fqdn}:${sig};transport=tls>` : (s.teamsContact ?? `<sip:${tenant.fqdn}:${sig};transport=tls>`),
    'X-MS-SBC': ctx.config.teams.sbcHeader,
    Allow: teamsAllow(tenant.teams.advertiseRefer),
    Supported: 'timer',
    'Session-Expires': String(featuresOf(ctx).sessionTimer.sessionExpires),
    'Max-Forwards': '70',
  };
  if (!pstn) headers.Privacy = 'id';
  if (referredBy !== undefined) headers['Referred-By'] = referredBy;

  s.busy = true;
  let attempt: UacAttempt | undefined;
  const stop = () => attempt?.cancel();
  let early = false;
  // §6.6: a 180 without SDP gets a gateway-made ringing tone toward the PSTN party, stopped
  // by the new leg's SDP (early media or answer), its failure, or the end of the call.
  const ringback = new TransferRingback(s.media, featuresOf(ctx).transferRingback, log);
  try {
    // The held call is resumed on the new leg (§6.5, as jambonz does): the offer is sendrecv.
    const carrierSdp = s.sdpFrom.carrier ? withDirection(s.sdpFrom.carrier, 'sendrecv') : undefined;
    let offer = carrierSdp ?? s.sdpTo.teams ?? '';
    if (s.media && carrierSdp) offer = await s.media.offer('carrier', carrierSdp);
    offer = towardTeams(offer, undefined, { offer: true });
    const closedWatcher = setInterval(() => {
      if (s.closed) stop();
    }, 200);
    let r;
    try {
      r = await inviteTeams(ctx, {
        uri,
        headers,
        sdp: offer,
        log,
        stopped: () => s.closed,
        onAttempt: (a) => (attempt = a),
        onProvisional: (p: any) => {
          if (p.status <= 100 || s.closed) return;
          const media = s.media;
          if (p.body && media) {
            // §6.6: the PSTN party hears the new leg's early media (ringback) through rtpengine.
            // A tone started by an earlier 180 stops first: stop() queues its ng commands at
            // once, so they reach rtpengine before this answer (and this answer before the 200's).
            early = true;
            void ringback.stop();
            void media.answer('teams', p.body).catch((err: Error) => log.warn({ err: err.message }, 'early media of the new leg not anchored'));
          } else if (p.status === 180 && !early) {
            void ringback.start();
          }
          void notify(p.status, p.reason, false);
        },
      });
    } finally {
      clearInterval(closedWatcher);
    }
    await ringback.stop();
    if (r.dialog) {
      const d = r.dialog;
      if (s.closed) {
        await d.destroy().catch(() => undefined);
        return;
      }
      const answer = d.remote.sdp;
      if (s.media) await s.media.answer('teams', answer);
      s.replaceLeg('teams', d);
      s.teamsPin = pinOf(offer);
      noteSent(s, 'teams', offer);
      noteReceived(s, 'teams', answer);
      wireLeg(ctx, s, d);
      armSessionTimer(ctx, s, d.res?.get?.('Session-Expires'), false);
      await notify(200, 'OK', true);
      log.info({ uri, earlyMedia: early }, 'transfer completed: waiting for Teams to end the old leg');
      await resumeCarrierIfHeld(s, answer);
      return;
    }
    const status = r.status !== undefined && r.status >= 300 ? r.status : 503;
    log.info({ uri, status }, 'transfer target failed: the call stays on the old leg');
    // rtpengine goes back to the old Teams leg's media.
    if (s.media && s.sdpFrom.teams && !s.closed) await s.media.answer('teams', s.sdpFrom.teams).catch(() => undefined);
    await notify(status, undefined, true);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'transfer failed');
    await notify(500, undefined, true);
  } finally {
    await ringback.stop();
    s.busy = false;
  }
}

/**
 * Teams put the carrier on hold before the REFER (sendonly/inactive toward the carrier): once
 * the new leg is up, the carrier gets a re-INVITE so media flows both ways again.
 */
async function resumeCarrierIfHeld(s: CallSession, teamsSdp: string): Promise<void> {
  const toCarrier = s.sdpTo.carrier;
  const carrier = s.leg('carrier');
  if (!toCarrier || !carrier || directionOf(toCarrier) === 'sendrecv' || !s.media || s.closed) return;
  try {
    s.busy = true;
    const offer = await s.media.offer('teams', withDirection(teamsSdp, 'sendrecv'));
    const answer = await carrier.modify(offer, { headers: carrierRequestHeaders(s) });
    carrierRequestAnswered(s);
    noteSent(s, 'carrier', offer);
    noteReceived(s, 'carrier', answer);
    await s.media.answer('carrier', answer);
  } catch (err) {
    s.log.warn({ err: (err as Error).message }, 'resuming the carrier after a transfer failed');
  } finally {
    s.busy = false;
  }
}

/** RFC 3891 §3: `Replaces: call-id;to-tag=<our tag>;from-tag=<their tag>`. */
export function parseReplaces(v: string): { callId: string; toTag: string; fromTag: string } | undefined {
  const parts = v.split(';').map((p) => p.trim());
  const callId = parts[0];
  const param = (n: string) => parts.find((p) => p.toLowerCase().startsWith(`${n}=`))?.slice(n.length + 1);
  const toTag = param('to-tag');
  const fromTag = param('from-tag');
  if (!callId || !toTag || !fromTag) return undefined;
  return { callId, toTag, fromTag };
}

/** The call whose `side` leg the Replaces header names (RFC 3891 §3: to-tag is our local tag). */
export function findReplaced(ctx: GatewayContext, r: { callId: string; toTag: string; fromTag: string }, side: MediaSide = 'teams'): CallSession | undefined {
  for (const s of ctx.calls) {
    const d = s.leg(side);
    if (!d || s.closed) continue;
    if (d.sip.callId === r.callId && d.sip.localTag === r.toTag && d.sip.remoteTag === r.fromTag) return s;
  }
  return undefined;
}

/**
 * INVITE with Replaces: the new dialog takes over the existing call's leg on `side`, and the other
 * side never sees it (§6.7: from Teams, call-queue pickup / consultative transfer; §6.13: from the
 * carrier, whose transfers are terminated here since Teams takes no Replaces). Media is
 * re-anchored with an rtpengine re-offer from `side` answered with the other side's current SDP
 * (that endpoint does not change); RFC 3891 §3: the replaced dialog is then ended with a BYE.
 */
export async function acceptReplaces(ctx: GatewayContext, s: CallSession, req: any, res: any, headers: Record<string, string>, side: MediaSide = 'teams'): Promise<void> {
  const log = s.log.child({ replaces: side });
  const other: MediaSide = side === 'teams' ? 'carrier' : 'teams';
  if (!(await untilAnswered(s))) return void res.send(481, { headers });
  if (s.busy) return void res.send(491, { headers });
  s.busy = true;
  try {
    const offer: string = req.body ?? '';
    if (!offer.trim()) return void res.send(488, { headers });
    let answer = s.sdpTo[other] && s.sdpFrom[other] ? s.sdpFrom[other] : '';
    if (s.media) {
      await s.media.offer(side, offer);
      answer = await s.media.answer(other, withDirection(s.sdpFrom[other] ?? '', 'sendrecv'));
    }
    if (side === 'teams') answer = towardTeams(answer, undefined, { offer: false });
    const d: SrfDialog = await ctx.srf.createUAS(req, res, { localSdp: answer, headers });
    if (s.closed) {
      await d.destroy().catch(() => undefined);
      return;
    }
    const old = s.replaceLeg(side, d);
    if (side === 'teams') s.teamsPin = pinOf(answer);
    else {
      // The new carrier dialog negotiated no session timer (our 200 carries none, RFC 4028 §9):
      // the old leg's timer must not expire it.
      s.sessionTimers.carrier?.close();
      delete s.sessionTimers.carrier;
      s.carrierTimerPlan = undefined;
    }
    noteSent(s, side, answer);
    noteReceived(s, side, offer);
    wireLeg(ctx, s, d);
    if (old) {
      s.retired.delete(old);
      await old.destroy().catch(() => undefined);
    }
    log.info('call taken over by an INVITE with Replaces');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'INVITE with Replaces failed');
    sendFailure(res, 500, undefined, undefined, headers);
  } finally {
    s.busy = false;
  }
}
