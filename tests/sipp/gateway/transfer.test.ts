/**
 * Transfers with Teams (issue 5; teams-direct-routing.md §6.1–§6.7): REFER from Teams with the
 * gateway as transferee, INVITE with Replaces, per-tenant REFER mode (ring groups:
 * ring-group.test.ts). SIPp plays the carrier; the fake Teams checks every Teams-bound message.
 * The old leg of a REFER transfer is always ended by the fake Teams, never by the gateway.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type InboundCall, audioOf, sipfragStatus, step, teamsReferredBy } from '../../helpers/fake-teams/index.js';
import { waitFor } from '../../helpers/net.js';
import { RtpSocket, SrtpContext, isRtcp, parseRtp, sendG711Stream } from '../../helpers/rtp.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { bodyOf, carrierCall, carrierCallAsync, expectSippOk, finalStatuses, header, received, receivedSoFar, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
const sockets: RtpSocket[] = [];
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async (c) => {
  if (process.env.GW_DEBUG && c.task.result?.state === 'fail') console.log(JSON.stringify(h.logs.filter((l) => l.level >= 40 || /fail|transfer|Replaces|ring/.test(String(l.msg))).slice(-15), null, 1));
  for (const s of sockets.splice(0)) s.close();
  h.gw.ctx.features = undefined;
  await h.afterEach();
});
afterAll(async () => h.close());

const C = CARRIER_IPS[4];
const ACME = 'acme.customers.example.net';
const PLAIN = 'plain.customers.example.net';

function isRtp(d: { data: Buffer }): boolean {
  return d.data.length >= 12 && d.data[0]! >> 6 === 2 && !isRtcp(d.data);
}

/** PSTN → Teams call answered by the fake Teams; the carrier waits for the gateway's BYE. */
async function answeredInboundCall(to: string, rtp?: { ip: string; port: number }) {
  const mark = h.ft.calls.length;
  const sipp = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C, to, timeoutMs: 25_000, ...(rtp ? { rtp } : {}) });
  const call = await h.nextCall(mark);
  await call.answer();
  await call.waitForAck();
  return { sipp, call };
}

function noByeFromGateway(call: InboundCall | { requests: { items: Array<{ method: string }> } }) {
  expect(call.requests.items.map((q) => q.method)).not.toContain('BYE');
}

describe('REFER from Teams (gateway as transferee, §6.3–§6.6)', () => {
  it('PSTN target: 202, NOTIFY 100/180/200, new INVITE with Request-URI = Refer-To and byte-identical Referred-By; REFER came from another Teams address on a new TLS connection; Teams ends the old leg', async () => {
    const { sipp, call } = await answeredInboundCall('+14255550160');
    const mark = h.ft.calls.length;
    const referredBy = teamsReferredBy();
    expect(referredBy.length).toBeGreaterThanOrEqual(400);
    const conns = h.ft.connections().length;
    const { response, referTo } = await call.refer({ referredBy, from: 'alt', newConnection: true });
    expect(response.status).toBe(202);
    expect(h.ft.connections().length).toBeGreaterThan(conns); // the REFER used a new connection
    const call2 = await h.nextCall(mark);
    const inv = call2.invite;
    expect(inv.uri).toBe(referTo.slice(1, -1));
    expect(inv.get('referred-by')).toBe(referredBy);
    expect(inv.has('replaces')).toBe(false);
    expect(inv.getAll('contact')).toEqual(['<sip:+14155550123@acme.customers.example.net:5061;transport=tls>']);
    expect(inv.get('from')).toMatch(/^<sip:\+14155550123@acme\.customers\.example\.net;user=phone>;tag=/);
    expect(inv.get('x-ms-sbc')).toBeTruthy();
    const a = audioOf(call2.offer!)!;
    expect([a.proto, a.rtcpMux, a.direction]).toEqual(['RTP/SAVP', true, 'sendrecv']);
    await call2.ringing();
    await call.waitForNotify(180);
    await call2.answer();
    await call2.waitForAck();
    await call.waitForNotify(200);
    const frags = call.notifies.map((n) => sipfragStatus(n));
    expect(frags).toEqual([100, 180, 200]);
    expect(call.notifies.at(-1)!.get('subscription-state')).toMatch(/^terminated/);
    expect(call.notifies[0]!.get('event')).toBe('refer');
    // §6.4: the gateway never BYEs the old leg; Teams does.
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expect(call.endedBy).toBe('teams');
    noByeFromGateway(call);
    expect(h.gw.ctx.calls.size).toBe(1); // the call goes on with the new leg
    expect((await call2.bye()).status).toBe(200);
    const r = await sipp.done;
    expectSippOk(r);
    expect(received(r, /^BYE /)).toHaveLength(1);
  });

  it('null transfer (Refer-To = pstnhub host with x-m/x-t, no user part); media is re-anchored on the new leg and its 183 gives the PSTN party ringback', async () => {
    const carrierSock = await RtpSocket.open(C);
    const teams2 = await RtpSocket.open('127.0.5.1');
    sockets.push(carrierSock, teams2);
    const { sipp, call } = await answeredInboundCall('+14255550161', { ip: C, port: carrierSock.port });
    const mark = h.ft.calls.length;
    const referTo = '<sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:6a5d1c2e-1f0b-4c9a-9e43-1d2b3c4d5e6f;x-t=72f988bf-86f1-41af-91ab-2d7cd011db47>';
    const { response, referredBy } = await call.refer({ referTo });
    expect(response.status).toBe(202);
    const call2 = await h.nextCall(mark);
    expect(call2.invite.uri).toBe(referTo.slice(1, -1));
    expect(call2.invite.get('referred-by')).toBe(referredBy);
    // The new leg's 183 (ringback from Teams): its media reaches the PSTN party.
    await call2.progress({ media: { address: '127.0.5.1', port: teams2.port } });
    const gw = audioOf(call2.offer!)!;
    const enc = SrtpContext.fromInline(call2.local!.key);
    const sent = await sendG711Stream(teams2, { to: { address: gw.address!, port: gw.port }, count: 20, ssrc: 0x7e57ab1e, payloadType: 0, transform: (p) => enc.protect(p) });
    const want = sent.map((b) => parseRtp(b).payload);
    const got = await carrierSock.waitFor(10, { timeoutMs: 4000, filter: (d) => isRtp(d) && want.some((p) => p.equals(parseRtp(d.data).payload)) });
    expect(got.length).toBeGreaterThanOrEqual(10);
    await call2.answer({ media: { address: '127.0.5.1', port: teams2.port } });
    await call.waitForNotify(200);
    expect(call.notifies.map((n) => sipfragStatus(n))).toEqual([100, 183, 200]);
    await call.bye();
    noByeFromGateway(call);
    expect((await call2.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('§4.7: a Refer-To with an embedded Replaces: the new INVITE to Teams carries neither the ?Replaces part nor a Replaces header', async () => {
    const { sipp, call } = await answeredInboundCall('+14255550163');
    const mark = h.ft.calls.length;
    const referTo = '<sip:+15550009998@sip.pstnhub.microsoft.com;user=phone?Replaces=abc%40teams.example%3Bto-tag%3D1%3Bfrom-tag%3D2>';
    expect((await call.refer({ referTo })).response.status).toBe(202);
    const call2 = await h.nextCall(mark);
    expect(call2.invite.uri).toBe('sip:+15550009998@sip.pstnhub.microsoft.com;user=phone');
    expect(call2.invite.has('replaces')).toBe(false);
    await call2.answer();
    await call2.waitForAck();
    await call.waitForNotify(200);
    expect((await call.bye()).status).toBe(200);
    expect((await call2.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('transfer target rejects (486): NOTIFY 486 ends the subscription, the call stays on the old leg', async () => {
    const { sipp, call } = await answeredInboundCall('+14255550162');
    const mark = h.ft.calls.length;
    expect((await call.refer()).response.status).toBe(202);
    const call2 = await h.nextCall(mark);
    await call2.reject(486);
    await call.waitForNotify(486);
    expect(call.notifies.map((n) => sipfragStatus(n))).toEqual([100, 486]);
    expect(call.notifies.at(-1)!.get('subscription-state')).toMatch(/^terminated/);
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done); // Teams' BYE on the (still current) old leg ends the call
  });

  it('Teams → PSTN call: REFER on the Teams leg, the carrier target stays connected to the new leg', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0], timeoutMs: 25_000 });
    const call = h.ft.originate({ to: '+442079460160', tenant: ACME });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    expect(ok.get('allow')).toContain('REFER');
    const mark = h.ft.calls.length;
    const { response, referTo, referredBy } = await call.refer();
    expect(response.status).toBe(202);
    const call2 = await h.nextCall(mark);
    expect(call2.invite.uri).toBe(referTo.slice(1, -1));
    expect(call2.invite.get('referred-by')).toBe(referredBy);
    expect(call2.invite.getAll('contact')).toEqual(['<sip:+442079460160@acme.customers.example.net:5061;transport=tls>']);
    await call2.answer();
    await call.waitForNotify(200);
    await call.bye();
    noByeFromGateway(call);
    expect((await call2.bye()).status).toBe(200);
    expectSippOk(await target.done);
  });
});

describe('per-tenant REFER mode and INVITE with Replaces (§6.1, §6.7)', () => {
  it('REFER not advertised (tenant plain): Allow lacks REFER, a REFER is refused, and Teams transfers on its own with an INVITE with Replaces that takes over the carrier leg', async () => {
    const { sipp, call } = await answeredInboundCall('+14255550360');
    const allow = call.invite.getAll('allow').join(',');
    expect(allow).not.toContain('REFER');
    expect(h.ft.violations.map((v) => v.rule)).toEqual(['allow']); // the fake expects REFER everywhere
    h.ft.violations.splice(0);
    expect((await call.refer()).response.status).toBe(405);
    const taker = h.ft.originate({ to: '+14155550123', tenant: PLAIN, replaces: call, endpoint: 'sip2' });
    const ok = await taker.waitForFinal();
    expect(ok.status).toBe(200);
    expect(ok.get('allow')).not.toContain('REFER');
    expect(h.ft.violations.map((v) => v.rule)).toEqual(['allow']); // same deliberate difference
    h.ft.violations.splice(0);
    // RFC 3891 §3: the replaced dialog is ended by the gateway.
    await waitFor(() => call.ended, { what: 'BYE on the replaced leg' });
    expect(call.endedBy).toBe('sbc');
    expect(h.gw.ctx.calls.size).toBe(1);
    expect((await taker.bye()).status).toBe(200);
    const r = await sipp.done;
    expectSippOk(r);
    expect(received(r, /^BYE /)).toHaveLength(1);
  });

  it('REFER advertised (tenant acme): a Replaces from Teams (call-queue pickup) also works; the media reaches the new Teams endpoint', async () => {
    const carrierSock = await RtpSocket.open(C);
    const teams2 = await RtpSocket.open('127.0.5.2');
    sockets.push(carrierSock, teams2);
    const { sipp, call } = await answeredInboundCall('+14255550163', { ip: C, port: carrierSock.port });
    const taker = h.ft.originate({ to: '+14155550123', tenant: ACME, replaces: call, endpoint: 'sip2', media: { address: '127.0.5.2', port: teams2.port } });
    const ok = await taker.waitForFinal();
    expect(ok.status).toBe(200);
    await waitFor(() => call.ended, { what: 'BYE on the replaced leg' });
    const m = taker.media();
    const enc = SrtpContext.fromInline(m.teams.key);
    const sent = await sendG711Stream(teams2, { to: { address: m.gateway!.address!, port: m.gateway!.port }, count: 20, ssrc: 0x1badd00d, payloadType: 0, transform: (p) => enc.protect(p) });
    const want = sent.map((b) => parseRtp(b).payload);
    const got = await carrierSock.waitFor(10, { timeoutMs: 4000, filter: (d) => isRtp(d) && want.some((p) => p.equals(parseRtp(d.data).payload)) });
    expect(got.length).toBeGreaterThanOrEqual(10);
    expect((await taker.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('a Replaces that matches no dialog gets 481', async () => {
    const taker = h.ft.originate({ to: '+14155550123', tenant: ACME, replaces: { callId: 'no-such-call@x', toTag: 'a', fromTag: 'b' } });
    expect((await taker.waitForFinal()).status).toBe(481);
  });
});

describe('carrier-side transfer: INVITE with Replaces from the carrier (§6.13, RFC 3891)', () => {
  const tagOf = (v: string | undefined) => /;\s*tag=([^;>\s]+)/.exec(v ?? '')?.[1];

  it('takes over the carrier leg on the gateway: Teams sees no new call and no re-INVITE, the old carrier leg gets BYE, the new one carries the call to its end', async () => {
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const first = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: CARRIER_IPS[0], to: '+14255550151' });
    const call = await h.nextCall(mark);
    await call.waitForAck();
    // The carrier leg's dialog as the carrier sees it: our tag is the To tag of our 200.
    const ok = (await waitFor(() => receivedSoFar(first.dir, /^SIP\/2\.0 200/)[0], { what: 'the 200 at the carrier' }))!;
    const replaces = `Replaces: ${header(ok, 'Call-ID')};to-tag=${tagOf(header(ok, 'To'))};from-tag=${tagOf(header(ok, 'From'))}`;
    const second = await carrierCall({ scenario: 'carrier-call-bye.xml', from: CARRIER_IPS[1], to: '+14255550151', pauseMs: 600, extraHeader: replaces });
    expectSippOk(second);
    expect(finalStatuses(second)).toEqual([200]);
    expect(bodyOf(received(second, /^SIP\/2\.0 200/)[0]!)).toMatch(/m=audio \d+ RTP\/AVP /);
    expectSippOk(await first.done); // the replaced leg got its BYE
    expect(received(await first.done, /^BYE /)).toHaveLength(1);
    // The new leg's BYE ended the call toward Teams; Teams never saw the transfer.
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    expect(call.endedBy).toBe('sbc');
    expect(h.ft.calls.length).toBe(mark + 1);
    expect(call.requests.items.map((q) => q.method)).toEqual(['BYE']);
    expect(h.ft.violations).toEqual([]);
  });

  it('an INVITE with Replaces that names no call gets 481 and never rings Teams', async () => {
    const mark = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: CARRIER_IPS[2], to: '+14255550152', extraHeader: 'Replaces: no-such-call@carrier;to-tag=x1;from-tag=y2' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([481]);
    expect(h.ft.calls.length).toBe(mark);
  });
});
