import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/util/clock.js';
import { TimerSet } from '../../../../src/sip/transaction/timer-set.js';
import { DEFAULT_TIMER_SETTINGS, isReliableProtocol, resolveTimerSettings, timerValues } from '../../../../src/sip/transaction/timers.js';
import { reasonPhrase } from '../../../../src/sip/message/status.js';

describe('transaction timers (RFC 3261 Table 4 + RFC 6026)', () => {
  it('defaults T1/T2/T4 to 500/4000/5000 and accepts overrides', () => {
    expect(DEFAULT_TIMER_SETTINGS).toEqual({ T1: 500, T2: 4000, T4: 5000 });
    expect(resolveTimerSettings()).toEqual({ T1: 500, T2: 4000, T4: 5000 });
    expect(resolveTimerSettings({ T1: 100 })).toEqual({ T1: 100, T2: 4000, T4: 5000 });
    expect(() => resolveTimerSettings({ T1: 0 })).toThrow(TypeError);
    expect(() => resolveTimerSettings({ T1: 5000, T2: 4000 })).toThrow(/T2/);
  });

  it('gives the unreliable-transport values', () => {
    expect(timerValues(DEFAULT_TIMER_SETTINGS, false)).toEqual({
      A: 500, B: 32000, D: 32000, E: 500, F: 32000, G: 500, H: 32000, I: 5000, J: 32000, K: 5000, L: 32000, M: 32000, T2: 4000,
    });
  });

  it('gives the reliable-transport values: no A/E/G, D/I/J/K zero', () => {
    expect(timerValues(DEFAULT_TIMER_SETTINGS, true)).toEqual({
      A: null, B: 32000, D: 0, E: null, F: 32000, G: null, H: 32000, I: 0, J: 0, K: 0, L: 32000, M: 32000, T2: 4000,
    });
  });

  it('scales the 64*T1 timers with T1; D stays at least 32 s', () => {
    const v = timerValues(resolveTimerSettings({ T1: 100, T4: 1000 }), false);
    expect([v.A, v.B, v.F, v.H, v.J, v.L, v.M, v.I, v.K]).toEqual([100, 6400, 6400, 6400, 6400, 6400, 6400, 1000, 1000]);
    expect(v.D).toBe(32000);
    expect(timerValues(resolveTimerSettings({ T1: 1000, T2: 4000 }), false).D).toBe(64000);
  });

  it('treats only UDP as unreliable', () => {
    expect(isReliableProtocol('udp')).toBe(false);
    expect(isReliableProtocol('UDP')).toBe(false);
    expect(isReliableProtocol('tcp')).toBe(true);
    expect(isReliableProtocol('tls')).toBe(true);
  });
});

describe('TimerSet', () => {
  it('re-arms by name, stops, and clears everything', () => {
    const clock = new FakeClock();
    const ts = new TimerSet<'A' | 'B'>(clock);
    const fired: string[] = [];
    ts.start('A', 100, () => fired.push(`A@${clock.now()}`));
    ts.start('A', 300, () => fired.push(`A2@${clock.now()}`));
    ts.start('B', 200, () => fired.push(`B@${clock.now()}`));
    expect(ts.size).toBe(2);
    expect(clock.pending).toBe(2);
    clock.advance(250);
    expect(fired).toEqual(['B@200']);
    expect(ts.has('B')).toBe(false);
    ts.clearAll();
    clock.advance(1000);
    expect(fired).toEqual(['B@200']);
    expect(clock.pending).toBe(0);
  });
});

describe('status reasons', () => {
  it('has RFC 3261 phrases and falls back by class', () => {
    expect(reasonPhrase(100)).toBe('Trying');
    expect(reasonPhrase(481)).toBe('Call/Transaction Does Not Exist');
    expect(reasonPhrase(482)).toBe('Loop Detected');
    expect(reasonPhrase(487)).toBe('Request Terminated');
    expect(reasonPhrase(499)).toBe('Client Error');
    expect(reasonPhrase(299)).toBe('Success');
  });
});
