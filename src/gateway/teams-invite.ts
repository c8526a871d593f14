import type { Logger } from 'pino';
import type { SrfDialog } from './call-session.js';
import { type GatewayContext, teamsAttempts, teamsNextHop } from './context.js';
import { UacAttempt } from './uac-attempt.js';

export interface TeamsInviteOptions {
  uri: string;
  headers: Record<string, string>;
  sdp: string;
  log: Logger;
  onProvisional(res: any): void;
  /** Polled between attempts: true stops trying (caller gone). */
  stopped(): boolean;
  /** The attempt in flight (to CANCEL it). */
  onAttempt?(a: UacAttempt | undefined): void;
}

export interface TeamsInviteResult {
  dialog?: SrfDialog;
  status?: number;
  reason?: string;
  provisional: boolean;
}

/**
 * A new INVITE to the Teams SIP proxies in failover order (teams-direct-routing.md §1.7–§1.12:
 * next proxy on timeout, 408 or 5xx, never after an 18x). Used for transfers (§6.4) and
 * ring groups; the Request-URI is the caller's choice (for a transfer, the Refer-To value).
 */
export async function inviteTeams(ctx: GatewayContext, o: TeamsInviteOptions): Promise<TeamsInviteResult> {
  let provisional = false;
  let status: number | undefined;
  let reason: string | undefined;
  for (const proxy of teamsAttempts(ctx)) {
    if (o.stopped()) break;
    let nextHop: string;
    try {
      nextHop = await teamsNextHop(ctx, proxy);
    } catch (err) {
      o.log.warn({ proxy: proxy.host, err: (err as Error).message }, 'cannot resolve Teams proxy');
      continue;
    }
    const attempt = new UacAttempt({
      srf: ctx.srf,
      uri: o.uri,
      opts: { headers: o.headers, localSdp: o.sdp, proxy: nextHop },
      timeoutMs: ctx.config.teams.inviteTimeoutMs,
      cancelGraceMs: Math.min(2000, ctx.config.teams.inviteTimeoutMs),
      onProvisional: (p: any) => {
        if (p.status > 100) provisional = true;
        o.onProvisional(p);
      },
    });
    o.onAttempt?.(attempt);
    const r = await attempt.result;
    o.onAttempt?.(undefined);
    if (r.dialog) return { dialog: r.dialog, provisional };
    status = r.status;
    reason = r.res?.get?.('Reason');
    const retryAfter = Number.parseInt(String(r.res?.get?.('Retry-After') ?? ''), 10);
    if (status === 503 && retryAfter > 0) ctx.teamsProxies.backOff(proxy.host, retryAfter);
    if (r.timedOut && (status === undefined || status === 487)) status = 408;
    o.log.info({ proxy: proxy.host, status, timedOut: r.timedOut }, 'Teams proxy attempt failed');
    if (provisional) break;
    if (!(status === undefined || status === 408 || (status >= 500 && status < 600))) break;
  }
  const out: TeamsInviteResult = { provisional };
  if (status !== undefined) out.status = status;
  if (reason !== undefined) out.reason = reason;
  return out;
}
