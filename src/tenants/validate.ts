/**
 * Semantic rules over the whole config set (the schema has already checked each document's
 * shape; values that failed it are skipped here, not reported twice).
 *
 * Rules (docs/tenants.md "Validation"):
 *  - settings defined exactly once, base domain well formed;
 *  - tenant ids and carrier names unique;
 *  - tenant FQDN: lower case, exactly one label (≤ 48 chars, LDH) under the base domain, unique
 *    (teams-direct-routing.md §8.2, §8.3, §8.9);
 *  - DIDs: ranges well formed; no number may be covered by DIDs of two different tenants,
 *    whatever the kinds (exact, range, prefix);
 *  - ring groups: each names a number the tenant owns (exact, or inside one of its ranges or
 *    prefixes), once per tenant; the fallback is not also a member;
 *  - trunks and inboundCarriers reference defined carriers;
 *  - carrier sources are IPs or CIDR *network* addresses (RFC 4632 §3.1), each on one carrier;
 *  - normalization rules compile.
 */
import { ProblemList, type PathSeg, type SourceDoc } from './problems.js';
import { msg } from './messages.js';
import { parseCidr } from './ip.js';
import { formatDid, isE164, parseDid, POW10, type DidEntry } from './numbers.js';
import type {
  Carrier,
  CarrierTarget,
  NormalizationRules,
  RingGroup,
  TenantConfig,
  TenantConfigSet,
  TenantLimits,
  TenantSettings,
  TeamsOptions,
  TrunkRef,
} from './types.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

interface Item {
  src: SourceDoc;
  path: PathSeg[];
  value: Obj;
}

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const DOMAIN_RE = /^(?=.{1,63}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
export const MAX_TENANT_LABEL = 48;

function collect(docs: SourceDoc[], key: 'carriers' | 'tenants'): Item[] {
  const out: Item[] = [];
  for (const src of docs) {
    if (!isObj(src.value)) continue;
    arr(src.value[key]).forEach((v, i) => {
      if (isObj(v)) out.push({ src, path: [key, i], value: v });
    });
  }
  return out;
}

function checkRules(problems: ProblemList, it: Item): NormalizationRules {
  const n = isObj(it.value.normalization) ? it.value.normalization : {};
  const out: NormalizationRules = { inbound: [], outbound: [] };
  for (const dir of ['inbound', 'outbound'] as const) {
    arr(n[dir]).forEach((r, i) => {
      if (!isObj(r)) return;
      const match = str(r.match);
      const replace = str(r.replace);
      if (match === undefined || replace === undefined) return;
      try {
        new RegExp(match);
      } catch (e) {
        const reason = (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '');
        problems.add(it.src, [...it.path, 'normalization', dir, i, 'match'], 'regex', msg.badRegex(match, reason));
        return;
      }
      out[dir].push({ match, replace, ...(str(r.description) !== undefined ? { description: str(r.description)! } : {}) });
    });
  }
  return out;
}

/** Checks a tenant FQDN against the base domain; returns true when it is acceptable. */
function checkFqdn(problems: ProblemList, it: Item, fqdn: string, base: string | undefined): boolean {
  const at = [...it.path, 'fqdn'];
  if (fqdn !== fqdn.toLowerCase()) {
    problems.add(it.src, at, 'fqdn-case', msg.fqdnCase(fqdn));
    return false;
  }
  if (base === undefined) return true; // no valid base domain: reported once elsewhere
  if (fqdn === base) {
    problems.add(it.src, at, 'fqdn-outside-base', msg.fqdnIsBase(fqdn));
    return false;
  }
  if (!fqdn.endsWith(`.${base}`)) {
    problems.add(it.src, at, 'fqdn-outside-base', msg.fqdnOutside(fqdn, base));
    return false;
  }
  const label = fqdn.slice(0, -(base.length + 1));
  const labels = label.split('.').length;
  if (labels > 1) {
    problems.add(it.src, at, 'fqdn-labels', msg.fqdnLabels(fqdn, base, labels));
    return false;
  }
  // teams-direct-routing.md §8.9: Entra ID rejects domain names over 48 characters.
  if (label.length > MAX_TENANT_LABEL) {
    problems.add(it.src, at, 'fqdn-label-length', msg.fqdnLabelLength(label, label.length));
    return false;
  }
  // §8.9: letters, digits and hyphens; no wildcards. RFC 1035 §2.3.1: no leading/trailing hyphen.
  if (!LABEL_RE.test(label)) {
    problems.add(it.src, at, 'fqdn-label-chars', msg.fqdnLabelChars(label));
    return false;
  }
  return true;
}

/** Does one of the tenant's DID entries cover this exact number (digits)? */
function ownsNumber(entries: readonly DidEntry[], exact: ReadonlySet<string>, digits: string): boolean {
  if (exact.has(digits)) return true;
  for (const e of entries) {
    if (e.kind === 'prefix' && digits.startsWith(e.digits)) return true;
    if (e.kind === 'range' && e.first.length === digits.length && Number(e.first) <= Number(digits) && Number(digits) <= Number(e.last)) return true;
  }
  return false;
}

/** `+E164` covered by one of `entries`. */
function owns(entries: readonly DidEntry[], e164: string): boolean {
  const exact = new Set(entries.flatMap((e) => (e.kind === 'exact' ? [e.digits] : [])));
  return ownsNumber(entries.filter((e) => e.kind !== 'exact'), exact, e164.slice(1));
}

/**
 * A tenant's ring groups. `entries` are its parsed DIDs, or undefined when one of them is invalid
 * (already reported; ownership is then not checked, so one mistake is not reported twice).
 */
function checkRingGroups(problems: ProblemList, it: Item, tenantId: string, entries: DidEntry[] | undefined): RingGroup[] {
  const list = arr(it.value.ringGroups);
  if (list.length === 0) return [];
  const seen = new Map<string, PathSeg[]>();
  const out: RingGroup[] = [];
  list.forEach((g, k) => {
    if (!isObj(g)) return;
    const at = [...it.path, 'ringGroups', k];
    const did = str(g.did);
    if (did !== undefined && isE164(did)) {
      const prev = seen.get(did);
      if (prev) problems.add(it.src, [...at, 'did'], 'ring-group-duplicate', msg.ringGroupDuplicate(did, ProblemList.where(it.src, prev)));
      else {
        seen.set(did, at);
        if (entries && !owns(entries, did)) problems.add(it.src, [...at, 'did'], 'ring-group-did', msg.ringGroupDid(did, tenantId));
      }
    }
    const members = arr(g.members).filter((m): m is string => typeof m === 'string');
    const fallback = str(g.fallback);
    if (fallback !== undefined && members.includes(fallback)) problems.add(it.src, [...at, 'fallback'], 'ring-group-fallback', msg.ringGroupFallback(fallback));
    out.push({
      did: did ?? '',
      strategy: g.strategy === 'sequential' ? 'sequential' : 'simultaneous',
      memberTimeoutSec: typeof g.memberTimeoutSec === 'number' ? g.memberTimeoutSec : 0,
      members,
      ...(fallback !== undefined ? { fallback } : {}),
    });
  });
  // One canonical order (like trunks by priority), so a config read back from Redis compares equal.
  return out.sort((a, b) => (a.did < b.did ? -1 : a.did > b.did ? 1 : 0));
}

interface NumRef {
  t: number; // tenant index in `tenants`
  j: number; // index in its dids list
}
interface RangeRef extends NumRef {
  first: number;
  last: number;
}

/** Overlap detection across tenants (see the module comment). */
function checkOverlaps(problems: ProblemList, tenants: Item[], parsed: (DidEntry | undefined)[][]): void {
  const ids = tenants.map((t) => String(t.value.id));
  const didText = (r: NumRef): string => String(arr(tenants[r.t]!.value.dids)[r.j]);
  const where = (r: NumRef): string => ProblemList.where(tenants[r.t]!.src, [...tenants[r.t]!.path, 'dids', r.j]);
  const report = (at: NumRef, other: NumRef): void => {
    problems.add(
      tenants[at.t]!.src,
      [...tenants[at.t]!.path, 'dids', at.j],
      'did-overlap',
      msg.didOverlap(didText(at), didText(other), ids[other.t]!, where(other)),
    );
  };

  const exact = new Map<string, NumRef>();
  const prefixes = new Map<string, NumRef>();
  const ranges = new Map<number, RangeRef[]>(); // by digit count
  const exactList: { digits: string; ref: NumRef }[] = [];
  parsed.forEach((list, t) =>
    list.forEach((e, j) => {
      if (!e) return;
      const ref = { t, j };
      if (e.kind === 'exact') {
        const prev = exact.get(e.digits);
        if (prev && prev.t !== t) report(ref, prev);
        else if (!prev) exact.set(e.digits, ref);
        exactList.push({ digits: e.digits, ref });
      } else if (e.kind === 'prefix') {
        const prev = prefixes.get(e.digits);
        if (prev && prev.t !== t) report(ref, prev);
        else if (!prev) prefixes.set(e.digits, ref);
      } else {
        let l = ranges.get(e.first.length);
        if (!l) ranges.set(e.first.length, (l = []));
        l.push({ ...ref, first: Number(e.first), last: Number(e.last) });
      }
    }),
  );

  // Nested prefixes of different tenants.
  for (const [digits, ref] of prefixes) {
    for (let k = 1; k < digits.length; k++) {
      const outer = prefixes.get(digits.slice(0, k));
      if (outer && outer.t !== ref.t) {
        report(ref, outer);
        break;
      }
    }
  }

  // Ranges against ranges: sweep in start order, remembering the one reaching furthest.
  const prefixMax = new Map<number, number[]>();
  for (const [len, list] of ranges) {
    list.sort((a, b) => a.first - b.first || a.last - b.last);
    let reach: RangeRef | undefined;
    const pm: number[] = [];
    for (const r of list) {
      if (reach && r.first <= reach.last && reach.t !== r.t) report(r, reach);
      if (!reach || r.last > reach.last) reach = r;
      pm.push(reach.last);
    }
    prefixMax.set(len, pm);
  }

  // Exact numbers inside another tenant's range.
  for (const { digits, ref } of exactList) {
    const list = ranges.get(digits.length);
    if (!list) continue;
    const n = Number(digits);
    const pm = prefixMax.get(digits.length)!;
    let lo = 0;
    let hi = list.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.first <= n) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let i = idx; i >= 0 && pm[i]! >= n; i--) {
      const r = list[i]!;
      if (r.last >= n && r.t !== ref.t) {
        report(ref, r);
        break;
      }
    }
  }

  // Exact numbers and ranges under another tenant's prefix.
  if (prefixes.size > 0) {
    const byLen = new Map<number, { v: number; ref: NumRef }[]>();
    for (const [digits, ref] of prefixes) {
      let l = byLen.get(digits.length);
      if (!l) byLen.set(digits.length, (l = []));
      l.push({ v: Number(digits), ref });
    }
    for (const l of byLen.values()) l.sort((a, b) => a.v - b.v);
    const probe = (ref: NumRef, len: number, a: number, b: number): void => {
      for (const [k, l] of byLen) {
        if (k > len) continue;
        const lo = Math.floor(a / POW10[len - k]!);
        const hi = Math.floor(b / POW10[len - k]!);
        let x = 0;
        let y = l.length;
        while (x < y) {
          const mid = (x + y) >> 1;
          if (l[mid]!.v < lo) x = mid + 1;
          else y = mid;
        }
        for (let i = x; i < l.length && l[i]!.v <= hi; i++) {
          if (l[i]!.ref.t !== ref.t) {
            report(ref, l[i]!.ref);
            return;
          }
        }
      }
    };
    for (const { digits, ref } of exactList) probe(ref, digits.length, Number(digits), Number(digits));
    for (const [len, list] of ranges) for (const r of list) probe(r, len, r.first, r.last);
  }
}

/** Runs every semantic rule; returns the normalized set (only meaningful when no problem was added). */
export function validateSemantics(docs: SourceDoc[], problems: ProblemList): TenantConfigSet | undefined {
  // --- settings ---------------------------------------------------------------------------
  let settings: TenantSettings | undefined;
  let settingsAt: { src: SourceDoc; path: PathSeg[] } | undefined;
  let base: string | undefined;
  for (const src of docs) {
    if (!isObj(src.value) || !isObj(src.value.settings)) continue;
    if (settingsAt) {
      problems.add(src, ['settings'], 'settings-duplicate', msg.settingsTwice(ProblemList.where(settingsAt.src, settingsAt.path)));
      continue;
    }
    settingsAt = { src, path: ['settings'] };
    const b = str(src.value.settings.carrierBaseDomain);
    if (b === undefined) continue;
    if (!DOMAIN_RE.test(b)) problems.add(src, ['settings', 'carrierBaseDomain'], 'base-domain', msg.baseDomain(b));
    else base = b;
    settings = { carrierBaseDomain: b };
  }
  if (!settingsAt) problems.add(undefined, [], 'settings-missing', msg.noSettings());

  // --- carriers ---------------------------------------------------------------------------
  const carrierItems = collect(docs, 'carriers');
  const carrierAt = new Map<string, Item>();
  const sourceOwner = new Map<string, { carrier: string; src: SourceDoc; path: PathSeg[] }>();
  const carriers: Carrier[] = [];
  for (const it of carrierItems) {
    const name = str(it.value.name);
    if (name !== undefined) {
      const prev = carrierAt.get(name);
      if (prev) problems.add(it.src, [...it.path, 'name'], 'carrier-duplicate', msg.duplicateCarrier(name, ProblemList.where(prev.src, prev.path)));
      else carrierAt.set(name, it);
    }
    const sources: string[] = [];
    arr(it.value.sources).forEach((s, i) => {
      if (typeof s !== 'string') return;
      const at = [...it.path, 'sources', i];
      const c = parseCidr(s);
      if (!c) return problems.add(it.src, at, 'address', msg.badAddress(s));
      // RFC 4632 §3.1: the prefix's address is the network: no bits set past the length.
      if (c.hostBitsSet) return problems.add(it.src, at, 'cidr-not-network', msg.cidrNotNetwork(s, c.network));
      const prev = sourceOwner.get(c.network);
      if (prev && prev.carrier !== name) {
        problems.add(it.src, at, 'source-duplicate', msg.sourceDuplicate(s, prev.carrier, ProblemList.where(prev.src, prev.path)));
      } else if (!prev) sourceOwner.set(c.network, { carrier: name ?? '', src: it.src, path: at });
      sources.push(s);
    });
    const targets: CarrierTarget[] = arr(it.value.targets)
      .filter(isObj)
      .map((t) => {
        const transport = (str(t.transport) ?? 'udp') as CarrierTarget['transport'];
        return {
          host: String(t.host),
          port: typeof t.port === 'number' ? t.port : transport === 'tls' ? 5061 : 5060,
          transport,
          priority: typeof t.priority === 'number' ? t.priority : 10,
        };
      });
    const normalization = checkRules(problems, it);
    const auth = isObj(it.value.auth) ? it.value.auth : undefined;
    carriers.push({
      name: name ?? '',
      sources,
      targets: targets.sort((a, b) => a.priority - b.priority),
      ...(auth
        ? {
            auth: {
              username: String(auth.username),
              password: String(auth.password),
              ...(str(auth.realm) !== undefined ? { realm: str(auth.realm)! } : {}),
            },
          }
        : {}),
      normalization,
      limits: limitsOf(it.value.limits),
    });
  }

  // --- tenants ----------------------------------------------------------------------------
  const tenantItems = collect(docs, 'tenants');
  const tenantAt = new Map<string, Item>();
  const fqdnAt = new Map<string, Item>();
  const parsedDids: (DidEntry | undefined)[][] = [];
  const tenants: TenantConfig[] = [];
  for (const it of tenantItems) {
    const v = it.value;
    const id = str(v.id);
    if (id !== undefined) {
      const prev = tenantAt.get(id);
      if (prev) problems.add(it.src, [...it.path, 'id'], 'tenant-duplicate', msg.duplicateTenant(id, ProblemList.where(prev.src, prev.path)));
      else tenantAt.set(id, it);
    }
    const fqdn = str(v.fqdn);
    if (fqdn !== undefined && fqdn !== '' && checkFqdn(problems, it, fqdn, base)) {
      const prev = fqdnAt.get(fqdn);
      if (prev) {
        problems.add(it.src, [...it.path, 'fqdn'], 'fqdn-duplicate', msg.fqdnDuplicate(fqdn, String(prev.value.id), ProblemList.where(prev.src, [...prev.path, 'fqdn'])));
      } else fqdnAt.set(fqdn, it);
    }
    const trunks: TrunkRef[] = [];
    arr(v.trunks).forEach((t, i) => {
      if (!isObj(t) || typeof t.carrier !== 'string') return;
      if (!carrierAt.has(t.carrier)) problems.add(it.src, [...it.path, 'trunks', i, 'carrier'], 'carrier-unknown', msg.unknownCarrier(t.carrier));
      trunks.push({ carrier: t.carrier, priority: typeof t.priority === 'number' ? t.priority : 10 });
    });
    const inboundCarriers: string[] = [];
    arr(v.inboundCarriers).forEach((c, i) => {
      if (typeof c !== 'string') return;
      if (!carrierAt.has(c)) problems.add(it.src, [...it.path, 'inboundCarriers', i], 'carrier-unknown', msg.unknownCarrier(c));
      inboundCarriers.push(c);
    });
    const list: (DidEntry | undefined)[] = [];
    const dids: string[] = [];
    arr(v.dids).forEach((d, j) => {
      if (typeof d !== 'string') return list.push(undefined);
      const p = parseDid(d);
      if (!p.ok) return list.push(undefined); // reported by the schema pattern
      const e = p.entry;
      if (e.kind === 'range') {
        if (e.first.length !== e.last.length) {
          problems.add(it.src, [...it.path, 'dids', j], 'range-lengths', msg.rangeLengths(d));
          return list.push(undefined);
        }
        if (Number(e.first) > Number(e.last)) {
          problems.add(it.src, [...it.path, 'dids', j], 'range-empty', msg.rangeEmpty(d));
          return list.push(undefined);
        }
      }
      list.push(e);
      dids.push(formatDid(e));
    });
    parsedDids.push(list);
    const entries = list.includes(undefined) ? undefined : (list as DidEntry[]);
    const ringGroups = checkRingGroups(problems, it, id ?? '', entries);
    const normalization = checkRules(problems, it);
    const media = isObj(v.media) ? v.media : {};
    const teams = isObj(v.teams) ? v.teams : {};
    const screening = (str(teams.callerIdScreening) ?? 'off') as TeamsOptions['callerIdScreening'];
    const defaultCallerId = str(teams.defaultCallerId);
    if (screening === 'replace' && defaultCallerId === undefined) problems.add(it.src, [...it.path, 'teams', 'defaultCallerId'], 'caller-id-default', msg.callerIdDefaultMissing());
    if (defaultCallerId !== undefined && isE164(defaultCallerId) && entries && !owns(entries, defaultCallerId)) {
      problems.add(it.src, [...it.path, 'teams', 'defaultCallerId'], 'caller-id-default', msg.callerIdDefaultNotOwned(defaultCallerId, id ?? ''));
    }
    tenants.push({
      id: id ?? '',
      name: String(v.name),
      enabled: v.enabled !== false,
      fqdn: fqdn ?? '',
      dids,
      ...(ringGroups.length > 0 ? { ringGroups } : {}),
      ...(inboundCarriers.length > 0 ? { inboundCarriers: inboundCarriers.sort() } : {}),
      trunks: trunks.sort((a, b) => a.priority - b.priority),
      normalization,
      limits: limitsOf(v.limits),
      media: {
        codecs: arr(media.codecs).filter((c): c is string => typeof c === 'string'),
        transcoding: media.transcoding === true,
      },
      teams: {
        advertiseRefer: teams.advertiseRefer !== false,
        forwardPai: teams.forwardPai === true,
        historyInfoToDiversion: teams.historyInfoToDiversion !== false,
        callerIdScreening: screening,
        ...(defaultCallerId !== undefined ? { defaultCallerId } : {}),
      },
    });
  }
  checkOverlaps(problems, tenantItems, parsedDids);

  if (!settings) return undefined;
  return { settings, carriers, tenants };
}

/** `limits` (tenant or carrier), with the keys that are set. */
function limitsOf(v: unknown): TenantLimits {
  const l = isObj(v) ? v : {};
  return {
    ...(typeof l.maxConcurrentCalls === 'number' ? { maxConcurrentCalls: l.maxConcurrentCalls } : {}),
    ...(typeof l.cps === 'number' ? { cps: l.cps } : {}),
  };
}
