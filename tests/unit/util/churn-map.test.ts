import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChurnMap } from '../../../src/util/churn-map.js';

type Op = { op: 'set'; k: number; v: number } | { op: 'delete'; k: number } | { op: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), k: fc.integer({ min: 0, max: 40 }), v: fc.integer() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('delete' as const), k: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

describe('ChurnMap', () => {
  it('answers exactly like a Map, insertion order included, across renewals', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 1500 }), (ops) => {
        const model = new Map<number, number>();
        const m = new ChurnMap<number, number>();
        for (const o of ops) {
          if (o.op === 'set') {
            model.set(o.k, o.v);
            expect(m.set(o.k, o.v)).toBe(m);
          } else if (o.op === 'delete') {
            expect(m.delete(o.k)).toBe(model.delete(o.k));
          } else {
            model.clear();
            m.clear();
          }
          expect(m.size).toBe(model.size);
        }
        for (let k = 0; k <= 40; k++) {
          expect(m.get(k)).toBe(model.get(k));
          expect(m.has(k)).toBe(model.has(k));
        }
        expect([...m]).toEqual([...model]);
        expect([...m.keys()]).toEqual([...model.keys()]);
        expect([...m.values()]).toEqual([...model.values()]);
        expect([...m.entries()]).toEqual([...model.entries()]);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps its order and entries when renewed by insertions alone (never empty)', () => {
    const m = new ChurnMap<string, number>();
    m.set('first', 0);
    for (let i = 0; i < 5 * ChurnMap.RENEW_MIN; i++) {
      m.set(`k${i}`, i);
      if (i >= 3) m.delete(`k${i - 3}`);
    }
    const n = 5 * ChurnMap.RENEW_MIN;
    expect([...m.keys()]).toEqual(['first', `k${n - 3}`, `k${n - 2}`, `k${n - 1}`]);
  });

  it('allows deleting while iterating', () => {
    const m = new ChurnMap<number, number>();
    for (let i = 0; i < 10; i++) m.set(i, i);
    const seen: number[] = [];
    for (const v of m.values()) {
      seen.push(v);
      m.delete(v);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(m.size).toBe(0);
  });

  // The reason the class exists (see its comment): short-lived entries of a Map whose table has
  // aged are promoted by every scavenge. Measured in a child process: the bytes V8's trace reports
  // promoted by the scavenges that ran during the churn.
  it('keeps short-lived entries out of the old generation where an aged Map does not', () => {
    const promoted = (kind: 'map' | 'churn'): number => {
      const r = spawnSync(process.execPath, ['--expose-gc', '--trace-gc-nvp', '--import', 'tsx', 'tests/fixtures/churn-map-gc.ts', kind], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const during = r.stdout.slice(r.stdout.indexOf('churn starts'), r.stdout.indexOf(`churn done (${kind})`));
      expect(during.length).toBeGreaterThan(0);
      let sum = 0;
      for (const line of during.split('\n')) {
        const m = / gc=s .* promoted=(\d+)/.exec(line);
        if (m) sum += Number(m[1]);
      }
      return sum;
    };
    const plain = promoted('map');
    const churn = promoted('churn');
    // The plain Map promotes most of what passed through it (tens of MB); ChurnMap next to none.
    expect(plain).toBeGreaterThan(10 * 1024 * 1024);
    expect(churn).toBeLessThan(plain / 10);
  });
});
