/**
 * E.164 numbers and DID entries.
 *
 * ITU-T E.164 §6.1: an international number is at most 15 digits, country code first (country
 * codes never start with 0). We write it `+` followed by the digits. Digits are kept as strings
 * for maps and as JS numbers for range arithmetic: 15 digits < 2^53, so the conversion is exact.
 */

export const E164_MAX_DIGITS = 15;
const E164_RE = /^\+[1-9][0-9]{0,14}$/;
const DIGITS_RE = /^[1-9][0-9]{0,14}$/;

export type DidEntry =
  | { kind: 'exact'; digits: string }
  | { kind: 'range'; first: string; last: string }
  | { kind: 'prefix'; digits: string };

export function isE164(s: string): boolean {
  return E164_RE.test(s);
}

/**
 * Parses a number as it arrives on the call path (`+14255550100` or bare digits) into its digit
 * string, or undefined when it cannot be an E.164 number.
 */
export function toDigits(e164: string): string | undefined {
  const d = e164.charCodeAt(0) === 43 /* + */ ? e164.slice(1) : e164;
  return DIGITS_RE.test(d) ? d : undefined;
}

export type DidParse = { ok: true; entry: DidEntry } | { ok: false; bad: string; kind: 'number' | 'prefix' };

/** Parses one `dids:` item; on failure names the malformed part. */
export function parseDid(s: string): DidParse {
  if (s.endsWith('*')) {
    const p = s.slice(0, -1);
    return isE164(p) ? { ok: true, entry: { kind: 'prefix', digits: p.slice(1) } } : { ok: false, bad: s, kind: 'prefix' };
  }
  const dash = s.indexOf('-+');
  if (dash > 0) {
    const a = s.slice(0, dash);
    const b = s.slice(dash + 1);
    if (!isE164(a)) return { ok: false, bad: a, kind: 'number' };
    if (!isE164(b)) return { ok: false, bad: b, kind: 'number' };
    return { ok: true, entry: { kind: 'range', first: a.slice(1), last: b.slice(1) } };
  }
  return isE164(s) ? { ok: true, entry: { kind: 'exact', digits: s.slice(1) } } : { ok: false, bad: s, kind: 'number' };
}

export function formatDid(e: DidEntry): string {
  switch (e.kind) {
    case 'exact':
      return `+${e.digits}`;
    case 'range':
      return `+${e.first}-+${e.last}`;
    case 'prefix':
      return `+${e.digits}*`;
  }
}

/** Number of numbers an entry covers (prefixes: undefined, they are open-ended). */
export function didCount(e: DidEntry): number | undefined {
  if (e.kind === 'exact') return 1;
  if (e.kind === 'range') return Number(e.last) - Number(e.first) + 1;
  return undefined;
}

/** 10^n for n ≤ 15, exact in doubles. */
export const POW10: readonly number[] = Array.from({ length: E164_MAX_DIGITS + 1 }, (_, i) => 10 ** i);
