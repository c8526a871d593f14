/**
 * Tenant and carrier model (Teams Direct Routing, carrier / hosting model: see
 * docs/tenants.md and ../shared/docs/teams-direct-routing.md §8).
 *
 * `*Config` types are what the YAML files hold after schema defaults are applied; the runtime
 * `Tenant` is the same minus its DID list and ring groups (numbers live in the lookup index, not
 * on the object, so a store with a million DIDs does not keep them twice; a ring group comes back
 * with the tenant from a called-number lookup, as a `NumberMatch`).
 */

/** Settings shared by the whole config set (one `settings:` block across all files). */
export interface TenantSettings {
  /** The carrier trunk FQDN / verified base domain, e.g. `customers.example.net` (§8.1, §8.4). */
  carrierBaseDomain: string;
}

/** One ordered rewrite rule: `replace` is applied with String.prototype.replace(RegExp(match)). */
export interface NormalizationRule {
  match: string;
  replace: string;
  description?: string;
}

export interface NormalizationRules {
  /** Applied to numbers arriving from the carrier (PSTN → Teams). */
  inbound: NormalizationRule[];
  /** Applied to numbers sent to the carrier (Teams → PSTN). */
  outbound: NormalizationRule[];
}

export interface TrunkRef {
  carrier: string;
  /** Lower is tried first. */
  priority: number;
}

export interface TenantLimits {
  maxConcurrentCalls?: number;
  cps?: number;
}

export interface MediaPolicy {
  /** Codecs allowed on both legs (toward Teams: those Teams supports), in preference order. */
  codecs: string[];
  /** An offer with none of `codecs` is transcoded to them by rtpengine (§7.10). */
  transcoding: boolean;
}

export interface TeamsOptions {
  /** Advertise REFER in Allow toward Teams (Teams then transfers via REFER). */
  advertiseRefer: boolean;
  /** Forward P-Asserted-Identity between the legs. */
  forwardPai: boolean;
  /** Map History-Info from Teams to a Diversion header toward the carrier. */
  historyInfoToDiversion: boolean;
  /**
   * Teams → PSTN caller-ID screening: a caller number the tenant does not own (not one of its
   * DIDs, and not forwarded by one) is replaced by `defaultCallerId`, or the call is rejected.
   */
  callerIdScreening: 'off' | 'replace' | 'reject';
  /** `+E164`, one of the tenant's DIDs; required for `replace`. */
  defaultCallerId?: string;
}

/** A tenant as looked up on the call path. */
export interface Tenant {
  id: string;
  name: string;
  enabled: boolean;
  /** Derived trunk FQDN: `<label>.<carrierBaseDomain>`, lower case (§8.2, §8.3). */
  fqdn: string;
  /**
   * Carriers allowed to deliver calls to the tenant's numbers (present only when the tenant
   * restricts them): another carrier's call for one of them is refused as not served there.
   */
  inboundCarriers?: string[];
  trunks: TrunkRef[];
  normalization: NormalizationRules;
  limits: TenantLimits;
  media: MediaPolicy;
  teams: TeamsOptions;
}

export type RingStrategy = 'simultaneous' | 'sequential';

/**
 * A ring group ("group call"): calls to `did`, one of the tenant's numbers, ring several Teams
 * numbers instead of one (docs/tenants.md "Ring groups").
 */
export interface RingGroup {
  /** The tenant's number (exact `+E164`, covered by one of its `dids` entries) that rings the group. */
  did: string;
  /** simultaneous: all members at once, first answer wins; sequential: one after the other. */
  strategy: RingStrategy;
  /** sequential: seconds each member (and the fallback) rings; simultaneous: seconds the whole group rings. */
  memberTimeoutSec: number;
  /** Teams numbers (+E.164), at least two, in ringing order. */
  members: string[];
  /** Number (+E.164, a Teams user) rung when no member answered. */
  fallback?: string;
}

/** A tenant as written in config: the runtime fields plus its DIDs and ring groups. */
export interface TenantConfig extends Tenant {
  /** Exact `+E164`, range `+first-+last` or prefix `+digits*`. */
  dids: string[];
  /** Present only when the tenant has ring groups; sorted by `did`. */
  ringGroups?: RingGroup[];
}

/**
 * What a called-number lookup returns: the tenant that owns the number and, when the number is
 * a ring-group DID, that group. Shared, frozen objects: do not modify.
 */
export interface NumberMatch {
  readonly tenant: Tenant;
  readonly ringGroup: RingGroup | undefined;
}

export type Transport = 'udp' | 'tcp' | 'tls';

export interface CarrierTarget {
  host: string;
  port: number;
  transport: Transport;
  /** Lower is tried first. */
  priority: number;
}

export interface CarrierAuth {
  username: string;
  /** `env:VARIABLE` or `file:/path`: never the secret itself. */
  password: string;
  realm?: string;
}

export interface Carrier {
  name: string;
  /** Exact IPs and CIDR networks allowed to send calls (IPv4 and IPv6). */
  sources: string[];
  targets: CarrierTarget[];
  auth?: CarrierAuth;
  normalization: NormalizationRules;
  /** The trunk's capacity, both directions together (absent: unlimited). */
  limits: TenantLimits;
}

/** A complete, validated config set. */
export interface TenantConfigSet {
  settings: TenantSettings;
  carriers: Carrier[];
  tenants: TenantConfig[];
}

/** One validation problem. `file` is relative to the config directory. */
export interface Problem {
  file: string;
  /** 1-based; 0 when the problem has no single place (e.g. a missing settings block). */
  line: number;
  column: number;
  /** YAML path, e.g. `tenants[2].dids[0]`. */
  path: string;
  /** Stable rule id, e.g. `fqdn-duplicate`. */
  rule: string;
  message: string;
}
