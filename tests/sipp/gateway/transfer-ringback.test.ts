/**
 * Ringback during a REFER transfer (issue 5; teams-direct-routing.md §6.6): when the new Teams
 * leg rings with 180 and no SDP, rtpengine's media player plays the gateway's ringing tone to
 * the PSTN party; the new leg's SDP (183 or 200), its failure, or the end of the call stop it.
 * SIPp is the carrier (its SDP points at an RtpSocket of the test), the fake Teams answers,
 * rtpengine is real; the tone is checked sample by sample against the generated one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TransferRingbackSettings } from '../../../src/gateway/features.js';
import { RINGBACK_WAV_DATA_OFFSET, ringbackWav } from '../../../src/media/ringback-tone.js';
import { type InboundCall, audioOf, sipfragStatus } from '../../helpers/fake-teams/index.js';
import { waitFor } from '../../helpers/net.js';
import { type ReceivedDatagram, RtpSocket, SrtpContext, parseRtp, sendG711Stream } from '../../helpers/rtp.js';
import { bestFrame, decodeG711, rms, runs, ulawDecode } from '../../helpers/tone.js';
import { CARRIER_IPS, type GatewayHarness, RTPENGINE_IP, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCallAsync, expectSippOk, isRtpDatagram } from './sipp-gateway.js';

let h: GatewayHarness;
let dir: string;
const sockets: RtpSocket[] = [];
beforeAll(async () => {
  h = await startGatewayHarness();
  dir = await mkdtemp(join(tmpdir(), 'ringback-'));
});
afterEach(async (c) => {
  if (process.env.GW_DEBUG && c.task.result?.state === 'fail') console.log(JSON.stringify(h.logs.filter((l) => l.level >= 40 || /ringback|transfer/.test(String(l.msg))).slice(-20), null, 1));
  for (const s of sockets.splice(0)) s.close();
  h.gw.ctx.features = undefined;
  await h.afterEach();
});
afterAll(async () => {
  await h.close();
  await rm(dir, { recursive: true, force: true });
});

const C = CARRIER_IPS[5];
const DEFAULTS: TransferRingbackSettings = { enabled: true, country: 'us', file: '', maxSeconds: 180 };

/** The generated tone, decoded: the reference the carrier's packets are compared with. */
function reference(country: 'us' | 'uk' | 'eu'): Float64Array {
  return Float64Array.from(ringbackWav(country).subarray(RINGBACK_WAV_DATA_OFFSET), ulawDecode);
}

/** RTP from rtpengine to the carrier socket, received at or after `since`. */
function fromRtpengine(sock: RtpSocket, since: number): ReceivedDatagram[] {
  return sock.received.filter((d) => d.at >= since && d.from.address === RTPENGINE_IP && isRtpDatagram(d));
}

/**
 * Checks that `packets` are the tone of `ref`, in order, from its start: one SSRC, G.711, each
 * tone frame matching the next 20 ms frame of the reference (correlation >= 0.98), silence
 * where the reference is silent. Returns the on/off runs in packets.
 */
function expectTone(packets: ReceivedDatagram[], ref: Float64Array): number[] {
  const rtp = packets.map((d) => parseRtp(d.data));
  expect(new Set(rtp.map((p) => p.ssrc)).size).toBe(1);
  expect([0, 8]).toContain(rtp[0]!.payloadType);
  const frames = ref.length / 160;
  const on: boolean[] = [];
  rtp.forEach((p, i) => {
    const x = decodeG711(p.payloadType, p.payload);
    expect(x.length).toBe(160);
    const want = ref.subarray((i % frames) * 160, ((i % frames) + 1) * 160);
    const tone = rms(x) > 100;
    expect(tone, `packet ${i}: tone where the reference has ${rms(want) > 100 ? 'tone' : 'silence'}`).toBe(rms(want) > 100);
    if (tone) expect(bestFrame(x, ref).score, `packet ${i}`).toBeGreaterThanOrEqual(0.98);
    if (tone) expect(bestFrame(x, want).score, `packet ${i} in order`).toBeGreaterThanOrEqual(0.98);
    on.push(tone);
  });
  return runs(on);
}

/** PSTN → Teams call answered by the fake Teams with its media on `teamsMedia`; carrier RTP to `carrier`. */
async function answeredCall(to: string, carrier: RtpSocket, teamsMedia?: RtpSocket, scenario = 'carrier-call-wait-bye.xml', pauseMs?: number) {
  const mark = h.ft.calls.length;
  const sipp = await carrierCallAsync({ scenario, from: C, to, timeoutMs: 25_000, rtp: { ip: C, port: carrier.port }, ...(pauseMs !== undefined ? { pauseMs } : {}) });
  const call = await h.nextCall(mark);
  await call.answer(teamsMedia ? { media: { address: teamsMedia.address, port: teamsMedia.port } } : {});
  await call.waitForAck();
  return { sipp, call };
}

/** REFER on `call`; the new leg's INVITE as the fake Teams received it. */
async function refer(call: InboundCall): Promise<InboundCall> {
  const mark = h.ft.calls.length;
  expect((await call.refer()).response.status).toBe(202);
  return h.nextCall(mark);
}

/** Sends 20 SRTP packets from a Teams media socket to the gateway; resolves with their payloads. */
async function teamsSends(from: RtpSocket, key: string, gw: { address: string; port: number }, ssrc: number): Promise<Buffer[]> {
  const enc = SrtpContext.fromInline(key);
  const sent = await sendG711Stream(from, { to: gw, count: 20, ssrc, payloadType: 0, transform: (p) => enc.protect(p) });
  return sent.map((b) => parseRtp(b).payload);
}

/** Waits until the carrier got `n` of `payloads`; then asserts that nothing else came since `since`. */
async function expectOnly(carrier: RtpSocket, payloads: Buffer[], since: number, n = 10): Promise<void> {
  const mine = (d: ReceivedDatagram) => isRtpDatagram(d) && payloads.some((p) => p.equals(parseRtp(d.data).payload));
  await carrier.waitFor(n, { timeoutMs: 4000, filter: (d) => d.at >= since && mine(d) });
  await new Promise((r) => setTimeout(r, 400));
  const other = carrier.received.filter((d) => d.at >= since && !mine(d));
  expect(other.length, 'datagrams other than the expected media (tone still playing?)').toBe(0);
}

describe('transfer ringback (§6.6)', () => {
  it('new leg rings with 180 and no SDP: the PSTN party hears the generated US ringback (440+480 Hz, 2 s on, then silence) from rtpengine; after the answer it gets the new leg media and the tone is gone', async () => {
    const carrier = await RtpSocket.open(C);
    const teams2 = await RtpSocket.open('127.0.5.1');
    sockets.push(carrier, teams2);
    const { sipp, call } = await answeredCall('+14255550181', carrier);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await call.waitForNotify(180);
    // 2 s of tone, then the start of the 4 s pause: 115 packets of 20 ms.
    await waitFor(() => fromRtpengine(carrier, t180).length >= 115, { timeoutMs: 5000, what: 'ringback packets at the carrier' });
    const tone = fromRtpengine(carrier, t180).slice(0, 115);
    const r = expectTone(tone, reference('us'));
    expect(r[0]).toBe(100); // 2 s on
    expect(r[1]).toBe(15); // silence follows
    // Paced like real media: 115 packets take about 2.3 s.
    expect(tone.at(-1)!.at - tone[0]!.at).toBeGreaterThan(2000);

    await call2.answer({ media: { address: teams2.address, port: teams2.port } });
    await call.waitForNotify(200);
    const since = Date.now() + 100;
    await new Promise((r) => setTimeout(r, 100));
    const gw = audioOf(call2.offer!)!;
    const sent = await teamsSends(teams2, call2.local!.key, { address: gw.address!, port: gw.port }, 0x0a15e001);
    await expectOnly(carrier, sent, since);
    expect(call.notifies.map((n) => sipfragStatus(n))).toEqual([100, 180, 200]);
    expect(h.logs.filter((l) => l.msg === 'transfer ringback stopped')).not.toHaveLength(0);
    await call.bye();
    expect((await call2.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('180 without SDP, then 183 with SDP: the tone stops and the new leg early media reaches the PSTN party', async () => {
    const carrier = await RtpSocket.open(C);
    const teams2 = await RtpSocket.open('127.0.5.1');
    sockets.push(carrier, teams2);
    const { sipp, call } = await answeredCall('+14255550182', carrier);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await waitFor(() => fromRtpengine(carrier, t180).length >= 20, { timeoutMs: 3000, what: 'ringback packets' });
    expectTone(fromRtpengine(carrier, t180).slice(0, 20), reference('us'));
    await call2.progress({ media: { address: teams2.address, port: teams2.port } });
    await call.waitForNotify(183);
    await waitFor(() => h.logs.some((l) => l.msg === 'transfer ringback stopped'), { what: 'ringback stopped' });
    const since = Date.now() + 100;
    await new Promise((r) => setTimeout(r, 100));
    const gw = audioOf(call2.offer!)!;
    const sent = await teamsSends(teams2, call2.local!.key, { address: gw.address!, port: gw.port }, 0x0a15e002);
    await expectOnly(carrier, sent, since);
    await call2.answer({ media: { address: teams2.address, port: teams2.port } });
    await call.waitForNotify(200);
    expect(call.notifies.map((n) => sipfragStatus(n))).toEqual([100, 180, 183, 200]);
    await call.bye();
    expect((await call2.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('180 without SDP, then the target rejects (486): the tone stops and the old Teams leg media reaches the PSTN party again', async () => {
    const carrier = await RtpSocket.open(C);
    const teams1 = await RtpSocket.open('127.0.5.1');
    sockets.push(carrier, teams1);
    const { sipp, call } = await answeredCall('+14255550183', carrier, teams1);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await waitFor(() => fromRtpengine(carrier, t180).length >= 20, { timeoutMs: 3000, what: 'ringback packets' });
    await call2.reject(486);
    await call.waitForNotify(486);
    const since = Date.now() + 100;
    await new Promise((r) => setTimeout(r, 100));
    const gw = audioOf(call.offer!)!;
    const sent = await teamsSends(teams1, call.local!.key, { address: gw.address!, port: gw.port }, 0x0a15e003);
    await expectOnly(carrier, sent, since);
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('the PSTN party hangs up while the tone plays: the new leg gets a CANCEL, the tone stops, rtpengine is left with no session', async () => {
    const carrier = await RtpSocket.open(C);
    sockets.push(carrier);
    // carrier-call-bye: the carrier sends BYE 2 s after its ACK.
    const { sipp, call } = await answeredCall('+14255550184', carrier, undefined, 'carrier-call-bye.xml', 2000);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await waitFor(() => fromRtpengine(carrier, t180).length >= 10, { timeoutMs: 3000, what: 'ringback packets' });
    expectSippOk(await sipp.done);
    await call2.waitForCancel(3000);
    await waitFor(() => call.ended, { what: 'BYE on the old Teams leg' });
    await waitFor(() => h.gw.ctx.calls.size === 0, { what: 'call gone' });
    const after = Date.now() + 100;
    await new Promise((r) => setTimeout(r, 600));
    expect(fromRtpengine(carrier, after)).toHaveLength(0);
    expect(await h.pool.activeSessions()).toBe(0);
  });

  it('calls.transferRingback.file: rtpengine plays that file (here the UK tone, 400+450 Hz 0.4/0.2/0.4/2 s) from its own file system', async () => {
    const file = join(dir, 'uk.wav');
    await writeFile(file, ringbackWav('uk'));
    h.gw.ctx.features = { transferRingback: { ...DEFAULTS, file } };
    const carrier = await RtpSocket.open(C);
    sockets.push(carrier);
    const { sipp, call } = await answeredCall('+14255550185', carrier);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await waitFor(() => fromRtpengine(carrier, t180).length >= 60, { timeoutMs: 4000, what: 'ringback packets' });
    expect(expectTone(fromRtpengine(carrier, t180).slice(0, 60), reference('uk'))).toEqual([20, 10, 20, 10]);
    await call2.reject(480);
    await call.waitForNotify(480);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('rtpengine cannot play the file (MEDIA_ERR_PLAYBACK): logged, no tone, and the transfer still completes with the new leg media flowing', async () => {
    h.gw.ctx.features = { transferRingback: { ...DEFAULTS, file: join(dir, 'missing.wav') } };
    const carrier = await RtpSocket.open(C);
    const teams2 = await RtpSocket.open('127.0.5.1');
    sockets.push(carrier, teams2);
    const { sipp, call } = await answeredCall('+14255550187', carrier);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await waitFor(() => h.logs.some((l) => l.msg === 'transfer ringback not played'), { what: 'playback failure logged' });
    const failed = h.logs.find((l) => l.msg === 'transfer ringback not played')!;
    expect(failed.code).toBe('MEDIA_ERR_PLAYBACK');
    expect(String(failed.err)).toMatch(/could not play media to the carrier leg .*Failed to start media playback/);
    await call2.answer({ media: { address: teams2.address, port: teams2.port } });
    await call.waitForNotify(200);
    expect(fromRtpengine(carrier, t180)).toHaveLength(0);
    const since = Date.now();
    const gw = audioOf(call2.offer!)!;
    // The other leg was muted for the tone and unmuted when it failed: the new leg is heard.
    const sent = await teamsSends(teams2, call2.local!.key, { address: gw.address!, port: gw.port }, 0x0a15e007);
    await expectOnly(carrier, sent, since);
    await call.bye();
    expect((await call2.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });

  it('calls.transferRingback.enabled = false: a 180 without SDP plays nothing', async () => {
    h.gw.ctx.features = { transferRingback: { ...DEFAULTS, enabled: false } };
    const carrier = await RtpSocket.open(C);
    sockets.push(carrier);
    const { sipp, call } = await answeredCall('+14255550186', carrier);
    const call2 = await refer(call);
    const t180 = Date.now();
    await call2.ringing();
    await call.waitForNotify(180);
    await new Promise((r) => setTimeout(r, 800));
    expect(fromRtpengine(carrier, t180)).toHaveLength(0);
    await call2.reject(486);
    await call.waitForNotify(486);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await sipp.done);
  });
});
