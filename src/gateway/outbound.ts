import { resolveSecret } from '../tenants/index.js';
import type { Carrier, CarrierTarget, Tenant } from '../tenants/types.js';
import { CallSession, type SrfDialog } from './call-session.js';
import { type GatewayContext, reason, teamsAllow } from './context.js';
import { normalize, userOf } from './numbers.js';

/** Carrier failover verdict: next target on timeout, 408 or 5xx; stop on 486, 603 and other 4xx/6xx. */
export function carrierFailover(status: number | undefined): boolean {
  if (status === undefined) return true;
  return status === 408 || (status >= 500 && status < 600);
}

/** The tenant's carrier targets in order: trunk priority, then target priority. */
export function carrierTargets(ctx: GatewayContext, tenant: Tenant): { carrier: Carrier; target: CarrierTarget }[] {
  const out: { carrier: Carrier; target: CarrierTarget }[] = [];
  for (const trunk of [...tenant.trunks].sort((a, b) => a.priority - b.priority)) {
    const carrier = ctx.tenants.carrier(trunk.carrier);
    if (!carrier) continue;
    for (const target of [...carrier.targets].sort((a, b) => a.priority - b.priority)) out.push({ carrier, target });
  }
  return out;
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
  const reject = (status: number, why?: string, retryAfter?: number, extra: Record<string, string> = {}) => {
    const headers: Record<string, string> = { ...extra };
    if (why) headers.Reason = why;
    if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
    log.info({ status, reason: why }, 'call rejected');
    res.send(status, { headers });
  };
  const host = String(req.uri).replace(/^sips?:/i, '').replace(/^[^@]*@/, '').split(/[:;?>]/)[0]!.toLowerCase();
  const tenant = ctx.tenants.byFqdn(host);
  if (!tenant) return reject(403, reason(21, `No trunk config was found for ${host}`));
  log = log.child({ tenant: tenant.id });
  const contact = `<sip:${tenant.fqdn}:${ctx.config.teams.signalingPort};transport=tls>`;
  const teamsHeaders = { Contact: contact, Allow: teamsAllow(tenant.teams.advertiseRefer), 'X-MS-SBC': ctx.config.teams.sbcHeader };
  if (!tenant.enabled) return reject(403, reason(21, 'Tenant disabled'), undefined, teamsHeaders);
  if (ctx.draining) return reject(503, reason(42, 'Gateway draining'), 30, teamsHeaders);
  const adm = await ctx.admission.admit(tenant.id, callId, tenant.limits).catch(() => ({ ok: false as const, reason: 'concurrency' as const, retryAfter: 5 }));
  if (!adm.ok) return reject(503, reason(34, `Tenant limit reached (${adm.reason})`), adm.retryAfter, teamsHeaders);

  const session = new CallSession({ log, direction: 'outbound', tenantId: tenant.id, callId, onClose: (s) => ctx.calls.delete(s) });
  session.holdAdmission(ctx.admission, tenant.id, callId);
  ctx.calls.add(session);
  let canceled = false;
  let current: any;
  req.on('cancel', () => {
    canceled = true;
    current?.cancel?.();
    void session.close('caller', 487);
  });
  const fail = async (status: number, why?: string, retryAfter?: number) => {
    if (!res.finalResponseSent) reject(status, why, retryAfter, teamsHeaders);
    await session.close('gateway', status);
  };

  try {
    // Teams may send an unescaped '#' in the user part (§5.7); userOf() tolerates it.
    const dialled = userOf(req.uri) ?? '';
    const tenantNumber = normalize(dialled, tenant.normalization.outbound);
    let offer: string | undefined = req.body;
    if (ctx.media && offer) {
      try {
        session.media = ctx.media.createSession({ callId, fromTag: req.getParsedHeader('From').params.tag, codecs: tenant.media.codecs });
        offer = await session.media.offer('teams', offer);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'no media anchor available');
        return void (await fail(503, reason(41, 'Media resources unavailable'), 10));
      }
    }
    const fromUser = userOf(req.get('From')) ?? 'anonymous';
    const targets = carrierTargets(ctx, tenant);
    if (targets.length === 0) return void (await fail(503, reason(38, 'No carrier trunk configured')));
    let provisional = false;
    let lastStatus: number | undefined;
    let lastReason: string | undefined;
    for (const { carrier, target } of targets) {
      if (canceled) return;
      const number = normalize(tenantNumber, carrier.normalization.outbound);
      const callerNum = normalize(fromUser, carrier.normalization.outbound);
      const tparam = target.transport === 'udp' ? '' : `;transport=${target.transport}`;
      const uri = `sip:${number}@${target.host}:${target.port}${tparam}`;
      const headers: Record<string, string> = {
        From: `<sip:${callerNum}@localhost>`,
        To: `<sip:${number}@${target.host}>`,
        Contact: `<sip:${callerNum}@localhost>`,
      };
      if (tenant.teams.forwardPai && req.has('P-Asserted-Identity')) headers['P-Asserted-Identity'] = req.get('P-Asserted-Identity');
      if (req.has('Privacy')) headers.Privacy = req.get('Privacy');
      if (tenant.teams.historyInfoToDiversion && req.has('History-Info')) {
        const div = historyInfoToDiversion(String(req.get('History-Info')).split(/,(?=\s*<)/));
        if (div) headers.Diversion = div;
      }
      const opts: Record<string, unknown> = { headers, localSdp: offer };
      if (carrier.auth) {
        try {
          opts.auth = { username: carrier.auth.username, password: resolveSecret(carrier.auth.password) };
        } catch (err) {
          log.error({ carrier: carrier.name, err: (err as Error).message }, 'carrier credentials unavailable');
        }
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        const b: SrfDialog = await ctx.srf.createUAC(uri, opts, {
          cbRequest: (_e: unknown, r: any) => {
            current = r;
            if (canceled) r?.cancel?.();
            timer = setTimeout(() => {
              if (!provisional) r?.cancel?.();
            }, ctx.config.teams.inviteTimeoutMs);
          },
          cbProvisional: (p: any) => void relay(p),
        });
        clearTimeout(timer);
        if (canceled) {
          await b.destroy().catch(() => {});
          return;
        }
        session.b = b;
        let answer = b.remote.sdp;
        if (session.media && answer) answer = await session.media.answer('carrier', answer);
        session.a = await ctx.srf.createUAS(req, res, { localSdp: answer, headers: teamsHeaders });
        session.answeredAt = Date.now();
        session.finalStatus = 200;
        session.bridge();
        log.info({ carrier: carrier.name, target: `${target.host}:${target.port}` }, 'call answered');
        return;
      } catch (err: any) {
        clearTimeout(timer);
        if (canceled || session.closed) return;
        lastStatus = err?.status;
        lastReason = err?.res?.get?.('Reason');
        const timedOut = lastStatus === 487 && !provisional;
        log.info({ carrier: carrier.name, target: target.host, status: lastStatus, timedOut }, 'carrier attempt failed');
        if (provisional) break;
        if (!timedOut && !carrierFailover(lastStatus)) break;
        if (timedOut) lastStatus = 408;
      }
    }
    if (canceled || session.closed) return;
    await fail(lastStatus !== undefined && lastStatus >= 300 ? lastStatus : 503, lastReason);

    async function relay(p: any): Promise<void> {
      if (p.status <= 100 || canceled) return;
      provisional = true;
      let body: string | undefined = p.body;
      if (body && session.media) body = await session.media.answer('carrier', body);
      if (!canceled) res.send(p.status, { headers: teamsHeaders, ...(body ? { body } : {}) });
    }
  } catch (err) {
    log.error({ err }, 'outbound call failed');
    await fail(500);
  }
}
