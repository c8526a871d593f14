import { resolveSecret } from '../tenants/index.js';
import type { Carrier, CarrierTarget, Tenant } from '../tenants/types.js';
import { admitOrRefuse, carrierKey, hasLimits } from './admission.js';
import { CallSession } from './call-session.js';
import { PendingInvite } from './pending-invite.js';
import { type GatewayContext, type RefusalReason, reason, sendFailure, teamsAllow } from './context.js';
import { earlyCarrierOffer } from './carrier-leg.js';
import { carrierInviteHeaders, headersAfter422, negotiateCarrierUac } from './carrier-session-timer.js';
import { carrierSessionTimerFor, featuresOf, parseSessionExpires, reliableProvisionalsFor } from './features.js';
import { ownedBy, screenCallerId } from './caller-id.js';
import { answerLocally, bridgeAnswered, noteReceived } from './mid-call.js';
import { acceptReplaces, findReplaced, parseReplaces } from './transfer.js';
import { E164_RE, normalize, uriHost, uriUser, userOf } from './numbers.js';
import { type AttemptResult, UacAttempt } from './uac-attempt.js';
import { LOCATION_HEADERS, joinBody, splitBody } from './location.js';

/** Carrier failover verdict: next target on timeout, 408 or 5xx; stop on 486, 603 and other 4xx/6xx. */
export function carrierFailover(status: number | undefined): boolean {
  if (status === undefined) return true;
  return status === 408 || (status >= 500 && status < 600);
}

/**
 * The status Teams gets when every carrier target failed. §1.11: Teams re-routes the call (to
 * another SBC) only on 408, 503 and 504, and only when it saw no 18x. So a carrier-side failure
 * (another 5xx, no answer at the transport, a 422 about the carrier leg's own session timer)
 * becomes 503 while Teams can still re-route; after an 18x it goes as it came (a 422 as 500: a
 * 422 without Min-SE would be malformed, RFC 4028 §9). A 4xx or 6xx is the far end's answer.
 */
export function teamsFailureStatus(last: number | undefined, provisionalSent: boolean): number {
  if (last === undefined || last < 300) return 503;
  const carrierSide = last === 422 || (last >= 500 && last < 600 && last !== 503 && last !== 504);
  if (!carrierSide) return last;
  if (!provisionalSent) return 503;
  return last === 422 ? 500 : last;
}

/** The tenant's carrier targets in order: trunk priority, then target priority. */
export function carrierTargets(ctx: GatewayContext, tenant: Tenant): { carrier: Carrier; target: CarrierTarget }[] {
  const out: { carrier: Carrier; target: CarrierTarget }[] = [];
  for (const trunk of [...tenant.trunks].sort((a, b) => a.priority - b.priority)) {
    const carrier = ctx.tenants.carrier(trunk.carrier);
    if (!carrier) continue;
    for (const target of [...carrier.targets].sort((a, b) => a.priority - b.priority)) out.push({ carrier, target });
  }
  // Targets failing their OPTIONS checks are skipped, unless that would leave none to try.
  const up = out.filter(({ target }) => !ctx.carrierDown.has(`${target.host}:${target.port}`));
  return up.length ? up : out;
}

const DIVERSION_REASON: Record<string, string> = { '302': 'unconditional', '486': 'user-busy', '408': 'no-answer', '480': 'no-answer', '487': 'deflection' };

/**
 * History-Info (RFC 7044) → Diversion (RFC 5806): the entries with a `cause` (the retargeted
 * ones), newest first, each with the reason mapped from the SIP cause.
 */
export function historyInfoToDiversion(values: string[]): string | undefined {
  const out: string[] = [];
  for (const v of values) {
    const cause = /[?&;]cause=(\d{3})/i.exec(decodeURIComponent(v))?.[1];
    const uri = /<([^?>]+)/.exec(v)?.[1];
    if (!cause || !uri) continue;
    out.unshift(`<${uri}>;reason=${DIVERSION_REASON[cause] ?? 'unknown'};counter=1`);
  }
  return out.length ? out.join(', ') : undefined;
}

/**
 * Teams → PSTN (teams-direct-routing.md §5): the tenant comes from the Request-URI host; the
 * call goes to the tenant's carrier targets in priority order.
 */
export async function handleTeamsInvite(ctx: GatewayContext, req: any, res: any): Promise<void> {
  const callId: string = req.get('Call-ID');
  let log = ctx.log.child({ callId, direction: 'outbound' });
  // Registered first: Teams may CANCEL while we wait for admission or rtpengine.
  const pending = new PendingInvite(req, () => log, 'Teams');
  const reject = (status: number, why?: string, retryAfter?: number, extra: Record<string, string> = {}) => {
    log.info({ status, reason: why }, 'call rejected');
    if (!pending.canceled) sendFailure(res, status, why, retryAfter, extra);
  };
  /** Refused before it became a call: counted by reason (ops), then answered like any failure. */
  const refuse = (kind: RefusalReason, status: number, why?: string, retryAfter?: number, extra?: Record<string, string>) => {
    ctx.onRefused?.({ direction: 'outbound', reason: kind, carrier: '', status });
    reject(status, why, retryAfter, extra);
  };
  // §5.3: the tenant is the Request-URI host (the derived trunk FQDN Teams dialled).
  const host = uriHost(String(req.uri));
  const tenant = ctx.tenants.byFqdn(host);
  if (!tenant) return refuse('unknown-trunk', 403, reason(21, `No trunk config was found for ${host}`));
  log = log.child({ tenant: tenant.id });
  // §5.11/§5.12: every response toward Teams names the tenant FQDN and lists the Allow set.
  const contact = `<sip:${tenant.fqdn}:${ctx.config.teams.signalingPort};transport=tls>`;
  const teamsHeaders = { Contact: contact, Allow: teamsAllow(tenant.teams.advertiseRefer), 'X-MS-SBC': ctx.config.teams.sbcHeader };
  if (!tenant.enabled) return refuse('tenant-disabled', 403, reason(21, 'Tenant disabled'), undefined, teamsHeaders);
  // §5.3: "check the To host for consistency". One naming another tenant's trunk is refused (the
  // call would be billed to one customer and meant for another); any other difference is
  // logged, and the Request-URI wins.
  const toHost = uriHost(String(req.get('To') ?? ''));
  if (toHost && toHost !== host) {
    const named = ctx.tenants.byFqdn(toHost);
    if (named && named.id !== tenant.id) return refuse('trunk-mismatch', 403, reason(21, `To host ${toHost} is another trunk than the Request-URI's`), undefined, teamsHeaders);
    log.warn({ requestUriHost: host, toHost }, 'Teams INVITE: the To host differs from the Request-URI host; routed by the Request-URI');
  }
  // §6.7 / RFC 3891 §3: INVITE with Replaces takes over an existing call (no new admission);
  // "If no match is found, the UAS rejects the INVITE and returns a 481".
  if (req.has('Replaces')) {
    const r = parseReplaces(String(req.get('Replaces')));
    const target = r ? findReplaced(ctx, r) : undefined;
    if (!target || target.tenantId !== tenant.id) return refuse('replaces-unknown', 481, reason(41, 'Replaced dialog not found'), undefined, teamsHeaders);
    return acceptReplaces(ctx, target, req, res, teamsHeaders);
  }
  // RFC 4028 §9: an interval below our minimum gets 422 with Min-SE.
  const st = featuresOf(ctx).sessionTimer;
  const se = parseSessionExpires(req.has('Session-Expires') ? req.get('Session-Expires') : undefined);
  if (se && se.seconds < st.minSeconds) return refuse('session-interval', 422, undefined, undefined, { ...teamsHeaders, 'Min-SE': String(st.minSeconds) });
  if (ctx.draining) return refuse('draining', 503, reason(42, 'Gateway draining'), 30, teamsHeaders);
  // §5.9 / RFC 6442: an emergency call's location (PIDF-LO) comes as a multipart body next to
  // the SDP; media is anchored on the SDP, the location goes on to the carrier. A body with no
  // SDP we can find is refused as RFC 3261 §21.4.16 says, naming what we take.
  const body = splitBody(req.get('Content-Type'), req.body);
  if (String(req.body ?? '').trim() && body.sdp === undefined) {
    return refuse('unsupported-body', 415, undefined, undefined, { ...teamsHeaders, Accept: 'application/sdp, multipart/mixed' });
  }
  // Caller-ID screening (tenant teams.callerIdScreening), before admission: a refused call takes
  // no slot. PAI goes on only when its number is the tenant's too.
  const teamsFrom = userOf(req.get('From')) ?? 'anonymous';
  const historyInfo = req.has('History-Info') ? headerValues(req, 'History-Info') : [];
  const caller = await screenCallerId(ctx, tenant, teamsFrom, historyInfo);
  if (!caller) return refuse('caller-id', 403, reason(21, `Caller ID ${teamsFrom} is not a number of this tenant`), undefined, teamsHeaders);
  if (caller.verdict === 'replaced') log.warn({ from: teamsFrom, presented: caller.number }, 'caller ID screening: not a number of the tenant, replaced by its default');
  const pai = tenant.teams.forwardPai && req.has('P-Asserted-Identity') ? String(req.get('P-Asserted-Identity')) : undefined;
  const paiNumber = pai ? userOf(pai) : undefined;
  const forwardPai = pai !== undefined && (tenant.teams.callerIdScreening === 'off' || (paiNumber !== undefined && (await ownedBy(ctx, tenant, paiNumber))));
  const adm = await admitOrRefuse(ctx.admission, tenant.id, callId, tenant.limits, log);
  if (!adm.ok) return refuse('limit', 503, reason(34, `Tenant limit reached (${adm.reason})`), adm.retryAfter, teamsHeaders);

  // Teams may send an unescaped '#' in the user part (§5.7); userOf() tolerates it.
  const dialled = userOf(req.uri) ?? '';
  const tenantNumber = normalize(dialled, tenant.normalization.outbound);
  const fromUser = caller.number;
  const targets = carrierTargets(ctx, tenant);
  const s = new CallSession({ log, direction: 'outbound', tenantId: tenant.id, callId, onClose: (x) => ctx.calls.delete(x) });
  pending.session = s;
  // Known before the call is counted (metrics label it with its first carrier).
  s.from = fromUser;
  s.to = tenantNumber;
  s.tenant = tenant;
  s.pstnNumber = tenantNumber;
  // Requests to Teams need a +E.164 user in Contact (§4.3); responses carry the bare FQDN.
  s.teamsContact = E164_RE.test(tenantNumber) ? `<sip:${uriUser(tenantNumber)}@${tenant.fqdn}:${ctx.config.teams.signalingPort};transport=tls>` : contact;
  if (targets[0]) s.carrier = targets[0].carrier.name;
  s.holdAdmission(ctx.admission, tenant.id, callId);
  ctx.calls.add(s);
  if (pending.canceled) return void (await s.close('caller', 487));
  const fail = async (status: number, why?: string, retryAfter?: number) => {
    reject(status, why, retryAfter, teamsHeaders);
    await s.close('gateway', status);
  };

  try {
    let offer: string | undefined = body.sdp;
    const location = body.others.length ? body.others : undefined;
    if (location) log.info({ parts: location.length, geolocation: req.get('Geolocation') }, 'location conveyed (RFC 6442): forwarded to the carrier');
    noteReceived(s, 'teams', offer);
    if (ctx.media && offer) {
      try {
        s.media = ctx.media.createSession({ callId, fromTag: req.getParsedHeader('From').params.tag, codecs: tenant.media.codecs, transcode: tenant.media.transcoding });
        offer = await s.media.offer('teams', offer);
      } catch (err) {
        if (pending.canceled || s.closed) return;
        log.error({ err: (err as Error).message, code: (err as { code?: string }).code }, 'no media anchor available: call rejected with 503');
        return void (await fail(503, reason(41, 'Media resources unavailable'), 10));
      }
    }
    if (pending.canceled || s.closed) return;
    if (targets.length === 0) return void (await fail(503, reason(38, 'No carrier trunk configured')));
    let provisional = false;
    /** Carriers that answered 415 to the location body: the SDP alone from then on. */
    const noLocation = new Set<string>();
    let lastStatus: number | undefined;
    let lastReason: string | undefined;
    /** SDP Teams got in a 18x whose SDP completed the carrier's offer/answer (reliable, RFC 3262 §5). */
    let earlyToTeams: string | undefined;
    /** The carrier changed its media with an UPDATE in the early dialog (RFC 3311). */
    let updatedEarly = false;
    // §1.12: Teams gives up on us after FailoverTimeSeconds (10 s) without a provisional; stop
    // hunting before that so it can still re-route the call (408) to another SBC.
    const budgetMs = ctx.config.carriers.setupBudgetMs;
    const huntUntil = budgetMs > 0 ? Date.now() + budgetMs : Infinity;
    /** The carrier whose trunk slot the call holds (carriers with limits only). */
    let heldTrunk: string | undefined;
    /** Carriers whose trunk was full: their other targets are skipped too. */
    const fullTrunks = new Set<string>();
    for (const { carrier, target } of targets) {
      if (pending.canceled || s.closed) return;
      const budgetLeft = huntUntil - Date.now();
      if (budgetLeft <= 0) {
        log.warn({ budgetMs, next: `${target.host}:${target.port}` }, 'carrier setup budget spent without a provisional: no further targets tried');
        lastStatus = 408;
        break;
      }
      if (fullTrunks.has(carrier.name)) continue;
      // The trunk's own capacity: a full trunk is passed over for the tenant's next one.
      if (heldTrunk !== carrier.name) {
        if (heldTrunk) await s.dropAdmission(carrierKey(heldTrunk));
        heldTrunk = undefined;
        if (hasLimits(carrier.limits)) {
          const trunkAdm = await admitOrRefuse(ctx.admission, carrierKey(carrier.name), callId, carrier.limits, log);
          if (pending.canceled || s.closed) {
            if (trunkAdm.ok) await ctx.admission.release(carrierKey(carrier.name), callId).catch(() => undefined);
            return;
          }
          if (!trunkAdm.ok) {
            log.warn({ carrier: carrier.name, reason: trunkAdm.reason }, 'carrier trunk limit reached: next trunk');
            fullTrunks.add(carrier.name);
            lastStatus = 503;
            continue;
          }
          s.holdAdmission(ctx.admission, carrierKey(carrier.name), callId);
          heldTrunk = carrier.name;
        }
      }
      const number = normalize(tenantNumber, carrier.normalization.outbound);
      const callerNum = fromUser === 'anonymous' ? 'anonymous' : normalize(fromUser, carrier.normalization.outbound);
      const tparam = target.transport === 'udp' ? '' : `;transport=${target.transport}`;
      const uri = `sip:${uriUser(number)}@${target.host}:${target.port}${tparam}`;
      const headers: Record<string, string> = {
        From: `<sip:${uriUser(callerNum)}@localhost>`,
        To: `<sip:${uriUser(number)}@${target.host}>`,
        Contact: `<sip:${uriUser(callerNum)}@localhost>`,
      };
      // RFC 3262 §4: we PRACK reliable 18x from carriers (drachtio-srf does on RSeq); 100rel
      // stays on this leg (§4.17), the 18x go to Teams unreliably.
      const supported = reliableProvisionalsFor(ctx, carrier.name) === 'supported' ? ['100rel'] : [];
      // RFC 4028 §7.1: the carrier leg's own session timer (carrier-session-timer.ts).
      const carrierSt = carrierSessionTimerFor(ctx, carrier.name);
      let timerHeaders = carrierInviteHeaders(carrierSt);
      if (timerHeaders) supported.push('timer');
      if (supported.length) headers.Supported = supported.join(', ');
      if (forwardPai) headers['P-Asserted-Identity'] = pai!;
      if (tenant.teams.forwardPai && req.has('Privacy')) headers.Privacy = req.get('Privacy');
      if (tenant.teams.historyInfoToDiversion && historyInfo.length) {
        const div = historyInfoToDiversion(historyInfo);
        if (div) headers.Diversion = div;
      }
      // RFC 6442 §4: the location parts and the headers that reference them, unless this carrier
      // refused them (415) on an earlier attempt of this call.
      const withLocation = location && !noLocation.has(carrier.name) ? joinBody(offer, location) : undefined;
      if (withLocation) {
        headers['Content-Type'] = withLocation.contentType;
        for (const h of LOCATION_HEADERS) if (req.has(h)) headers[h] = String(req.get(h));
      }
      const opts: Record<string, unknown> = { headers: { ...headers, ...timerHeaders }, localSdp: withLocation?.body ?? offer };
      if (carrier.auth) {
        try {
          opts.auth = { username: carrier.auth.username, password: resolveSecret(carrier.auth.password) };
        } catch (err) {
          log.error({ carrier: carrier.name, err: (err as Error).message }, 'carrier credentials unavailable');
        }
      }
      s.carrier = carrier.name;
      let r: AttemptResult;
      for (let retried = false; ; ) {
        const attempt = new UacAttempt({
          srf: ctx.srf,
          uri,
          opts,
          timeoutMs: Math.max(1, Math.min(ctx.config.teams.inviteTimeoutMs, huntUntil - Date.now())),
          cancelGraceMs: Math.min(2000, ctx.config.teams.inviteTimeoutMs),
          onProvisional: (p: any) => void relay(p),
          onUpdate: (u: any, r: any) => void earlyCarrierOffer(s, u, r).then((ok) => (updatedEarly ||= ok)),
        });
        pending.current = attempt;
        r = await attempt.result;
        pending.current = undefined;
        if (pending.canceled || s.closed) break;
        // RFC 3261 §21.4.16: a carrier that takes no multipart body gets the SDP alone: the
        // emergency call goes through without its location (logged, so ops can fix the trunk).
        if (r.status === 415 && withLocation && !noLocation.has(carrier.name)) {
          noLocation.add(carrier.name);
          for (const h of ['Content-Type', ...LOCATION_HEADERS]) delete headers[h];
          opts.localSdp = offer;
          opts.headers = { ...headers, ...timerHeaders, ...sameCallAs(r.request) };
          log.warn({ carrier: carrier.name, accept: r.res?.get?.('Accept') }, 'carrier refused the location body (415): INVITE sent again with the SDP alone');
          continue;
        }
        // RFC 4028 §7.1/§8.1: a 422 names the carrier's Min-SE; the INVITE goes once more asking
        // for at least that much, in the same call (RFC 3261 §8.1.3.5: same Call-ID, From and
        // To, CSeq one higher).
        const again = !retried && r.status === 422 && timerHeaders ? headersAfter422(r.res, carrierSt, Number(timerHeaders['Session-Expires'])) : undefined;
        if (!again) break;
        retried = true;
        timerHeaders = again;
        opts.headers = { ...headers, ...again, ...sameCallAs(r.request) };
        log.info({ carrier: carrier.name, minSe: again['Min-SE'] }, 'carrier answered 422 (session interval too small): INVITE sent again with its Min-SE');
      }
      if (r.dialog) {
        // RFC 4028 §7.2: the carrier leg's timer from its 2xx (armed once Teams is answered).
        const plan = timerHeaders ? negotiateCarrierUac(r.dialog.res ?? {}, carrierSt, Number(timerHeaders['Session-Expires'])) : undefined;
        if (plan) s.carrierTimerPlan = plan;
        // RFC 3262 §5 / RFC 3261 §13.2.1: a reliable 18x completed the offer/answer, so the
        // carrier's 2xx may carry no SDP; Teams still needs its answer in our 2xx: the SDP it
        // got in the 18x (its side never changed). After an early UPDATE rtpengine has the
        // carrier as the offerer, so SDP in the 2xx is taken the same way as the UPDATE's.
        let aAnswer: string | undefined;
        const sdp2xx = r.dialog.remote.sdp?.trim() ? r.dialog.remote.sdp : undefined;
        if (earlyToTeams && (!sdp2xx || updatedEarly)) {
          if (sdp2xx && s.media) await answerLocally(s, 'carrier', sdp2xx);
          aAnswer = earlyToTeams;
        }
        const seHeaders: Record<string, string> = {};
        if (se) {
          seHeaders['Session-Expires'] = `${se.seconds};refresher=${se.refresher ?? st.refresherForTeamsCalls}`;
          seHeaders.Require = 'timer';
        }
        const up = await bridgeAnswered(ctx, s, {
          req,
          res,
          b: r.dialog,
          offerSent: offer,
          aSide: 'teams',
          bSide: 'carrier',
          gone: () => pending.canceled,
          uasHeaders: { ...teamsHeaders, ...seHeaders },
          ...(aAnswer ? { aAnswer } : {}),
          teamsSessionExpires: seHeaders['Session-Expires'],
          teamsIsUac: true,
        });
        if (!up) return;
        log.info({ carrier: carrier.name, target: `${target.host}:${target.port}` }, 'call answered');
        return;
      }
      if (pending.canceled || s.closed) return;
      lastStatus = r.status;
      lastReason = r.res?.get?.('Reason');
      if (r.timedOut && (lastStatus === undefined || lastStatus === 487)) lastStatus = 408;
      log.info({ carrier: carrier.name, target: `${target.host}:${target.port}`, status: lastStatus, timedOut: r.timedOut, abandoned: r.abandoned }, 'carrier attempt failed');
      if (provisional) break; // Teams saw an 18x: no other route may ring (§1.11)
      if (!carrierFailover(lastStatus)) break;
    }
    if (pending.canceled || s.closed) return;
    await fail(teamsFailureStatus(lastStatus, provisional), lastReason);

    async function relay(p: any): Promise<void> {
      if (p.status <= 100 || pending.canceled || res.finalResponseSent) return;
      provisional = true;
      s.firstProvisionalAt ??= Date.now();
      try {
        let body: string | undefined = p.body;
        // Reliable (RSeq) or not, Teams gets the 18x unreliably; the SDP of a reliable one is
        // the carrier's answer (RFC 3262 §5) and is kept for a 2xx without SDP.
        const reliable = !!body && !!p.has?.('RSeq');
        if (reliable) noteReceived(s, 'carrier', body);
        if (body && s.media) body = await s.media.answer('carrier', body);
        if (reliable) earlyToTeams = body;
        if (!pending.canceled && !res.finalResponseSent) res.send(p.status, { headers: teamsHeaders, ...(body ? { body } : {}) });
      } catch (err) {
        log.warn({ err: (err as Error).message, status: p.status }, 'provisional not relayed');
      }
    }
  } catch (err) {
    log.error({ err: (err as Error).message }, 'outbound call failed');
    await fail(500);
  }
}

/** Call-ID, From (with its tag), To and the next CSeq of a request, for another INVITE in the same call. */
function sameCallAs(sent: any): Record<string, string> {
  const out: Record<string, string> = {};
  const get = (n: string): string | undefined => (sent?.has?.(n) ? String(sent.get(n)) : undefined);
  const callId = get('Call-ID');
  const from = get('From');
  const to = get('To');
  const cseq = Number(/^\s*(\d+)/.exec(get('CSeq') ?? '')?.[1]);
  if (callId) out['Call-ID'] = callId;
  if (from) out.From = from;
  if (to) out.To = to;
  if (Number.isFinite(cseq)) out.CSeq = `${cseq + 1} INVITE`;
  return out;
}

/** Every value of a header that may appear on several lines or comma-joined. */
function headerValues(req: any, name: string): string[] {
  const raw = req.get(name);
  const all: string[] = Array.isArray(raw) ? raw : [String(raw ?? '')];
  return all.flatMap((v) => v.split(/,(?=\s*<)/)).map((v) => v.trim()).filter(Boolean);
}
