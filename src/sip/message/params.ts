/**
 * Generic parameters (RFC 3261 §25.1 `generic-param`): `;name[=value]`. Names compare
 * case-insensitively, so keys are stored lower-case; values are kept as written.
 */
export type Params = Map<string, string | null>;

/** Parses `;a=1;b;c="x;y"` (leading `;` optional). Quoted strings may contain `;`. */
export function parseParams(s: string, sep = ';'): Params {
  const out: Params = new Map();
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && (s[i] === sep || s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && s[j] !== '=' && s[j] !== sep) j++;
    const name = s.slice(i, j).trim().toLowerCase();
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
        v = s.slice(k, j).trim();
      }
      if (name) out.set(name, v);
    } else if (name) {
      out.set(name, null);
    }
    i = j;
  }
  return out;
}

export function formatParams(p: Params, sep = ';'): string {
  let s = '';
  for (const [k, v] of p) s += v === null ? `${sep}${k}` : `${sep}${k}=${v}`;
  return s;
}
