/**
 * The compiled, immutable lookup structure for one config version, and the snapshot the call
 * path queries. Both stores (memory, Redis) build the same TenantIndex; they differ only in
 * where exact numbers come from when they are not all held in memory.
 *
 * Number lookup order: exact number, then range, then longest prefix. Validation guarantees no
 * number is covered by two tenants, so the order never changes the answer. That lets a snapshot
 * whose exact numbers live in Redis try its in-memory ranges and prefixes first: a match there is
 * final (no round trip, and it still works while Redis is down); only a non-match asks Redis.
 *
 * Ring groups hang off the number, not the tenant: `lookupNumber()` finds the owning tenant as
 * above, then one map probe by the same digits (skipped when the version has no ring groups)
 * returns a prebuilt `{ tenant, ringGroup }`. Every answer is a shared frozen object, so the hot
 * path allocates nothing. Validation guarantees a ring-group DID is owned by the group's tenant.
 */
import { CidrTable, parseCidr } from './ip.js';
import { parseDid, toDigits } from './numbers.js';
import { TenantStoreUnavailableError } from './errors.js';
import type { Carrier, NumberMatch, RingGroup, Tenant, TenantConfigSet, TenantSettings } from './types.js';

/** Everything needed to build an index: what Redis stores per version (plus, optionally, exacts). */
export interface IndexData {
  version: number;
  settings: TenantSettings;
  tenants: Tenant[];
  carriers: Carrier[];
  /** Non-overlapping ranges (same-tenant overlaps merged), digits without '+'. */
  ranges: { first: string; last: string; t: number }[];
  prefixes: { digits: string; t: number }[];
  /** Ring groups with the index of their tenant (the DID is `group.did`). */
  ringGroups: { t: number; group: RingGroup }[];
  /** Every exact number → tenant index, when held in memory; absent → ask `fetchExact`. */
  exact?: Map<string, number>;
  exactCount: number;
}

function runtimeTenant(t: TenantConfigSet['tenants'][number]): Tenant {
  const { dids: _dids, ringGroups: _groups, ...rest } = t;
  return rest;
}

/** Compiles a validated config set. Exact numbers are returned as a map and as a count. */
export function buildIndexData(config: TenantConfigSet, version: number): IndexData & { exact: Map<string, number> } {
  const exact = new Map<string, number>();
  const rangesByTenant: { first: number; last: number; len: number; t: number }[] = [];
  const prefixes: { digits: string; t: number }[] = [];
  const seenPrefix = new Set<string>();
  config.tenants.forEach((tc, t) => {
    for (const d of tc.dids) {
      const p = parseDid(d);
      if (!p.ok) continue;
      const e = p.entry;
      if (e.kind === 'exact') exact.set(e.digits, t);
      else if (e.kind === 'prefix') {
        if (!seenPrefix.has(e.digits)) prefixes.push({ digits: e.digits, t });
        seenPrefix.add(e.digits);
      } else rangesByTenant.push({ first: Number(e.first), last: Number(e.last), len: e.first.length, t });
    }
  });
  // Merge overlapping or adjacent ranges of the same tenant so the per-length arrays are disjoint.
  rangesByTenant.sort((a, b) => a.len - b.len || a.first - b.first);
  const merged: typeof rangesByTenant = [];
  for (const r of rangesByTenant) {
    const last = merged[merged.length - 1];
    if (last && last.len === r.len && last.t === r.t && r.first <= last.last + 1) last.last = Math.max(last.last, r.last);
    else merged.push({ ...r });
  }
  return {
    version,
    settings: config.settings,
    tenants: config.tenants.map(runtimeTenant),
    carriers: config.carriers,
    ranges: merged.map((r) => ({ first: String(r.first), last: String(r.last), t: r.t })),
    prefixes,
    ringGroups: config.tenants.flatMap((tc, t) => (tc.ringGroups ?? []).map((group) => ({ t, group }))),
    exact,
    exactCount: exact.size,
  };
}

interface RangeTable {
  firsts: Float64Array;
  lasts: Float64Array;
  owner: Int32Array;
}

/** Immutable lookup structures for one version. */
export class TenantIndex {
  readonly version: number;
  readonly settings: TenantSettings;
  readonly tenants: readonly Tenant[];
  readonly carriers: readonly Carrier[];
  readonly exactCount: number;
  readonly #byId = new Map<string, Tenant>();
  readonly #byFqdn = new Map<string, Tenant>();
  readonly #carrierByName = new Map<string, Carrier>();
  readonly #sources: CidrTable<Carrier>;
  readonly #ranges = new Map<number, RangeTable>();
  readonly #prefixes = new Map<string, number>();
  readonly #prefixLens: number[];
  readonly #exact: Map<string, number> | undefined;
  /** Per tenant index: the answer for a number without a ring group. */
  readonly #plain: NumberMatch[];
  /** Ring-group DID digits → answer. */
  readonly #groups = new Map<string, NumberMatch>();
  readonly ringGroupCount: number;

  constructor(data: IndexData) {
    this.version = data.version;
    this.settings = data.settings;
    this.tenants = data.tenants;
    this.carriers = data.carriers;
    this.exactCount = data.exactCount;
    this.#exact = data.exact;
    for (const t of data.tenants) {
      this.#byId.set(t.id, t);
      this.#byFqdn.set(t.fqdn, t);
    }
    this.#plain = data.tenants.map((tenant) => Object.freeze({ tenant, ringGroup: undefined }));
    for (const { t, group } of data.ringGroups) {
      const tenant = data.tenants[t];
      if (!tenant) continue;
      const ringGroup = Object.freeze({ ...group, members: Object.freeze([...group.members]) as string[] });
      this.#groups.set(group.did.slice(1), Object.freeze({ tenant, ringGroup }));
    }
    this.ringGroupCount = this.#groups.size;
    const sources: { cidr: NonNullable<ReturnType<typeof parseCidr>>; value: Carrier }[] = [];
    for (const c of data.carriers) {
      this.#carrierByName.set(c.name, c);
      for (const s of c.sources) {
        const cidr = parseCidr(s);
        if (cidr) sources.push({ cidr, value: c });
      }
    }
    this.#sources = new CidrTable(sources);
    const byLen = new Map<number, { first: number; last: number; t: number }[]>();
    for (const r of data.ranges) {
      let l = byLen.get(r.first.length);
      if (!l) byLen.set(r.first.length, (l = []));
      l.push({ first: Number(r.first), last: Number(r.last), t: r.t });
    }
    for (const [len, l] of byLen) {
      l.sort((a, b) => a.first - b.first);
      this.#ranges.set(len, {
        firsts: Float64Array.from(l, (x) => x.first),
        lasts: Float64Array.from(l, (x) => x.last),
        owner: Int32Array.from(l, (x) => x.t),
      });
    }
    const lens = new Set<number>();
    for (const p of data.prefixes) {
      this.#prefixes.set(p.digits, p.t);
      lens.add(p.digits.length);
    }
    this.#prefixLens = [...lens].sort((a, b) => b - a);
  }

  get exactComplete(): boolean {
    return this.#exact !== undefined;
  }

  /** Exact-number tenant index; -1 when known absent; undefined when exacts are not in memory. */
  exactLocal(digits: string): number | undefined {
    if (!this.#exact) return undefined;
    return this.#exact.get(digits) ?? -1;
  }

  /** Range, then longest prefix; -1 when nothing matches. */
  matchLocal(digits: string): number {
    const rt = this.#ranges.get(digits.length);
    if (rt) {
      const n = Number(digits);
      const { firsts } = rt;
      let lo = 0;
      let hi = firsts.length - 1;
      let idx = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (firsts[mid]! <= n) {
          idx = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (idx >= 0 && rt.lasts[idx]! >= n) return rt.owner[idx]!;
    }
    for (const len of this.#prefixLens) {
      if (len > digits.length) continue;
      const t = this.#prefixes.get(len === digits.length ? digits : digits.slice(0, len));
      if (t !== undefined) return t;
    }
    return -1;
  }

  tenantAt(i: number): Tenant | undefined {
    return i < 0 ? undefined : this.tenants[i];
  }

  /** The answer for number `digits` owned by tenant index `i` (-1: none). */
  matchAt(i: number, digits: string): NumberMatch | undefined {
    if (i < 0) return undefined;
    if (this.#groups.size !== 0) {
      const g = this.#groups.get(digits);
      if (g !== undefined) return g;
    }
    return this.#plain[i];
  }

  /** Every ring group of the version, with its tenant. */
  ringGroups(): NumberMatch[] {
    return [...this.#groups.values()];
  }

  get(id: string): Tenant | undefined {
    return this.#byId.get(id);
  }

  byFqdn(fqdn: string): Tenant | undefined {
    const hit = this.#byFqdn.get(fqdn);
    if (hit) return hit;
    // Hosts arrive from SIP in any case and sometimes as absolute names (trailing dot).
    let f = fqdn.toLowerCase();
    if (f.endsWith('.')) f = f.slice(0, -1);
    return f === fqdn ? undefined : this.#byFqdn.get(f);
  }

  carrier(name: string): Carrier | undefined {
    return this.#carrierByName.get(name);
  }

  carrierBySourceIp(ip: string): Carrier | undefined {
    return this.#sources.lookup(ip);
  }
}

/** What fetchExact answers: a tenant index, -1 for "not an exact number", or GONE. */
export const VERSION_GONE = Symbol('version-gone');
export type ExactFetcher = (digits: string) => Promise<number | typeof VERSION_GONE>;

/**
 * Read-only lookups pinned to one version. Everything but exact numbers is answered from memory;
 * exact numbers come from the index when complete, else from `fetchExact` (Redis) through a
 * bounded two-generation cache, so repeated numbers cost no round trip.
 */
export class TenantSnapshot {
  readonly index: TenantIndex;
  readonly #fetchExact: ExactFetcher | undefined;
  readonly #onGone: (() => Promise<TenantSnapshot>) | undefined;
  readonly #cacheHalf: number;
  #hot = new Map<string, number>();
  #cold = new Map<string, number>();
  /** Number lookups answered from memory / with a Redis round trip (shared across a store's snapshots). */
  readonly stats: { hits: number; misses: number };

  constructor(
    index: TenantIndex,
    opts: {
      fetchExact?: ExactFetcher;
      onGone?: () => Promise<TenantSnapshot>;
      cacheSize?: number;
      stats?: { hits: number; misses: number };
    } = {},
  ) {
    this.index = index;
    this.stats = opts.stats ?? { hits: 0, misses: 0 };
    this.#fetchExact = opts.fetchExact;
    this.#onGone = opts.onGone;
    this.#cacheHalf = Math.max(1, Math.floor((opts.cacheSize ?? 200_000) / 2));
  }

  get version(): number {
    return this.index.version;
  }

  #cached(d: string): number | undefined {
    const h = this.#hot.get(d);
    if (h !== undefined) return h;
    const c = this.#cold.get(d);
    if (c !== undefined) this.#remember(d, c);
    return c;
  }

  #remember(d: string, t: number): void {
    if (this.#hot.size >= this.#cacheHalf) {
      this.#cold = this.#hot;
      this.#hot = new Map();
    }
    this.#hot.set(d, t);
  }

  /**
   * Tenant index owning `d` (-1: none) when memory can tell, else undefined (only Redis can).
   * Counts a cache hit when it answers.
   */
  #ownerSync(d: string): number | undefined {
    const ex = this.index.exactLocal(d);
    if (ex !== undefined) {
      this.stats.hits++;
      return ex >= 0 ? ex : this.index.matchLocal(d);
    }
    // Exact numbers are not all in memory. A range/prefix match is still final: validation
    // rejects an exact number of another tenant inside it, so only a non-match needs Redis.
    const local = this.index.matchLocal(d);
    if (local >= 0) {
      this.stats.hits++;
      return local;
    }
    const c = this.#cached(d);
    if (c !== undefined) this.stats.hits++;
    return c;
  }

  /** Asks Redis whether `d` is an exact number: its tenant index or -1, or the snapshot to retry on. */
  async #ownerRemote(d: string, e164: string): Promise<number | TenantSnapshot> {
    this.stats.misses++;
    let t: number;
    try {
      const r = await this.#fetchExact!(d);
      if (r === VERSION_GONE) {
        // This version was garbage-collected (we missed two switches): move to the live one.
        if (!this.#onGone) throw new TenantStoreUnavailableError(`config version ${this.version} is gone`);
        return await this.#onGone();
      }
      t = r;
    } catch (err) {
      // Ranges and prefixes were already checked (#ownerSync): only "is it an exact number?"
      // is left, and without Redis that cannot be answered either way.
      if (err instanceof TenantStoreUnavailableError) throw err;
      throw new TenantStoreUnavailableError(`cannot look up ${e164}: tenant store unreachable`, { cause: err });
    }
    this.#remember(d, t);
    return t;
  }

  /**
   * Synchronous lookup when the answer needs no Redis round trip: a Tenant, null for "no tenant",
   * or undefined when only byNumber() can tell.
   */
  byNumberSync(e164: string): Tenant | null | undefined {
    const m = this.lookupNumberSync(e164);
    return m ? m.tenant : m;
  }

  async byNumber(e164: string): Promise<Tenant | undefined> {
    return (await this.lookupNumber(e164))?.tenant;
  }

  /** Like byNumberSync, with the ring group of the number: a match, null for "no tenant", undefined when only lookupNumber() can tell. */
  lookupNumberSync(e164: string): NumberMatch | null | undefined {
    const d = toDigits(e164);
    if (d === undefined) return null;
    const t = this.#ownerSync(d);
    return t === undefined ? undefined : (this.index.matchAt(t, d) ?? null);
  }

  /** Called number → its tenant and, when the number is a ring-group DID, the group (one lookup). */
  async lookupNumber(e164: string): Promise<NumberMatch | undefined> {
    const d = toDigits(e164);
    if (d === undefined) return undefined;
    let t = this.#ownerSync(d);
    if (t === undefined) {
      const r = await this.#ownerRemote(d, e164);
      if (typeof r !== 'number') return r.lookupNumber(e164);
      t = r;
    }
    return this.index.matchAt(t, d);
  }

  byFqdn(fqdn: string): Tenant | undefined {
    return this.index.byFqdn(fqdn);
  }

  carrierBySourceIp(ip: string): Carrier | undefined {
    return this.index.carrierBySourceIp(ip);
  }

  carrier(name: string): Carrier | undefined {
    return this.index.carrier(name);
  }

  get(id: string): Tenant | undefined {
    return this.index.get(id);
  }

  list(): readonly Tenant[] {
    return this.index.tenants;
  }
}
