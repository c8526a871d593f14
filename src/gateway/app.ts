import type { Logger } from 'pino';
import { CidrTable, parseCidr } from '../tenants/ip.js';
import type { GatewayContext, Refusal } from './context.js';
import { reason, sendFailure, teamsAllow } from './context.js';
import { prackAnsweredHere } from './carrier-leg.js';
import { handleCarrierInvite } from './inbound.js';
import { handleTeamsInvite } from './outbound.js';
import { uriHost } from './numbers.js';

/** The subset of drachtio-srf the gateway app uses (drachtio-srf ships no types). */
export interface SrfLike {
  options(handler: (req: any, res: any) => void): void;
  invite(handler: (req: any, res: any) => void): void;
  prack(handler: (req: any, res: any) => void): void;
  on(event: string, fn: (...args: any[]) => void): void;
}

export const GATEWAY_ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, UPDATE, PRACK';

/** Matches a source address against CIDR lists. */
export function cidrMatcher(cidrs: string[]): (ip: string) => boolean {
  const entries = cidrs.map((c) => parseCidr(c)).filter((c) => c !== undefined).map((cidr) => ({ cidr: cidr!, value: true }));
  const table = new CidrTable(entries);
  return (ip) => table.lookup(ip) === true;
}

/**
 * The call-control app. It talks to the SIP server only through drachtio-srf: OPTIONS are
 * answered, INVITEs are classified by source (Teams ranges over TLS, or a carrier's addresses)
 * and handed to the matching call flow.
 */
export function createGatewayApp(srf: SrfLike, ctx: GatewayContext | { logger: Logger }): void {
  const log = 'log' in ctx ? ctx.log : ctx.logger;
  const fromTeams = 'log' in ctx ? cidrMatcher(ctx.config.teams.sourceCidrs) : () => false;
  srf.options((req, res) => {
    const src: string = req.source_address;
    log.debug({ callId: req.get('Call-ID'), from: src }, 'OPTIONS');
    const headers: Record<string, string> = { Allow: GATEWAY_ALLOW, Accept: 'application/sdp' };
    if ('log' in ctx) {
      const teams = fromTeams(src);
      // Like an INVITE from there: an address that is neither Teams nor a carrier learns
      // nothing in drop mode (scanners), and gets 403 otherwise.
      if (!teams && !ctx.tenants.carrierBySourceIp(src)) {
        if (ctx.config.carriers.unknownSource === 'drop') return;
        return void res.send(403, { headers: { Reason: reason(21, 'Source address not allowed') } });
      }
      if (teams) {
        // Teams §3.1/§3.2: Teams' own OPTIONS name the carrier trunk FQDN or a tenant FQDN; the
        // answer carries a Contact with that FQDN (never an IP), so Teams can match the trunk,
        // and the Allow its calls get (§3.7: no UPDATE/PRACK toward Teams; REFER per tenant).
        const host = uriHost(String(req.uri ?? ''));
        const base = ctx.tenants.snapshot().index.settings.carrierBaseDomain.toLowerCase();
        const tenant = host ? ctx.tenants.byFqdn(host) : undefined;
        if (host && (host === base || tenant)) headers.Contact = `<sip:${host}:${ctx.config.teams.signalingPort};transport=tls>`;
        headers.Allow = teamsAllow(tenant ? tenant.teams.advertiseRefer : true);
      }
      // Draining: a carrier's (or Teams') health check sees us out of service before its next call.
      if (ctx.draining) return void sendFailure(res, 503, reason(42, 'Gateway draining'), 30, headers);
    }
    res.send(200, { headers });
  });
  if (!('log' in ctx)) return;
  // PRACKs reach this route after Response#send's PRACK callback (carrier-leg.ts). One with an
  // offer is answered by its call (RFC 3262 §5); every other gets drachtio-srf's usual 200.
  srf.prack((req, res) => {
    if (!prackAnsweredHere(req)) res.send(200);
  });
  srf.invite((req, res) => {
    const src: string = req.source_address;
    if (fromTeams(src)) {
      // §5: Teams connects over TLS only.
      if (req.protocol !== 'tls') {
        ctx.onRefused?.({ direction: 'outbound', reason: 'not-tls', carrier: '', status: 403 });
        res.send(403, { headers: { Reason: reason(21, 'Teams traffic must use TLS') } });
        return;
      }
      guarded(ctx, req, res, 'outbound', '', handleTeamsInvite(ctx, req, res));
      return;
    }
    const carrier = ctx.tenants.carrierBySourceIp(src);
    if (carrier) {
      guarded(ctx, req, res, 'inbound', carrier.name, handleCarrierInvite(ctx, req, res, carrier));
      return;
    }
    const drop = ctx.config.carriers.unknownSource === 'drop';
    ctx.onRefused?.({ direction: 'inbound', reason: 'unknown-source', carrier: '', status: drop ? 0 : 403 });
    if (drop) {
      ctx.log.info({ src, callId: req.get('Call-ID') }, 'INVITE from unknown source dropped');
      return; // no final response: scanners learn nothing
    }
    ctx.log.info({ src, callId: req.get('Call-ID') }, 'INVITE from unknown source rejected');
    res.send(403, { headers: { Reason: reason(21, 'Source address not allowed') } });
  });
}

/**
 * A call flow that throws outside its own error handling (the tenant store unreachable for an
 * exact-number lookup, say) must not take the process down as an unhandled rejection: the
 * caller gets 503 with Retry-After, other calls go on, and the error is logged.
 */
function guarded(ctx: GatewayContext, req: any, res: any, direction: Refusal['direction'], carrier: string, flow: Promise<void>): void {
  flow.catch((err: Error) => {
    ctx.log.error({ callId: req.get('Call-ID'), err: err.message, code: (err as { code?: string }).code }, 'call flow failed: 503');
    ctx.onRefused?.({ direction, reason: 'error', carrier, status: 503 });
    sendFailure(res, 503, reason(41, 'Temporary failure'), 5);
  });
}
