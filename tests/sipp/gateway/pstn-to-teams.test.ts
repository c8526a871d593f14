/**
 * PSTN → Teams through the gateway (issue 4; teams-direct-routing.md §1, §4): SIPp carriers
 * on 127.0.6.10-20 call the gateway over UDP; the fake Teams (127.0.5.1-3, mutual TLS) answers
 * as scripted and checks every MUST item on what it receives. After every test: no live call,
 * no rtpengine session, admission counters at zero, no fake-Teams violation.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp, step } from '../../helpers/fake-teams/index.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { CARRIER_IPS, type GatewayHarness, NOT_ALLOWED_IP, logged, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, carrierCallAsync, expectSippOk, finalStatuses, header, optionsFrom, received } from './sipp-gateway.js';

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const C1 = CARRIER_IPS[0];
const C2 = CARRIER_IPS[1];

function callsTo(endpoint: 'sip' | 'sip2' | 'sip3'): number {
  return h.ft.calls.filter((c) => c.endpoint === endpoint).length;
}

describe('PSTN → Teams: call setup and teardown', () => {
  it('an allowed carrier call reaches Teams with every MUST item, answered, carrier hangs up', async () => {
    h.ft.script([step.ringing(0), step.answer(50)]);
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550101', pauseMs: 300 });
    expectSippOk(r);
    expect(h.ft.calls.length).toBe(before + 1);
    const call = h.ft.calls.at(-1)!;
    expect(call.endpoint).toBe('sip');
    const inv = call.invite;
    expect(inv.uri).toBe('sip:+14255550101@sip.pstnhub.microsoft.com:5061;user=phone');
    expect(inv.get('from')).toMatch(/^<sip:\+14155550123@acme\.customers\.example\.net;user=phone>;tag=/);
    expect(inv.getAll('contact')).toEqual(['<sip:+14255550101@acme.customers.example.net:5061;transport=tls>']);
    expect(inv.has('record-route')).toBe(false);
    expect(inv.has('replaces')).toBe(false);
    expect((inv.getAll('require').join(',') + inv.getAll('supported').join(',')).toLowerCase()).not.toContain('100rel');
    expect(inv.get('x-ms-sbc')).toBe('TestVendor/teams-dr-gateway/0.0.0-test');
    const allow = inv.getAll('allow').join(',').split(',').map((s) => s.trim());
    expect(allow).toEqual(expect.arrayContaining(['INVITE', 'ACK', 'BYE', 'CANCEL', 'REFER', 'NOTIFY']));
    const a = audioOf(parseSdp(inv.body.toString('utf8')))!;
    expect(a.proto).toBe('RTP/SAVP');
    expect(a.crypto.map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
    expect(a.rtcpMux).toBe(true);
    expect(a.address).toBe('127.0.6.50'); // anchored in rtpengine
    // Toward the carrier: plain RTP from rtpengine, no crypto, no ICE.
    const ok = received(r, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*1 INVITE/i.test(t))!;
    expect(ok).toMatch(/m=audio \d+ RTP\/AVP /);
    expect(ok).toMatch(/c=IN IP4 127\.0\.6\.50/);
    expect(ok).not.toMatch(/a=crypto|a=ice-|a=candidate/);
    // The carrier's BYE reached Teams.
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    expect(call.endedBy).toBe('sbc');
    expect(call.requests.items.map((q) => q.method)).toContain('BYE');
  });

  it('Teams hangs up: the BYE reaches the carrier', async () => {
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const p = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C1, to: '+14255550102' });
    const call = await h.nextCall(mark);
    await call.waitForAck();
    const bye = await call.bye();
    expect(bye.status).toBe(200);
    const r = await p.done;
    expectSippOk(r);
    expect(received(r, /^BYE /)).toHaveLength(1);
  });

  it('From is taken from P-Asserted-Identity when From is not E.164; national numbers are normalized', async () => {
    h.ft.script([step.answer(20)]);
    const r = await carrierCall({
      scenario: 'carrier-call-bye.xml',
      from: C2,
      to: '02071838123',
      fromUser: 'trunk-line-7',
      extraHeader: 'P-Asserted-Identity: <sip:+442079460001@carrier.example>',
    });
    expectSippOk(r);
    const inv = h.ft.calls.at(-1)!.invite;
    expect(inv.uri).toBe('sip:+442071838123@sip.pstnhub.microsoft.com:5061;user=phone');
    expect(inv.get('from')).toMatch(/^<sip:\+442079460001@acme\.customers\.example\.net;user=phone>/);
    expect(inv.getAll('contact')[0]).toBe('<sip:+442071838123@acme.customers.example.net:5061;transport=tls>');
  });

  it('§4.2: a caller with neither an E.164 From nor a P-Asserted-Identity reaches Teams as Anonymous (at the tenant FQDN), the call completes', async () => {
    h.ft.script([step.answer(20)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C2, to: '+14255550115', fromUser: 'anonymous' });
    expectSippOk(r);
    const inv = h.ft.calls.at(-1)!.invite;
    expect(inv.get('from')).toMatch(/^"Anonymous" <sip:anonymous@acme\.customers\.example\.net;user=phone>;tag=/);
    expect(h.ft.violations).toEqual([]);
  });

  it('a tenant that does not advertise REFER gets an Allow without REFER', async () => {
    h.ft.script([step.answer(20)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550301' });
    expectSippOk(r);
    const inv = h.ft.calls.at(-1)!.invite;
    expect(inv.getAll('contact')[0]).toBe('<sip:+14255550301@plain.customers.example.net:5061;transport=tls>');
    const allow = inv.getAll('allow').join(',').split(',').map((s) => s.trim());
    expect(allow).toContain('INVITE');
    expect(allow).not.toContain('REFER');
    // The fake Teams is configured to expect REFER from every tenant: exactly this is flagged.
    expect(h.ft.violations.map((v) => v.rule)).toEqual(['allow']);
    h.ft.violations.splice(0);
  });
});

describe('PSTN → Teams: rejections', () => {
  it('a source that is not a carrier gets 403 with a Reason and never reaches Teams', async () => {
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: NOT_ALLOWED_IP, to: '+14255550101' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([403]);
    expect(header(received(r, /^SIP\/2\.0 403/)[0]!, 'Reason')).toMatch(/^Q\.850;cause=21/);
    expect(h.ft.calls.length).toBe(before);
  });

  it('drop mode: a source that is not a carrier gets no response at all', async () => {
    await h.restartGateway({ carriers: { unknownSource: 'drop' } });
    try {
      const r = await carrierCall({ scenario: 'carrier-call-silence.xml', from: NOT_ALLOWED_IP, to: '+14255550101' });
      expectSippOk(r);
      expect(r.logs).toContain('SILENT');
      expect(received(r, /^SIP\/2\.0 [2-6]/)).toEqual([]);
      expect(logged(h, 'INVITE from unknown source dropped').length).toBeGreaterThan(0);
    } finally {
      await h.restartGateway({ carriers: { unknownSource: 'reject' } });
    }
  });

  it('OPTIONS: a carrier gets 200 with the full Allow; a source that is neither Teams nor a carrier gets 403, and nothing in drop mode', async () => {
    const ok = await optionsFrom(C1, 1);
    expect(ok?.status).toBe(200);
    expect(header(ok!.text, 'Allow')).toMatch(/UPDATE.*PRACK/);
    const refused = await optionsFrom(NOT_ALLOWED_IP, 2);
    expect(refused?.status).toBe(403);
    expect(header(refused!.text, 'Reason')).toMatch(/^Q\.850;cause=21/);
    await h.restartGateway({ carriers: { unknownSource: 'drop' } });
    try {
      expect(await optionsFrom(NOT_ALLOWED_IP, 3, 1500)).toBeUndefined();
      expect((await optionsFrom(C1, 4))?.status).toBe(200);
    } finally {
      await h.restartGateway({ carriers: { unknownSource: 'reject' } });
    }
  });

  it('OPTIONS from Teams get the Allow that tenant\'s calls get (§3.7: no UPDATE or PRACK; REFER only where advertised)', async () => {
    const allow = async (fqdn: string) => {
      const res = await h.ft.sendOptions({ to: fqdn, port: 5061 });
      expect(res.status).toBe(200);
      expect(res.getAll('contact')[0]).toBe(`<sip:${fqdn}:5061;transport=tls>`);
      return res.getAll('allow').join(',').split(',').map((x) => x.trim());
    };
    expect(await allow('acme.customers.example.net')).toEqual(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'INFO', 'REFER', 'NOTIFY']);
    expect(await allow('plain.customers.example.net')).toEqual(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'INFO']);
    expect(await allow('customers.example.net')).toEqual(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'INFO', 'REFER', 'NOTIFY']);
  });

  it('an unknown number gets 404 with a Reason header', async () => {
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+19995550000' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([404]);
    expect(header(received(r, /^SIP\/2\.0 404/)[0]!, 'Reason')).toMatch(/^Q\.850;cause=1;text=/);
  });

  it('a disabled tenant gets 403', async () => {
    const before = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+14255550901' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([403]);
    expect(header(received(r, /^SIP\/2\.0 403/)[0]!, 'Reason')).toMatch(/Tenant disabled/);
    expect(h.ft.calls.length).toBe(before);
  });
});

describe('PSTN → Teams: proxy failover', () => {
  it('503 with Retry-After on sip → the SBC drops that connection, sip2 is tried; sip is skipped within Retry-After, then reached on a new connection', async () => {
    h.ft.script([step.reject(503, { retryAfter: 1 })], { endpoint: 'sip', times: 1 });
    h.ft.script([step.answer(20)], { endpoint: 'sip2' });
    const [s1, s2] = [callsTo('sip'), callsTo('sip2')];
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550103' });
    expectSippOk(r);
    expect(callsTo('sip')).toBe(s1 + 1);
    expect(callsTo('sip2')).toBe(s2 + 1);
    const [first, second] = h.ft.calls.slice(-2);
    expect(first!.endpoint).toBe('sip');
    expect(second!.endpoint).toBe('sip2');
    expect(second!.inviteFlow.connectionId).not.toBe(first!.inviteFlow.connectionId);
    expect(second!.invite.uri).toBe('sip:+14255550103@sip.pstnhub.microsoft.com:5061;user=phone');
    // Within Retry-After the next call goes to sip2 first.
    const r2 = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550104' });
    expectSippOk(r2);
    expect(callsTo('sip')).toBe(s1 + 1);
    expect(callsTo('sip2')).toBe(s2 + 2);
    // The connection that carried the 503 is closed by the SBC, not by the fake Teams.
    const dropped = h.ft.connections().find((c) => c.id === first!.inviteFlow.connectionId)!;
    await waitFor(() => dropped.closedAt !== undefined, { timeoutMs: 3000, what: 'the 503 connection closed' });
    expect(dropped.closeReason ?? '').not.toMatch(/fake Teams/);
    await sleep(1100); // let the back-off expire
    h.ft.script([step.answer(20)], { endpoint: 'sip', times: 1 });
    const r3 = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550104' });
    expectSippOk(r3);
    const third = h.ft.calls.at(-1)!;
    expect(third.endpoint).toBe('sip');
    expect(third.inviteFlow.connectionId).not.toBe(first!.inviteFlow.connectionId);
  });

  it('408 from sip → sip2', async () => {
    h.ft.script([step.reject(408)], { endpoint: 'sip', times: 1 });
    h.ft.script([step.answer(20)], { endpoint: 'sip2' });
    const s2 = callsTo('sip2');
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550105' });
    expectSippOk(r);
    expect(callsTo('sip2')).toBe(s2 + 1);
  });

  it('408 from sip and 500 from sip2 → sip3 answers (§1.1: sip, sip2, sip3 in turn)', async () => {
    h.ft.script([step.reject(408)], { endpoint: 'sip', times: 1 });
    h.ft.script([step.reject(500)], { endpoint: 'sip2', times: 1 });
    h.ft.script([step.answer(20)], { endpoint: 'sip3' });
    const before = { sip: callsTo('sip'), sip2: callsTo('sip2'), sip3: callsTo('sip3') };
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550109' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([200]);
    expect([callsTo('sip'), callsTo('sip2'), callsTo('sip3')]).toEqual([before.sip + 1, before.sip2 + 1, before.sip3 + 1]);
  });

  it('no answer from sip within inviteTimeoutMs → CANCEL to sip, call goes to sip2', async () => {
    h.ft.script([], { endpoint: 'sip', times: 1 });
    h.ft.script([step.answer(20)], { endpoint: 'sip2' });
    const s2 = callsTo('sip2');
    const t0 = Date.now();
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550106' });
    expectSippOk(r);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(callsTo('sip2')).toBe(s2 + 1);
    const silent = h.ft.calls.filter((c) => c.endpoint === 'sip').at(-1)!;
    expect(silent.requests.items.map((q) => q.method)).toContain('CANCEL');
  });

  it('a dropped TLS connection on sip → sip2', async () => {
    h.ft.script([step.drop(50)], { endpoint: 'sip', times: 1 });
    h.ft.script([step.answer(20)], { endpoint: 'sip2' });
    const s2 = callsTo('sip2');
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550107' });
    expectSippOk(r);
    expect(callsTo('sip2')).toBe(s2 + 1);
  });

  // §1.7: connection refused or a failed TLS handshake on the INVITE itself (OPTIONS have not
  // marked sip down yet: the gateway learns it from this call).
  it.each(['down', 'reset'] as const)('§1.7: sip %s (refused / TLS handshake fails) when the INVITE goes out → the call goes to sip2 at once', async (mode) => {
    h.ft.script([step.answer(20)], { endpoint: 'sip2' });
    const s2 = callsTo('sip2');
    const s1 = callsTo('sip');
    const moded = h.ft.setMode('sip', mode);
    h.ft.dropConnections({ endpoint: 'sip' }); // the gateway's open connection (OPTIONS) too
    await moded;
    try {
      const t0 = Date.now();
      const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550110' });
      expectSippOk(r);
      expect(finalStatuses(r)).toEqual([200]);
      expect(Date.now() - t0).toBeLessThan(1400); // not the INVITE timeout: the failure is immediate
      expect(callsTo('sip2')).toBe(s2 + 1);
      expect(callsTo('sip')).toBe(s1);
    } finally {
      await h.ft.setMode('sip', 'up');
    }
  });

  it('§2.11: a Teams server certificate from a root the gateway does not trust is refused: no INVITE goes out, the carrier gets 503', async () => {
    // The gateway trusts only the SBC root here, which did not sign the fake Teams' certificate.
    await h.restartGateway({ sipServer: { tls: { caFile: h.ft.pki.sbc.ca.certPath } } });
    try {
      const invites = h.ft.requests('INVITE').length;
      const failures = h.ft.tlsFailures.length;
      const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+14255550111' });
      expectSippOk(r);
      expect(finalStatuses(r)).toEqual([503]);
      expect(h.ft.requests('INVITE').length).toBe(invites);
      // The fake Teams saw the gateway drop each handshake once it had the certificate (sip, sip2, sip3).
      const aborted = h.ft.tlsFailures.slice(failures).filter((f) => f.direction === 'inbound');
      expect(new Set(aborted.map((f) => f.endpoint))).toEqual(new Set(['sip', 'sip2', 'sip3']));
      expect(h.ft.violations.every((v) => v.rule === 'tls-handshake')).toBe(true);
      h.ft.violations.splice(0);
    } finally {
      await h.restartGateway({ sipServer: { tls: { caFile: h.ft.pki.teams.ca.certPath } } });
    }
  });

  it.each([
    [486, 17],
    [603, 21],
  ])('no failover on %i: the carrier gets it, with Q.850 cause %i (§1.9)', async (status, cause) => {
    h.ft.script([step.reject(status)], { endpoint: 'sip', times: 1 });
    const s2 = callsTo('sip2');
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+14255550108' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([status]);
    expect(header(received(r, new RegExp(`^SIP/2\\.0 ${status}`))[0]!, 'Reason')).toMatch(new RegExp(`^Q\\.850;cause=${cause};text="`));
    expect(callsTo('sip2')).toBe(s2);
  });

  it('never after a 180: 180 then 503 on sip ends the call', async () => {
    h.ft.script([step.ringing(0), step.reject(503, { delayMs: 100 })], { endpoint: 'sip', times: 1 });
    const s2 = callsTo('sip2');
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+14255550109' });
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 180/).length).toBe(1);
    expect(finalStatuses(r)).toEqual([503]);
    await sleep(200);
    expect(callsTo('sip2')).toBe(s2);
  });
});

describe('PSTN → Teams: provisional responses and CANCEL', () => {
  it('forked 180s (two To-tags) are relayed, then the 200 of the second fork', async () => {
    h.ft.script([step.ringing(0), step.ringing(1, 30), step.answer(100, 1)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550110' });
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 180/).length).toBe(2);
  });

  it('183 with SDP is passed to the carrier as RTP/AVP early media', async () => {
    h.ft.script([step.progress(), step.answer(200)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550111' });
    expectSippOk(r);
    const p183 = received(r, /^SIP\/2\.0 183/);
    expect(p183).toHaveLength(1);
    expect(p183[0]).toMatch(/m=audio \d+ RTP\/AVP /);
    expect(p183[0]).not.toMatch(/a=crypto/);
  });

  it('convert mode: 183 with SDP becomes 180 without SDP', async () => {
    await h.restartGateway({ carriers: { earlyMedia: 'convert-to-180' } });
    try {
      h.ft.script([step.progress(), step.answer(200)]);
      const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550112' });
      expectSippOk(r);
      expect(received(r, /^SIP\/2\.0 183/)).toEqual([]);
      const rings = received(r, /^SIP\/2\.0 180/);
      expect(rings).toHaveLength(1);
      expect(rings[0]).not.toMatch(/v=0/);
    } finally {
      await h.restartGateway({ carriers: { earlyMedia: 'pass' } });
    }
  });

  it('CANCEL from the carrier while Teams rings: CANCEL reaches Teams, the carrier gets 487', async () => {
    h.ft.script([step.ringing(0)]);
    const mark = h.ft.calls.length;
    const p = await carrierCallAsync({ scenario: 'carrier-call-cancel.xml', from: C1, to: '+14255550113', pauseMs: 300 });
    const call = await h.nextCall(mark);
    await call.waitForCancel(5000);
    const r = await p.done;
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([487]);
  });
});

describe('PSTN → Teams: admission control and media resources', () => {
  it('tenant concurrent-call limit: the second call gets 503 with Retry-After', async () => {
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const first = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C1, to: '+14255550501' });
    const call = await h.nextCall(mark);
    await call.waitForAck();
    expect((await h.counters()).tiny).toBe(1);
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C2, to: '+14255550502' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([503]);
    const res = received(r, /^SIP\/2\.0 503/)[0]!;
    expect(header(res, 'Retry-After')).toBe('5');
    expect(header(res, 'Reason')).toMatch(/concurrency/);
    await call.bye();
    expectSippOk(await first.done);
  });

  it('tenant CPS limit: calls over the rate get 503 with Retry-After', async () => {
    h.ft.script([step.reject(486)]);
    // Start early in a wall-clock second so the burst stays within one CPS window.
    while (Date.now() % 1000 > 300) await sleep(20);
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+14255550601', calls: 5, rate: 100, ratePeriodMs: 1000 });
    const statuses = finalStatuses(r).sort();
    expect(statuses).toEqual([486, 486, 503, 503, 503]);
    for (const res of received(r, /^SIP\/2\.0 503/)) expect(header(res, 'Retry-After')).toBe('1');
    await sleep(1000);
  });

  it('a fast CANCEL (before Teams rings) is counted once and released', async () => {
    h.ft.script([step.wait(300), step.ringing(0)]);
    const r = await carrierCall({ scenario: 'carrier-call-fast-cancel.xml', from: C1, to: '+14255550503' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([487]);
    await waitFor(async () => (await h.counters()).tiny === 0, { what: 'tiny counter back to 0' });
    // The single slot of the tenant is free again: a new call is admitted and answered.
    h.ft.clearScripts();
    h.ft.script([step.answer(20)]);
    const ok = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550504' });
    expectSippOk(ok);
  });

  it('no rtpengine alive: 503 with a clear log line', async () => {
    await h.rtpengine.kill();
    try {
      await waitFor(() => h.pool.liveInstances.length === 0, { timeoutMs: 5000, what: 'rtpengine marked down' });
      const before = h.ft.calls.length;
      const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C1, to: '+14255550114' });
      expectSippOk(r);
      expect(finalStatuses(r)).toEqual([503]);
      expect(header(received(r, /^SIP\/2\.0 503/)[0]!, 'Retry-After')).toBeDefined();
      expect(h.ft.calls.length).toBe(before);
      const lines = logged(h, /no media anchor available/);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.at(-1)!.code).toBe('MEDIA_ERR_NO_RTPENGINE');
    } finally {
      await h.rtpengine.restart();
      await waitFor(() => h.pool.liveInstances.length === 1, { timeoutMs: 5000, what: 'rtpengine back up' });
    }
  });
});
