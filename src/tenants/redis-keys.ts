/**
 * Redis key schema (also in docs/tenants.md "Key schema"). `ns` defaults to `tg`.
 *
 *   {ns}:ptr                hash  current → live version, previous → rollback target,
 *                                 epoch → random id set with the first version of a dataset
 *   {ns}:seq                int   last version number handed out (INCR)
 *   {ns}:events             pub/sub channel: JSON {action, version, previous} after a switch
 *   {ns}:{v<N>}:meta        hash  version, createdAt, hash, settings, ranges, prefixes, counts;
 *                                 written last, so its presence marks a complete version
 *   {ns}:{v<N>}:t           hash  tenant index → tenant JSON (no DIDs)
 *   {ns}:{v<N>}:td          hash  tenant index → the tenant's DID entries, space separated
 *   {ns}:{v<N>}:c           hash  carrier index → carrier JSON
 *   {ns}:{v<N>}:rg          hash  ring-group DID (+E164) → JSON {t: tenant index, did, strategy,
 *                                 memberTimeoutSec, members, fallback?}; absent = no ring groups
 *   {ns}:{v<N>}:n:<head>    hash  exact numbers: field = last two digits, value = tenant index
 *   {ns}:{v<N>}:nb          set   every <head> used above (for preloading and cleanup)
 *
 * Every key of a version shares the hash tag `{v<N>}`: in Redis Cluster they live in one slot,
 * so a version can be written and read with pipelines. Version keys are never modified after
 * the pointer names them; a switch is one atomic script on `{ns}:ptr`.
 */
import type { RingGroup } from './types.js';

export class KeySchema {
  readonly ptr: string;
  readonly seq: string;
  readonly channel: string;
  constructor(readonly ns = 'tg') {
    this.ptr = `${ns}:ptr`;
    this.seq = `${ns}:seq`;
    this.channel = `${ns}:events`;
  }
  version(v: number): string {
    return `${this.ns}:{v${v}}`;
  }
  meta(v: number): string {
    return `${this.version(v)}:meta`;
  }
  tenants(v: number): string {
    return `${this.version(v)}:t`;
  }
  dids(v: number): string {
    return `${this.version(v)}:td`;
  }
  carriers(v: number): string {
    return `${this.version(v)}:c`;
  }
  ringGroups(v: number): string {
    return `${this.version(v)}:rg`;
  }
  bucket(v: number, head: string): string {
    return `${this.version(v)}:n:${head}`;
  }
  buckets(v: number): string {
    return `${this.version(v)}:nb`;
  }
  /** SCAN pattern matching every version key. */
  get versionPattern(): string {
    return `${this.ns}:{v*}:*`;
  }
  /** Version number of a version key, or undefined. */
  versionOf(key: string): number | undefined {
    const prefix = `${this.ns}:{v`;
    if (!key.startsWith(prefix)) return undefined;
    const end = key.indexOf('}', prefix.length);
    const n = Number(key.slice(prefix.length, end));
    return end > 0 && Number.isSafeInteger(n) ? n : undefined;
  }
}

/**
 * Exact numbers are bucketed by all digits but the last two (≤ 100 fields per hash), so Redis
 * keeps each bucket as a compact listpack instead of one big hashtable (about 5-10x less memory
 * for dense DID blocks). The pair (head, tail) maps back to exactly one number.
 */
export function splitNumber(digits: string): [head: string, tail: string] {
  return digits.length <= 2 ? ['', digits] : [digits.slice(0, -2), digits.slice(-2)];
}

export interface VersionMeta {
  version: number;
  createdAt: string;
  hash: string;
  settings: string;
  ranges: string;
  prefixes: string;
  exactCount: string;
  ringGroupCount: string;
  tenantCount: string;
  carrierCount: string;
}

export function encodeRanges(r: { first: string; last: string; t: number }[]): string {
  return r.map((x) => `${x.first}-${x.last}:${x.t}`).join(',');
}
export function decodeRanges(s: string): { first: string; last: string; t: number }[] {
  if (!s) return [];
  return s.split(',').map((item) => {
    const [span, t] = item.split(':') as [string, string];
    const [first, last] = span.split('-') as [string, string];
    return { first, last, t: Number(t) };
  });
}
export function encodePrefixes(p: { digits: string; t: number }[]): string {
  return p.map((x) => `${x.digits}:${x.t}`).join(',');
}
export function decodePrefixes(s: string): { digits: string; t: number }[] {
  if (!s) return [];
  return s.split(',').map((item) => {
    const [digits, t] = item.split(':') as [string, string];
    return { digits, t: Number(t) };
  });
}

/** One `rg` hash value: the ring group and the index of its tenant in the version's `t` hash. */
export interface StoredRingGroup extends RingGroup {
  t: number;
}

export function encodeRingGroup(t: number, g: RingGroup): string {
  const stored: StoredRingGroup = { t, ...g };
  return JSON.stringify(stored);
}

/** Parses an `rg` value back into the canonical field order (did, strategy, memberTimeoutSec, members, fallback). */
export function decodeRingGroup(json: string): { t: number; group: RingGroup } {
  const x = JSON.parse(json) as StoredRingGroup;
  return {
    t: x.t,
    group: {
      did: x.did,
      strategy: x.strategy,
      memberTimeoutSec: x.memberTimeoutSec,
      members: x.members,
      ...(x.fallback !== undefined ? { fallback: x.fallback } : {}),
    },
  };
}

/** Every ring group of a version from its `rg` hash, sorted by tenant and DID (the validated order). */
export function decodeRingGroups(h: Record<string, string>): { t: number; group: RingGroup }[] {
  return Object.values(h)
    .map(decodeRingGroup)
    .sort((a, b) => a.t - b.t || (a.group.did < b.group.did ? -1 : a.group.did > b.group.did ? 1 : 0));
}
