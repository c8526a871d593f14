/**
 * Call-control settings for mid-call behaviour, transfers, ring groups and DTMF (issue 5).
 * They come from the `calls` section of the gateway config (defaults in src/config/schema.ts);
 * `ctx.features` may override parts of it (tests).
 */

export type EarlyMediaMode = 'pass' | 'convert-to-180';

/**
 * RFC 3262 toward a carrier: `supported` offers 100rel in INVITEs to it and sends it reliable
 * 183s with SDP when its INVITE supports 100rel; `off` does neither (a carrier INVITE with
 * `Require: 100rel` is always honoured).
 */
export type ReliableProvisionalsMode = 'supported' | 'off';

export interface RingGroup {
  /** Teams numbers (+E.164) rung for the DID. */
  members: string[];
  /** simultaneous: all at once, first answer wins; sequential: in order. */
  strategy: 'simultaneous' | 'sequential';
  /** sequential: seconds each member rings; simultaneous: seconds the whole group rings. */
  memberTimeoutSec: number;
  /** Number (+E.164, a Teams user) rung when no member answered. */
  fallback?: string;
}

export interface GatewayFeatures {
  sessionTimer: {
    /** Session-Expires we ask for in INVITEs to Teams (RFC 4028 §7.1). */
    sessionExpires: number;
    /** Smallest interval we accept (Min-SE, RFC 4028 §5); Teams' own values below it are raised. */
    minSeconds: number;
    /** For calls from Teams: who refreshes (uac = Teams, uas = the gateway). */
    refresherForTeamsCalls: 'uac' | 'uas';
  };
  /** SIP INFO (e.g. DTMF relay): pass to the other leg, or answer 200 locally. */
  info: 'pass' | 'local';
  /** Per carrier name: 183 with SDP toward that carrier (overrides config carriers.earlyMedia). */
  carrierEarlyMedia: Record<string, EarlyMediaMode>;
  /** Per carrier name: 100rel toward that carrier (overrides config carriers.reliableProvisionals). */
  carrierReliableProvisionals: Record<string, ReliableProvisionalsMode>;
  /** DID (+E.164) → ring group (PSTN → Teams calls). */
  ringGroups: Record<string, RingGroup>;
}

export function featuresOf(ctx: { config: { calls: GatewayFeatures }; features?: Partial<GatewayFeatures> }): GatewayFeatures {
  const base = ctx.config.calls;
  const f = ctx.features ?? {};
  return {
    sessionTimer: { ...base.sessionTimer, ...f.sessionTimer },
    info: f.info ?? base.info,
    carrierEarlyMedia: { ...base.carrierEarlyMedia, ...f.carrierEarlyMedia },
    carrierReliableProvisionals: { ...base.carrierReliableProvisionals, ...f.carrierReliableProvisionals },
    ringGroups: { ...base.ringGroups, ...f.ringGroups },
  };
}

/** The 100rel policy for one carrier: its override, else config carriers.reliableProvisionals. */
export function reliableProvisionalsFor(ctx: { config: { calls: GatewayFeatures; carriers: { reliableProvisionals: ReliableProvisionalsMode } }; features?: Partial<GatewayFeatures> }, carrier: string): ReliableProvisionalsMode {
  return featuresOf(ctx).carrierReliableProvisionals[carrier] ?? ctx.config.carriers.reliableProvisionals;
}

/** RFC 4028 §4: `Session-Expires: delta;refresher=uac|uas`. */
export function parseSessionExpires(v: string | undefined): { seconds: number; refresher: 'uac' | 'uas' | undefined } | undefined {
  if (!v) return undefined;
  const m = /^\s*(\d+)/.exec(v);
  if (!m) return undefined;
  const r = /refresher\s*=\s*(uac|uas)/i.exec(v)?.[1]?.toLowerCase() as 'uac' | 'uas' | undefined;
  return { seconds: Number(m[1]), refresher: r };
}
