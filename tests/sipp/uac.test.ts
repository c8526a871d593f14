/**
 * Issue 2 acceptance, "UAC: createUAC with and without digest auth, CANCEL with a Reason header,
 * following a 3xx": a drachtio-srf app calls SIPp callees through our server, over UDP and TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSippUas, stopAllSipp } from '../helpers/sipp.js';
import { sdp } from '../helpers/srf.js';
import { waitForIdle } from '../helpers/sip-server.js';
import { body, expectSippOk, header, oneReceived, sippPort, startHarness, TRANSPORTS, type Harness } from './support.js';

const SERVER_IP = '127.0.3.20';
const CALLEE_IP = '127.0.3.21';
const TARGET_IP = '127.0.3.22';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ host: SERVER_IP });
});

afterAll(async () => {
  await stopAllSipp();
  await h?.close();
});

describe.each(TRANSPORTS)('UAC over $name', (t) => {
  it('createUAC without auth: INVITE with SDP and custom header, 200 with SDP, then BYE from the app', async () => {
    const port = await sippPort(CALLEE_IP);
    const callee = await startSippUas({ scenario: 'uas-answer-200.xml', localIp: CALLEE_IP, localPort: port, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const dlg = await h.app.srf.createUAC(`sip:bob@${CALLEE_IP}:${port}${t.uriParam}`, {
      localSdp: sdp('app-uac', SERVER_IP),
      headers: { 'X-App': 'uac-plain', Subject: 'createUAC test' },
    });
    expect(dlg.remote.sdp).toContain('o=sippcallee');
    expect(dlg.type).toBe('uac');
    await dlg.destroy();
    const r = await callee.done;
    expectSippOk(r);
    const invite = oneReceived(r, /^INVITE /);
    expect(invite.firstLine).toBe(`INVITE sip:bob@${CALLEE_IP}:${port}${t.uriParam} SIP/2.0`);
    expect(header(invite, 'X-App')).toBe('uac-plain');
    expect(header(invite, 'Subject')).toBe('createUAC test');
    expect(body(invite)).toContain('o=app-uac');
    expect(header(invite, 'Via')).toMatch(new RegExp(`^SIP/2\\.0/${t.name.toUpperCase()} ${SERVER_IP.replace(/\./g, '\\.')}:${h.s.sipPort};branch=z9hG4bK`));
    expect(header(invite, 'Contact')).toContain(`${SERVER_IP}:${h.s.sipPort}`);
    const bye = oneReceived(r, /^BYE /);
    expect(header(bye, 'Call-ID')).toBe(header(invite, 'Call-ID'));
  });

  it('createUAC with digest auth: 401 challenge, retried INVITE carries valid credentials', async () => {
    const port = await sippPort(CALLEE_IP);
    const callee = await startSippUas({ scenario: 'uas-auth.xml', localIp: CALLEE_IP, localPort: port, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const dlg = await h.app.srf.createUAC(`sip:bob@${CALLEE_IP}:${port}${t.uriParam}`, {
      localSdp: sdp('app-uac-auth', SERVER_IP),
      auth: { username: 'alice', password: 'wonderland' },
    });
    expect(dlg.remote.sdp).toContain('o=sippcallee');
    await dlg.destroy();
    const r = await callee.done;
    expectSippOk(r);
    expect(r.logs).toContain('AUTH OK');
    const first = oneReceived(r, /^INVITE /, 0);
    const second = oneReceived(r, /^INVITE /, 1);
    expect(header(first, 'Authorization')).toBeUndefined();
    expect(header(second, 'Authorization')).toMatch(/^Digest .*username="alice".*realm="sipp.test"/);
    // RFC 3261 22.2: same Call-ID and From tag, CSeq incremented
    expect(header(second, 'Call-ID')).toBe(header(first, 'Call-ID'));
    expect(header(second, 'From')).toBe(header(first, 'From'));
    expect(Number.parseInt(header(second, 'CSeq') ?? '0', 10)).toBe(Number.parseInt(header(first, 'CSeq') ?? '0', 10) + 1);
    // the server ACKed the 401 itself
    expect(oneReceived(r, /^ACK /, 0)).toBeDefined();
  });

  it('createUAC with a wrong password fails with the 403 the callee sends', async () => {
    const port = await sippPort(CALLEE_IP);
    const callee = await startSippUas({ scenario: 'uas-auth.xml', localIp: CALLEE_IP, localPort: port, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const err = await h.app.srf
      .createUAC(`sip:bob@${CALLEE_IP}:${port}${t.uriParam}`, { localSdp: sdp('app-uac-auth', SERVER_IP), auth: { username: 'alice', password: 'not-the-password' } })
      .then(
        () => undefined,
        (e: any) => e,
      );
    expect(err?.status).toBe(403);
    const r = await callee.done;
    expectSippOk(r);
    expect(r.logs).toContain('AUTH BAD');
  });

  it('CANCEL from the app carries its Reason header to the callee; createUAC fails with 487', async () => {
    const port = await sippPort(CALLEE_IP);
    const callee = await startSippUas({ scenario: 'uas-cancel.xml', localIp: CALLEE_IP, localPort: port, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    let sent: any;
    const reason = 'SIP;cause=200;text="Call completed elsewhere"';
    const err = await h.app.srf
      .createUAC(
        `sip:bob@${CALLEE_IP}:${port}${t.uriParam}`,
        { localSdp: sdp('app-uac-cancel', SERVER_IP) },
        {
          cbRequest: (_e: unknown, req: any) => {
            sent = req;
          },
          cbProvisional: (prov: any) => {
            if (prov.status === 180) sent.cancel({ headers: { Reason: reason } });
          },
        },
      )
      .then(
        () => undefined,
        (e: any) => e,
      );
    expect(err?.status).toBe(487);
    const r = await callee.done;
    expectSippOk(r);
    const cancel = oneReceived(r, /^CANCEL /);
    expect(header(cancel, 'Reason')).toBe(reason);
    const invite = oneReceived(r, /^INVITE /);
    // RFC 3261 9.1: CANCEL has the INVITE's Request-URI, Call-ID, From, top Via branch and CSeq number
    expect(cancel.firstLine.replace(/^CANCEL/, 'INVITE')).toBe(invite.firstLine);
    expect(header(cancel, 'Call-ID')).toBe(header(invite, 'Call-ID'));
    expect(header(cancel, 'Via')).toBe(header(invite, 'Via'));
    expect(header(cancel, 'CSeq')).toBe(`${Number.parseInt(header(invite, 'CSeq') ?? '', 10)} CANCEL`);
    // the server ACKed the 487 itself
    expect(header(oneReceived(r, /^ACK /), 'CSeq')).toMatch(/ ACK$/);
  });

  it('createUAC with followRedirects follows a 302 to the Contact it names', async () => {
    const [redirPort, targetPort] = [await sippPort(CALLEE_IP), await sippPort(TARGET_IP)];
    const target = await startSippUas({ scenario: 'uas-answer-200.xml', localIp: TARGET_IP, localPort: targetPort, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const redirector = await startSippUas({
      scenario: 'uas-302.xml',
      localIp: CALLEE_IP,
      localPort: redirPort,
      transport: t.sipp,
      calls: 1,
      timeoutMs: 15_000,
      keys: { redirect_to: `${TARGET_IP}:${targetPort}${t.uriParam}` },
    });
    const dlg = await h.app.srf.createUAC(`sip:bob@${CALLEE_IP}:${redirPort}${t.uriParam}`, { localSdp: sdp('app-uac-3xx', SERVER_IP), followRedirects: true } as any);
    expect(dlg.remote.sdp).toContain(`IN IP4 ${TARGET_IP}`);
    await dlg.destroy();
    const [rr, rt] = await Promise.all([redirector.done, target.done]);
    expectSippOk(rr);
    expectSippOk(rt);
    expect(oneReceived(rt, /^INVITE /).firstLine).toMatch(new RegExp(`^INVITE sip:redirected@${TARGET_IP.replace(/\./g, '\\.')}:${targetPort}`));
    // the 302 was ACKed by the server
    expect(oneReceived(rr, /^ACK /)).toBeDefined();
  });
});

describe('UAC bookkeeping', () => {
  it('leaves no dialogs, server transactions or pending requests behind (client INVITE transactions only in Timer D)', async () => {
    // RFC 3261 17.1.1.2: after a non-2xx final response over UDP the INVITE client transaction
    // stays in Completed for Timer D (at least 32 s, independent of T1) to absorb retransmitted
    // finals. The UDP group above ends 5 INVITEs that way (401, 401 + 403, 487, 302); everything
    // else must be gone.
    const stats = await waitForIdle(h.s, 8000, { allowClientTransactions: 5 });
    expect(stats.appConnections).toBe(1);
    expect(h.app.errors).toEqual([]);
  });
});
