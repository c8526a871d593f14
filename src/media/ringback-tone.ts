/**
 * Audible ringing tone ("ringback") generated in code: one cadence period as a small WAV file
 * (G.711 µ-law, 8 kHz, mono) that rtpengine's media player loops toward a call party
 * (`play media` with `repeat-times`). Used when a transfer target rings with 180 and no SDP
 * (teams-direct-routing.md §6.6): the PSTN party's call was answered long ago, so nothing on
 * the carrier side plays ringing any more.
 *
 * Tone plans (frequencies, cadence as alternating on/off milliseconds starting with "on"):
 * - `us`: North American precise tone plan audible ringing, 440 + 480 Hz, 2 s on / 4 s off.
 * - `uk`: UK (BT) ringing tone, 400 + 450 Hz, 0.4 s on / 0.2 s off / 0.4 s on / 2 s off.
 * - `eu`: the CEPT/ETSI harmonised ringing tone (ETSI TR 101 041), 425 Hz, 1 s on / 4 s off,
 *   used by most of continental Europe.
 * Level: -19 dBm0 per frequency (the precise tone plan's audible-ringing level), for every plan.
 *
 * Why µ-law and not 16-bit PCM: a cadence period is 3-6 s, i.e. 24-48 kB at one byte per
 * sample, which still fits in one ng datagram (see RingbackPlayer); 16-bit PCM would not.
 */

export type RingbackCountry = 'us' | 'uk' | 'eu';

export interface TonePlan {
  /** Frequencies summed during "on" (Hz). */
  frequencies: readonly number[];
  /** Alternating on/off durations (ms), starting with on; an even count (ends with off). */
  cadenceMs: readonly number[];
  /** Level of each frequency (dBm0). */
  levelDbm0: number;
}

export const RINGBACK_PLANS: Readonly<Record<RingbackCountry, TonePlan>> = {
  us: { frequencies: [440, 480], cadenceMs: [2000, 4000], levelDbm0: -19 },
  uk: { frequencies: [400, 450], cadenceMs: [400, 200, 400, 2000], levelDbm0: -19 },
  eu: { frequencies: [425], cadenceMs: [1000, 4000], levelDbm0: -19 },
};

export const RINGBACK_SAMPLE_RATE = 8000;
/** WAVE_FORMAT_MULAW (RFC 2361 registers it as audio/wav codec 7). */
const WAVE_FORMAT_MULAW = 7;
/** Offset of the sample data in the WAV built here (RIFF + fmt(18) + fact + data headers). */
export const RINGBACK_WAV_DATA_OFFSET = 12 + 26 + 12 + 8;
/**
 * Edges of each burst rise and fall over this many ms (raised cosine), so the tone does not
 * click when it starts and stops.
 */
const RAMP_MS = 5;

/** Length of one cadence period in ms. */
export function cadencePeriodMs(plan: TonePlan): number {
  return plan.cadenceMs.reduce((a, b) => a + b, 0);
}

/** Throws TypeError when the plan cannot be rendered. */
export function validateTonePlan(plan: TonePlan): void {
  if (plan.frequencies.length === 0 || plan.frequencies.some((f) => !(f > 0 && f < RINGBACK_SAMPLE_RATE / 2))) {
    throw new TypeError('tone plan: frequencies must be between 0 and 4000 Hz');
  }
  if (plan.cadenceMs.length === 0 || plan.cadenceMs.length % 2 !== 0 || plan.cadenceMs.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new TypeError('tone plan: cadenceMs must be an even number of positive integer durations (on, off, ...)');
  }
  if (!(plan.levelDbm0 <= 0)) throw new TypeError('tone plan: levelDbm0 must be <= 0');
}

/**
 * ITU-T G.711 µ-law encoding of a 16-bit linear sample (the segment/bias algorithm of
 * G.711 §3.2 as applied to 16-bit input: bias 0x84, 8 segments, bits inverted on the wire).
 */
export function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** G.711 µ-law decoding to a 16-bit linear sample. */
export function ulawToLinear(u: number): number {
  const v = ~u & 0xff;
  const sign = v & 0x80;
  const exponent = (v >> 4) & 0x07;
  const mantissa = v & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return sign ? -magnitude : magnitude;
}

/**
 * Peak amplitude (16-bit scale) of a sine at `dbm0`. G.711 puts 0 dBm0 3.17 dB below the
 * full-scale sine (G.711 Table 5 / µ-law "digital milliwatt").
 */
export function dbm0ToAmplitude(dbm0: number): number {
  return 32767 * 10 ** ((dbm0 - 3.17) / 20);
}

/** One cadence period as 16-bit linear samples at 8 kHz. */
export function renderTonePeriod(plan: TonePlan): Int16Array {
  validateTonePlan(plan);
  const rate = RINGBACK_SAMPLE_RATE;
  const total = Math.round((cadencePeriodMs(plan) * rate) / 1000);
  const out = new Int16Array(total);
  const amp = dbm0ToAmplitude(plan.levelDbm0);
  const ramp = Math.round((RAMP_MS * rate) / 1000);
  let pos = 0;
  plan.cadenceMs.forEach((ms, i) => {
    const n = Math.round((ms * rate) / 1000);
    if (i % 2 === 0) {
      for (let k = 0; k < n; k++) {
        const t = (pos + k) / rate;
        let v = 0;
        for (const f of plan.frequencies) v += Math.sin(2 * Math.PI * f * t);
        const edge = Math.min(k, n - 1 - k);
        const gain = edge < ramp ? 0.5 - 0.5 * Math.cos((Math.PI * edge) / ramp) : 1;
        out[pos + k] = Math.round(v * amp * gain);
      }
    }
    pos += n;
  });
  return out;
}

/** One cadence period of `plan` as a µ-law WAV file. */
export function ringbackWav(plan: TonePlan | RingbackCountry): Buffer {
  const p = typeof plan === 'string' ? RINGBACK_PLANS[plan] : plan;
  const pcm = renderTonePeriod(p);
  const data = Buffer.alloc(pcm.length);
  for (let i = 0; i < pcm.length; i++) data[i] = linearToUlaw(pcm[i]!);
  const wav = Buffer.alloc(RINGBACK_WAV_DATA_OFFSET + data.length);
  let o = 0;
  o += wav.write('RIFF', o, 'latin1');
  o = wav.writeUInt32LE(wav.length - 8, o);
  o += wav.write('WAVE', o, 'latin1');
  // fmt chunk, WAVEFORMATEX with cbSize = 0 (non-PCM formats carry the cbSize field).
  o += wav.write('fmt ', o, 'latin1');
  o = wav.writeUInt32LE(18, o);
  o = wav.writeUInt16LE(WAVE_FORMAT_MULAW, o);
  o = wav.writeUInt16LE(1, o); // mono
  o = wav.writeUInt32LE(RINGBACK_SAMPLE_RATE, o);
  o = wav.writeUInt32LE(RINGBACK_SAMPLE_RATE, o); // bytes per second
  o = wav.writeUInt16LE(1, o); // block align
  o = wav.writeUInt16LE(8, o); // bits per sample
  o = wav.writeUInt16LE(0, o); // cbSize
  // fact chunk (sample count), required for non-PCM WAV.
  o += wav.write('fact', o, 'latin1');
  o = wav.writeUInt32LE(4, o);
  o = wav.writeUInt32LE(data.length, o);
  o += wav.write('data', o, 'latin1');
  o = wav.writeUInt32LE(data.length, o);
  data.copy(wav, o);
  return wav;
}
