import { describe, expect, it } from 'vitest';
import { answersUp } from '../../../src/ops/options-pinger.js';

describe('answersUp: which OPTIONS answers show the element up', () => {
  it('any final response but 408 and 5xx; no answer (0) and provisional-only are failures', () => {
    for (const s of [200, 202, 302, 401, 403, 404, 405, 407, 420, 486, 603]) expect(answersUp(s), String(s)).toBe(true);
    for (const s of [0, 100, 180, 408, 500, 502, 503, 504, 599]) expect(answersUp(s), String(s)).toBe(false);
  });
});
