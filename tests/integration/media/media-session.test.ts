/**
 * MediaSession against a real rtpengine 10.5: the SDP each leg receives follows the Teams
 * and carrier profiles, and real packets cross rtpengine RTP ⇄ SRTP (decrypted and checked
 * byte for byte with the keys rtpengine put in its SDP).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import sdpTransform from 'sdp-transform';
import { RtpenginePool, isMediaError, type MediaSession } from '../../../src/media/index.js';
import { startRtpengine, type RtpengineHandle } from '../../helpers/rtpengine.js';
import { RtpSocket, SrtpContext, isRtcp, newSdesKey, parseCryptoLines, parseRtp, sendG711Stream, sendGsmStream, type ReceivedDatagram } from '../../helpers/rtp.js';

const RTPENGINE_IP = '127.0.4.10';
const CARRIER_IP = '127.0.4.11';
const TEAMS_IP = '127.0.4.12';

let rtpe: RtpengineHandle;
let pool: RtpenginePool;
let carrier: RtpSocket;
let teams: RtpSocket;
const sessions: MediaSession[] = [];
let seq = 0;

function carrierOffer(port: number, opts: { codecs?: Array<[number, string]>; version?: number } = {}): string {
  const codecs = opts.codecs ?? [
    [0, 'PCMU/8000'],
    [8, 'PCMA/8000'],
    [3, 'GSM/8000'],
    [18, 'G729/8000'],
    [101, 'telephone-event/8000'],
  ];
  return [
    'v=0',
    `o=carrier 1000 ${opts.version ?? 1} IN IP4 ${CARRIER_IP}`,
    's=-',
    `c=IN IP4 ${CARRIER_IP}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${codecs.map((c) => c[0]).join(' ')}`,
    ...codecs.map(([pt, name]) => `a=rtpmap:${pt} ${name}`),
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/** What Teams' media processor sends: several crypto lines, rtcp-mux, ICE, SILK, CN. */
function teamsSdp(port: number, cryptoLines: string[], opts: { pts?: number[]; version?: number } = {}): string {
  const all: Record<number, string> = { 104: 'SILK/16000', 9: 'G722/8000', 0: 'PCMU/8000', 8: 'PCMA/8000', 13: 'CN/8000', 101: 'telephone-event/8000' };
  const pts = opts.pts ?? [104, 9, 0, 8, 13, 101];
  return [
    'v=0',
    `o=- 0 ${opts.version ?? 0} IN IP4 ${TEAMS_IP}`,
    's=session',
    `c=IN IP4 ${TEAMS_IP}`,
    'b=CT:10000000',
    't=0 0',
    `m=audio ${port} RTP/SAVP ${pts.join(' ')}`,
    'a=ice-ufrag:Teams1uFrag',
    'a=ice-pwd:TeamsIcePasswordTeamsIcePw',
    `a=candidate:1 1 UDP 2130706431 ${TEAMS_IP} ${port} typ host`,
    'a=rtcp-mux',
    ...cryptoLines,
    ...pts.map((pt) => `a=rtpmap:${pt} ${all[pt]}`),
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

function audio(sdp: string): sdpTransform.MediaDescription & { port: number } {
  const parsed = sdpTransform.parse(sdp);
  expect(parsed.media).toHaveLength(1);
  return parsed.media[0] as sdpTransform.MediaDescription & { port: number };
}

function target(sdp: string): { address: string; port: number } {
  const p = sdpTransform.parse(sdp);
  const m = p.media[0]!;
  return { address: (m.connection ?? p.connection)!.ip, port: m.port };
}

function codecNames(sdp: string): string[] {
  return audio(sdp).rtp.map((r) => r.codec);
}

function newSession(): MediaSession {
  seq++;
  const s = pool.createSession({ callId: `media-test-${process.pid}-${seq}`, fromTag: `tag-${seq}` });
  sessions.push(s);
  return s;
}

/**
 * The first `sent.length` packets received, each paired with the packet sent under the same RTP
 * sequence number (in the clear in SRTP too). rtpengine's worker threads may hand on two packets
 * of a burst in either order, so arrival order is not compared; every sent packet must arrive once.
 */
function pairBySeq(received: ReceivedDatagram[], sent: Buffer[]): Array<[ReceivedDatagram, Buffer]> {
  const seq = (b: Buffer) => b.readUInt16BE(2);
  const got = received.slice(0, sent.length);
  expect(got.map((d) => seq(d.data)).sort((a, b) => a - b)).toEqual(sent.map(seq).sort((a, b) => a - b));
  return got.map((d) => [d, sent.find((x) => seq(x) === seq(d.data))!]);
}

/** RTP (not RTCP) datagrams from rtpengine carrying `ssrc`. */
const rtpFrom = (ssrc: number) => (d: ReceivedDatagram) =>
  d.data.length >= 12 && !isRtcp(d.data) && d.data.readUInt32BE(8) === ssrc && d.from.address === RTPENGINE_IP;

beforeAll(async () => {
  rtpe = await startRtpengine({ ip: RTPENGINE_IP });
  pool = new RtpenginePool({ instances: [rtpe.ngAddress], commandTimeoutMs: 500, healthIntervalMs: 1000 });
  carrier = await RtpSocket.open(CARRIER_IP);
  teams = await RtpSocket.open(TEAMS_IP);
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.delete()));
  carrier.received.length = 0;
  teams.received.length = 0;
  // Every test ends with rtpengine holding no call.
  expect(await pool.activeSessions()).toBe(0);
});

afterAll(async () => {
  carrier?.close();
  teams?.close();
  await pool?.close();
  await rtpe?.stop();
});

describe('PSTN → Teams (carrier offers)', () => {
  it('Teams gets RTP/SAVP with exactly one AES_CM_128_HMAC_SHA1_80 crypto and rtcp-mux; carrier gets plain RTP/AVP; media crosses RTP ⇄ SRTP', async () => {
    const s = newSession();
    const toTeams = await s.offer('carrier', carrierOffer(carrier.port));
    const mt = audio(toTeams);
    expect(mt.protocol).toBe('RTP/SAVP');
    expect(mt.crypto).toHaveLength(1);
    expect(mt.crypto![0]!.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(mt.rtcpMux).toBe('rtcp-mux');
    expect(mt.fingerprint).toBeUndefined();
    expect(mt.candidates).toBeUndefined();
    expect(mt.iceUfrag).toBeUndefined();
    // GSM is not a Teams codec (§7.6): not passed on.
    expect(codecNames(toTeams)).toEqual(['PCMU', 'PCMA', 'G729', 'telephone-event']);
    expect(target(toTeams).address).toBe(RTPENGINE_IP);

    const teamsKey = newSdesKey(1);
    const toCarrier = await s.answer('teams', teamsSdp(teams.port, [teamsKey.line], { pts: [0, 13, 101] }));
    const mc = audio(toCarrier);
    expect(mc.protocol).toBe('RTP/AVP');
    expect(mc.crypto).toBeUndefined();
    expect(mc.rtcpMux).toBeUndefined();
    expect(mc.candidates).toBeUndefined();
    expect(mc.iceUfrag).toBeUndefined();
    expect(codecNames(toCarrier)).toContain('telephone-event');
    expect(codecNames(toCarrier)).not.toContain('SILK');
    expect(s.state).toBe('answered');

    // Carrier → rtpengine (plain RTP) → Teams (SRTP with rtpengine's key from its offer).
    const rtpeCarrierSide = target(toCarrier);
    const rtpeTeamsSide = target(toTeams);
    const sentByCarrier = await sendG711Stream(carrier, { to: rtpeCarrierSide, count: 10, ssrc: 0x0c0ffee1, ptimeMs: 5 });
    const gotAtTeams = await teams.waitFor(10, { filter: rtpFrom(0x0c0ffee1) });
    const rtpengineKey = SrtpContext.fromInline(parseCryptoLines(toTeams)[0]!.inline);
    for (const [d, sent] of pairBySeq(gotAtTeams, sentByCarrier)) {
      expect(d.from.port).toBe(rtpeTeamsSide.port);
      // SRTP-protected on the wire: the payload is not the plain one...
      expect(d.data.length).toBe(sent.length + 10);
      expect(d.data.subarray(12, 172).equals(sent.subarray(12))).toBe(false);
      // ...and decrypts/authenticates to exactly what the carrier sent.
      const plain = parseRtp(rtpengineKey.unprotect(d.data));
      const orig = parseRtp(sent);
      expect(plain.sequenceNumber).toBe(orig.sequenceNumber);
      expect(plain.payloadType).toBe(0);
      expect(plain.payload.equals(orig.payload)).toBe(true);
    }

    // Teams → rtpengine (SRTP with Teams' key from its answer) → carrier (plain RTP).
    const teamsTx = new SrtpContext(teamsKey.masterKey, teamsKey.masterSalt);
    const sentByTeams = await sendG711Stream(teams, { to: rtpeTeamsSide, count: 10, ssrc: 0x7ea5_0001, ptimeMs: 5, firstSeq: 40000, transform: (p) => teamsTx.protect(p) });
    const gotAtCarrier = await carrier.waitFor(10, { filter: rtpFrom(0x7ea50001) });
    for (const [d, sent] of pairBySeq(gotAtCarrier, sentByTeams)) {
      expect(d.from.port).toBe(rtpeCarrierSide.port);
      expect(d.data.equals(sent)).toBe(true);
    }

    const stats = await s.query();
    expect(stats.instance).toBe(rtpe.ngAddress);
    expect(stats.carrier.packets).toBeGreaterThanOrEqual(10);
    expect(stats.teams.packets).toBeGreaterThanOrEqual(10);
    expect(stats.carrier.bytes).toBeGreaterThanOrEqual(10 * 172);
    expect(stats.teams.bytes).toBeGreaterThanOrEqual(10 * 172); // rtpengine counts the decrypted size

    await s.delete({ collectStats: true });
    const final = s.finalStats;
    expect(final?.carrier.packets).toBeGreaterThanOrEqual(10);
    expect(final?.teams.packets).toBeGreaterThanOrEqual(10);
    expect(s.state).toBe('deleted');
    expect(await pool.activeSessions()).toBe(0);
    // Idempotent: a second delete neither throws nor sends anything that could fail.
    await expect(s.delete()).resolves.toBeUndefined();
    expect(s.finalStats).toBe(final);
  });

  it('re-INVITEs keep rtcp-mux, the crypto suite and the media ports stable in both directions', async () => {
    const s = newSession();
    const first = await s.offer('carrier', carrierOffer(carrier.port));
    const teamsKey = newSdesKey(1);
    const ans1 = await s.answer('teams', teamsSdp(teams.port, [teamsKey.line], { pts: [0, 101] }));

    // Carrier session refresh / re-INVITE.
    const second = await s.offer('carrier', carrierOffer(carrier.port, { version: 2 }));
    const m1 = audio(first);
    const m2 = audio(second);
    expect(m2.port).toBe(m1.port);
    expect(m2.rtcpMux).toBe('rtcp-mux');
    expect(m2.crypto).toHaveLength(1);
    expect(m2.crypto![0]!.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(m2.crypto![0]!.config).toBe(m1.crypto![0]!.config);
    expect(m2.iceUfrag).toBeUndefined();
    const ans2 = await s.answer('teams', teamsSdp(teams.port, [teamsKey.line], { pts: [0, 101], version: 1 }));
    expect(audio(ans2).port).toBe(audio(ans1).port);

    // Teams re-INVITE (e.g. hold/resume or refresh) toward the carrier.
    const fromTeams = await s.offer('teams', teamsSdp(teams.port, [teamsKey.line], { version: 2 }));
    const mc = audio(fromTeams);
    expect(mc.port).toBe(audio(ans1).port);
    expect(mc.protocol).toBe('RTP/AVP');
    expect(mc.rtcpMux).toBeUndefined();
    expect(mc.iceUfrag).toBeUndefined();
    expect(codecNames(fromTeams)).not.toContain('SILK');
    expect(codecNames(fromTeams)).toContain('telephone-event');
    const backToTeams = await s.answer('carrier', carrierOffer(carrier.port, { version: 3, codecs: [[0, 'PCMU/8000'], [101, 'telephone-event/8000']] }));
    const mt = audio(backToTeams);
    expect(mt.port).toBe(m1.port);
    expect(mt.protocol).toBe('RTP/SAVP');
    expect(mt.rtcpMux).toBe('rtcp-mux');
    expect(mt.crypto).toHaveLength(1);
    expect(mt.crypto![0]!.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(mt.iceUfrag).toBeUndefined();

    // Media still flows carrier → Teams after the re-INVITEs, with the key now in force.
    const sent = await sendG711Stream(carrier, { to: target(ans1), count: 5, ssrc: 0x5e55_0002, ptimeMs: 5 });
    const got = await teams.waitFor(5, { filter: rtpFrom(0x5e550002) });
    const key = SrtpContext.fromInline(parseCryptoLines(backToTeams)[0]!.inline);
    expect(parseRtp(key.unprotect(got[0]!.data)).payload.equals(parseRtp(sent[0]!).payload)).toBe(true);
  });

  it('a tenant codec allow-list limits what Teams is offered, telephone-event kept', async () => {
    seq++;
    const s = pool.createSession({ callId: `media-test-${process.pid}-${seq}`, fromTag: `tag-${seq}`, codecs: ['PCMA'] });
    sessions.push(s);
    const toTeams = await s.offer('carrier', carrierOffer(carrier.port));
    expect(codecNames(toTeams)).toEqual(['PCMA', 'telephone-event']);
  });

  it('comfort noise (§7.8) passes a tenant codec list both ways when offered', async () => {
    seq++;
    const s = pool.createSession({ callId: `media-test-${process.pid}-${seq}`, fromTag: `tag-${seq}`, codecs: ['PCMU', 'PCMA'] });
    sessions.push(s);
    const toTeams = await s.offer('carrier', carrierOffer(carrier.port, { codecs: [[0, 'PCMU/8000'], [13, 'CN/8000'], [101, 'telephone-event/8000']] }));
    expect(codecNames(toTeams)).toEqual(['PCMU', 'CN', 'telephone-event']);
    const toCarrier = await s.answer('teams', teamsSdp(teams.port, [newSdesKey(1).line], { pts: [0, 13, 101] }));
    expect(codecNames(toCarrier)).toEqual(['PCMU', 'CN', 'telephone-event']);
  });
});

describe('transcoding (teams-direct-routing.md §7.10)', () => {
  /** RTP from rtpengine (not RTCP, not the STUN checks it sends toward Teams' candidate). */
  const rtpFromEngine = (d: ReceivedDatagram) => d.data.length >= 12 && d.data[0]! >> 6 === 2 && !isRtcp(d.data) && d.from.address === RTPENGINE_IP;
  const transcoding = (codecs: string[]) => {
    seq++;
    const s = pool.createSession({ callId: `media-test-${process.pid}-${seq}`, fromTag: `tag-${seq}`, codecs, transcode: true });
    sessions.push(s);
    return s;
  };

  it('a carrier offering none of the allowed codecs (GSM only): Teams is offered the allowed ones, rtpengine converts both ways (PCMU at Teams, GSM at the carrier)', async () => {
    const s = transcoding(['PCMU', 'PCMA']);
    const toTeams = await s.offer('carrier', carrierOffer(carrier.port, { codecs: [[3, 'GSM/8000'], [101, 'telephone-event/8000']] }));
    expect(codecNames(toTeams)).toEqual(['PCMU', 'PCMA', 'telephone-event']);
    const teamsKey = newSdesKey(1);
    const toCarrier = await s.answer('teams', teamsSdp(teams.port, [teamsKey.line], { pts: [0, 101] }));
    expect(codecNames(toCarrier)).toEqual(['GSM', 'telephone-event']);

    // Carrier GSM → Teams: SRTP PCMU (160-byte payloads, a new codec, not the carrier's bytes).
    const rtpeCarrierSide = target(toCarrier);
    await sendGsmStream(carrier, { to: rtpeCarrierSide, count: 25, ssrc: 0x65a0_0001, firstSeq: 3000 });
    const atTeams = await teams.waitFor(10, { timeoutMs: 4000, filter: rtpFromEngine });
    const rtpengineKey = SrtpContext.fromInline(parseCryptoLines(toTeams)[0]!.inline);
    for (const d of atTeams) {
      const p = parseRtp(rtpengineKey.unprotect(d.data));
      expect(p.payloadType).toBe(0);
      expect(p.payload.length).toBe(160);
    }

    // Teams PCMU (SRTP) → carrier: GSM frames.
    const teamsTx = new SrtpContext(teamsKey.masterKey, teamsKey.masterSalt);
    await sendG711Stream(teams, { to: target(toTeams), count: 25, ssrc: 0x7ea5_0065, ptimeMs: 20, transform: (p) => teamsTx.protect(p) });
    const atCarrier = await carrier.waitFor(10, { timeoutMs: 4000, filter: rtpFromEngine });
    for (const d of atCarrier) {
      const p = parseRtp(d.data);
      expect(p.payloadType).toBe(3);
      expect(p.payload.length).toBe(33);
    }

    // Teams re-offers (a hold, a refresh): the carrier is offered GSM again, and Teams' answer
    // keeps the codec Teams chose.
    const reoffer = await s.offer('teams', teamsSdp(teams.port, [teamsKey.line], { version: 1 }));
    expect(codecNames(reoffer)).toContain('GSM');
    const reanswer = await s.answer('carrier', carrierOffer(carrier.port, { version: 2, codecs: [[3, 'GSM/8000'], [101, 'telephone-event/8000']] }));
    expect(codecNames(reanswer).filter((c) => c !== 'telephone-event')).toEqual(['PCMU']);
    // The carrier re-offers GSM: Teams is offered the codec it uses.
    const carrierReoffer = await s.offer('carrier', carrierOffer(carrier.port, { version: 3, codecs: [[3, 'GSM/8000'], [101, 'telephone-event/8000']] }));
    expect(codecNames(carrierReoffer).filter((c) => c !== 'telephone-event')).toContain('PCMU');
    expect(codecNames(carrierReoffer)).not.toContain('GSM');
  });

  it('an offer with an allowed codec is not transcoded; without transcoding a GSM-only offer reaches Teams unchanged (rtpengine strips no last codec), nothing added', async () => {
    const s = transcoding(['PCMA']);
    expect(codecNames(await s.offer('carrier', carrierOffer(carrier.port)))).toEqual(['PCMA', 'telephone-event']);
    seq++;
    const plain = pool.createSession({ callId: `media-test-${process.pid}-${seq}`, fromTag: `tag-${seq}`, codecs: ['PCMU', 'PCMA'] });
    sessions.push(plain);
    expect(codecNames(await plain.offer('carrier', carrierOffer(carrier.port, { codecs: [[3, 'GSM/8000'], [101, 'telephone-event/8000']] })))).toEqual(['GSM', 'telephone-event']);
  });
});

describe('Teams → PSTN (Teams offers)', () => {
  it('carrier gets RTP/AVP without SILK, ICE or rtcp-mux; Teams gets one _80 crypto (its own tag) and rtcp-mux; media crosses both ways', async () => {
    seq++;
    const s = pool.createSession({ callId: `media-test-${process.pid}-${seq}`, fromTag: `tag-${seq}`, collectStatsOnDelete: true });
    sessions.push(s);
    const k32 = newSdesKey(2);
    const k80 = newSdesKey(3);
    const offer = teamsSdp(teams.port, [k32.line.replace('AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'), k80.line]);
    const toCarrier = await s.offer('teams', offer);
    const mc = audio(toCarrier);
    expect(mc.protocol).toBe('RTP/AVP');
    expect(mc.crypto).toBeUndefined();
    expect(mc.rtcpMux).toBeUndefined();
    expect(mc.candidates).toBeUndefined();
    expect(mc.iceUfrag).toBeUndefined();
    expect(codecNames(toCarrier)).not.toContain('SILK');
    expect(codecNames(toCarrier)).toEqual(['G722', 'PCMU', 'PCMA', 'CN', 'telephone-event']);

    const toTeams = await s.answer('carrier', carrierOffer(carrier.port, { codecs: [[0, 'PCMU/8000'], [101, 'telephone-event/8000']] }));
    const mt = audio(toTeams);
    expect(mt.protocol).toBe('RTP/SAVP');
    expect(mt.rtcpMux).toBe('rtcp-mux');
    expect(mt.crypto).toHaveLength(1);
    expect(mt.crypto![0]!.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(mt.crypto![0]!.id).toBe(3);
    expect(mt.candidates).toBeUndefined();
    expect(codecNames(toTeams)).toEqual(['PCMU', 'telephone-event']);

    // Teams → carrier: Teams encrypts with the _80 key it offered.
    const teamsTx = new SrtpContext(k80.masterKey, k80.masterSalt);
    const sentByTeams = await sendG711Stream(teams, { to: target(toTeams), count: 8, ssrc: 0x7ea5_0003, ptimeMs: 5, transform: (p) => teamsTx.protect(p) });
    const atCarrier = await carrier.waitFor(8, { filter: rtpFrom(0x7ea50003) });
    for (const [d, sent] of pairBySeq(atCarrier, sentByTeams)) expect(d.data.equals(sent)).toBe(true);

    // carrier → Teams: rtpengine encrypts with the key of its answer.
    const sentByCarrier = await sendG711Stream(carrier, { to: target(toCarrier), count: 8, ssrc: 0x0c0f_0004, ptimeMs: 5 });
    const atTeams = await teams.waitFor(8, { filter: rtpFrom(0x0c0f0004) });
    const rx = SrtpContext.fromInline(parseCryptoLines(toTeams)[0]!.inline);
    for (const [d, sent] of pairBySeq(atTeams, sentByCarrier)) {
      expect(d.data.subarray(12, 172).equals(sent.subarray(12))).toBe(false);
      expect(rx.unprotect(d.data).equals(sent)).toBe(true);
    }

    // delete() as call control calls it (no options) still captures the CDR counters.
    await s.delete();
    expect(s.finalStats?.teams.packets).toBeGreaterThanOrEqual(8);
    expect(s.finalStats?.carrier.packets).toBeGreaterThanOrEqual(8);
    expect(s.tags).toEqual({ teams: `tag-${seq}`, carrier: `tag-${seq}-b` });
  });
});

describe('session lifecycle and errors', () => {
  it('refuses an answer before an offer and an answer from the offering leg', async () => {
    const s = newSession();
    await expect(s.answer('teams', teamsSdp(teams.port, [newSdesKey().line]))).rejects.toMatchObject({ code: 'MEDIA_ERR_INVALID_STATE' });
    await s.offer('carrier', carrierOffer(carrier.port));
    await expect(s.answer('carrier', carrierOffer(carrier.port))).rejects.toMatchObject({ code: 'MEDIA_ERR_INVALID_STATE' });
  });

  it('delete before any offer is a no-op; operations after delete are refused; concurrent deletes share one', async () => {
    const a = newSession();
    await expect(a.delete()).resolves.toBeUndefined();
    await expect(a.offer('carrier', carrierOffer(carrier.port))).rejects.toMatchObject({ code: 'MEDIA_ERR_INVALID_STATE' });

    const b = newSession();
    await b.offer('carrier', carrierOffer(carrier.port));
    expect(await pool.activeSessions()).toBe(1);
    const [r1, r2] = [b.delete(), b.delete()];
    expect(r1).toBe(r2);
    await Promise.all([r1, r2]);
    expect(await pool.activeSessions()).toBe(0);
    await expect(b.query()).rejects.toMatchObject({ code: 'MEDIA_ERR_INVALID_STATE' });
  });

  it('a delete racing the initial offer (fast CANCEL) leaves no call in rtpengine', async () => {
    const s = newSession();
    const offer = s.offer('carrier', carrierOffer(carrier.port));
    const del = s.delete();
    await expect(offer).rejects.toMatchObject({ code: 'MEDIA_ERR_INVALID_STATE' });
    await del;
    expect(s.state).toBe('deleted');
    expect(await pool.activeSessions()).toBe(0);
  });

  it('an SDP rtpengine cannot use gives MEDIA_ERR_RTPENGINE (488) and leaves nothing behind', async () => {
    const s = newSession();
    const err = await s.offer('carrier', 'this is not an SDP').catch((e: unknown) => e);
    expect(isMediaError(err, 'MEDIA_ERR_RTPENGINE')).toBe(true);
    expect((err as { sipStatus: number }).sipStatus).toBe(488);
    expect(s.state).toBe('new');
    expect(s.instance).toBeUndefined();
  });
});
