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

export function newUuid(): string {
  return randomUUID();
}
