/**
 * Issue 2 acceptance, "Retransmissions": SIPp scenarios that drop the first 200 or the first 503
 * see it retransmitted; an unanswered request times out per Timer B/F and the app gets a 408;
 * after a bounded load run the server's transaction and dialog counts return to zero.
 *
 * The server runs with T1 = 50 ms, T2 = 400 ms, T4 = 500 ms so that 64*T1 = 3.2 s.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsFor, runSipp, sippReport, stopAllSipp } from '../helpers/sipp.js';
import { deferred, sdp } from '../helpers/srf.js';
import { waitForIdle } from '../helpers/sip-server.js';
import { freePort, freePorts, UdpPeer, waitFor } from '../helpers/net.js';
import { expectSippOk, FAST_TIMERS, sippPort, startHarness, type Harness } from './support.js';

const SERVER_IP = '127.0.3.50';
const SIPP_IP = '127.0.3.51';
const SINK_IP = '127.0.3.52';
const T1 = FAST_TIMERS.T1;
const T2 = FAST_TIMERS.T2;

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ host: SERVER_IP, timers: FAST_TIMERS });
});

afterAll(async () => {
  await stopAllSipp();
  await h?.close();
});

const branchOf = (text: string): string | undefined => /^Via:[^\r\n]*;branch=([^;\s,]+)/im.exec(text)?.[1];

describe('retransmissions over UDP', () => {
  it('a caller that ignores the first 200 OK gets it retransmitted (RFC 3261 13.3.1.4), then the call completes', async () => {
    const acked = deferred<void>();
    h.onInvite = async (req, res) => {
      const dlg = await h.app.srf.createUAS(req, res, { localSdp: sdp('app-retrans', SERVER_IP) });
      dlg.on('ack', () => acked.resolve());
    };
    const r = await runSipp({ scenario: 'uac-invite-ignore-first-200.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: h.s.sipHostPort, pauseMs: 100 });
    expectSippOk(r);
    const ok = rowsFor(r, '200', 'recv')[0];
    expect(ok?.count, sippReport(r)).toBe(1);
    // 1.5 s without ACK at T1 = 50 ms: retransmissions at 50, 150, 350, 750 ms (then 400 ms apart)
    expect(ok?.retrans ?? 0, sippReport(r)).toBeGreaterThanOrEqual(2);
    await acked.promise;
  });

  it('a 200 OK that is never ACKed is retransmitted at T1, 2*T1, ... capped at T2, and after 64*T1 the session ends with a BYE (ACK timeout)', async () => {
    const caller = await UdpPeer.bind(SINK_IP);
    const destroyed = deferred<void>();
    try {
      h.onInvite = async (req, res) => {
        const dlg = await h.app.srf.createUAS(req, res, { localSdp: sdp('app-no-ack', SERVER_IP) });
        dlg.on('destroy', () => destroyed.resolve());
      };
      const callId = `no-ack-${Date.now()}@${SINK_IP}`;
      const invite = [
        `INVITE sip:service@${SERVER_IP}:${h.s.sipPort} SIP/2.0`,
        `Via: SIP/2.0/UDP ${SINK_IP}:${caller.port};branch=z9hG4bK-no-ack-1;rport`,
        'Max-Forwards: 70',
        `From: <sip:caller@${SINK_IP}>;tag=no-ack-from`,
        `To: <sip:service@${SERVER_IP}>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 INVITE',
        `Contact: <sip:caller@${SINK_IP}:${caller.port}>`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      const started = Date.now();
      await caller.send(invite, SERVER_IP, h.s.sipPort);
      const bye = await caller.waitFor((d) => d.text.startsWith('BYE '), 64 * T1 + 3000);
      const elapsed = bye.at - started;
      expect(elapsed).toBeGreaterThanOrEqual(64 * T1 - 100);
      expect(elapsed).toBeLessThan(64 * T1 + 1500);
      expect(bye.text).toMatch(/^Reason:.*ACK timeout/im);
      expect(bye.text).toContain(`Call-ID: ${callId}`);
      const oks = caller.received.filter((d) => d.text.startsWith('SIP/2.0 200 ') && /CSeq:\s*1 INVITE/i.test(d.text));
      // sent at 0, then T1, 3*T1, 7*T1, 15*T1 (= T2 reached), then every T2 until 64*T1
      expect(oks.length).toBeGreaterThanOrEqual(8);
      const gaps = oks.slice(1).map((d, i) => d.at - oks[i]!.at);
      expect(gaps[0]!, `gaps ${gaps.join(',')}`).toBeGreaterThanOrEqual(T1 * 0.6);
      expect(gaps[0]!, `gaps ${gaps.join(',')}`).toBeLessThan(T1 * 3);
      for (let i = 1; i < 3; i++) expect(gaps[i]!, `gaps ${gaps.join(',')}`).toBeGreaterThan(gaps[i - 1]! * 1.4);
      expect(Math.max(...gaps), `gaps ${gaps.join(',')}`).toBeLessThan(T2 * 1.6);
      // the caller answers the BYE; the app learns that the dialog is gone
      const via = /^Via:[^\r\n]*/im.exec(bye.text)![0];
      const hdr = (name: string) => new RegExp(`^${name}:[^\\r\\n]*`, 'im').exec(bye.text)![0];
      await caller.send(['SIP/2.0 200 OK', via, hdr('From'), hdr('To'), hdr('Call-ID'), hdr('CSeq'), 'Content-Length: 0', '', ''].join('\r\n'), bye.from.address, bye.from.port);
      await destroyed.promise;
    } finally {
      await caller.close();
    }
  });

  it('a caller that ignores the first 503 gets it retransmitted (timer G) until it ACKs', async () => {
    h.onInvite = (_req, res) => res.send(503);
    const r = await runSipp({ scenario: 'uac-invite-ignore-first-503.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: h.s.sipHostPort });
    expectSippOk(r);
    const unavailable = rowsFor(r, '503', 'recv')[0];
    expect(unavailable?.count, sippReport(r)).toBe(1);
    expect(unavailable?.retrans ?? 0, sippReport(r)).toBeGreaterThanOrEqual(2);
  });

  it('an unanswered INVITE times out after 64*T1 (Timer B) with a 408 to the app; timer A doubles the interval', async () => {
    const sink = await UdpPeer.bind(SINK_IP);
    try {
      const started = Date.now();
      const err = await h.app.srf.createUAC(`sip:nobody@${SINK_IP}:${sink.port}`, { localSdp: sdp('app-timer-b', SERVER_IP) }).then(
        () => undefined,
        (e: any) => e,
      );
      const elapsed = Date.now() - started;
      expect(err?.status).toBe(408);
      expect(elapsed).toBeGreaterThanOrEqual(64 * T1 - 200);
      expect(elapsed).toBeLessThan(64 * T1 + 3000);
      const invites = sink.received.filter((d) => d.text.startsWith('INVITE '));
      // sent at 0, 50, 150, 350, 750, 1550, 3150 ms
      expect(invites.length).toBeGreaterThanOrEqual(6);
      expect(invites.length).toBeLessThanOrEqual(8);
      expect(new Set(invites.map((d) => branchOf(d.text))).size).toBe(1);
      const gaps = invites.slice(1).map((d, i) => d.at - invites[i]!.at);
      expect(gaps[0]).toBeGreaterThanOrEqual(T1 * 0.6);
      expect(gaps[0]).toBeLessThan(T1 * 4);
      // RFC 3261 17.1.1.2: each interval doubles (checked from 2*T1 on, where timer jitter is small)
      for (let i = 2; i < Math.min(gaps.length, 5); i++) expect(gaps[i]!, `gaps ${gaps.join(',')}`).toBeGreaterThan(gaps[i - 1]! * 1.4);
    } finally {
      await sink.close();
    }
  });

  it('an unanswered OPTIONS times out after 64*T1 (Timer F) with a 408; timer E is capped at T2', async () => {
    const sink = await UdpPeer.bind(SINK_IP);
    try {
      const started = Date.now();
      const status = deferred<number>();
      const req = await h.app.srf.request(`sip:nobody@${SINK_IP}:${sink.port}`, { method: 'OPTIONS', headers: { 'X-Test': 'timer-f' } } as any);
      (req as any).on('response', (res: any) => status.resolve(res.status));
      expect(await status.promise).toBe(408);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(64 * T1 - 200);
      expect(elapsed).toBeLessThan(64 * T1 + 3000);
      const sent = sink.received.filter((d) => d.text.startsWith('OPTIONS '));
      expect(sent.length).toBeGreaterThanOrEqual(8);
      expect(new Set(sent.map((d) => branchOf(d.text))).size).toBe(1);
      const gaps = sent.slice(1).map((d, i) => d.at - sent[i]!.at);
      // the interval grows to T2 and stays there
      expect(Math.max(...gaps)).toBeLessThan(T2 * 1.6);
      expect(gaps[gaps.length - 2]!).toBeGreaterThanOrEqual(T2 * 0.7);
    } finally {
      await sink.close();
    }
  });
});

describe('timeouts over TCP', () => {
  it('an unanswered INVITE over TCP is sent once (no retransmission on a reliable transport) and times out with 408', async () => {
    const port = await freePort(SINK_IP, ['tcp']);
    const received: string[] = [];
    const sockets = new Set<net.Socket>();
    const sink = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('data', (d) => received.push(d.toString('latin1')));
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => sink.listen(port, SINK_IP, () => r()));
    try {
      const started = Date.now();
      const err = await h.app.srf.createUAC(`sip:nobody@${SINK_IP}:${port};transport=tcp`, { localSdp: sdp('app-timer-b-tcp', SERVER_IP) }).then(
        () => undefined,
        (e: any) => e,
      );
      expect(err?.status).toBe(408);
      expect(Date.now() - started).toBeGreaterThanOrEqual(64 * T1 - 200);
      const all = received.join('');
      expect(all.match(/^INVITE /gm)?.length).toBe(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });
});

describe('in-dialog requests once the dialog\'s connection is gone', () => {
  it('go to the remote target (RFC 3261 §12.2.1.1); one that cannot be delivered gets 503 and a warning naming it', async () => {
    // deadPort: the Contact of the 200, where nothing listens.
    const [port, deadPort] = (await freePorts(SINK_IP, 2, ['tcp'])) as [number, number];
    const sockets = new Set<net.Socket>();
    // A UAS over TCP that answers 200 with a Contact on another port, then closes the connection once ACKed.
    const uas = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => undefined);
      let seen = '';
      sock.on('data', (d) => {
        seen += d.toString('latin1');
        if (seen.startsWith('INVITE ') && seen.includes('\r\n\r\n') && !seen.includes('SENT-200')) {
          const head = seen.slice(0, seen.indexOf('\r\n\r\n')).split('\r\n');
          const hdr = (n: string) => head.filter((l) => l.toLowerCase().startsWith(`${n}:`));
          const body = `v=0\r\no=uas 1 1 IN IP4 ${SINK_IP}\r\ns=-\r\nc=IN IP4 ${SINK_IP}\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n`;
          const lines = ['SIP/2.0 200 OK', ...hdr('via'), hdr('from')[0]!, `${hdr('to')[0]!};tag=uas-gone`, hdr('call-id')[0]!, hdr('cseq')[0]!, `Contact: <sip:uas@${SINK_IP}:${deadPort};transport=tcp>`, 'Content-Type: application/sdp', `Content-Length: ${body.length}`, '', body];
          sock.write(lines.join('\r\n'));
          seen += 'SENT-200';
        } else if (/\r\nACK /.test(`\r\n${seen.split('SENT-200')[1] ?? ''}`)) {
          sock.destroy();
        }
      });
    });
    await new Promise<void>((r) => uas.listen(port, SINK_IP, () => r()));
    try {
      const dlg = await h.app.srf.createUAC(`sip:uas@${SINK_IP}:${port};transport=tcp`, { localSdp: sdp('app-gone', SERVER_IP) });
      await waitFor(() => [...sockets].every((s) => s.destroyed) || undefined, { what: 'the UAS closed its connection' });
      await new Promise((r) => setTimeout(r, 200)); // the FIN reaches the server
      const warned = () => h.s.logger.entries.filter((e) => e.msg === 'in-dialog request not delivered');
      const before = warned().length;
      const status = deferred<number>();
      dlg.request({ method: 'INFO', headers: { 'Content-Type': 'text/plain' }, body: 'x' }, (err: unknown, res: any) => (err ? status.reject(err) : status.resolve(res.status)));
      expect(await status.promise).toBe(503);
      const w = warned().slice(before);
      expect(w).toHaveLength(1);
      expect(w[0]!.obj).toMatchObject({ method: 'INFO', dest: `tcp:${SINK_IP}:${deadPort}` });
      await dlg.destroy();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => uas.close(() => r()));
    }
  });
});

describe('load run', () => {
  it('200 calls at 50 cps all succeed and the server returns to zero transactions and dialogs', async () => {
    let answered = 0;
    let destroyed = 0;
    h.onInvite = async (req, res) => {
      const dlg = await h.app.srf.createUAS(req, res, { localSdp: sdp('app-load', SERVER_IP) });
      answered++;
      dlg.on('destroy', () => destroyed++);
    };
    const r = await runSipp({
      scenario: 'uac-invite-200.xml',
      localIp: SIPP_IP,
      localPort: await sippPort(SIPP_IP),
      remote: h.s.sipHostPort,
      calls: 200,
      rate: 50,
      pauseMs: 100,
      traceMessages: false,
      timeoutMs: 30_000,
    });
    expectSippOk(r);
    expect(r.stats?.successful).toBe(200);
    expect(r.stats?.outgoingCalls).toBe(200);
    expect(rowsFor(r, 'INVITE', 'send')[0]?.retrans, sippReport(r)).toBe(0);
    await waitFor(() => destroyed === 200, { timeoutMs: 3000, what: `200 destroys (got ${destroyed})` });
    expect(answered).toBe(200);
    // 64*T1 = 3.2 s for the RFC 6026 Accepted state and Timer J; nothing may remain after that
    const stats = await waitForIdle(h.s, 10_000);
    expect(stats).toEqual({ appConnections: 1, clientTransactions: 0, serverTransactions: 0, dialogs: 0, pendingRequests: 0 });
  }, 60_000);
});

describe('retransmission bookkeeping', () => {
  it('leaves nothing behind and no handler failed', async () => {
    await waitForIdle(h.s, 8000);
    expect(h.handlerErrors).toEqual([]);
  });
});
