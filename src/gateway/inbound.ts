import type { Carrier, NumberMatch } from '../tenants/types.js';
import { admitOrRefuse, carrierKey, hasLimits } from './admission.js';
import { CallSession } from './call-session.js';
import { PendingInvite } from './pending-invite.js';
import { completeLateOffer, earlyCarrierOffer, rel100Of, reliableCarrierResponse } from './carrier-leg.js';
import { negotiateCarrierUas } from './carrier-session-timer.js';
import { carrierFailureReason, type GatewayContext, type RefusalReason, reason, sendFailure, teamsAllow, teamsAttempts, teamsNextHop } from './context.js';
import { carrierSessionTimerFor, featuresOf, reliableProvisionalsFor } from './features.js';
import { EarlyLateOffer } from './late-offer.js';
import { bridgeAnswered, noteReceived } from './mid-call.js';
import { ringGroupCall } from './ring-group.js';
import { E164_RE, normalize, uriUser, userOf } from './numbers.js';
import { lateOfferStandIn } from './sdp-rules.js';
import { UacAttempt } from './uac-attempt.js';
import { acceptReplaces, findReplaced, parseReplaces } from './transfer.js';

/** Failover verdict for a Teams proxy attempt (issue: never after 18x, never on 4xx/6xx). */
export function teamsFailover(status: number | undefined): boolean {
  if (status === undefined) return true; // connect/TLS failure surfaced as an exception
  return status === 408 || (status >= 500 && status < 600);
}

/**
 * Teams §4.1: the Request-URI names the primary Teams FQDN (`sip:+E164@sip.pstnhub.microsoft.com`)
 * whichever proxy the attempt goes to; the proxy actually used is the next hop (`proxy`), so
 * a failover to sip2/sip3 changes the destination, not the Request-URI.
 */
export function teamsRequestUri(e164: string, primary: { host: string; port: number }): string {
  return `sip:${uriUser(e164)}@${primary.host}:${primary.port};user=phone`;
}

/**
 * PSTN → Teams: a carrier INVITE is mapped to its tenant by called number and sent to the
 * Teams SIP proxies over TLS (teams-direct-routing.md §4), with media anchored in rtpengine.
 */
export async function handleCarrierInvite(ctx: GatewayContext, req: any, carrierRes: any, carrier: Carrier): Promise<void> {
  const callId: string = req.get('Call-ID');
  let log = ctx.log.child({ callId, direction: 'inbound', carrier: carrier.name });
  // Registered first: a CANCEL can arrive while we wait for the tenant store, admission or
  // rtpengine, and must stop the call at whatever step it reached.
  const pending = new PendingInvite(req, () => log, 'carrier');
  // §4.6: Teams needs an offer; a carrier INVITE without one is interworked (late offer).
  const lateOffer = !String(req.body ?? '').trim();
  const rel100 = rel100Of(req, reliableProvisionalsFor(ctx, carrier.name));
  /** Late offer, carrier with 100rel: our offer goes in a reliable 183 (late-offer.ts). */
  let early: EarlyLateOffer | undefined;
  // §4.17: 100rel and PRACK on the carrier leg only (RFC 3262, carrier-leg.ts).
  const res = reliableCarrierResponse(req, carrierRes, {
    mode: rel100,
    lateOffer,
    log,
    onPrackTimeout: () => pending.abort('gateway', 500),
    // (a reliable 18x, hence its PRACK, only exists once the call has its session)
    onPrackOffer: async (prack, r) => (pending.session ? earlyCarrierOffer(pending.session, prack, r) : r.send(500)),
    onPrackAnswer: async (prack) => early?.prackAnswered(prack),
  });
  const reject = (status: number, why?: string, retryAfter?: number, extra?: Record<string, string>) => {
    log.info({ status, reason: why }, 'call rejected');
    if (!pending.canceled) sendFailure(res, status, why, retryAfter, extra);
  };
  /** Refused before it became a call: counted by reason (ops), then answered like any failure. */
  const refuse = (kind: RefusalReason, status: number, why?: string, retryAfter?: number, extra?: Record<string, string>) => {
    ctx.onRefused?.({ direction: 'inbound', reason: kind, carrier: carrier.name, status });
    reject(status, why, retryAfter, extra);
  };
  // §6.13 / RFC 3891: a carrier-side transfer (INVITE with Replaces) takes over the carrier leg of
  // the call it names, on the gateway; Teams sees nothing (it takes no Replaces). Never a new call:
  // that would ring the Teams user a second time. Part of a call in progress, so also while draining.
  if (req.has('Replaces')) {
    const r = parseReplaces(String(req.get('Replaces')));
    const target = r ? findReplaced(ctx, r, 'carrier') : undefined;
    if (!target || target.carrier !== carrier.name) return refuse('replaces-unknown', 481, reason(41, 'Replaced dialog not found'));
    return acceptReplaces(ctx, target, req, res, {}, 'carrier');
  }
  if (ctx.draining) return refuse('draining', 503, reason(42, 'Gateway draining'), 30);
  // RFC 4028 §9: the carrier leg's own session timer (carrier-session-timer.ts); an interval
  // below our minimum gets 422 with our Min-SE, before any resource is taken.
  const carrierTimer = negotiateCarrierUas(req, carrierSessionTimerFor(ctx, carrier.name));
  if (carrierTimer.kind === 'reject') return refuse('session-interval', 422, undefined, undefined, carrierTimer.headers);
  const carrierUasHeaders = carrierTimer.kind === 'accept' ? carrierTimer.headers : undefined;

  const calledRaw = userOf(req.uri) ?? userOf(req.get('To'));
  if (calledRaw) log = log.child({ called: calledRaw });
  const called = calledRaw ? normalize(calledRaw, carrier.normalization.inbound) : undefined;
  if (!called || !E164_RE.test(called)) return refuse('number-format', 404, reason(1, 'Called number is not E.164 after normalization'));
  // One lookup: the tenant owning the called number and, for a ring-group DID, its group.
  const match: NumberMatch | undefined = await ctx.tenants.lookupNumber(called);
  if (!match) return refuse('unallocated', 404, reason(1, 'Unallocated number'));
  const { tenant, ringGroup: group } = match;
  log = log.child({ tenant: tenant.id });
  if (!tenant.enabled) return refuse('tenant-disabled', 403, reason(21, 'Tenant disabled'));
  // The tenant takes its numbers only from the carriers that host them: for any other carrier
  // the number is not one of its own (unallocated), whatever misrouted it.
  if (tenant.inboundCarriers && !tenant.inboundCarriers.includes(carrier.name)) return refuse('carrier-not-allowed', 404, reason(1, `Number not served over carrier ${carrier.name}`));
  if (pending.canceled) return;
  const calledForTeams = normalize(called, tenant.normalization.inbound);

  // §4.2: From carries the caller's E.164; take it from P-Asserted-Identity when only that has it.
  const fromUser = userOf(req.get('From'));
  const paiUser = req.has('P-Asserted-Identity') ? userOf(req.get('P-Asserted-Identity')) : undefined;
  const norm = (u: string | undefined) => (u ? normalize(u, carrier.normalization.inbound) : undefined);
  let caller = norm(fromUser);
  if ((!caller || !E164_RE.test(caller)) && paiUser && E164_RE.test(norm(paiUser) ?? '')) caller = norm(paiUser);
  if (!caller || (!E164_RE.test(caller) && caller !== 'anonymous')) caller = 'anonymous';

  const adm = await admitOrRefuse(ctx.admission, tenant.id, callId, tenant.limits, log);
  if (!adm.ok) return refuse('limit', 503, reason(34, `Tenant limit reached (${adm.reason})`), adm.retryAfter);
  // The trunk's own capacity (its channels), counted with the tenant's.
  const trunkLimited = hasLimits(carrier.limits);
  if (trunkLimited) {
    const trunkAdm = await admitOrRefuse(ctx.admission, carrierKey(carrier.name), callId, carrier.limits, log);
    if (!trunkAdm.ok) {
      await ctx.admission.release(tenant.id, callId).catch(() => undefined);
      return refuse('limit', 503, reason(34, `Trunk ${carrier.name} limit reached (${trunkAdm.reason})`), trunkAdm.retryAfter);
    }
  }

  const s = new CallSession({ log, direction: 'inbound', tenantId: tenant.id, callId, onClose: (x) => ctx.calls.delete(x) });
  pending.session = s;
  s.carrier = carrier.name;
  s.from = caller;
  s.to = calledForTeams;
  s.tenant = tenant;
  s.pstnNumber = caller;
  s.holdAdmission(ctx.admission, tenant.id, callId);
  if (trunkLimited) s.holdAdmission(ctx.admission, carrierKey(carrier.name), callId);
  if (carrierTimer.kind === 'accept') s.carrierTimerPlan = carrierTimer.plan;
  ctx.calls.add(s);
  if (lateOffer && rel100 !== 'off') early = new EarlyLateOffer(s, featuresOf(ctx).transferRingback, log);
  if (pending.canceled) return void (await s.close('caller', 487));
  // RFC 3311: the carrier may UPDATE its early dialog (after a reliable 18x).
  req.on('update', (u: any, r: any) => void earlyCarrierOffer(s, u, r));

  try {
    if (lateOffer && !ctx.media) {
      // The stand-in offer needs rtpengine to turn it into Teams' SRTP offer.
      return void (await failCall(s, res, 488, reason(65, 'Late offer (INVITE without SDP) needs media anchoring')));
    }
    // Late offer: rtpengine gets a stand-in carrier offer (the carrier's address, the tenant's
    // G.711 codecs); the carrier's real SDP comes in the ACK (completeLateOffer), or in the PRACK.
    // A carrier that requires 100rel may get our offer from a stand-in for Teams' answer, which
    // names one codec (late-offer.ts): Teams is offered that codec only, so it answers with it.
    const carrierOffer: string = lateOffer ? lateOfferStandIn(req.source_address, tenant.media.codecs, { single: rel100 === 'required' }) : req.body;
    let offer: string = carrierOffer;
    if (ctx.media) {
      try {
        s.media = ctx.media.createSession({ callId, fromTag: req.getParsedHeader('From').params.tag, codecs: tenant.media.codecs, transcode: tenant.media.transcoding });
        offer = await s.media.offer('carrier', carrierOffer);
      } catch (err) {
        if (pending.canceled || s.closed) return;
        log.error({ err: (err as Error).message, code: (err as { code?: string }).code }, 'no media anchor available: call rejected with 503');
        return void (await failCall(s, res, 503, reason(41, 'Media resources unavailable'), 10));
      }
    }
    if (pending.canceled || s.closed) return;
    const sig = ctx.config.teams.signalingPort;
    const headers: Record<string, string> = {
      From: caller === 'anonymous' ? `"Anonymous" <sip:anonymous@${tenant.fqdn};user=phone>` : `<sip:${uriUser(caller)}@${tenant.fqdn};user=phone>`,
      Contact: `<sip:${uriUser(calledForTeams)}@${tenant.fqdn}:${sig};transport=tls>`,
      'X-MS-SBC': ctx.config.teams.sbcHeader,
      Allow: teamsAllow(tenant.teams.advertiseRefer),
      'Max-Forwards': '70',
      // RFC 4028 §7.1: we support session timers; Teams answers with its interval (§4.16).
      Supported: 'timer',
      'Session-Expires': String(featuresOf(ctx).sessionTimer.sessionExpires),
    };
    s.teamsContact = headers.Contact;
    if (caller === 'anonymous') headers.Privacy = 'id';
    if (group) {
      await ringGroupCall(ctx, {
        s,
        req,
        res,
        headers,
        offer,
        group,
        pending,
        ...(carrierUasHeaders ? { uasHeaders: carrierUasHeaders } : {}),
        ...(early && rel100 === 'required' ? { lateOfferRequires100rel: early } : {}),
      });
      if (lateOffer && !early?.answeredInPrack) await completeLateOffer(s);
      return;
    }
    const primary = ctx.teamsProxies.list()[0]!;
    const uri = teamsRequestUri(calledForTeams, primary);
    headers.To = `<sip:${uriUser(calledForTeams)}@${primary.host};user=phone>`;
    let sent183 = false;
    let provisional = false;
    let lastStatus: number | undefined;
    let lastReason: string | undefined;
    for (const proxy of teamsAttempts(ctx)) {
      if (pending.canceled || s.closed) return;
      let nextHop: string;
      try {
        nextHop = await teamsNextHop(ctx, proxy);
      } catch (err) {
        log.warn({ proxy: proxy.host, err: (err as Error).message }, 'cannot resolve Teams proxy');
        continue;
      }
      s.teamsProxy = proxy.host;
      // §1.7/§1.12: no provisional in time → CANCEL and try the next proxy.
      const attempt = new UacAttempt({
        srf: ctx.srf,
        uri,
        opts: { headers, localSdp: offer, proxy: nextHop },
        timeoutMs: ctx.config.teams.inviteTimeoutMs,
        cancelGraceMs: Math.min(2000, ctx.config.teams.inviteTimeoutMs),
        onProvisional: (p: any) => {
          // Teams' early SDP answers a carrier offer in the early dialog, in an UPDATE or a PRACK
          // (earlyCarrierOffer).
          if (p.status === 183 && p.body && !lateOffer) noteReceived(s, 'teams', p.body);
          void relayProvisional(p);
        },
      });
      pending.current = attempt;
      const r = await attempt.result;
      pending.current = undefined;
      if (r.dialog) {
        const b = r.dialog;
        // A late offer made in a reliable 183: the 2xx repeats it (late-offer.ts).
        const repeated = await early?.teamsAnswered(b.remote.sdp);
        const up = await bridgeAnswered(ctx, s, {
          req,
          res,
          b,
          offerSent: offer,
          aSide: 'carrier',
          bSide: 'teams',
          gone: () => pending.canceled,
          ...(carrierUasHeaders ? { uasHeaders: carrierUasHeaders } : {}),
          ...(repeated !== undefined ? { aAnswer: repeated } : {}),
          teamsSessionExpires: b.res?.get?.('Session-Expires'),
          teamsIsUac: false,
        });
        if (!up) return;
        log.info({ proxy: proxy.host }, 'call answered');
        if (lateOffer && !early?.answeredInPrack) await completeLateOffer(s);
        return;
      }
      if (pending.canceled || s.closed) return;
      lastStatus = r.status;
      lastReason = r.res?.get?.('Reason');
      const retryAfter = Number.parseInt(String(r.res?.get?.('Retry-After') ?? ''), 10);
      // §1.8: 503 + Retry-After → that proxy is not used again before Retry-After expires.
      if (lastStatus === 503 && retryAfter > 0) ctx.teamsProxies.backOff(proxy.host, retryAfter);
      if (r.timedOut && (lastStatus === undefined || lastStatus === 487)) lastStatus = 408;
      log.info(
        { proxy: proxy.host, status: lastStatus, timedOut: r.timedOut, abandoned: r.abandoned, err: r.status === undefined && r.error ? String((r.error as Error).message ?? r.error) : undefined },
        'Teams proxy attempt failed',
      );
      if (provisional) break; // §1.9/§1.11: never fail over after an 18x
      if (!teamsFailover(lastStatus)) break;
    }
    if (pending.canceled || s.closed) return;
    // Every proxy failed (or one refused): the carrier gets the last status; transport
    // failures everywhere map to 503 (RFC 3261 §16.7 / §21.5.4: try another route later).
    const status = lastStatus !== undefined && lastStatus >= 300 ? lastStatus : 503;
    await failCall(s, res, status, carrierFailureReason(status, lastReason));

    function earlyMediaMode() {
      // Late offer: Teams' early SDP becomes our offer in a reliable 183 (RFC 3262 §5) for a
      // carrier with 100rel; without 100rel our offer can only go in the 2xx (a 180 until then).
      // A carrier that requires 100rel gets it even when configured for 180: a reliable 180 would
      // need the offer too, so it would get no 18x at all.
      if (lateOffer && rel100 === 'off') return 'convert-to-180';
      if (lateOffer && rel100 === 'required') return 'pass';
      return featuresOf(ctx).carrierEarlyMedia[carrier.name] ?? ctx.config.carriers.earlyMedia;
    }

    /** A 183 with SDP, unless there is none to send or the INVITE ended meanwhile. */
    function send183(sdp: string | undefined): void {
      if (sdp !== undefined && !pending.canceled && !res.finalResponseSent) res.send(183, { body: sdp });
    }

    async function relayProvisional(p: any): Promise<void> {
      if (p.status <= 100 || pending.canceled || res.finalResponseSent) return;
      provisional = true;
      s.firstProvisionalAt ??= Date.now();
      try {
        if (p.status === 183 && p.body) {
          if (earlyMediaMode() === 'convert-to-180') {
            // §4.13: for carriers that stop local ringback on 183, a 180 without SDP.
            if (!sent183) res.send(180);
            return;
          }
          if (early) {
            // Late offer: Teams' early SDP makes our offer, or replaces the stand-in it was made from.
            sent183 = true;
            send183(await early.teamsEarlySdp(p.body));
            return;
          }
          if (sent183) return; // at most one 183 with SDP toward the carrier
          sent183 = true;
          let sdp = p.body as string;
          if (s.media) sdp = await s.media.answer('teams', sdp);
          send183(sdp);
          return;
        }
        // Late offer, the carrier requires 100rel: a reliable 18x must carry our offer, so
        // Teams ringing without SDP gets one made from a stand-in, with a ringing tone.
        if (early && rel100 === 'required' && !sent183) {
          sent183 = true;
          send183(await early.standIn(offer));
          return;
        }
        if (p.status === 183) {
          if (!sent183) res.send(180);
          return;
        }
        // §4.13: one 180 per ringing Teams endpoint (forks) is relayed as it comes.
        if (!sent183) res.send(p.status === 181 || p.status === 182 ? p.status : 180);
      } catch (err) {
        log.warn({ err: (err as Error).message, status: p.status }, 'provisional not relayed');
      }
    }
  } catch (err) {
    log.error({ err: (err as Error).message }, 'inbound call failed');
    await failCall(s, res, 500, undefined);
  }
}

async function failCall(session: CallSession, res: any, status: number, why: string | undefined, retryAfter?: number): Promise<void> {
  sendFailure(res, status, why, retryAfter);
  await session.close('gateway', status);
}
