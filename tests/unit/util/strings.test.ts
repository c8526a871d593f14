import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { detached } from '../../../src/util/strings.js';

describe('detached', () => {
  it('returns an equal string, short or long, ASCII or not', () => {
    for (const s of ['', 'a', 'abcdefghijkl', 'abcdefghijklm', 'sip:+14255550100@sbc.example.com;user=phone', 'Ä ☎ 𝄞'.repeat(5)]) {
      expect(detached(s)).toBe(s);
    }
  });

  it('lets the text a value was cut from be collected (40 MB text, 30-character value)', () => {
    const run = (kind: string): { kept: string; heapUsed: number } => {
      const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'tests/fixtures/detached-gc.ts', kind], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim()) as { kept: string; heapUsed: number };
    };
    const slice = run('slice');
    const kept = run('detached');
    expect(slice.kept).toBe('0123456789abcdef0123456789abcd');
    expect(kept.kept).toBe(slice.kept);
    // The plain slice keeps the whole text alive; the detached copy does not.
    expect(slice.heapUsed - kept.heapUsed).toBeGreaterThan(30_000_000);
  });
});
