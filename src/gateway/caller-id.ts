import type { Tenant } from '../tenants/types.js';
import type { GatewayContext } from './context.js';
import { E164_RE } from './numbers.js';

/** What screening decided for one Teams → PSTN call. */
export interface ScreenedCaller {
  /** The caller number to present (From), Teams' form (+E.164 or `anonymous`). */
  number: string;
  /** owned: a DID of the tenant; forwarded: a DID of the tenant forwarded the call (History-Info); replaced: defaultCallerId stands in. */
  verdict: 'off' | 'anonymous' | 'owned' | 'forwarded' | 'replaced';
}

/**
 * Caller-ID screening for Teams → PSTN (tenant `teams.callerIdScreening`): a carrier must only
 * be sent numbers the customer owns, or the call is spoofed as far as the PSTN (and STIR/SHAKEN
 * attestation) is concerned. A number is the tenant's when one of its DIDs covers it. A call
 * Teams forwards (the caller is the original PSTN party) passes when a History-Info entry names
 * one of the tenant's numbers: the forwarding user. Returns undefined when the call must be
 * rejected.
 */
export async function screenCallerId(ctx: GatewayContext, tenant: Tenant, from: string, historyInfo: readonly string[]): Promise<ScreenedCaller | undefined> {
  const mode = tenant.teams.callerIdScreening;
  if (mode === 'off') return { number: from, verdict: 'off' };
  if (from === 'anonymous') return { number: from, verdict: 'anonymous' };
  if (await ownedBy(ctx, tenant, from)) return { number: from, verdict: 'owned' };
  for (const h of historyInfo) {
    const n = /sips?:(\+[0-9]+)@/i.exec(h)?.[1];
    if (n && (await ownedBy(ctx, tenant, n))) return { number: from, verdict: 'forwarded' };
  }
  if (mode === 'replace' && tenant.teams.defaultCallerId) return { number: tenant.teams.defaultCallerId, verdict: 'replaced' };
  return undefined;
}

/** One of the tenant's DIDs covers `number` (+E.164). */
export async function ownedBy(ctx: GatewayContext, tenant: Tenant, number: string): Promise<boolean> {
  if (!E164_RE.test(number)) return false;
  return (await ctx.tenants.lookupNumber(number))?.tenant.id === tenant.id;
}
