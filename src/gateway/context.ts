import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { TenantStore } from '../tenants/index.js';
import type { Admission } from './admission.js';
import type { CallSession } from './call-session.js';
import type { GatewayFeatures } from './features.js';
import type { MediaService } from './media-port.js';
import type { Resolver } from './resolver.js';
import type { TeamsProxy, TeamsProxyList } from './teams-proxies.js';

/** Everything a call handler needs; built once by the composition root. */
export interface GatewayContext {
  srf: any;
  config: Config;
  log: Logger;
  tenants: TenantStore;
  admission: Admission;
  media: MediaService | undefined;
  resolver: Resolver;
  teamsProxies: TeamsProxyList;
  calls: Set<CallSession>;
  /** Carrier targets (`host:port`) failing their OPTIONS checks (ops); skipped in routing. */
  carrierDown: ReadonlySet<string>;
  /** true after SIGTERM: new calls get 503. */
  draining: boolean;
  /** Mid-call, transfer and DTMF settings (defaults: features.ts); ring groups come from the tenant store. */
  features?: Partial<GatewayFeatures>;
  /** Told of every INVITE refused before it became a call (ops counts them by reason). */
  onRefused?: (r: Refusal) => void;
}

/**
 * Why an INVITE was refused before it became a call. Stable values: they are a metric label
 * (`teamsgw_calls_rejected_total{reason}`) and alerts select on them.
 */
export type RefusalReason =
  | 'unknown-source'
  | 'not-tls'
  | 'draining'
  | 'session-interval'
  | 'number-format'
  | 'unallocated'
  | 'unknown-trunk'
  | 'tenant-disabled'
  | 'carrier-not-allowed'
  | 'trunk-mismatch'
  | 'replaces-unknown'
  | 'unsupported-body'
  | 'caller-id'
  | 'limit'
  | 'error';

export interface Refusal {
  direction: 'inbound' | 'outbound';
  reason: RefusalReason;
  /** The carrier that sent it (inbound), else ''. */
  carrier: string;
  /** The status sent, or 0 when the INVITE was dropped unanswered. */
  status: number;
}

/** Q.850-style Reason header value for a rejection we generate. */
export function reason(cause: number, text: string): string {
  return `Q.850;cause=${cause};text="${text.replace(/"/g, "'")}"`;
}

/**
 * SIP final status → Q.850 cause, for a failure passed on to a carrier (RFC 3398 §8.2.6.1;
 * teams-direct-routing §1.9: 486 is cause 17, user busy, not 34).
 */
const Q850_OF_STATUS: Readonly<Record<number, [number, string]>> = {
  400: [41, 'Temporary failure'], 401: [21, 'Call rejected'], 402: [21, 'Call rejected'], 403: [21, 'Call rejected'],
  404: [1, 'Unallocated number'], 405: [63, 'Service or option not available'], 406: [79, 'Service or option not implemented'],
  407: [21, 'Call rejected'], 408: [102, 'Recovery on timer expiry'], 410: [22, 'Number changed'], 480: [18, 'No user responding'],
  483: [25, 'Exchange routing error'], 484: [28, 'Invalid number format'], 485: [1, 'Unallocated number'], 486: [17, 'User busy'],
  500: [41, 'Temporary failure'], 501: [79, 'Service or option not implemented'], 502: [38, 'Network out of order'],
  503: [41, 'Temporary failure'], 504: [102, 'Recovery on timer expiry'], 600: [17, 'User busy'], 603: [21, 'Call rejected'],
  604: [1, 'Unallocated number'],
  // 488 and 606 have no fixed cause (RFC 3398 maps them by their Warning): they keep their Reason.
};

/**
 * The Reason for a failure `status` passed on to a carrier: the one it came with when that has
 * a Q.850 cause, else the mapped Q.850 cause (followed by the original, RFC 3326 allows one per
 * protocol). Statuses without a mapping keep what they had.
 */
export function carrierFailureReason(status: number, received: string | undefined): string | undefined {
  if (received && /(^|,)\s*Q\.850\s*;/i.test(received)) return received;
  const q = Q850_OF_STATUS[status];
  if (!q) return received;
  return received ? `${reason(q[0], q[1])}, ${received}` : reason(q[0], q[1]);
}

/**
 * A final failure response with its Reason and Retry-After, unless the transaction already has
 * a final response; a transaction that is gone meanwhile (the caller cancelled) is not an error.
 */
export function sendFailure(res: any, status: number, why?: string, retryAfter?: number, extra: Record<string, string> = {}): void {
  if (res.finalResponseSent) return;
  const headers: Record<string, string> = { ...extra };
  if (why) headers.Reason = why;
  if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
  try {
    res.send(status, { headers });
  } catch {
    // transaction already gone
  }
}

/** Our Allow set toward Teams; REFER/NOTIFY only when the tenant advertises REFER (Teams §4.8). */
export function teamsAllow(advertiseRefer: boolean): string {
  return ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'INFO', ...(advertiseRefer ? ['REFER', 'NOTIFY'] : [])].join(', ');
}

/**
 * The Teams proxies a new Teams-bound INVITE tries, in order. Beside a certified SBC
 * (`teams.nextHop`) that SBC holds the connections to Teams and owns the sip/sip2/sip3
 * failover, and the Request-URI names the primary proxy whichever proxy is meant (§4.1), so
 * another attempt through the same next hop would be the same request again: one attempt.
 */
export function teamsAttempts(ctx: Pick<GatewayContext, 'config' | 'teamsProxies'>): TeamsProxy[] {
  const ordered = ctx.teamsProxies.ordered();
  return ctx.config.teams.nextHop ? ordered.slice(0, 1) : ordered;
}

/** Where a request for `proxy` is sent: the configured next hop, or the proxy itself over TLS. */
export async function teamsNextHop(ctx: Pick<GatewayContext, 'config' | 'resolver'>, proxy: TeamsProxy): Promise<string> {
  return ctx.config.teams.nextHop || `sip:${await ctx.resolver.resolve(proxy.host)}:${proxy.port};transport=tls`;
}
