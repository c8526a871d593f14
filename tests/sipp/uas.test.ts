/**
 * Issue 2 acceptance, "UAS: 200, 486 and 503, and createUAS with SDP": a SIPp caller calls a
 * drachtio-srf app through our server, over UDP and TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMessageLog, runSipp, rowsFor, stopAllSipp } from '../helpers/sipp.js';
import { deferred, sdp } from '../helpers/srf.js';
import { waitForIdle } from '../helpers/sip-server.js';
import { body, expectSippOk, header, oneReceived, sippPort, startHarness, TRANSPORTS, type Harness } from './support.js';

const SERVER_IP = '127.0.3.10';
const SIPP_IP = '127.0.3.11';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ host: SERVER_IP });
});

afterAll(async () => {
  await stopAllSipp();
  await h?.close();
});

describe.each(TRANSPORTS)('UAS over $name', (t) => {
  it('createUAS answers 200 with the app SDP, gets the caller SDP, and ends on the caller BYE', async () => {
    const seen = deferred<{ offer: string; protocol: string; source: string; receivedOn: unknown }>();
    const destroyed = deferred<string>();
    h.onInvite = async (req, res) => {
      seen.resolve({ offer: req.body, protocol: req.protocol, source: req.source_address, receivedOn: req.receivedOn });
      const dlg = await h.app.srf.createUAS(req, res, { localSdp: sdp('app-uas', SERVER_IP), headers: { 'X-App': 'uas-200' } });
      dlg.on('destroy', (bye: any) => destroyed.resolve(bye.method));
    };
    const r = await runSipp({ scenario: 'uac-invite-200.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: h.s.sipHostPort, transport: t.sipp, pauseMs: 200 });
    expectSippOk(r);
    const app = await seen.promise;
    expect(app.offer).toContain('o=sippcaller');
    expect(app.protocol).toBe(t.name);
    expect(app.source).toBe(SIPP_IP);
    expect(app.receivedOn).toBe(`${SERVER_IP}:${h.s.sipPort}`);
    const ok = oneReceived(r, /^SIP\/2\.0 200/);
    expect(header(ok, 'CSeq')).toBe('1 INVITE');
    expect(body(ok)).toContain('o=app-uas');
    expect(header(ok, 'Content-Type')).toBe('application/sdp');
    expect(header(ok, 'X-App')).toBe('uas-200');
    expect(header(ok, 'To')).toMatch(/;tag=\S+/);
    expect(header(ok, 'Contact')).toContain(SERVER_IP);
    expect(await destroyed.promise).toBe('BYE');
    // RFC 3261 §17.2.1: the app answered well within 200 ms, so the server needed no 100 Trying
    // (one may still come if this machine stalls the app for longer; never more than one).
    expect(rowsFor(r, '100', 'recv')[0]?.count ?? 0).toBeLessThanOrEqual(1);
  });

  it('an app that answers after 450 ms: the caller gets one 100 Trying first (RFC 3261 §17.2.1)', async () => {
    h.onInvite = async (_req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 450));
      res.send(486);
    };
    const r = await runSipp({ scenario: 'uac-invite-reject.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: h.s.sipHostPort, transport: t.sipp });
    expectSippOk(r);
    expect(rowsFor(r, '100', 'recv')[0]?.count).toBe(1);
    expect(rowsFor(r, '486', 'recv')[0]?.count).toBe(1);
    const order = parseMessageLog(r.messageLog).filter((m) => m.direction === 'received').map((m) => m.firstLine);
    expect(order.slice(0, 2)).toEqual(['SIP/2.0 100 Trying', 'SIP/2.0 486 Busy Here']);
    // RFC 3261 §8.2.6.2: the 100 may go without a To tag; ours has none.
    expect(header(oneReceived(r, /^SIP\/2\.0 100/), 'To')).not.toMatch(/;tag=/);
  });

  it('res.send(486) reaches the caller as 486 with the app headers and a To tag', async () => {
    h.onInvite = (_req, res) => res.send(486, { headers: { 'X-Why': 'busy-test' } });
    const r = await runSipp({ scenario: 'uac-invite-reject.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: h.s.sipHostPort, transport: t.sipp });
    expectSippOk(r);
    expect(rowsFor(r, '486', 'recv')[0]?.count).toBe(1);
    const busy = oneReceived(r, /^SIP\/2\.0 486/);
    expect(busy.firstLine).toBe('SIP/2.0 486 Busy Here');
    expect(header(busy, 'X-Why')).toBe('busy-test');
    expect(header(busy, 'To')).toMatch(/;tag=\S+/);
    expect(header(busy, 'Via')).toContain(SIPP_IP);
  });

  it('res.send(503) with Retry-After reaches the caller', async () => {
    h.onInvite = (_req, res) => res.send(503, { headers: { 'Retry-After': '7' } });
    const r = await runSipp({ scenario: 'uac-invite-reject.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: h.s.sipHostPort, transport: t.sipp });
    expectSippOk(r);
    expect(rowsFor(r, '503', 'recv')[0]?.count).toBe(1);
    const unavailable = oneReceived(r, /^SIP\/2\.0 503/);
    expect(header(unavailable, 'Retry-After')).toBe('7');
  });
});

describe('UAS bookkeeping', () => {
  it('leaves no transactions, dialogs or pending requests behind', async () => {
    const stats = await waitForIdle(h.s, 8000);
    expect(stats.appConnections).toBe(1);
    expect(h.handlerErrors).toEqual([]);
  });
});
