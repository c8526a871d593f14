/**
 * Issue 2 acceptance: drachtio-srf 5.0.29's own integration tests (b2b, uac, uas, proxy,
 * reinvite, refer) and unit tests pass against our server, run as two `dist/cli.js sip-server`
 * processes on the fixed loopback layout of tests/srf-compat/run-srf-compat.ts. The baseline of
 * a real drachtio-server is 131 = 52 mocha + 79 tape assertions.
 */
import { describe, expect, it } from 'vitest';
import { assertCliBuilt } from '../helpers/sip-server.js';
import { EXPECTED_TOTAL, runSrfCompat } from '../srf-compat/run-srf-compat.js';

describe('drachtio-srf 5.0.29 test suite against our server', () => {
  it(`passes all ${EXPECTED_TOTAL} tests (52 mocha + 79 tape assertions)`, async () => {
    assertCliBuilt();
    const lines: string[] = [];
    const r = await runSrfCompat({ timeoutMs: 240_000, log: (l) => lines.push(l) });
    process.stdout.write(`${r.report}\n`);
    expect(r.timedOut, r.report).toBe(false);
    expect(r.failures, r.report).toEqual([]);
    for (const row of r.rows) expect({ group: row.group, passed: row.passed }, r.report).toEqual({ group: row.group, passed: row.expected });
    expect(r.failed, r.report).toBe(0);
    expect(EXPECTED_TOTAL).toBe(131);
    expect(r.passed, r.report).toBe(EXPECTED_TOTAL);
    expect(r.report.trim().split('\n').pop()).toBe(`${EXPECTED_TOTAL} passed, 0 failed`);
  }, 300_000);
});
