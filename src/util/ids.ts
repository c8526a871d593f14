import { randomBytes, randomUUID } from 'node:crypto';

// A pool of random bytes refilled in bulk: ids are made on every SIP message, and one
// randomBytes() call per id is measurably slower.
let pool = Buffer.alloc(0);
let off = 0;
function rand(n: number): Buffer {
  if (off + n > pool.length) {
    pool = randomBytes(4096);
    off = 0;
  }
  const b = pool.subarray(off, off + n);
  off += n;
  return b;
}

/** RFC 3261 §8.1.1.7: branch starts with the magic cookie; 96 random bits. */
export function newBranch(): string {
  return 'z9hG4bK' + rand(12).toString('base64url');
}

/** RFC 3261 §19.3: a tag has at least 32 bits of randomness. */
export function newTag(): string {
  return rand(8).toString('hex');
}

/** RFC 3261 §8.1.1.4: Call-ID, globally unique. */
export function newCallId(): string {
  return rand(16).toString('hex');
}

let uuidPrefix = randomUUID().slice(0, 24);
let uuidSeq = 0;

/**
 * An id in the 8-4-4-4-12 form of a UUID (drachtio's message and transaction ids), unique for
 * the process's lifetime: a random 80-bit prefix drawn at start and a 48-bit counter. One is
 * made for every wire message, so this avoids a random draw per id. Not a secret.
 */
export function newUuid(): string {
  if (uuidSeq >= 0xffff_ffff_ffff) {
    uuidPrefix = randomUUID().slice(0, 24);
    uuidSeq = 0;
  }
  const hex = (++uuidSeq).toString(16);
  return uuidPrefix + '000000000000'.slice(hex.length) + hex;
}
