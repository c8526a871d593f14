/**
 * DTMF as RFC 4733 telephone-event (issue 5; teams-direct-routing.md §7.7): telephone-event is
 * negotiated toward both sides and its packets cross rtpengine both ways, SRTP toward Teams and
 * RTP toward the carrier, also during early media. Packets are checked, not just SDP.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type InboundCall, audioOf, parseSdp, step } from '../../helpers/fake-teams/index.js';
import type { SippProcess } from '../../helpers/sipp.js';
import { RtpSocket, SrtpContext, buildRtp, parseRtp } from '../../helpers/rtp.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { bodyOf, carrierCallAsync, carrierSideAddress, expectSippOk, isRtpDatagram, receivedSoFar, startTarget } from './sipp-gateway.js';
import { waitFor } from '../../helpers/net.js';

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

const isRtp = isRtpDatagram;

/** RFC 4733 §2.3: event, E|R|volume, duration; the digit is sent as 3 updates + 3 end packets. */
function dtmfPackets(digit: number, ssrc: number, pt: number, seq0: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const end = i >= 3;
    const payload = Buffer.from([digit, (end ? 0x80 : 0) | 10, 0, 0]);
    payload.writeUInt16BE(end ? 480 : 160 * (i + 1), 2);
    out.push(buildRtp({ payloadType: pt, sequenceNumber: seq0 + i, timestamp: 80_000, ssrc, marker: i === 0, payload }));
  }
  return out;
}

async function send(sock: RtpSocket, pkts: Buffer[], to: { address: string; port: number }, transform?: (b: Buffer) => Buffer): Promise<void> {
  for (const p of pkts) {
    await sock.send(transform ? transform(p) : p, to.port, to.address);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** telephone-event payload type in an SDP, or undefined. */
function tePt(sdpText: string): number | undefined {
  const m = /a=rtpmap:(\d+) telephone-event\/8000/i.exec(sdpText);
  return m ? Number(m[1]) : undefined;
}

describe('DTMF (RFC 4733) through the gateway', () => {
  it('Teams → PSTN call: telephone-event negotiated both sides; digits cross both ways (SRTP ↔ RTP) with payload intact', async () => {
    const targetSock = await RtpSocket.open(TARGET_IPS[0]);
    const teamsSock = await RtpSocket.open('127.0.5.1');
    sockets.push(targetSock, teamsSock);
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0], rtp: { ip: TARGET_IPS[0], port: targetSock.port } });
    const call = h.ft.originate({ to: '+442079460131', tenant: 'acme.customers.example.net', media: { address: '127.0.5.1', port: teamsSock.port } });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    const answerToTeams = ok.body.toString('utf8');
    const ptTeams = tePt(answerToTeams);
    expect(ptTeams, 'telephone-event in the answer to Teams').toBeDefined();
    const carrier = carrierSideAddress(target);
    const ptCarrier = tePt(carrier.sdp);
    expect(ptCarrier, 'telephone-event in the offer to the carrier').toBeDefined();
    expect(audioOf(parseSdp(answerToTeams))!.proto).toBe('RTP/SAVP');
    const m = call.media();

    // Teams presses 5: SRTP telephone-event → plain RTP at the carrier, same event bytes.
    const enc = SrtpContext.fromInline(m.teams.key);
    const fromTeams = dtmfPackets(5, 0x7e1e0001, ptTeams!, 2000);
    await send(teamsSock, fromTeams, { address: m.gateway!.address!, port: m.gateway!.port }, (p) => enc.protect(p));
    const atCarrier = (await targetSock.waitFor(6, { timeoutMs: 5000, filter: (d) => isRtp(d) && parseRtp(d.data).payloadType === ptCarrier })).map((d) => parseRtp(d.data));
    expect(atCarrier.map((p) => p.payload)).toEqual(fromTeams.map((b) => parseRtp(b).payload));
    expect(atCarrier[0]!.payload[0]).toBe(5);

    // The carrier sends 9: RTP telephone-event → SRTP at Teams, decrypts to the same event.
    const fromCarrier = dtmfPackets(9, 0x7e1e0002, ptCarrier!, 3000);
    await send(targetSock, fromCarrier, carrier);
    const dec = SrtpContext.fromInline(m.gateway!.crypto!.key!);
    const atTeams = (await teamsSock.waitFor(6, { timeoutMs: 5000, filter: isRtp }))
      .map((d) => parseRtp(dec.unprotect(d.data)))
      .filter((p) => p.payloadType === ptTeams);
    expect(atTeams.map((p) => p.payload)).toEqual(fromCarrier.map((b) => parseRtp(b).payload));
    expect(atTeams[0]!.payload[0]).toBe(9);

    expect((await call.bye()).status).toBe(200);
    expectSippOk(await target.done);
  });

  /**
   * A carrier call that Teams rings (180), then answers with early media (183 with SDP); the
   * offer to Teams carries telephone-event (its payload type returned).
   */
  async function earlyMediaCall(carrierIp: string, to: string) {
    const carrierSock = await RtpSocket.open(carrierIp);
    const teamsSock = await RtpSocket.open('127.0.5.1');
    sockets.push(carrierSock, teamsSock);
    const mark = h.ft.calls.length;
    h.ft.script([step.ringing(0)]);
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: carrierIp, to, rtp: { ip: carrierIp, port: carrierSock.port } });
    const call = await h.nextCall(mark);
    const ptTeams = tePt(call.offer!.raw);
    expect(ptTeams, 'telephone-event in the offer to Teams').toBeDefined();
    await call.progress({ media: { address: '127.0.5.1', port: teamsSock.port } });
    return { carrierSock, teamsSock, sipp, call, ptTeams: ptTeams! };
  }

  /** Still early; then Teams answers and hangs up, and the carrier's scenario completes. */
  async function answerEarlyThenHangUp(call: InboundCall, sipp: SippProcess) {
    expect(call.state).toBe('early');
    await call.answer();
    await call.waitForAck();
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  }

  it('PSTN → Teams call in early media: digits from Teams (IVR) reach the carrier before the answer', async () => {
    const { carrierSock, teamsSock, sipp, call, ptTeams } = await earlyMediaCall(CARRIER_IPS[4], '+14255550147');
    const gw = audioOf(call.offer!)!;
    const pt = ptTeams;
    const enc = SrtpContext.fromInline(call.local!.key);
    // Let the gateway hand the 183's SDP to rtpengine (asynchronously) before the first packet.
    await new Promise((r) => setTimeout(r, 300));
    const digits = dtmfPackets(1, 0x7e1e0003, pt, 4000);
    await send(teamsSock, digits, { address: gw.address!, port: gw.port }, (p) => enc.protect(p));
    const got = (await carrierSock.waitFor(6, { timeoutMs: 5000, filter: (d) => isRtp(d) && parseRtp(d.data).payload.length === 4 })).map((d) => parseRtp(d.data).payload);
    expect(got).toEqual(digits.map((b) => parseRtp(b).payload));
    await answerEarlyThenHangUp(call, sipp);
  });

  it('PSTN → Teams call in early media: digits from the caller reach Teams before the answer (a Teams IVR or voicemail menu)', async () => {
    const { carrierSock, teamsSock, sipp, call, ptTeams } = await earlyMediaCall(CARRIER_IPS[5], '+14255550148');
    // The 183 with rtpengine's carrier side reaches the carrier: its telephone-event and address.
    await waitFor(() => receivedSoFar(sipp.dir, /^SIP\/2\.0 183/).length > 0, { what: 'the 183 at the carrier' });
    const sdp183 = bodyOf(receivedSoFar(sipp.dir, /^SIP\/2\.0 183/)[0]!);
    const ours = audioOf(parseSdp(sdp183))!;
    const ptCarrier = tePt(sdp183)!;
    expect(ptCarrier, 'telephone-event in the 183 to the carrier').toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    const digits = dtmfPackets(7, 0x7e1e0004, ptCarrier, 5000);
    await send(carrierSock, digits, { address: ours.address!, port: ours.port });
    const dec = SrtpContext.fromInline(call.media().gateway!.crypto!.key!);
    const got = (await teamsSock.waitFor(6, { timeoutMs: 5000, filter: (d) => isRtp(d) && d.data.readUInt32BE(8) === 0x7e1e0004 })).map((d) => parseRtp(dec.unprotect(d.data)));
    expect(got.map((p) => p.payloadType)).toEqual(digits.map(() => ptTeams));
    expect(got.map((p) => p.payload)).toEqual(digits.map((b) => parseRtp(b).payload));
    await answerEarlyThenHangUp(call, sipp);
  });
});
