/**
 * RFC 3261 §25.1 character classes and small lexical helpers shared by the message parsers.
 * Table lookups instead of regular expressions: these run on every header of every message.
 */

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
const TOKEN = new Uint8Array(128);
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;
for (const ch of "-.!%*_+`'~") TOKEN[ch.charCodeAt(0)] = 1;

export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** SP or HTAB (WSP). */
export function isWsp(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Strips SP/HTAB (and stray CR/LF) from both ends. Unlike String#trim it keeps Unicode
 * whitespace such as U+FEFF, which is ordinary TEXT-UTF8 content in SIP (RFC 4475 §3.1.1.2).
 */
export function trimLws(s: string): string {
  return sliceLws(s, 0, s.length);
}

/** `trimLws(s.slice(start, end))`, cutting the string once. */
export function sliceLws(s: string, start: number, end: number): string {
  let a = start;
  let b = end;
  while (a < b && isLws(s.charCodeAt(a))) a++;
  while (b > a && isLws(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** SP, HTAB, CR or LF. */
export function isLws(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** True when `s` contains SP, HTAB, CR or LF. */
export function hasLws(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isLws(s.charCodeAt(i))) return true;
  return false;
}

/** True when `s` contains a C0 control character (other than HTAB) or DEL. */
export function hasCtl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}

/** URI scheme prefix (RFC 3261 §25.1 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`) followed by ':'. */
export const SCHEME_PREFIX_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
