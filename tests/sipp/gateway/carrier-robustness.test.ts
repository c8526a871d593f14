/**
 * Carrier-side robustness (teams-direct-routing.md §4.6, §4.17): late offer from carriers, 100rel/
 * PRACK and UPDATE handled on the carrier leg only. SIPp plays the carrier, the fake Teams
 * checks every message it gets (no 100rel, PRACK or UPDATE reaches it, SRTP offers only), and
 * media is checked on real packets through rtpengine. After every test: no live call, no
 * rtpengine session, admission counters at zero.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp } from '../../helpers/fake-teams/index.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { RtpSocket, SrtpContext, parseRtp, sendG711Stream } from '../../helpers/rtp.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, logged, startGatewayHarness } from '../../integration/gateway/harness.js';
import { bodyOf, carrierCallAsync, carrierSideAddress, expectSippOk, finalStatuses, header, isRtpDatagram, received, receivedSoFar, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
const sockets: RtpSocket[] = [];
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async (c) => {
  if (process.env.GW_DEBUG && c.task.result?.state === 'fail') console.log(h.logs.slice(-60).map((l) => JSON.stringify(l)).join('\n'));
  for (const s of sockets.splice(0)) s.close();
  h.gw.ctx.features = undefined;
  await h.afterEach();
});
afterAll(async () => h.close());

const ACME = 'acme.customers.example.net';
const TEAMS_MEDIA_IP = '127.0.5.1';

async function socket(ip: string): Promise<RtpSocket> {
  const s = await RtpSocket.open(ip);
  sockets.push(s);
  return s;
}

/** c=/m= of an SDP text. */
function endpointOf(sdp: string): { address: string; port: number } {
  const a = audioOf(parseSdp(sdp))!;
  return { address: a.address!, port: a.port };
}


/**
 * Teams' side of a call never changed while the carrier moved its media: it got no in-dialog
 * request but the BYE, the gateway's media address is the one it first offered, and the fake
 * Teams saw no rule broken.
 */
function expectTeamsUntouched(call: Awaited<ReturnType<GatewayHarness['nextCall']>>, first: { address?: string | undefined; port: number }): void {
  expect(call.requests.items.filter((q) => q.method !== 'BYE').map((q) => q.method)).toEqual([]);
  expect([call.media().gateway!.address, call.media().gateway!.port]).toEqual([first.address, first.port]);
  expect(h.ft.violations).toEqual([]);
}

/** Teams sends SRTP (its key) to the gateway; the plain RTP must arrive at `at`. */
async function teamsToCarrier(call: { media(): { gateway?: { address?: string | undefined; port: number } | undefined; teams: { key: string } } }, teamsSock: RtpSocket, at: RtpSocket, ssrc: number): Promise<void> {
  const m = call.media();
  const enc = SrtpContext.fromInline(m.teams.key);
  const sent = await sendG711Stream(teamsSock, { to: { address: m.gateway!.address!, port: m.gateway!.port }, count: 12, ssrc, ptimeMs: 10, transform: (p) => enc.protect(p) });
  const got = await at.waitFor(10, { timeoutMs: 4000, filter: (d) => isRtpDatagram(d) && d.data.readUInt32BE(8) === ssrc });
  const want = sent.map((b) => parseRtp(b).payload);
  const payloads = got.map((d) => parseRtp(d.data).payload);
  const k = want.findIndex((p) => p.equals(payloads[0]!));
  expect(k).toBeGreaterThanOrEqual(0);
  expect(payloads.slice(0, 8)).toEqual(want.slice(k, k + 8));
}

/** The carrier sends RTP to `to`; it must arrive at Teams as SRTP under the gateway's key. */
async function carrierToTeams(gatewayKey: string, from: RtpSocket, to: { address: string; port: number }, teamsSock: RtpSocket, ssrc: number): Promise<void> {
  const sent = await sendG711Stream(from, { to, count: 12, ssrc, ptimeMs: 10 });
  const got = await teamsSock.waitFor(10, { timeoutMs: 4000, filter: (d) => isRtpDatagram(d) && d.data.readUInt32BE(8) === ssrc });
  const dec = SrtpContext.fromInline(gatewayKey);
  const payloads = got.map((d) => parseRtp(dec.unprotect(d.data)).payload); // throws on a bad auth tag
  const want = sent.map((b) => parseRtp(b).payload);
  const k = want.findIndex((p) => p.equals(payloads[0]!));
  expect(k).toBeGreaterThanOrEqual(0);
  expect(payloads.slice(0, 8)).toEqual(want.slice(k, k + 8));
}

describe('late offer from a carrier (§4.6, RFC 3261 §13.2.1)', () => {
  it('Teams gets an SRTP offer; the 200 to the carrier carries an RTP/AVP offer; the answer from the ACK steers rtpengine; RTP flows both ways', async () => {
    const carrierIp = CARRIER_IPS[5];
    const carrierSock = await socket(carrierIp);
    const teamsSock = await socket(TEAMS_MEDIA_IP);
    const completed = logged(h, 'late offer completed with the answer from the ACK').length;
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-late-offer.xml', from: carrierIp, to: '+14255550180', rtp: { ip: carrierIp, port: carrierSock.port }, pauseMs: 3000 });
    const call = await h.nextCall(mark);
    // Teams needs a full offer (§4.6): SRTP with one _80 key and telephone-event, from rtpengine.
    const offer = audioOf(call.offer!)!;
    expect(offer.proto).toBe('RTP/SAVP');
    expect(offer.crypto.map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
    expect(offer.codecs.map((c) => c.name.toUpperCase())).toContain('TELEPHONE-EVENT');
    expect(offer.address).not.toBe(carrierIp);
    await call.ringing();
    await call.answer({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await call.waitForAck();
    await waitFor(() => logged(h, 'late offer completed with the answer from the ACK').length > completed, { what: 'the ACK answer applied' });

    // The 200 to the carrier is an offer: RTP/AVP at rtpengine's carrier side, not Teams' SDP.
    const ok = receivedSoFar(sipp.dir, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*1 INVITE/i.test(t))!;
    const toCarrier = audioOf(parseSdp(bodyOf(ok)))!;
    expect(toCarrier.proto).toBe('RTP/AVP');
    expect(toCarrier.crypto).toEqual([]);
    expect(toCarrier.address).toBe(h.rtpengine.ip);
    expect(toCarrier.codecs.map((c) => c.name.toUpperCase())).toEqual(expect.arrayContaining(['PCMU', 'TELEPHONE-EVENT']));
    // The 180 before it carried no SDP (our offer exists only with the 2xx).
    for (const r of receivedSoFar(sipp.dir, /^SIP\/2\.0 18\d/)) expect(bodyOf(r).trim()).toBe('');

    // Teams → carrier first: the carrier has sent nothing, so rtpengine can only know the
    // carrier's address from the ACK (the stand-in offer named the discard port).
    await teamsToCarrier(call, teamsSock, carrierSock, 0x1a7e0001);
    await carrierToTeams(call.media().gateway!.crypto!.key!, carrierSock, { address: toCarrier.address!, port: toCarrier.port }, teamsSock, 0x1a7e0002);

    const r = await sipp.done;
    expectSippOk(r);
    expect(h.ft.violations).toEqual([]);
  });
});

describe('100rel/PRACK on the carrier leg only (§4.17, RFC 3262)', () => {
  it('carrier INVITE with Require: 100rel: reliable 180 and 183 (RSeq), each PRACK answered, the call completes; Teams never sees 100rel', async () => {
    const carrierIp = CARRIER_IPS[6];
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-100rel-require.xml', from: carrierIp, to: '+14255550181', pauseMs: 300 });
    const call = await h.nextCall(mark);
    const tags = [...call.invite.getAll('require'), ...call.invite.getAll('supported')].join(',').toLowerCase();
    expect(tags).not.toContain('100rel');
    await call.ringing();
    await call.progress();
    // The 200 waits for the PRACK of the 183 (RFC 3262 §3); give the carrier time to send it.
    await waitFor(() => receivedSoFar(sipp.dir, /^SIP\/2\.0 183/).length > 0, { what: '183 at the carrier' });
    await call.answer();
    await call.waitForAck();
    const r = await sipp.done;
    expectSippOk(r);
    const r180 = received(r, /^SIP\/2\.0 180/);
    const r183 = received(r, /^SIP\/2\.0 183/);
    expect(r180.length).toBeGreaterThanOrEqual(1);
    expect(r183.length).toBeGreaterThanOrEqual(1);
    expect(header(r180[0]!, 'Require')).toContain('100rel');
    expect(header(r183[0]!, 'Require')).toContain('100rel');
    const rseq = [Number(header(r180[0]!, 'RSeq')), Number(header(r183[0]!, 'RSeq'))];
    expect(rseq[1]).toBe(rseq[0]! + 1); // RFC 3262 §3: RSeq increases by one per reliable provisional
    expect(bodyOf(r183[0]!)).toMatch(/m=audio \d+ RTP\/AVP/);
    const prackOks = received(r, /^SIP\/2\.0 200/).filter((t) => /CSeq:\s*\d+ PRACK/i.test(t));
    expect(prackOks).toHaveLength(2);
    // Nothing of it reached Teams: no PRACK, no 100rel (the fake Teams asserts both too).
    expect(call.requests.items.map((q) => q.method)).not.toContain('PRACK');
    expect(h.ft.violations).toEqual([]);
  });

  it('carrier INVITE with Supported: 100rel: the 183 with SDP goes reliably and is PRACKed; an early UPDATE moves the media, and mid-call UPDATEs (with and without SDP) are answered; Teams keeps its SDP', async () => {
    const carrierIp = CARRIER_IPS[7];
    const sockA = await socket(carrierIp);
    const sockB = await socket(carrierIp);
    const sockC = await socket(carrierIp);
    const teamsSock = await socket(TEAMS_MEDIA_IP);
    const early = logged(h, 'UPDATE in the early dialog answered').length;
    const local = logged(h, 'UPDATE answered locally').length;
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({
      scenario: 'carrier-100rel-update.xml',
      from: carrierIp,
      to: '+14255550182',
      rtp: { ip: carrierIp, port: sockA.port },
      keys: { rtp_port2: sockB.port, rtp_port3: sockC.port },
      pauseMs: 3000,
      timeoutMs: 25_000,
    });
    const call = await h.nextCall(mark);
    const first = audioOf(call.offer!)!;
    await call.progress({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await waitFor(() => logged(h, 'UPDATE in the early dialog answered').length > early, { what: 'early UPDATE answered' });
    // Early media now goes to the port of the early UPDATE (B), not the INVITE's (A).
    await teamsToCarrier(call, teamsSock, sockB, 0x0e0a0001);
    await call.answer({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await call.waitForAck();
    await waitFor(() => logged(h, 'UPDATE answered locally').length > local, { what: 'mid-call UPDATE answered' });
    await waitFor(() => receivedSoFar(sipp.dir, /^SIP\/2\.0 200/).filter((t) => /CSeq:\s*5 UPDATE/i.test(t)).length > 0, { what: '200 to the UPDATE without SDP' });
    // …and after the mid-call UPDATE to port C.
    await teamsToCarrier(call, teamsSock, sockC, 0x0e0a0002);
    const sockAGot = sockA.received.filter((d) => isRtpDatagram(d) && [0x0e0a0001, 0x0e0a0002].includes(d.data.readUInt32BE(8)));
    expect(sockAGot).toHaveLength(0);

    const r = await sipp.done;
    expectSippOk(r); // SIPp checked Require/RSeq on the 183 and SDP in both UPDATE answers
    const r183 = received(r, /^SIP\/2\.0 183/)[0]!;
    expect(header(r183, 'Require')).toContain('100rel');
    expect(header(r183, 'RSeq')).toMatch(/^\d+$/);
    const answers = received(r, /^SIP\/2\.0 200/).filter((t) => /CSeq:\s*[34] UPDATE/i.test(t));
    expect(answers).toHaveLength(2);
    // Both UPDATE answers name rtpengine's carrier-side address and port, unchanged.
    const a183 = endpointOf(bodyOf(r183));
    for (const a of answers) expect(endpointOf(bodyOf(a))).toEqual(a183);
    const refresh = received(r, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*5 UPDATE/i.test(t))!;
    expect(bodyOf(refresh).trim()).toBe('');
    expectTeamsUntouched(call, first);
  });

  it('carrier PRACK with a new offer (RFC 3262 §5): the 200 to the PRACK answers it from rtpengine, before the 200 to the INVITE; early media moves to the new port; Teams keeps its SDP', async () => {
    const carrierIp = CARRIER_IPS[7];
    const sockA = await socket(carrierIp);
    const sockB = await socket(carrierIp);
    const teamsSock = await socket(TEAMS_MEDIA_IP);
    const answered = logged(h, 'PRACK in the early dialog answered').length;
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({
      scenario: 'carrier-100rel-prack-offer.xml',
      from: carrierIp,
      to: '+14255550183',
      rtp: { ip: carrierIp, port: sockA.port },
      keys: { rtp_port2: sockB.port },
      pauseMs: 1000,
      timeoutMs: 20_000,
    });
    const call = await h.nextCall(mark);
    const first = audioOf(call.offer!)!;
    await call.progress({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await waitFor(() => logged(h, 'PRACK in the early dialog answered').length > answered, { what: 'offer in the PRACK answered' });
    // Early media now goes to the PRACK offer's port (B), not the INVITE's (A).
    await teamsToCarrier(call, teamsSock, sockB, 0x0e0b0001);
    await call.answer({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await call.waitForAck();

    const r = await sipp.done;
    expectSippOk(r); // SIPp checked Require/RSeq on the 183 and an SDP answer in the 200 to the PRACK
    const r183 = received(r, /^SIP\/2\.0 183/)[0]!;
    const prackOk = received(r, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*2 PRACK/i.test(t))!;
    // The answer names rtpengine's carrier-side address and port, as the 183 did.
    expect(endpointOf(bodyOf(prackOk))).toEqual(endpointOf(bodyOf(r183)));
    // RFC 3262 §5 / §3: the 2xx to the INVITE came after the PRACK's answer.
    const lines = received(r, /^SIP\/2\.0 200/).map((t) => (/CSeq:\s*(\d+ \w+)/i.exec(t) ?? [])[1]);
    expect(lines.indexOf('2 PRACK')).toBeLessThan(lines.indexOf('1 INVITE'));
    expect(sockA.received.filter((d) => isRtpDatagram(d) && d.data.readUInt32BE(8) === 0x0e0b0001)).toHaveLength(0);
    expectTeamsUntouched(call, first);
  });

  /** The carrier (SIPp) of a late-offer call with 100rel: Supported, and Require when `requires`. */
  function lateOfferCarrier(o: { carrierIp: string; to: string; requires: boolean; rtpPort: number }) {
    return carrierCallAsync({
      scenario: 'carrier-100rel-late-offer.xml',
      from: o.carrierIp,
      to: o.to,
      extraHeader: o.requires ? 'Require: 100rel' : 'X-Carrier-Test: 1',
      rtp: { ip: o.carrierIp, port: o.rtpPort },
      pauseMs: 3000,
      timeoutMs: 20_000,
    });
  }

  /** The one reliable 183 carried our offer (returned), and the 200 to the INVITE repeats it byte for byte. */
  function expectOfferRepeated(r: Awaited<Awaited<ReturnType<typeof carrierCallAsync>>['done']>): string {
    const r183 = received(r, /^SIP\/2\.0 183/);
    expect(r183).toHaveLength(1);
    const invite200 = received(r, /^SIP\/2\.0 200/).find((t) => /CSeq:\s*1 INVITE/i.test(t))!;
    expect(bodyOf(invite200)).toBe(bodyOf(r183[0]!));
    return r183[0]!;
  }

  /**
   * Late offer with 100rel (RFC 3262 §5): our offer goes in a reliable 183, the carrier answers
   * in its PRACK, and Teams' early media reaches the carrier before the call is answered; the 200
   * repeats the offer, the ACK has no SDP. Teams rings first: a carrier that only supports 100rel
   * gets that 180 unreliably and our offer made from Teams' early SDP; one that requires it gets
   * the offer at once, made from a stand-in for Teams' answer, which Teams' early SDP replaces.
   */
  async function lateOfferWith100rel(o: { requires: boolean; carrierIp: string; to: string; ssrc: number }): Promise<void> {
    const carrierSock = await socket(o.carrierIp);
    const teamsSock = await socket(TEAMS_MEDIA_IP);
    const fromPrack = logged(h, 'late offer completed with the answer from the PRACK').length;
    const replaced = logged(h, "late offer: Teams' early SDP replaced the stand-in").length;
    const noAnswer = /^late offer: the (ACK|PRACK).* carried no answer/;
    const unanswered = logged(h, noAnswer).length;
    const mark = h.ft.calls.length;
    const sipp = await lateOfferCarrier({ carrierIp: o.carrierIp, to: o.to, requires: o.requires, rtpPort: carrierSock.port });
    const call = await h.nextCall(mark);
    const first = audioOf(call.offer!)!;
    expect(first.proto).toBe('RTP/SAVP'); // §4.6: Teams gets a full SRTP offer
    // Teams rings first (180 without SDP), then sends early SDP.
    await call.ringing();
    await call.progress({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await waitFor(() => logged(h, 'late offer completed with the answer from the PRACK').length > fromPrack, { what: 'the PRACK answer applied' });
    // A requiring carrier's offer came from a stand-in: rtpengine has Teams' key once its early
    // SDP replaced it (a supporting carrier's offer was made from that SDP).
    if (o.requires) await waitFor(() => logged(h, "late offer: Teams' early SDP replaced the stand-in").length > replaced, { what: 'the stand-in replaced' });
    else expect(logged(h, "late offer: Teams' early SDP replaced the stand-in")).toHaveLength(replaced);
    // Early media (Teams' ringback or announcement) reaches the carrier before the answer, at
    // the address of the PRACK's answer (the stand-in offer named the discard port).
    await teamsToCarrier(call, teamsSock, carrierSock, o.ssrc);
    await call.answer({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    await call.waitForAck();
    const ours = endpointOf(bodyOf(receivedSoFar(sipp.dir, /^SIP\/2\.0 183/)[0]!));
    await carrierToTeams(call.media().gateway!.crypto!.key!, carrierSock, ours, teamsSock, o.ssrc + 1);

    const r = await sipp.done;
    expectSippOk(r); // SIPp checked the 183: Require: 100rel, RSeq, an RTP/AVP offer with telephone-event
    const offer = audioOf(parseSdp(bodyOf(expectOfferRepeated(r))))!;
    expect([offer.address, offer.proto, offer.crypto]).toEqual([h.rtpengine.ip, 'RTP/AVP', []]);
    // RFC 3262 §5: nothing reliable before the offer. Teams' 180 reaches a carrier that only
    // supports 100rel unreliably; one that requires it gets the 183 with our offer instead.
    const r180 = received(r, /^SIP\/2\.0 180/);
    expect(r180).toHaveLength(o.requires ? 0 : 1);
    for (const p of r180) expect(header(p, 'RSeq')).toBeUndefined();
    // The 200 to the INVITE came after the 200 to the PRACK.
    const lines = received(r, /^SIP\/2\.0 200/).map((t) => (/CSeq:\s*(\d+ \w+)/i.exec(t) ?? [])[1]);
    expect(lines.indexOf('2 PRACK')).toBeLessThan(lines.indexOf('1 INVITE'));
    expect(logged(h, noAnswer)).toHaveLength(unanswered);
    expectTeamsUntouched(call, first);
  }

  it('late offer, carrier requires 100rel: Teams\' 180 becomes a reliable 183 with our offer (from a stand-in), answered in the PRACK; Teams\' early SDP replaces the stand-in and its early media flows; the 200 repeats the offer', async () => {
    await lateOfferWith100rel({ requires: true, carrierIp: CARRIER_IPS[8], to: '+14255550184', ssrc: 0x1a7e0101 });
  });

  it('late offer, carrier supports 100rel: Teams\' 180 goes unreliably, then its early SDP becomes our offer in a reliable 183', async () => {
    await lateOfferWith100rel({ requires: false, carrierIp: CARRIER_IPS[9], to: '+14255550185', ssrc: 0x1a7e0201 });
  });

  /**
   * Late offer from a carrier that requires 100rel, answered by Teams without early SDP: the
   * ringing member(s) make our offer from a stand-in in a reliable 183; after the PRACK the
   * carrier hears the tone (paced PCMU from rtpengine's carrier side, not silence) until member
   * `winner` answers; its SDP replaces the stand-in, media flows both ways, the 200 repeats the
   * (sendrecv) offer, and no 180 went out. The stand-in names one codec, so Teams is offered
   * only that one: the winner, preferring `teamsCodec` (a tenant codec offered later), answers
   * with the codec of our offer to the carrier. Returns the Teams calls.
   */
  async function standInWithTone(o: { carrierIp: string; to: string; members: number; winner: number; ssrc: number; teamsCodec: string }) {
    const carrierSock = await socket(o.carrierIp);
    const teamsSock = await socket(TEAMS_MEDIA_IP);
    const count = (msg: string) => logged(h, msg).length;
    const before = { prack: count('late offer completed with the answer from the PRACK'), started: count('late-offer ringback started'), stopped: count('late-offer ringback stopped') };
    const mark = h.ft.calls.length;
    const sipp = await lateOfferCarrier({ carrierIp: o.carrierIp, to: o.to, requires: true, rtpPort: carrierSock.port });
    const calls = [];
    for (let k = 0; k < o.members; k++) calls.push(await h.nextCall(mark));
    const first = audioOf(calls[0]!.offer!)!;
    for (const c of calls) await c.ringing();
    await waitFor(() => count('late offer completed with the answer from the PRACK') > before.prack, { what: 'the PRACK answer applied' });
    await waitFor(() => count('late-offer ringback started') > before.started, { what: 'ringback started' });
    const ours = endpointOf(bodyOf(receivedSoFar(sipp.dir, /^SIP\/2\.0 183/)[0]!));
    const tone = await carrierSock.waitFor(25, { timeoutMs: 4000, filter: (d) => isRtpDatagram(d) && d.from.address === ours.address && d.from.port === ours.port });
    expect(new Set(tone.map((d) => parseRtp(d.data).payloadType))).toEqual(new Set([0]));
    expect(new Set(tone.flatMap((d) => [...parseRtp(d.data).payload])).size).toBeGreaterThan(16);

    const winner = calls[o.winner]!;
    await winner.answer({ media: { address: TEAMS_MEDIA_IP, port: teamsSock.port }, codec: o.teamsCodec });
    await winner.waitForAck();
    await waitFor(() => count('late-offer ringback stopped') > before.stopped, { what: 'ringback stopped' });
    // Teams' real SDP replaced the stand-in: media reaches it, and the carrier gets Teams' media.
    await teamsToCarrier(winner, teamsSock, carrierSock, o.ssrc);
    await carrierToTeams(winner.media().gateway!.crypto!.key!, carrierSock, ours, teamsSock, o.ssrc + 1);

    const r = await sipp.done;
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 180/)).toHaveLength(0);
    const offer = audioOf(parseSdp(bodyOf(expectOfferRepeated(r))))!;
    expect(offer.direction).toBe('sendrecv');
    const audio = (cs: ReadonlyArray<{ name: string }>) => cs.map((c) => c.name.toUpperCase()).filter((n) => n !== 'TELEPHONE-EVENT' && n !== 'CN');
    for (const c of calls) expect(audio(audioOf(c.offer!)!.codecs)).toEqual(['PCMU']); // acme's first codec
    expect(audio(winner.local!.codecs)).toEqual(audio(offer.codecs));
    expect(h.ft.violations).toEqual([]);
    return { calls, winner, first };
  }

  it('late offer, carrier requires 100rel, Teams rings without SDP: our offer (rtpengine answering a stand-in for Teams) goes in a reliable 183; after the PRACK the carrier hears a ringing tone until Teams answers; then media flows both ways and the 200 repeats the offer', async () => {
    const { winner, first } = await standInWithTone({ carrierIp: CARRIER_IPS[8], to: '+14255550186', members: 1, winner: 0, ssrc: 0x1a7e0301, teamsCodec: 'G722' });
    expectTeamsUntouched(winner, first);
  });

  it('late offer, carrier requires 100rel, to a ring group: the first member ringing makes our offer (from a stand-in) in a reliable 183 with the tone; the winner\'s SDP replaces the stand-in, the 200 repeats the offer, RTP flows both ways', async () => {
    // +14255550170: the fixture's simultaneous ring group (3 members).
    const { calls, winner } = await standInWithTone({ carrierIp: CARRIER_IPS[9], to: '+14255550170', members: 3, winner: 1, ssrc: 0x1a7e0401, teamsCodec: 'PCMA' });
    for (const c of calls.filter((x) => x !== winner)) await c.waitForCancel();
  });

  it('late offer, carrier requires 100rel, Teams rings without SDP, the caller gives up while hearing the tone: CANCEL reaches Teams, the carrier gets 487, the tone ends with the call', async () => {
    const carrierSock = await socket(CARRIER_IPS[8]);
    const count = (msg: string) => logged(h, msg).length;
    const before = { prack: count('late offer completed with the answer from the PRACK'), started: count('late-offer ringback started') };
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({
      scenario: 'carrier-100rel-late-offer-cancel.xml',
      from: CARRIER_IPS[8],
      to: '+14255550187',
      rtp: { ip: CARRIER_IPS[8], port: carrierSock.port },
      pauseMs: 1500,
      timeoutMs: 20_000,
    });
    const call = await h.nextCall(mark);
    await call.ringing();
    await waitFor(() => count('late offer completed with the answer from the PRACK') > before.prack, { what: 'the PRACK answer applied' });
    await waitFor(() => count('late-offer ringback started') > before.started, { what: 'ringback started' });
    const ours = endpointOf(bodyOf(receivedSoFar(sipp.dir, /^SIP\/2\.0 183/)[0]!));
    const fromOurs = (d: { data: Buffer; from: { address: string; port: number } }) => isRtpDatagram(d) && d.from.address === ours.address && d.from.port === ours.port;
    expect(await carrierSock.waitFor(10, { timeoutMs: 4000, filter: fromOurs })).toHaveLength(10);
    await call.waitForCancel(5000);
    const r = await sipp.done;
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([487]);
    expect(received(r, /^SIP\/2\.0 200/).map((t) => (/CSeq:\s*(\d+ \w+)/i.exec(t) ?? [])[1])).toEqual(['2 PRACK', '1 CANCEL']);
    // The tone ended with the call: nothing more from rtpengine's carrier port.
    await waitFor(() => h.gw.ctx.calls.size === 0, { what: 'the call closed' });
    const heard = carrierSock.received.filter(fromOurs).length;
    await sleep(300);
    expect(carrierSock.received.filter(fromOurs)).toHaveLength(heard);
    expect(h.ft.violations).toEqual([]);
  });

  it('Teams → PSTN: the gateway offers 100rel, PRACKs the reliable 183, Teams gets it without 100rel; an early UPDATE moves the media; a 200 without SDP still gives Teams an answer; an UPDATE putting the call on hold becomes a re-INVITE to Teams', async () => {
    const targetIp = TARGET_IPS[0];
    const sockA = await socket(targetIp);
    const sockB = await socket(targetIp);
    const teamsSock = await socket(TEAMS_MEDIA_IP);
    const relayed = logged(h, 'UPDATE relayed as a re-INVITE').length;
    const target = await startTarget({ scenario: 'target-100rel-update.xml', ip: targetIp, rtp: { ip: targetIp, port: sockA.port }, keys: { rtp_port2: sockB.port } });
    const call = h.ft.originate({ to: '+442079460180', tenant: ACME, media: { address: TEAMS_MEDIA_IP, port: teamsSock.port } });
    const p183 = await call.waitForResponse(183);
    // §4.17: the 183 reaches Teams unreliably, with the early SDP (SRTP toward Teams).
    expect(p183.getAll('require').join(',').toLowerCase()).not.toContain('100rel');
    expect(p183.has('rseq')).toBe(false);
    const early = audioOf(parseSdp(p183.body.toString('utf8')))!;
    expect(early.proto).toBe('RTP/SAVP');
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    // The carrier's 200 had no SDP (offer/answer done in the 183/PRACK): Teams still gets the
    // answer, on the same address/port as the 183's.
    const answer = audioOf(parseSdp(ok.body.toString('utf8')))!;
    expect([answer.address, answer.port, answer.proto]).toEqual([early.address, early.port, 'RTP/SAVP']);

    // Media follows the early UPDATE: Teams → carrier port B; carrier → Teams from B.
    await teamsToCarrier(call, teamsSock, sockB, 0x0e0b0001);
    expect(sockA.received.filter((d) => isRtpDatagram(d) && d.data.readUInt32BE(8) === 0x0e0b0001)).toHaveLength(0);
    await carrierToTeams(call.media().gateway!.crypto!.key!, sockB, carrierSideAddress(target), teamsSock, 0x0e0b0002);

    // The carrier's hold UPDATE reaches Teams as a re-INVITE (a=inactive, same address/port).
    const re = await call.waitForRequest('INVITE', 5000);
    const held = audioOf(parseSdp(re.body.toString('utf8')))!;
    expect(held.direction).toBe('inactive');
    expect([held.address, held.port]).toEqual([answer.address, answer.port]);
    expect(call.requests.items.map((q) => q.method)).not.toContain('UPDATE');
    await waitFor(() => logged(h, 'UPDATE relayed as a re-INVITE').length > relayed, { what: 'the UPDATE answered from the re-INVITE' });
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r); // SIPp checked Supported: 100rel, the RAck and both UPDATE answers
    const prack = received(r, /^PRACK /)[0]!;
    expect(header(prack, 'RAck')).toMatch(/^1 \d+ INVITE$/);
    expect(h.ft.violations).toEqual([]);
  });
});
