/**
 * Audio checks for tests: G.711 decoding (written from ITU-T G.711, independently of the
 * encoder under test in src/media/ringback-tone.ts), Goertzel power at one frequency, and
 * matching received 20 ms frames against a reference tone period.
 */

/** G.711 µ-law byte → 16-bit linear. */
export function ulawDecode(u: number): number {
  const v = ~u & 0xff;
  const mag = ((((v & 0x0f) << 3) + 0x84) << ((v >> 4) & 0x07)) - 0x84;
  return v & 0x80 ? -mag : mag;
}

/** G.711 A-law byte → 16-bit linear (even bits inverted on the wire; sign bit set = positive). */
export function alawDecode(a: number): number {
  const v = a ^ 0x55;
  const seg = (v >> 4) & 0x07;
  let t = ((v & 0x0f) << 4) + 8;
  if (seg > 0) t = (t + 0x100) << (seg - 1);
  return v & 0x80 ? t : -t;
}

/** Decodes a G.711 payload by RTP payload type (0 = PCMU, 8 = PCMA). */
export function decodeG711(payloadType: number, payload: Buffer): Float64Array {
  if (payloadType !== 0 && payloadType !== 8) throw new Error(`not G.711: payload type ${payloadType}`);
  const out = new Float64Array(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payloadType === 0 ? ulawDecode(payload[i]!) : alawDecode(payload[i]!);
  return out;
}

export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, x.length));
}

/** Power of `x` at frequency `f` (Goertzel), normalised so a sine of amplitude A gives ≈ A²/4. */
export function goertzel(x: ArrayLike<number>, f: number, rate = 8000): number {
  const w = (2 * Math.PI * f) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i]! + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const p = s1 * s1 + s2 * s2 - c * s1 * s2;
  return p / (x.length * x.length);
}

/** Normalised cross-correlation of two equally long frames (1 = same shape). */
export function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/**
 * The frame of `reference` (a tone period cut in `frame`-sample frames) that `x` matches best:
 * its index and correlation.
 */
export function bestFrame(x: ArrayLike<number>, reference: ArrayLike<number>, frame = 160): { index: number; score: number } {
  let best = { index: -1, score: -1 };
  for (let k = 0; (k + 1) * frame <= reference.length; k++) {
    const score = correlation(x, Array.prototype.slice.call(reference, k * frame, (k + 1) * frame) as number[]);
    if (score > best.score) best = { index: k, score };
  }
  return best;
}

/** Lengths of the alternating runs of `flags`, starting with the value of flags[0]. */
export function runs(flags: boolean[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < flags.length; i++) {
    if (i === 0 || flags[i] !== flags[i - 1]) out.push(1);
    else out[out.length - 1]!++;
  }
  return out;
}
