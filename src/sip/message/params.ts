import { SipError } from './errors.js';
import { isTokenChar, isWsp, sliceLws } from './lex.js';

/**
 * Generic parameters (RFC 3261 §25.1 `generic-param`): `;name[=value]`. Names compare
 * case-insensitively, so keys are stored lower-case; values are kept as written (quoted
 * strings keep their quotes).
 */
export type Params = Map<string, string | null>;

/**
 * Parses `;a=1;b;c="x;y"` (leading `;` optional). Quoted strings may contain `;`.
 * Lenient: empty parameters are skipped and odd characters are kept. Pass `strict` (or use
 * parseParamsStrict) for header parameters, where RFC 4475 §3.1.2.1 wants `;;` rejected.
 */
export function parseParams(s: string, sep = ';', strict = false): Params {
  if (strict) return parseParamsStrict(s, sep);
  const out: Params = new Map();
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && (s[i] === sep || s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && s[j] !== '=' && s[j] !== sep) j++;
    const name = sliceLws(s, i, j).toLowerCase();
    if (j < n && s[j] === '=') {
      j++;
      while (j < n && (s[j] === ' ' || s[j] === '\t')) j++;
      let v: string;
      if (s[j] === '"') {
        let k = j + 1;
        while (k < n && s[k] !== '"') k += s[k] === '\\' ? 2 : 1;
        v = s.slice(j, Math.min(k + 1, n));
        j = k + 1;
        while (j < n && s[j] !== sep) j++;
      } else {
        const k = j;
        while (j < n && s[j] !== sep) j++;
        v = sliceLws(s, k, j);
      }
      if (name) out.set(name, v);
    } else if (name) {
      out.set(name, null);
    }
    i = j;
  }
  return out;
}

/**
 * RFC 3261 §25.1: `*( SEMI generic-param )`, `generic-param = token [ EQUAL gen-value ]`,
 * `gen-value = token / host / quoted-string`, with SWS allowed around SEMI and EQUAL.
 * Throws SipError 400 on an empty parameter, a non-token name, an unterminated quoted string,
 * whitespace inside a value, or anything before the first `;`.
 */
export function parseParamsStrict(s: string, sep = ';'): Params {
  const out: Params = new Map();
  const n = s.length;
  let i = skipWs(s, 0);
  while (i < n) {
    if (s[i] !== sep) throw bad(`expected '${sep}' before parameter`, s);
    i = skipWs(s, i + 1);
    const ns = i;
    while (i < n && isTokenChar(s.charCodeAt(i))) i++;
    if (i === ns) throw bad('empty or invalid parameter name', s);
    const name = s.slice(ns, i).toLowerCase();
    i = skipWs(s, i);
    let value: string | null = null;
    if (i < n && s[i] === '=') {
      i = skipWs(s, i + 1);
      if (s[i] === '"') {
        const close = quotedEnd(s, i);
        if (close < 0) throw bad('unterminated quoted parameter value', s);
        value = s.slice(i, close + 1);
        i = close + 1;
      } else {
        const vs = i;
        while (i < n && s[i] !== sep && !isWsp(s.charCodeAt(i)) && s[i] !== '"') i++;
        if (i === vs) throw bad(`empty value for parameter ${name}`, s);
        value = s.slice(vs, i);
      }
      i = skipWs(s, i);
    }
    out.set(name, value);
  }
  return out;
}

/** Index of the DQUOTE closing the quoted-string that opens at `open`, honouring quoted-pairs; -1 if unterminated. */
export function quotedEnd(s: string, open: number): number {
  const n = s.length;
  for (let k = open + 1; k < n; k++) {
    const c = s.charCodeAt(k);
    if (c === 92) k++;
    else if (c === 34) return k;
  }
  return -1;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && isWsp(s.charCodeAt(i))) i++;
  return i;
}

function bad(why: string, s: string): SipError {
  return new SipError('SIP_ERR_BAD_HEADER', `${why}: ${s.slice(0, 80)}`);
}

export function formatParams(p: Params, sep = ';'): string {
  let s = '';
  for (const [k, v] of p) s += v === null ? `${sep}${k}` : `${sep}${k}=${v}`;
  return s;
}
