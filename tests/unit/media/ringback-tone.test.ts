/** The ringback WAV generator (src/media/ringback-tone.ts): format, frequencies, level, cadence. */
import { describe, expect, it } from 'vitest';
import {
  RINGBACK_PLANS,
  RINGBACK_WAV_DATA_OFFSET,
  cadencePeriodMs,
  linearToUlaw,
  ringbackWav,
  ulawToLinear,
  validateTonePlan,
  type RingbackCountry,
} from '../../../src/media/ringback-tone.js';
import { goertzel, rms, runs, ulawDecode } from '../../helpers/tone.js';

/** Parses the WAV the generator writes: RIFF/WAVE, fmt, fact, data. */
function parseWav(b: Buffer) {
  expect(b.toString('latin1', 0, 4)).toBe('RIFF');
  expect(b.readUInt32LE(4)).toBe(b.length - 8);
  expect(b.toString('latin1', 8, 12)).toBe('WAVE');
  const chunks: Record<string, Buffer> = {};
  for (let o = 12; o + 8 <= b.length; ) {
    const id = b.toString('latin1', o, o + 4);
    const len = b.readUInt32LE(o + 4);
    chunks[id] = b.subarray(o + 8, o + 8 + len);
    o += 8 + len + (len % 2);
  }
  const fmt = chunks['fmt ']!;
  return {
    format: fmt.readUInt16LE(0),
    channels: fmt.readUInt16LE(2),
    rate: fmt.readUInt32LE(4),
    byteRate: fmt.readUInt32LE(8),
    blockAlign: fmt.readUInt16LE(12),
    bits: fmt.readUInt16LE(14),
    factSamples: chunks.fact?.readUInt32LE(0),
    data: chunks.data!,
  };
}

const FRAME = 160; // 20 ms at 8 kHz

/** 20 ms frames of the decoded period: tone (true) or silence (false). */
function cadenceOf(samples: Float64Array): number[] {
  const flags: boolean[] = [];
  for (let i = 0; i + FRAME <= samples.length; i += FRAME) flags.push(rms(samples.subarray(i, i + FRAME)) > 100);
  return runs(flags).map((n) => n * 20);
}

describe('ringback tone generator', () => {
  const expected: Record<RingbackCountry, { freqs: number[]; cadence: number[] }> = {
    us: { freqs: [440, 480], cadence: [2000, 4000] },
    uk: { freqs: [400, 450], cadence: [400, 200, 400, 2000] },
    eu: { freqs: [425], cadence: [1000, 4000] },
  };

  for (const country of ['us', 'uk', 'eu'] as const) {
    it(`${country}: one cadence period of 8 kHz mono µ-law WAV, ${expected[country].freqs.join('+')} Hz, cadence ${expected[country].cadence.join('/')} ms`, () => {
      const wav = ringbackWav(country);
      const w = parseWav(wav);
      expect([w.format, w.channels, w.rate, w.byteRate, w.blockAlign, w.bits]).toEqual([7, 1, 8000, 8000, 1, 8]);
      const periodMs = expected[country].cadence.reduce((a, b) => a + b, 0);
      expect(cadencePeriodMs(RINGBACK_PLANS[country])).toBe(periodMs);
      expect(w.data.length).toBe(periodMs * 8);
      expect(w.factSamples).toBe(w.data.length);
      expect(wav.indexOf(w.data)).toBe(RINGBACK_WAV_DATA_OFFSET);
      // Small enough for one ng datagram (UDP payload limit 65,507 bytes, with room for the rest).
      expect(wav.length).toBeLessThan(60_000);

      const samples = Float64Array.from(w.data, ulawDecode);
      expect(cadenceOf(samples)).toEqual(expected[country].cadence);

      // The first burst (ramps excluded): energy only at the plan's frequencies, each at about
      // -19 dBm0 (G.711: a 0 dBm0 sine peaks 3.17 dB below full scale).
      const on = samples.subarray(80, expected[country].cadence[0]! * 8 - 80);
      const amp0dBm0 = 32767 * 10 ** (-3.17 / 20);
      for (const f of expected[country].freqs) {
        const level = 10 * Math.log10((4 * goertzel(on, f)) / (amp0dBm0 * amp0dBm0));
        expect(level).toBeGreaterThan(-19.6);
        expect(level).toBeLessThan(-18.4);
      }
      const inBand = expected[country].freqs.reduce((a, f) => a + goertzel(on, f), 0);
      for (const f of [350, 400, 425, 440, 450, 480, 620, 1000].filter((g) => expected[country].freqs.every((e) => Math.abs(e - g) > 20))) {
        expect(goertzel(on, f)).toBeLessThan(inBand / 100);
      }
      // The "off" parts are digital silence (µ-law 0xFF).
      const lastOff = expected[country].cadence.at(-1)! * 8;
      expect(w.data.subarray(w.data.length - lastOff).every((b) => b === 0xff)).toBe(true);
    });
  }

  it('µ-law: every code decodes and re-encodes to itself (0x7F, "negative zero", becomes 0xFF); encoding is monotonic', () => {
    for (let u = 0; u < 256; u++) {
      expect(ulawToLinear(u)).toBe(ulawDecode(u));
      expect(linearToUlaw(ulawToLinear(u))).toBe(u === 0x7f ? 0xff : u);
    }
    let prev = -Infinity;
    for (let x = -32768; x <= 32767; x += 7) {
      const y = ulawToLinear(linearToUlaw(x));
      expect(y).toBeGreaterThanOrEqual(prev);
      prev = y;
    }
    expect(linearToUlaw(0)).toBe(0xff);
    expect(linearToUlaw(32767)).toBe(0x80);
    expect(linearToUlaw(-32768)).toBe(0x00);
  });

  it('rejects plans it cannot render', () => {
    expect(() => validateTonePlan({ frequencies: [], cadenceMs: [1000, 1000], levelDbm0: -19 })).toThrow(/frequencies/);
    expect(() => validateTonePlan({ frequencies: [5000], cadenceMs: [1000, 1000], levelDbm0: -19 })).toThrow(/frequencies/);
    expect(() => validateTonePlan({ frequencies: [440], cadenceMs: [1000], levelDbm0: -19 })).toThrow(/cadence/);
    expect(() => validateTonePlan({ frequencies: [440], cadenceMs: [1000, 0], levelDbm0: -19 })).toThrow(/cadence/);
    expect(() => validateTonePlan({ frequencies: [440], cadenceMs: [1000, 1000], levelDbm0: 3 })).toThrow(/level/);
  });
});
