import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

// Codes are string literals of these shapes; Node's own ERR_PARSE_ARGS* are not ours.
const CODE = /'((?:SIP|WIRE|CONFIG|MEDIA)_ERR_[A-Z_]+|ERR_[A-Z_]+)'/g;

describe('error catalog', () => {
  const doc = readFileSync('docs/errors.md', 'utf8');
  const used = new Set<string>();
  for (const f of files('src')) for (const m of readFileSync(f, 'utf8').matchAll(CODE)) if (!m[1]!.startsWith('ERR_PARSE_ARGS')) used.add(m[1]!);

  it('finds the codes used in src/', () => {
    expect(used.size).toBeGreaterThan(20);
    expect(used.has('SIP_ERR_PARSE')).toBe(true);
  });

  it('documents every code in docs/errors.md', () => {
    const missing = [...used].filter((c) => !doc.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });
});
