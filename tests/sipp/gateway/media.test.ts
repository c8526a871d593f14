/**
 * Media through rtpengine, checked on the packets (issue 4, acceptance "Media"):
 * - PSTN → Teams: SIPp plays a G.711 A-law pcap (play_pcap_audio, Debian's SIPp is built with
 *   PCAP support) toward the gateway; it must arrive at the fake Teams media socket as SRTP
 *   (AES_CM_128_HMAC_SHA1_80, keyed by the gateway's a=crypto toward Teams) and decrypt to the
 *   same payloads; SRTP sent by Teams with its own key must arrive as plain RTP at the
 *   carrier's SDP address with the same payloads.
 * - Teams → PSTN: the same both ways with RTP from the carrier target side.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp } from '../../helpers/fake-teams/index.js';
import { waitFor } from '../../helpers/net.js';
import { RtpSocket, SrtpContext, parseRtp, sendG711Stream, sendGsmStream } from '../../helpers/rtp.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { PCAP_G711A, bodyOf, carrierCallAsync, carrierSideAddress, expectSippOk, isRtpDatagram, received, receivedSoFar, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
const sockets: RtpSocket[] = [];
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await h.afterEach();
});
afterAll(async () => h.close());

/** RTP payloads of a pcap (Ethernet / Linux cooked / raw IPv4, UDP). */
function pcapRtpPayloads(file: string): Buffer[] {
  const d = readFileSync(file);
  const le = d.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? d.readUInt32LE(o) : d.readUInt32BE(o));
  const link = u32(20);
  const l2 = link === 1 ? 14 : link === 113 ? 16 : 0;
  const out: Buffer[] = [];
  for (let off = 24; off + 16 <= d.length; ) {
    const incl = u32(off + 8);
    const pkt = d.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const ip = pkt.subarray(l2);
    if (ip.length < 28 || ip[0]! >> 4 !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0]! & 0x0f) * 4);
    out.push(parseRtp(udp.subarray(8)).payload);
  }
  return out;
}

/** RTP (version 2, not RTCP): skips STUN and anything else on the port. */
const isSrtp = isRtpDatagram;

describe('media: PSTN → Teams call', () => {
  it('pcap RTP from the carrier arrives as SRTP at Teams and decrypts to the same payloads; SRTP from Teams arrives as RTP at the carrier', async () => {
    const carrierIp = CARRIER_IPS[2];
    const carrierSock = await RtpSocket.open(carrierIp);
    const teamsSock = await RtpSocket.open('127.0.5.1');
    sockets.push(carrierSock, teamsSock);
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({
      scenario: 'carrier-call-pcap.xml',
      from: carrierIp,
      to: '+14255550120',
      rtp: { ip: carrierIp, port: carrierSock.port },
      keys: { pcap: PCAP_G711A },
      pauseMs: 1500,
    });
    const call = await h.nextCall(mark);
    await call.answer({ media: { address: '127.0.5.1', port: teamsSock.port } });
    await call.waitForAck();
    const m = call.media();
    expect(m.gateway?.crypto?.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(m.gateway?.rtcpMux).toBe(true);

    // Teams → carrier first (SIPp waits -d before playing: rtpengine has not latched onto
    // SIPp's pcap source yet and sends to the offer's c=/m=, our socket).
    const enc = SrtpContext.fromInline(m.teams.key);
    const sent = await sendG711Stream(teamsSock, { to: { address: m.gateway!.address!, port: m.gateway!.port }, count: 25, ssrc: 0x1234abcd, payloadType: 8, transform: (p) => enc.protect(p) });
    const atCarrier = await carrierSock.waitFor(20, { timeoutMs: 5000, filter: isRtpDatagram });
    const got = atCarrier.map((d) => parseRtp(d.data).payload);
    const want = sent.map((b) => parseRtp(b).payload);
    const k = want.findIndex((p) => p.equals(got[0]!));
    expect(k).toBeGreaterThanOrEqual(0);
    expect(got.slice(0, 15)).toEqual(want.slice(k, k + 15));

    // Carrier → Teams: SRTP at the Teams socket, decrypted with the gateway's key.
    const fromGw = await teamsSock.waitFor(40, { timeoutMs: 5000, filter: isSrtp });
    const dec = SrtpContext.fromInline(m.gateway!.crypto!.key!);
    const plain = fromGw.map((d) => dec.unprotect(d.data)); // throws on a bad auth tag
    const expected = pcapRtpPayloads(PCAP_G711A);
    const payloads = plain.map((b) => parseRtp(b).payload);
    // The encrypted packets are not the plain payloads …
    expect(fromGw[0]!.data.subarray(12, 12 + 160).equals(payloads[0]!)).toBe(false);
    // … and decrypt to the pcap's payloads, in order.
    const first = expected.findIndex((p) => p.equals(payloads[0]!));
    expect(first).toBeGreaterThanOrEqual(0);
    expect(payloads.slice(0, 30)).toEqual(expected.slice(first, first + 30));

    const r = await sipp.done;
    expectSippOk(r);
    expect(received(r, /^SIP\/2\.0 200/).length).toBeGreaterThan(0);
  });
});

describe('media: transcoding (teams-direct-routing.md §7.10)', () => {
  it('a carrier offering only GSM, to a tenant with media.transcoding: Teams is offered G.711 and answers PCMU, the carrier gets GSM; rtpengine converts both ways', async () => {
    const carrierIp = CARRIER_IPS[3];
    const carrierSock = await RtpSocket.open(carrierIp);
    const teamsSock = await RtpSocket.open('127.0.5.1');
    sockets.push(carrierSock, teamsSock);
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-gsm.xml', from: carrierIp, to: '+14255550401', rtp: { ip: carrierIp, port: carrierSock.port }, pauseMs: 2500 });
    const call = await h.nextCall(mark);
    const offered = audioOf(call.offer!)!.codecs.map((c) => c.name.toUpperCase());
    expect(offered.filter((n) => n !== 'TELEPHONE-EVENT')).toEqual(['PCMU', 'PCMA']);
    await call.answer({ media: { address: '127.0.5.1', port: teamsSock.port } });
    await call.waitForAck();
    expect(call.local!.codecs.map((c) => c.name)).toContain('PCMU');
    await waitFor(() => receivedSoFar(sipp.dir, /^SIP\/2\.0 200/).length > 0, { what: "the carrier's 200" });
    const answer = audioOf(parseSdp(bodyOf(receivedSoFar(sipp.dir, /^SIP\/2\.0 200/)[0]!)))!;
    expect(answer.codecs.map((c) => c.name.toUpperCase()).filter((n) => n !== 'TELEPHONE-EVENT')).toEqual(['GSM']);

    // Teams PCMU (SRTP) → the carrier: GSM frames.
    const m = call.media();
    const enc = SrtpContext.fromInline(m.teams.key);
    await sendG711Stream(teamsSock, { to: { address: m.gateway!.address!, port: m.gateway!.port }, count: 25, ssrc: 0x65a0_1001, transform: (p) => enc.protect(p) });
    const atCarrier = await carrierSock.waitFor(10, { timeoutMs: 5000, filter: isRtpDatagram });
    for (const d of atCarrier) expect([parseRtp(d.data).payloadType, parseRtp(d.data).payload.length]).toEqual([3, 33]);

    // Carrier GSM → Teams: SRTP PCMU (160-byte payloads).
    await sendGsmStream(carrierSock, { to: { address: answer.address!, port: answer.port }, count: 25, ssrc: 0x65a0_1002, firstSeq: 500 });
    const atTeams = await teamsSock.waitFor(10, { timeoutMs: 5000, filter: isSrtp });
    const dec = SrtpContext.fromInline(m.gateway!.crypto!.key!);
    for (const d of atTeams) {
      const p = parseRtp(dec.unprotect(d.data)); // throws on a bad auth tag
      expect([p.payloadType, p.payload.length]).toEqual([0, 160]);
    }
    expectSippOk(await sipp.done);
    expect(h.ft.violations).toEqual([]);
  });
});

describe('media: Teams → PSTN call', () => {
  it('SRTP from Teams arrives as RTP at the carrier target and RTP from the carrier arrives as SRTP at Teams', async () => {
    const targetSock = await RtpSocket.open(TARGET_IPS[0]);
    const teamsSock = await RtpSocket.open('127.0.5.1');
    sockets.push(targetSock, teamsSock);
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0], rtp: { ip: TARGET_IPS[0], port: targetSock.port } });
    const call = h.ft.originate({ to: '+442079460130', tenant: 'acme.customers.example.net', media: { address: '127.0.5.1', port: teamsSock.port } });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    const m = call.media();
    const gwAudio = audioOf(parseSdp(ok.body.toString('utf8')))!;
    expect(gwAudio.proto).toBe('RTP/SAVP');

    // Teams → carrier.
    const enc = SrtpContext.fromInline(m.teams.key);
    const sent = await sendG711Stream(teamsSock, { to: { address: m.gateway!.address!, port: m.gateway!.port }, count: 25, ssrc: 0x0badcafe, payloadType: 0, transform: (p) => enc.protect(p) });
    const atCarrier = await targetSock.waitFor(20, { timeoutMs: 5000, filter: isRtpDatagram });
    const got = atCarrier.map((d) => parseRtp(d.data).payload);
    const want = sent.map((b) => parseRtp(b).payload);
    const k = want.findIndex((p) => p.equals(got[0]!));
    expect(k).toBeGreaterThanOrEqual(0);
    expect(got.slice(0, 15)).toEqual(want.slice(k, k + 15));

    // Carrier → Teams: plain RTP to the address the gateway offered the carrier.
    const carrierSide = carrierSideAddress(target);
    const back = await sendG711Stream(targetSock, { to: carrierSide, count: 25, ssrc: 0x0feedbee, payloadType: 0 });
    const atTeams = await teamsSock.waitFor(20, { timeoutMs: 5000, filter: isSrtp });
    const dec = SrtpContext.fromInline(m.gateway!.crypto!.key!);
    const plain = atTeams.map((d) => parseRtp(dec.unprotect(d.data)).payload);
    const w2 = back.map((b) => parseRtp(b).payload);
    const j = w2.findIndex((p) => p.equals(plain[0]!));
    expect(j).toBeGreaterThanOrEqual(0);
    expect(plain.slice(0, 15)).toEqual(w2.slice(j, j + 15));

    expect((await call.bye()).status).toBe(200);
    expectSippOk(await target.done);
  });
});
