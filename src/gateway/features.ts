/**
 * Call-control settings for mid-call behaviour, transfers and DTMF (issue 5).
 * They come from the `calls` section of the gateway config (defaults in src/config/schema.ts);
 * `ctx.features` may override parts of it (tests). Ring groups are not here: they belong to the
 * customer and are defined per DID in the tenant config (src/tenants, docs/tenants.md).
 */

export type EarlyMediaMode = 'pass' | 'convert-to-180';

/**
 * RFC 3262 toward a carrier: `supported` offers 100rel in INVITEs to it and sends it reliable
 * 183s with SDP when its INVITE supports 100rel; `off` does neither (a carrier INVITE with
 * `Require: 100rel` is always honoured).
 */
export type ReliableProvisionalsMode = 'supported' | 'off';

export interface GatewayFeatures {
  sessionTimer: {
    /** Session-Expires we ask for in INVITEs to Teams (RFC 4028 §7.1). */
    sessionExpires: number;
    /** Smallest interval we accept (Min-SE, RFC 4028 §5); Teams' own values below it are raised. */
    minSeconds: number;
    /** For calls from Teams: who refreshes (uac = Teams, uas = the gateway). */
    refresherForTeamsCalls: 'uac' | 'uas';
  };
  /**
   * RFC 4028 session timer on the carrier leg, independent of the one toward Teams
   * (carrier-session-timer.ts); `perCarrier` overrides parts of it per carrier name.
   */
  carrierSessionTimer: CarrierSessionTimerSettings & { perCarrier?: Record<string, Partial<CarrierSessionTimerSettings>> };
  /** SIP INFO (e.g. DTMF relay): pass to the other leg, or answer 200 locally. */
  info: 'pass' | 'local';
  /** Per carrier name: 183 with SDP toward that carrier (overrides config carriers.earlyMedia). */
  carrierEarlyMedia: Record<string, EarlyMediaMode>;
  /** Per carrier name: 100rel toward that carrier (overrides config carriers.reliableProvisionals). */
  carrierReliableProvisionals: Record<string, ReliableProvisionalsMode>;
  /** Tone played to the PSTN party while a transfer target rings without SDP (§6.6, transfer-ringback.ts). */
  transferRingback: TransferRingbackSettings;
}

export interface CarrierSessionTimerSettings {
  /** Run a session timer on the carrier leg (off: no Session-Expires toward carriers, no timer). */
  enabled: boolean;
  /** Session-Expires we offer in INVITEs to carriers and the most we grant in answers (RFC 4028 §4, §9). */
  sessionExpires: number;
  /** Smallest interval we accept from a carrier (our Min-SE, RFC 4028 §5): less gets 422. */
  minSeconds: number;
}

export interface TransferRingbackSettings {
  enabled: boolean;
  /** Tone plan (src/media/ringback-tone.ts). */
  country: 'us' | 'uk' | 'eu';
  /** Media file on the rtpengine host played instead of the generated tone ('' = generated, inline). */
  file: string;
  /** Upper bound of one ringback, in seconds. */
  maxSeconds: number;
}

export function featuresOf(ctx: { config: { calls: GatewayFeatures }; features?: Partial<GatewayFeatures> }): GatewayFeatures {
  const base = ctx.config.calls;
  const f = ctx.features ?? {};
  return {
    sessionTimer: { ...base.sessionTimer, ...f.sessionTimer },
    carrierSessionTimer: {
      ...base.carrierSessionTimer,
      ...f.carrierSessionTimer,
      perCarrier: { ...base.carrierSessionTimer.perCarrier, ...f.carrierSessionTimer?.perCarrier },
    },
    info: f.info ?? base.info,
    carrierEarlyMedia: { ...base.carrierEarlyMedia, ...f.carrierEarlyMedia },
    transferRingback: { ...base.transferRingback, ...f.transferRingback },
    carrierReliableProvisionals: { ...base.carrierReliableProvisionals, ...f.carrierReliableProvisionals },
  };
}

/** The 100rel policy for one carrier: its override, else config carriers.reliableProvisionals. */
export function reliableProvisionalsFor(ctx: { config: { calls: GatewayFeatures; carriers: { reliableProvisionals: ReliableProvisionalsMode } }; features?: Partial<GatewayFeatures> }, carrier: string): ReliableProvisionalsMode {
  return featuresOf(ctx).carrierReliableProvisionals[carrier] ?? ctx.config.carriers.reliableProvisionals;
}

/** The carrier-leg session timer settings for one carrier: its `perCarrier` entry over the global ones. */
export function carrierSessionTimerFor(ctx: { config: { calls: GatewayFeatures }; features?: Partial<GatewayFeatures> }, carrier: string | undefined): CarrierSessionTimerSettings {
  const { perCarrier, ...global } = featuresOf(ctx).carrierSessionTimer;
  return { ...global, ...(carrier ? perCarrier?.[carrier] : undefined) };
}

/** RFC 4028 §4: `Session-Expires: delta;refresher=uac|uas`. */
export function parseSessionExpires(v: string | undefined): { seconds: number; refresher: 'uac' | 'uas' | undefined } | undefined {
  if (!v) return undefined;
  const m = /^\s*(\d+)/.exec(v);
  if (!m) return undefined;
  const r = /refresher\s*=\s*(uac|uas)/i.exec(v)?.[1]?.toLowerCase() as 'uac' | 'uas' | undefined;
  return { seconds: Number(m[1]), refresher: r };
}
