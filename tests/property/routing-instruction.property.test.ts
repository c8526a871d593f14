import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RoutingInstructionError, parseInstruction } from '../../src/drachtio/request-handlers.js';

/**
 * A request-handler webhook is outside our control (wire protocol §15): whatever it answers,
 * parsing gives a valid instruction or a RoutingInstructionError (→ 500 to the caller), never
 * another exception, and nothing it sends can break a SIP header line we build from it.
 */
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const nasty = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('a\r\nX-Injected: 1', 'b\nc', 'd\0', ' 486 ', '<sip:x@h>'));
const answer = fc.oneof(
  fc.record({ action: fc.constantFrom('reject', 'redirect', 'proxy', 'route', 'teleport'), data: jsonValue }),
  fc.record({
    action: fc.constantFrom('reject', 'redirect', 'proxy', 'route'),
    data: fc.record(
      {
        status: fc.oneof(fc.integer({ min: -10, max: 1000 }), fc.double(), nasty),
        reason: nasty,
        contact: fc.oneof(nasty, fc.array(nasty, { maxLength: 3 })),
        destination: fc.oneof(nasty, fc.array(nasty, { maxLength: 3 })),
        uri: nasty,
        tag: nasty,
        recordRoute: fc.oneof(fc.boolean(), nasty),
      },
      { requiredKeys: [] },
    ),
  }),
  jsonValue,
);

function parseOrReject(text: string): ReturnType<typeof parseInstruction> | 'rejected' {
  try {
    return parseInstruction(text);
  } catch (err) {
    expect(err).toBeInstanceOf(RoutingInstructionError);
    return 'rejected';
  }
}

describe('webhook routing instructions (property)', () => {
  it('any JSON answer is a valid instruction or a RoutingInstructionError; header values never carry a line break', () => {
    fc.assert(
      fc.property(answer, (a) => {
        const r = parseOrReject(JSON.stringify(a));
        if (r === 'rejected') return;
        expect(['reject', 'redirect', 'proxy', 'route']).toContain(r.action);
        if (r.action === 'reject') {
          expect(Number.isInteger(r.status) && r.status >= 300 && r.status <= 699).toBe(true);
          expect(r.reason ?? '').not.toMatch(/[\r\n\0]/);
        }
        if (r.action === 'redirect') for (const c of r.contacts) expect(c).not.toMatch(/[\r\n\0]/);
        if (r.action === 'proxy') for (const d of r.destinations) expect(d).not.toMatch(/[\r\n\0]/);
      }),
      { numRuns: 3000 },
    );
  });

  it('any text at all (not JSON, truncated JSON, binary) is rejected cleanly', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), answer.map((a) => JSON.stringify(a).slice(0, -1))), (text) => {
        parseOrReject(text);
      }),
      { numRuns: 3000 },
    );
  });
});
