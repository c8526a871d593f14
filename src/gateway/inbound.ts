import type { Carrier, Tenant } from '../tenants/types.js';
import { CallSession, type SrfDialog } from './call-session.js';
import { type GatewayContext, reason, teamsAllow } from './context.js';
import { E164_RE, normalize, userOf } from './numbers.js';

/** Failover verdict for a Teams proxy attempt (issue: never after 18x, never on 4xx/6xx). */
export function teamsFailover(status: number | undefined): boolean {
  if (status === undefined) return true; // connect/TLS failure surfaced as an exception
  return status === 408 || (status >= 500 && status < 600);
}

/**
 * PSTN → Teams: a carrier INVITE is mapped to its tenant by called number and sent to the
 * Teams SIP proxies over TLS (teams-direct-routing.md §4), with media anchored in rtpengine.
 */
export async function handleCarrierInvite(ctx: GatewayContext, req: any, res: any, carrier: Carrier): Promise<void> {
  const callId: string = req.get('Call-ID');
  let log = ctx.log.child({ callId, direction: 'inbound', carrier: carrier.name });
  const reject = (status: number, why?: string, retryAfter?: number) => {
    const headers: Record<string, string> = {};
    if (why) headers.Reason = why;
    if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
    log.info({ status, reason: why }, 'call rejected');
    res.send(status, { headers });
  };
  if (ctx.draining) return reject(503, reason(42, 'Gateway draining'), 30);

  const calledRaw = userOf(req.uri) ?? userOf(req.get('To'));
  const called = calledRaw ? normalize(calledRaw, carrier.normalization.inbound) : undefined;
  if (!called || !E164_RE.test(called)) return reject(404, reason(1, 'Called number is not E.164 after normalization'));
  const tenant: Tenant | undefined = await ctx.tenants.byNumber(called);
  if (!tenant) return reject(404, reason(1, 'Unallocated number'));
  log = log.child({ tenant: tenant.id });
  if (!tenant.enabled) return reject(403, reason(21, 'Tenant disabled'));
  const calledForTeams = normalize(called, tenant.normalization.inbound);

  // §4.2: From carries the caller's E.164; take it from P-Asserted-Identity when only that has it.
  const fromUser = userOf(req.get('From'));
  const paiUser = req.has('P-Asserted-Identity') ? userOf(req.get('P-Asserted-Identity')) : undefined;
  const norm = (u: string | undefined) => (u ? normalize(u, carrier.normalization.inbound) : undefined);
  let caller = norm(fromUser);
  if ((!caller || !E164_RE.test(caller)) && paiUser && E164_RE.test(norm(paiUser) ?? '')) caller = norm(paiUser);
  if (!caller || (!E164_RE.test(caller) && caller !== 'anonymous')) caller = 'anonymous';

  const adm = await ctx.admission.admit(tenant.id, callId, tenant.limits).catch((err: Error) => {
    log.error({ err: err.message }, 'admission check failed');
    return { ok: false as const, reason: 'concurrency' as const, retryAfter: 5 };
  });
  if (!adm.ok) return reject(503, reason(34, `Tenant limit reached (${adm.reason})`), adm.retryAfter);

  const session = new CallSession({ log, direction: 'inbound', tenantId: tenant.id, callId, onClose: (s) => ctx.calls.delete(s) });
  session.holdAdmission(ctx.admission, tenant.id, callId);
  ctx.calls.add(session);
  let canceled = false;
  let current: any;
  req.on('cancel', () => {
    canceled = true;
    current?.cancel?.();
    void session.close('caller', 487);
  });

  try {
    if (!req.body) {
      // Teams requires an offer (§4.6); late offer from carriers is not interworked yet.
      return void (await failCall(session, res, 488, reason(65, 'Late offer (INVITE without SDP) is not supported')));
    }
    let offer: string = req.body;
    if (ctx.media) {
      try {
        session.media = ctx.media.createSession({ callId, fromTag: req.getParsedHeader('From').params.tag, codecs: tenant.media.codecs });
        offer = await session.media.offer('carrier', req.body);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'no media anchor available');
        return void (await failCall(session, res, 503, reason(41, 'Media resources unavailable'), 10));
      }
    }
    const sig = ctx.config.teams.signalingPort;
    const headers: Record<string, string> = {
      From: caller === 'anonymous' ? `"Anonymous" <sip:anonymous@${tenant.fqdn};user=phone>` : `<sip:${caller}@${tenant.fqdn};user=phone>`,
      Contact: `<sip:${calledForTeams}@${tenant.fqdn}:${sig};transport=tls>`,
      'X-MS-SBC': ctx.config.teams.sbcHeader,
      Allow: teamsAllow(tenant.teams.advertiseRefer),
      'Max-Forwards': '70',
    };
    if (caller === 'anonymous') headers.Privacy = 'id';
    let sent183 = false;
    let provisional = false;
    let lastStatus: number | undefined;
    for (const proxy of ctx.teamsProxies.ordered()) {
      if (canceled) return;
      const uri = `sip:${calledForTeams}@${proxy.host}:${proxy.port};user=phone;transport=tls`;
      let nextHop: string;
      try {
        nextHop = ctx.config.teams.nextHop || `sip:${await ctx.resolver.resolve(proxy.host)}:${proxy.port};transport=tls`;
      } catch (err) {
        log.warn({ proxy: proxy.host, err: (err as Error).message }, 'cannot resolve Teams proxy');
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        const b: SrfDialog = await ctx.srf.createUAC(
          uri,
          { headers: { ...headers, To: `<sip:${calledForTeams}@${proxy.host};user=phone>` }, localSdp: offer, proxy: nextHop },
          {
            cbRequest: (_err: unknown, r: any) => {
              current = r;
              if (canceled) r?.cancel?.();
              // No provisional in time: give up on this proxy and try the next.
              timer = setTimeout(() => {
                if (!provisional) r?.cancel?.();
              }, ctx.config.teams.inviteTimeoutMs);
            },
            cbProvisional: (p: any) => void relayProvisional(p),
          },
        );
        clearTimeout(timer);
        if (canceled) {
          await b.destroy().catch(() => {});
          return;
        }
        session.b = b;
        let answer = b.remote.sdp;
        if (session.media) answer = await session.media.answer('teams', answer);
        session.a = await ctx.srf.createUAS(req, res, { localSdp: answer });
        session.answeredAt = Date.now();
        session.finalStatus = 200;
        session.bridge();
        log.info({ proxy: proxy.host }, 'call answered');
        return;
      } catch (err: any) {
        clearTimeout(timer);
        if (canceled || session.closed) return;
        lastStatus = err?.status;
        const retryAfter = Number(err?.res?.get?.('Retry-After'));
        if (lastStatus === 503 && retryAfter > 0) ctx.teamsProxies.backOff(proxy.host, retryAfter);
        const timedOut = lastStatus === 487 && !provisional;
        log.info({ proxy: proxy.host, status: lastStatus, timedOut }, 'Teams proxy attempt failed');
        if (provisional) break; // never fail over after an 18x
        if (!timedOut && !teamsFailover(lastStatus)) break;
        if (timedOut) lastStatus = 408;
      }
    }
    if (canceled || session.closed) return;
    const status = lastStatus !== undefined && lastStatus >= 300 ? lastStatus : 503;
    await failCall(session, res, status, undefined);

    async function relayProvisional(p: any): Promise<void> {
      if (p.status <= 100 || canceled) return;
      provisional = true;
      if (p.status === 183 && p.body) {
        if (sent183) return; // at most one 183 with SDP
        if (ctx.config.carriers.earlyMedia === 'convert-to-180') {
          res.send(180);
          return;
        }
        sent183 = true;
        let sdp = p.body as string;
        if (session.media) sdp = await session.media.answer('teams', sdp);
        if (!canceled) res.send(183, { body: sdp });
        return;
      }
      if (p.status === 183) return res.send(180);
      if (!sent183) res.send(p.status === 181 || p.status === 182 ? p.status : 180);
    }
  } catch (err) {
    log.error({ err }, 'inbound call failed');
    await failCall(session, res, 500, undefined);
  }
}

async function failCall(session: CallSession, res: any, status: number, why: string | undefined, retryAfter?: number): Promise<void> {
  const headers: Record<string, string> = {};
  if (why) headers.Reason = why;
  if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
  if (!res.finalResponseSent) res.send(status, { headers });
  await session.close('gateway', status);
}
