/**
 * IP addresses, CIDR networks and a longest-prefix-match table (IPv4 and IPv6).
 *
 * RFC 4632 §3.1: a prefix is written "address/length"; the address is the network, so the bits
 * past the prefix length are zero. RFC 4291 §2.2 for the IPv6 text forms (`::`, embedded IPv4).
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface ParsedCidr {
  family: Family;
  /** Network bits (IPv4 as a uint32 in a bigint too, for one code path). */
  addr: bigint;
  len: number;
  /** True when the address has bits set past the prefix length. */
  hostBitsSet: boolean;
  /** Canonical text of the network (`10.0.0.0/24`, `2001:db8::/32`). */
  network: string;
  /** The input carried no `/len`. */
  exact: boolean;
}

function v4ToBig(s: string): bigint {
  let v = 0;
  for (const part of s.split('.')) v = v * 256 + Number(part);
  return BigInt(v);
}

function v6ToBig(s: string): bigint {
  let text = s;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // Embedded IPv4 (RFC 4291 §2.2 form 3): rewrite the dotted quad as two hex groups.
    const n = Number(v4ToBig(tail));
    text = `${text.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const dbl = text.indexOf('::');
  let groups: string[];
  if (dbl < 0) groups = text.split(':');
  else {
    const head = text.slice(0, dbl);
    const rest = text.slice(dbl + 2);
    const h = head === '' ? [] : head.split(':');
    const r = rest === '' ? [] : rest.split(':');
    groups = [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  return v;
}

/** Parses an address (no prefix); IPv4-mapped IPv6 (`::ffff:a.b.c.d`) comes back as IPv4. */
export function parseIp(ip: string): { family: Family; addr: bigint } | undefined {
  const pct = ip.indexOf('%'); // RFC 4007 zone index: not part of the address
  const s = pct >= 0 ? ip.slice(0, pct) : ip;
  if (isIPv4(s)) return { family: 4, addr: v4ToBig(s) };
  if (!isIPv6(s)) return undefined;
  const v = v6ToBig(s);
  if (v >> 32n === 0xffffn) return { family: 4, addr: v & 0xffffffffn };
  return { family: 6, addr: v };
}

function bits(f: Family): number {
  return f === 4 ? 32 : 128;
}

export function formatIp(family: Family, addr: bigint): string {
  if (family === 4) {
    const n = Number(addr);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 §4.2.3: compress the longest run of two or more zero groups (the first if tied).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask(family: Family, len: number): bigint {
  const b = bits(family);
  return len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(b - len);
}

/** Parses `ip` or `ip/len`; undefined when the text is not an address or the length is out of range. */
export function parseCidr(s: string): ParsedCidr | undefined {
  const slash = s.indexOf('/');
  const ipText = slash >= 0 ? s.slice(0, slash) : s;
  if (ipText.includes('%')) return undefined;
  const fam: Family | 0 = isIPv4(ipText) ? 4 : isIPv6(ipText) ? 6 : 0;
  if (fam === 0) return undefined;
  const addr = fam === 4 ? v4ToBig(ipText) : v6ToBig(ipText);
  let len = bits(fam);
  if (slash >= 0) {
    const lt = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lt)) return undefined;
    len = Number(lt);
    if (len > bits(fam)) return undefined;
  }
  if (fam === 6 && len >= 96 && addr >> 32n === 0xffffn) {
    // IPv4-mapped (RFC 4291 §2.5.5.2): sockets report IPv4 peers this way on dual-stack
    // listeners, and lookups fold them to IPv4, so the table stores them as IPv4 too.
    return parseCidr(`${formatIp(4, addr & 0xffffffffn)}${slash >= 0 ? `/${len - 96}` : ''}`);
  }
  const m = mask(fam, len);
  const net = addr & m;
  return {
    family: fam,
    addr: net,
    len,
    hostBitsSet: net !== addr,
    network: `${formatIp(fam, net)}/${len}`,
    exact: slash < 0,
  };
}

/**
 * Longest-prefix match over a fixed set of networks. One Map per prefix length present, probed
 * from the longest length down; an exact address is a /32 (/128), so it is found first.
 * IPv4 keys are JS numbers (no bigint on the hot path); IPv6 keys are the network bits in hex.
 */
export class CidrTable<T> {
  readonly #v4: { len: number; map: Map<number, T> }[] = [];
  readonly #v6: { len: number; map: Map<string, T> }[] = [];

  constructor(entries: Iterable<{ cidr: ParsedCidr; value: T }>) {
    const v4 = new Map<number, Map<number, T>>();
    const v6 = new Map<number, Map<string, T>>();
    for (const { cidr, value } of entries) {
      if (cidr.family === 4) {
        let m = v4.get(cidr.len);
        if (!m) v4.set(cidr.len, (m = new Map()));
        const key = cidr.len === 0 ? 0 : Number(cidr.addr >> BigInt(32 - cidr.len));
        if (!m.has(key)) m.set(key, value);
      } else {
        let m = v6.get(cidr.len);
        if (!m) v6.set(cidr.len, (m = new Map()));
        const key = (cidr.addr >> BigInt(128 - cidr.len)).toString(16);
        if (!m.has(key)) m.set(key, value);
      }
    }
    for (const [len, map] of [...v4].sort((a, b) => b[0] - a[0])) this.#v4.push({ len, map });
    for (const [len, map] of [...v6].sort((a, b) => b[0] - a[0])) this.#v6.push({ len, map });
  }

  lookup(ip: string): T | undefined {
    if (isIPv4(ip)) {
      const p = ip.split('.');
      const n = ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
      return this.#lookup4(n);
    }
    const parsed = parseIp(ip);
    if (!parsed) return undefined;
    if (parsed.family === 4) return this.#lookup4(Number(parsed.addr));
    for (const { len, map } of this.#v6) {
      const hit = map.get((parsed.addr >> BigInt(128 - len)).toString(16));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  #lookup4(n: number): T | undefined {
    for (const { len, map } of this.#v4) {
      // len 32 → shift by 0; len 0 → every address maps to key 0 (a JS shift by 32 is a no-op).
      const hit = map.get(len === 0 ? 0 : Math.floor(n / 2 ** (32 - len)));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}
