/**
 * Mid-call behaviour (issue 5; teams-direct-routing.md §4.13–§4.16, §5.14, §6.10, §6.11,
 * §7.4): hold and re-INVITEs relayed through rtpengine re-offers, session timers, early media.
 * SIPp plays the carrier, the fake Teams checks every SDP it receives (hold tests read the SDP
 * that reached it). After every test: no live call, no rtpengine session, admission at zero.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp, step } from '../../helpers/fake-teams/index.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { RtpSocket, SrtpContext, isRtcp, parseRtp, sendG711Stream } from '../../helpers/rtp.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, carrierCallAsync, expectSippOk, received, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
const sockets: RtpSocket[] = [];
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async (c) => {
  if (process.env.GW_DEBUG && c.task.result?.state === 'fail') console.log(h.logs.filter((l) => Number(l.time) > Date.now() - 3000).map((l) => JSON.stringify(l)).join('\n'));
  for (const s of sockets.splice(0)) s.close();
  h.gw.ctx.features = undefined;
  await h.afterEach();
});
afterAll(async () => h.close());

const C = CARRIER_IPS[3];
const ACME = 'acme.customers.example.net';

function audioOfBody(body: Buffer | string) {
  return audioOf(parseSdp(typeof body === 'string' ? body : body.toString('utf8')))!;
}

describe('hold and re-INVITE', () => {
  it('carrier hold (sendonly, c=0.0.0.0) reaches Teams as a=inactive on the same address/port with rtcp-mux; resume is sendrecv; an offer-less re-INVITE is answered', async () => {
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-hold.xml', from: C, to: '+14255550140', timeoutMs: 20_000 });
    const call = await h.nextCall(mark);
    const r = await sipp.done;
    expectSippOk(r);
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    const first = audioOf(call.offer!)!;
    const reinvites = call.requests.items.filter((q) => q.method === 'INVITE');
    // sendonly hold, c=0.0.0.0 hold, resume; the offer-less re-INVITE is answered by the
    // gateway from rtpengine without disturbing Teams.
    expect(reinvites).toHaveLength(3);
    const audio = reinvites.map((q) => audioOfBody(q.body));
    expect(audio.map((a) => a.direction)).toEqual(['inactive', 'inactive', 'sendrecv']);
    for (const a of audio) {
      expect(a.address).toBe(first.address);
      expect(a.port).toBe(first.port);
      expect(a.address).not.toBe('0.0.0.0');
      expect(a.rtcpMux).toBe(true);
      expect(a.proto).toBe('RTP/SAVP');
    }
    // Teams' contact rules hold on in-dialog requests too.
    for (const q of reinvites) expect(q.getAll('contact')[0]).toBe('<sip:+14255550140@acme.customers.example.net:5061;transport=tls>');
    // The offer-less re-INVITE got an RTP/AVP offer from rtpengine in its 200 (SIPp checked
    // it); the carrier's answer in the ACK reached rtpengine.
    const ok5 = received(r, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*5 INVITE/i.test(t))!;
    expect(ok5).toMatch(/c=IN IP4 127\.0\.6\.50/);
    expect(h.ft.violations).toEqual([]);
  });

  it("Teams' own hold (sendonly) and resume pass through to the carrier; the answers keep address, port and rtcp-mux", async () => {
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-teams-hold.xml', from: C, to: '+14255550141', timeoutMs: 20_000 });
    const call = await h.nextCall(mark);
    await call.waitForAck();
    const first = audioOf(call.offer!)!;
    const hold = await call.reinvite({ direction: 'sendonly' });
    expect(hold.status).toBe(200);
    const ha = audioOfBody(hold.body);
    expect(['recvonly', 'inactive']).toContain(ha.direction);
    expect([ha.address, ha.port, ha.rtcpMux]).toEqual([first.address, first.port, true]);
    const resume = await call.reinvite({ direction: 'sendrecv' });
    expect(resume.status).toBe(200);
    const ra = audioOfBody(resume.body);
    expect([ra.direction, ra.address, ra.port, ra.rtcpMux]).toEqual(['sendrecv', first.address, first.port, true]);
    expect(resume.get('contact')).toContain('acme.customers.example.net');
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done); // SIPp checked a=sendonly, then a=sendrecv
  });
});

describe('session timers (RFC 4028, §4.16)', () => {
  it('Teams is the refresher and never refreshes: the call is torn down on both legs and in rtpengine', async () => {
    h.gw.ctx.features = { sessionTimer: { sessionExpires: 1800, minSeconds: 2, refresherForTeamsCalls: 'uac' } };
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460140', tenant: ACME, sessionExpires: 3 });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    expect(ok.get('session-expires')).toBe('3;refresher=uac');
    const t0 = Date.now();
    await waitFor(() => call.ended, { timeoutMs: 5000, what: 'BYE from the gateway' });
    expect(call.endedBy).toBe('sbc');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expectSippOk(await target.done); // the carrier got its BYE too
    expect(await h.pool.activeSessions()).toBe(0);
  });

  it('Teams refreshes in time: the call survives past the first expiry; the refresh is relayed', async () => {
    h.gw.ctx.features = { sessionTimer: { sessionExpires: 1800, minSeconds: 2, refresherForTeamsCalls: 'uac' } };
    const target = await startTarget({ scenario: 'target-answer-reinvite.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460141', tenant: ACME, sessionExpires: 3 });
    expect((await call.waitForFinal()).status).toBe(200);
    await sleep(1200);
    const refresh = await call.reinvite({ headers: { Supported: 'timer', 'Session-Expires': '3;refresher=uac' } });
    expect(refresh.status).toBe(200);
    expect(refresh.get('session-expires')).toBe('3;refresher=uac');
    await sleep(1500); // beyond the first expiry (2 s after the answer)
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await target.done);
  });

  it('a Teams refresh re-INVITE with its SDP unchanged (same o= version, then only the version bumped) is answered by the gateway with the SDP Teams already has; the carrier never sees it', async () => {
    h.gw.ctx.features = { sessionTimer: { sessionExpires: 1800, minSeconds: 2, refresherForTeamsCalls: 'uac' } };
    // target-answer.xml expects the BYE next: a relayed re-INVITE would fail the carrier side.
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460141', tenant: ACME, sessionExpires: 3 });
    const answer = await call.waitForFinal();
    expect(answer.status).toBe(200);
    await sleep(1200);
    const offer = call.invite.body.toString('utf8');
    const refresh = await call.reinvite({ sdp: offer, headers: { Supported: 'timer', 'Session-Expires': '3;refresher=uac' } });
    expect(refresh.status).toBe(200);
    expect(refresh.get('session-expires')).toBe('3;refresher=uac');
    expect(refresh.getAll('contact')[0]).toContain('acme.customers.example.net');
    // RFC 3264 §8: an unchanged offer gets the previous answer, o= version included.
    expect(refresh.body.toString('utf8')).toBe(answer.body.toString('utf8'));
    // The same session with its version bumped (and nothing else) changes nothing either.
    const bumped = offer.replace(/^(o=\S+ \S+ )(\d+)/m, (_m, head: string, v: string) => `${head}${Number(v) + 1}`);
    expect(bumped).not.toBe(offer);
    const refresh2 = await call.reinvite({ sdp: bumped, headers: { Supported: 'timer', 'Session-Expires': '3;refresher=uac' } });
    expect(refresh2.status).toBe(200);
    expect(refresh2.body.toString('utf8')).toBe(answer.body.toString('utf8'));
    await sleep(1500); // beyond the first expiry (2 s after the answer): the refreshes restarted the timer
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await target.done);
  });

  it('the gateway is the refresher (refresher=uas toward Teams): it re-INVITEs Teams at half the interval', async () => {
    h.gw.ctx.features = { sessionTimer: { sessionExpires: 1800, minSeconds: 2, refresherForTeamsCalls: 'uas' } };
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460142', tenant: ACME, sessionExpires: 3 });
    const ok = await call.waitForFinal();
    expect(ok.get('session-expires')).toBe('3;refresher=uas');
    const first = audioOfBody(ok.body);
    const re = await call.waitForRequest('INVITE', 3000);
    // RFC 4028 §7.4: in our refresh re-INVITE the gateway is the UAC, and it stays the refresher.
    expect(re.get('session-expires')).toMatch(/^3;refresher=uac/);
    expect(re.getAll('contact')[0]).toBe('<sip:+442079460142@acme.customers.example.net:5061;transport=tls>');
    const a = audioOfBody(re.body);
    expect([a.address, a.port]).toEqual([first.address, first.port]);
    await sleep(1500);
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await target.done);
  });

  it('PSTN → Teams: Teams answers with refresher=uac, so the gateway refreshes toward Teams', async () => {
    h.gw.ctx.features = { sessionTimer: { sessionExpires: 1800, minSeconds: 2, refresherForTeamsCalls: 'uac' } };
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C, to: '+14255550142' });
    const call = await h.nextCall(mark);
    expect(call.invite.getAll('supported').join(',')).toContain('timer');
    await call.answer({ sessionExpires: 3 });
    await call.waitForAck();
    const re = await call.waitForRequest('INVITE', 3000);
    expect(re.get('session-expires')).toMatch(/^3;refresher=uac/);
    await sleep(1500);
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('Session-Expires below the gateway minimum gets 422 with Min-SE', async () => {
    h.gw.ctx.features = { sessionTimer: { sessionExpires: 1800, minSeconds: 120, refresherForTeamsCalls: 'uac' } };
    const call = h.ft.originate({ to: '+442079460143', tenant: ACME, sessionExpires: 90 });
    const res = await call.waitForFinal();
    expect(res.status).toBe(422);
    expect(res.get('min-se')).toBe('120');
  });
});

/** RTP (version 2, not RTCP). */
function isRtp(d: { data: Buffer }): boolean {
  return d.data.length >= 12 && d.data[0]! >> 6 === 2 && !isRtcp(d.data);
}

describe('early media (§4.13, §4.14)', () => {
  it('ringback bot: 183 with SDP before the answer, its SRTP media reaches the carrier as RTP before the 200', async () => {
    const carrierSock = await RtpSocket.open(C);
    const teamsSock = await RtpSocket.open('127.0.5.1');
    sockets.push(carrierSock, teamsSock);
    const mark = h.ft.calls.length;
    // Ring at once (scripted, no final response): a slow test runner must not hit the gateway's
    // provisional timeout (inviteTimeoutMs) before the test drives the call by hand.
    h.ft.script([step.ringing(0)]);
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C, to: '+14255550143', rtp: { ip: C, port: carrierSock.port } });
    const call = await h.nextCall(mark);
    await call.progress({ media: { address: '127.0.5.1', port: teamsSock.port } });
    const gw = audioOf(call.offer!)!;
    const enc = SrtpContext.fromInline(call.local!.key);
    const sent = await sendG711Stream(teamsSock, { to: { address: gw.address!, port: gw.port }, count: 20, ssrc: 0x5eed1234, payloadType: 0, transform: (p) => enc.protect(p) });
    const got = await carrierSock.waitFor(10, { timeoutMs: 4000, filter: isRtp });
    const want = sent.map((b) => parseRtp(b).payload);
    expect(want.findIndex((p) => p.equals(parseRtp(got[0]!.data).payload))).toBeGreaterThanOrEqual(0);
    expect(call.state).toBe('early'); // all of that before the answer
    await call.answer();
    await call.waitForAck();
    expect((await call.bye()).status).toBe(200);
    const r = await sipp.done;
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 183/)).toHaveLength(1);
  });

  it('Teams hangs up the moment it has the ACK (BYE racing the answer toward the carrier): the carrier gets 200 then BYE, never a 500', async () => {
    // The gateway ACKs Teams' 200 before it has answered the carrier; a BYE right behind the
    // ACK used to tear the call down under the answer (media session gone → 500).
    for (let i = 0; i < 8; i++) {
      const mark = h.ft.calls.length;
      const logMark = h.logs.length;
      h.ft.script([step.ringing(0)]);
      const sipp = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C, to: '+14255550143' });
      const call = await h.nextCall(mark);
      await call.answer();
      await call.waitForAck();
      expect((await call.bye()).status).toBe(200);
      const r = await sipp.done;
      expectSippOk(r);
      expect(received(r, /^SIP\/2\.0 5\d\d/)).toHaveLength(0);
      expect(h.logs.slice(logMark).filter((l) => Number(l.level) >= 50)).toEqual([]);
      await waitFor(() => h.gw.ctx.calls.size === 0, { timeoutMs: 3000 });
    }
  });

  it('at most one 183 with SDP reaches the carrier; a 200 then follows', async () => {
    h.ft.script([step.progress(), step.progress(10, 1), step.answer(20, 1)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550144' });
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 183/)).toHaveLength(1);
    expect(received(r, /^SIP\/2\.0 200/).some((t) => /CSeq:\s*1 INVITE/i.test(t))).toBe(true);
  });

  it('a 200 with no 183 before it: the carrier gets 180 then the 200 with SDP', async () => {
    h.ft.script([step.ringing(0), step.answer(20)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550145' });
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 183/)).toHaveLength(0);
    expect(received(r, /^SIP\/2\.0 180/)).toHaveLength(1);
    const ok = received(r, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*1 INVITE/i.test(t))!;
    expect(ok).toMatch(/m=audio \d+ RTP\/AVP .*101/);
    expect(ok).toMatch(/a=rtpmap:101 telephone-event\/8000/);
  });

  it('per-carrier override: convert-to-180 for this carrier while the global default passes 183', async () => {
    expect(h.config.carriers.earlyMedia).toBe('pass');
    h.gw.ctx.features = { carrierEarlyMedia: { 'carrier-a': 'convert-to-180' } };
    h.ft.script([step.progress(), step.answer(50)]);
    const r = await carrierCall({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550146' });
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 183/)).toHaveLength(0);
    const ringing = received(r, /^SIP\/2\.0 180/);
    expect(ringing).toHaveLength(1);
    expect(ringing[0]).not.toMatch(/m=audio/);
  });
});
