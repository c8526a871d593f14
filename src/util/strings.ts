/**
 * A copy of `s` that shares no memory with the text it was cut from.
 *
 * V8 represents a `slice()`/`substring()` of 13 or more characters as a view into its parent
 * string, so a short value kept in a long-lived object (a dialog's Call-ID, tags and URIs, cut
 * from a parsed message) keeps the whole message text alive for as long as the object lives:
 * for the length of a call, and through every garbage collection that copies or promotes it.
 * Concatenating forces a fresh flat string; the slice of it drops the added character.
 */
export function detached(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}
