import type { NormalizationRule } from '../tenants/types.js';

/** Applies ordered rewrite rules; each rule whose pattern matches rewrites the current value. */
export function normalize(value: string, rules: readonly NormalizationRule[]): string {
  let v = value;
  for (const r of rules) {
    const re = new RegExp(r.match);
    if (re.test(v)) v = v.replace(re, r.replace);
  }
  return v;
}

/** Lower-case host of a URI or name-addr (`<sip:+1425…@host;user=phone>;tag=…`). */
export function uriHost(v: string): string {
  const lt = v.indexOf('<');
  const uri = lt >= 0 ? v.slice(lt + 1) : v;
  return uri.replace(/^sips?:/i, '').replace(/^[^@>]*@/, '').split(/[:;?>]/)[0]!.trim().toLowerCase();
}

/** User part of a SIP/tel URI (unescaped, visual separators removed), or undefined. */
export function userOf(uri: string | undefined): string | undefined {
  if (!uri) return undefined;
  const m = /^(?:sips?|tel):([^@;>?]+)/i.exec(uri.replace(/^.*<|>.*$/g, '').trim());
  if (!m) return undefined;
  let u = m[1]!;
  try {
    u = decodeURIComponent(u);
  } catch {
    /* keep as is */
  }
  return u.replace(/[\s().-]/g, '');
}

/**
 * A number as the user part of a SIP URI we send: RFC 3261 §25.1 allows unreserved and
 * user-unreserved characters there, everything else is %-escaped (a dialled `#`, which Teams
 * sends unescaped, §5.7, reaches a carrier as `%23`). The inverse of userOf()'s unescaping.
 */
export function uriUser(user: string): string {
  return user.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/gu, (c) => encodeURIComponent(c));
}

export const E164_RE = /^\+[1-9]\d{1,14}$/;

/** Best-effort E.164 of a dialled/calling string: already E.164, or digits with a leading +. */
export function asE164(s: string | undefined): string | undefined {
  if (!s) return undefined;
  if (E164_RE.test(s)) return s;
  return undefined;
}
