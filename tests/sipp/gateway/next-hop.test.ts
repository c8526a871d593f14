/**
 * "Beside a certified SBC" (issue 4): with `teams.nextHop`, every Teams-bound request goes to
 * that upstream SBC, which holds the connections to Teams. The fake Teams' sip3 endpoint
 * (127.0.5.3, mutual TLS) plays the upstream SBC: it checks the same MUST items on what it
 * receives, so the Teams-facing request must arrive intact (Request-URI naming
 * sip.pstnhub.microsoft.com, tenant Contact, X-MS-SBC, SRTP offer, no Record-Route).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp, step } from '../../helpers/fake-teams/index.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { CARRIER_IPS, type GatewayHarness, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, expectSippOk, finalStatuses } from './sipp-gateway.js';

let h: GatewayHarness;
let upstream: { address: string; port: number };
beforeAll(async () => {
  // The fake Teams binds its endpoints before the gateway starts, at fixed addresses.
  h = await startGatewayHarness({ fakeTeams: { upstreamSbc: true }, config: { teams: { nextHop: 'sip:127.0.5.3:5061;transport=tls' }, ops: { optionsIntervalSec: 0.5 } } });
  upstream = h.ft.endpoints.sip3;
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const C = CARRIER_IPS[2];

describe('PSTN → Teams beside a certified SBC (teams.nextHop)', () => {
  it('the INVITE goes to the next hop with its Teams-facing headers intact; in-dialog BYE follows', async () => {
    expect(upstream.address).toBe('127.0.5.3');
    h.ft.script([step.ringing(0), step.answer(30)], { endpoint: 'sip3' });
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550161' });
    expectSippOk(r);
    const calls = h.ft.calls.slice(before);
    expect(calls.map((c) => c.endpoint)).toEqual(['sip3']);
    const inv = calls[0]!.invite;
    // Teams-facing, not next-hop-facing: the upstream SBC routes on this Request-URI.
    expect(inv.uri).toBe('sip:+14255550161@sip.pstnhub.microsoft.com:5061;user=phone');
    expect(inv.get('to')).toMatch(/^<sip:\+14255550161@sip\.pstnhub\.microsoft\.com;user=phone>/);
    expect(inv.getAll('contact')).toEqual(['<sip:+14255550161@acme.customers.example.net:5061;transport=tls>']);
    expect(inv.get('x-ms-sbc')).toBe('TestVendor/teams-dr-gateway/0.0.0-test');
    expect(inv.has('record-route')).toBe(false);
    expect(inv.getAll('route')).toEqual([]);
    const a = audioOf(parseSdp(inv.body.toString('utf8')))!;
    expect(a.proto).toBe('RTP/SAVP');
    expect(a.crypto.map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
    await waitFor(() => calls[0]!.ended, { what: 'BYE at the next hop' });
    expect(calls[0]!.requests.items.map((q) => q.method)).toContain('BYE');
  });

  it('the next hop owns the Teams failover: its 503 reaches the carrier and no other proxy is tried', async () => {
    h.ft.script([step.reject(503, { retryAfter: 1 })], { endpoint: 'sip3', times: 1 });
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C, to: '+14255550162' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([503]);
    await sleep(300);
    expect(h.ft.calls.slice(before).map((c) => c.endpoint)).toEqual(['sip3']);
    await sleep(800); // let the Retry-After back-off expire
  });

  it('OPTIONS health checks for sip, sip2 and sip3 go through the next hop too', async () => {
    const seen = await waitFor(() => {
      const names = new Set(h.ft.options.filter((o) => o.endpoint === 'sip3').map((o) => o.requestUri.replace(/^sips?:([^@]*@)?/, '').replace(/[:;].*$/, '')));
      return names.size >= 3 ? names : undefined;
    }, { timeoutMs: 8000, what: 'OPTIONS for every proxy at the next hop' });
    expect([...seen].sort()).toEqual(['sip.pstnhub.microsoft.com', 'sip2.pstnhub.microsoft.com', 'sip3.pstnhub.microsoft.com']);
    expect(h.ft.options.filter((o) => o.endpoint !== 'sip3')).toEqual([]);
  });
});
