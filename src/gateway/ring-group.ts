/**
 * Ring groups ("group calls", issue 5): a DID that rings several Teams numbers, all at once
 * (drachtio-fn-b2b-sugar simring: first answer wins, the others are CANCELed) or in order with
 * a per-member timeout, then a fallback number when nobody answered. Groups are defined per DID
 * in the tenant config and come with the tenant from the called-number lookup (inbound.ts).
 */
import { createRequire } from 'node:module';
import type { CallSession, SrfDialog } from './call-session.js';
import type { RingGroup } from '../tenants/types.js';
import { carrierFailureReason, type GatewayContext, sendFailure, teamsNextHop } from './context.js';
import type { EarlyLateOffer } from './late-offer.js';
import type { PendingInvite } from './pending-invite.js';
import { callAnswered, noteReceived, noteSent, wireLeg } from './mid-call.js';
import { inviteTeams } from './teams-invite.js';
import { teamsRequestUri } from './inbound.js';
import type { UacAttempt } from './uac-attempt.js';
import { uriUser } from './numbers.js';

// drachtio-fn-b2b-sugar is CommonJS without types (like drachtio-srf, loaded the same way in main.ts).
const { Simring } = createRequire(import.meta.url)('drachtio-fn-b2b-sugar') as { Simring: new (req: any, res: any, uris: string[], opts: any, notifiers?: any) => { start(uris: string[], opts?: any): Promise<{ uas: SrfDialog; uac: SrfDialog }>; addUri(uri: string, opts?: any): void; logger: any } };

export interface RingGroupCall {
  s: CallSession;
  req: any;
  res: any;
  /** Headers of the Teams-bound INVITE (From, Contact, X-MS-SBC, Allow …); To is per member. */
  headers: Record<string, string>;
  offer: string;
  group: RingGroup;
  /** The carrier's INVITE: whether it was cancelled, and where the attempt in flight goes (cancelled with it). */
  pending: PendingInvite;
  /** Headers of the 2xx to the carrier (its session timer, RFC 4028 §9). */
  uasHeaders?: Record<string, string>;
  /**
   * Late offer from a carrier that requires 100rel: the first member ringing makes our offer
   * (from a stand-in, with a ringing tone) in a reliable 183 instead of the 180 (late-offer.ts).
   */
  lateOfferRequires100rel?: EarlyLateOffer;
}

function memberHeaders(h: Record<string, string>, number: string, primaryHost: string): Record<string, string> {
  // Lower-case from/to: simring (CallManager) only keeps the caller's own From/To when it
  // finds these exact keys.
  const { From, To, ...rest } = h;
  void To;
  return { ...rest, from: From ?? '', to: `<sip:${uriUser(number)}@${primaryHost};user=phone>` };
}

export async function ringGroupCall(ctx: GatewayContext, o: RingGroupCall): Promise<void> {
  const { s, req, res, group } = o;
  const log = s.log.child({ ringGroup: group.did, strategy: group.strategy, members: group.members.length });
  const primary = ctx.teamsProxies.list()[0]!;
  let ringing = false;
  const relay = (p: any) => {
    if (p.status <= 100 || o.pending.canceled || res.finalResponseSent) return;
    s.firstProvisionalAt ??= Date.now();
    // Several members ring: the carrier gets one 180 (their early media would compete).
    if (ringing) return;
    ringing = true;
    const early = o.lateOfferRequires100rel;
    if (early) {
      void early.standIn(o.offer).then(
        (sdp) => {
          if (sdp !== undefined && !o.pending.canceled && !res.finalResponseSent) res.send(183, { body: sdp });
        },
        (err: Error) => log.warn({ err: err.message }, 'late offer: no offer for the reliable 183'),
      );
      return;
    }
    try {
      res.send(180);
    } catch {
      // gone
    }
  };
  let answered: { uas: SrfDialog; uac: SrfDialog } | undefined;
  if (group.strategy === 'simultaneous') {
    answered = await simultaneous(ctx, o, primary, relay).catch((err) => {
      log.info({ err: Array.isArray(err) ? err.map((e: any) => e?.status) : (err as Error)?.message }, 'ring group: no member answered');
      return undefined;
    });
  } else {
    for (const number of group.members) {
      if (o.pending.canceled || s.closed) return;
      answered = await oneMember(ctx, o, number, group.memberTimeoutSec, primary, relay).catch(() => undefined);
      if (answered) break;
    }
  }
  if (!answered && group.fallback && !o.pending.canceled && !s.closed) {
    log.info({ fallback: group.fallback }, 'ring group: fallback');
    answered = await oneMember(ctx, o, group.fallback, group.memberTimeoutSec, primary, relay).catch(() => undefined);
  }
  if (o.pending.canceled || s.closed) {
    if (answered) {
      await answered.uac.destroy().catch(() => undefined);
      await answered.uas.destroy().catch(() => undefined);
    }
    return;
  }
  if (!answered) {
    if (!o.pending.canceled) sendFailure(res, 480, carrierFailureReason(480, undefined));
    await s.close('gateway', 480);
    return;
  }
  const { uas, uac } = answered;
  s.attachB(uac);
  wireLeg(ctx, s, uac);
  s.attachA(uas);
  s.answeredAt = Date.now();
  s.finalStatus = 200;
  noteReceived(s, 'carrier', req.body);
  noteSent(s, 'teams', o.offer);
  noteReceived(s, 'teams', uac.remote.sdp);
  noteSent(s, 'carrier', uas.local.sdp);
  callAnswered(ctx, s, uac.res?.get?.('Session-Expires'), false);
  log.info('ring group answered');
}

/** The SDP of the carrier's 2xx from the answering member's: rtpengine's carrier side, or the offer a reliable 183 made. */
async function answerForCarrier(o: RingGroupCall, sdp: string): Promise<string> {
  const repeated = await o.lateOfferRequires100rel?.teamsAnswered(sdp);
  if (repeated !== undefined) return repeated;
  return o.s.media ? o.s.media.answer('teams', sdp) : sdp;
}

/** All members at once through drachtio-fn-b2b-sugar's simring. */
async function simultaneous(ctx: GatewayContext, o: RingGroupCall, primary: { host: string; port: number }, relay: (p: any) => void): Promise<{ uas: SrfDialog; uac: SrfDialog }> {
  const { s, req, res, group } = o;
  const proxy = await teamsNextHop(ctx, ctx.teamsProxies.ordered()[0] ?? primary);
  const opts = {
    localSdpB: o.offer,
    localSdpA: async (sdp: string) => answerForCarrier(o, sdp),
    proxy,
    timeout: group.memberTimeoutSec,
    // drachtio-fn-b2b-sugar puts these in the 2xx to the caller (CallManager#copyUACHeadersToUAS).
    ...(o.uasHeaders ? { responseHeaders: o.uasHeaders } : {}),
  };
  const sim = new Simring(req, res, [], opts, { cbProvisional: relay });
  sim.logger = { debug: () => undefined, info: (m: string) => s.log.debug(m), error: (m: string) => s.log.warn(m) };
  const [first, ...rest] = group.members;
  const p = sim.start([teamsRequestUri(first!, primary)], { headers: memberHeaders(o.headers, first!, primary.host) });
  for (const m of rest) sim.addUri(teamsRequestUri(m, primary), { headers: memberHeaders(o.headers, m, primary.host) });
  return p;
}

/** One member (sequential hunting, fallback): rings at most `timeoutSec`, then CANCEL. */
async function oneMember(
  ctx: GatewayContext,
  o: RingGroupCall,
  number: string,
  timeoutSec: number,
  primary: { host: string; port: number },
  relay: (p: any) => void,
): Promise<{ uas: SrfDialog; uac: SrfDialog } | undefined> {
  const { s } = o;
  let attempt: UacAttempt | undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    attempt?.cancel();
  }, timeoutSec * 1000);
  const cancelWatch = setInterval(() => {
    if (o.pending.canceled || s.closed) attempt?.cancel();
  }, 100);
  try {
    const headers = { ...o.headers, To: `<sip:${uriUser(number)}@${primary.host};user=phone>` };
    const r = await inviteTeams(ctx, {
      uri: teamsRequestUri(number, primary),
      headers,
      sdp: o.offer,
      log: s.log,
      stopped: () => timedOut || o.pending.canceled || s.closed,
      onAttempt: (a) => {
        attempt = a;
        o.pending.current = a;
      },
      onProvisional: relay,
    });
    if (!r.dialog) return undefined;
    if (o.pending.canceled || s.closed) {
      await r.dialog.destroy().catch(() => undefined);
      return undefined;
    }
    const answer = await answerForCarrier(o, r.dialog.remote.sdp);
    try {
      const uas: SrfDialog = await ctx.srf.createUAS(o.req, o.res, { localSdp: answer, ...(o.uasHeaders ? { headers: o.uasHeaders } : {}) });
      return { uas, uac: r.dialog };
    } catch (err) {
      await r.dialog.destroy().catch(() => undefined);
      throw err;
    }
  } finally {
    clearTimeout(timer);
    clearInterval(cancelWatch);
  }
}
