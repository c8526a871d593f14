/** Values the gateway writes on the wire: Q.850 causes toward carriers, number user parts, failure statuses toward Teams. */
import { describe, expect, it } from 'vitest';
import { carrierFailureReason, reason } from '../../../src/gateway/context.js';
import { uriUser, userOf } from '../../../src/gateway/numbers.js';
import { teamsFailureStatus } from '../../../src/gateway/outbound.js';

describe('carrierFailureReason (teams-direct-routing §1.9, RFC 3398 §8.2.6.1, RFC 3326)', () => {
  it('maps a failure without a Q.850 cause: 486 is user busy (17), not 34; 603 call rejected (21); 404 unallocated (1)', () => {
    expect(carrierFailureReason(486, undefined)).toBe(reason(17, 'User busy'));
    expect(carrierFailureReason(603, undefined)).toBe(reason(21, 'Call rejected'));
    expect(carrierFailureReason(404, undefined)).toBe(reason(1, 'Unallocated number'));
  });

  it('keeps a Reason that has a Q.850 cause, puts the mapped one before a SIP-only Reason, and leaves unmapped statuses alone', () => {
    expect(carrierFailureReason(486, 'Q.850;cause=34;text="x"')).toBe('Q.850;cause=34;text="x"');
    expect(carrierFailureReason(486, 'SIP;cause=486;text="Busy", Q.850;cause=17')).toBe('SIP;cause=486;text="Busy", Q.850;cause=17');
    expect(carrierFailureReason(486, 'SIP;cause=486')).toBe(`${reason(17, 'User busy')}, SIP;cause=486`);
    expect(carrierFailureReason(487, undefined)).toBeUndefined();
    expect(carrierFailureReason(487, 'SIP;cause=487')).toBe('SIP;cause=487');
  });
});

describe('uriUser (RFC 3261 §25.1 user part)', () => {
  it('escapes what a user part cannot hold and keeps what it can; userOf undoes it', () => {
    expect(uriUser('+442079460123#55')).toBe('+442079460123%2355');
    expect(uriUser('*86#')).toBe('*86%23');
    expect(uriUser("+1-425_555.0100!~*'()&=$,;?/")).toBe("+1-425_555.0100!~*'()&=$,;?/");
    expect(uriUser('a b@c:d%')).toBe('a%20b%40c%3Ad%25');
    expect(userOf(`sip:${uriUser('+442079460123#55')}@carrier.example`)).toBe('+442079460123#55');
  });
});

describe('teamsFailureStatus (§1.11: Teams re-routes on 408, 503, 504 before any 18x)', () => {
  it('a carrier-side failure becomes 503 before an 18x, and goes as it came after one (a 422 as 500)', () => {
    for (const st of [500, 502, 422, 580]) expect(teamsFailureStatus(st, false)).toBe(503);
    expect(teamsFailureStatus(undefined, false)).toBe(503);
    expect([teamsFailureStatus(502, true), teamsFailureStatus(422, true), teamsFailureStatus(undefined, true)]).toEqual([502, 500, 503]);
  });

  it('408, 503, 504 and the far end\'s 4xx/6xx pass unchanged', () => {
    for (const st of [408, 503, 504, 404, 486, 480, 603]) {
      expect(teamsFailureStatus(st, false)).toBe(st);
      expect(teamsFailureStatus(st, true)).toBe(st);
    }
  });
});
