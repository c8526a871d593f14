/**
 * Teams → PSTN through the gateway (issue 4; teams-direct-routing.md §5): the fake Teams
 * originates over mutual TLS to the tenant FQDN; carrier targets are SIPp UAS on
 * 127.0.6.30 (udp, priority 10), .31 (udp, 20), .32 (tcp, 30).
 */
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audioOf, parseSdp, pidfLo } from '../../helpers/fake-teams/index.js';
import { SipRequest } from '../../../src/sip/message/index.js';
import { defaultConfig } from '../../../src/config/load.js';
import { type BodyPart, parseMultipart } from '../../../src/gateway/location.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { type SippProcess, sippReport } from '../../helpers/sipp.js';
import { GW_IP, GW_TLS_PORT, type GatewayHarness, TARGET_IPS, logged, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, expectSippOk, finalStatuses, header, received, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const ACME = 'acme.customers.example.net';
const [T1, T2] = TARGET_IPS;

/** INVITEs a SIPp target received. */
function invitesAt(r: { messageLog: string }): string[] {
  return received(r as never, /^INVITE /);
}

async function stopped(p: SippProcess) {
  return p.stop();
}

describe('Teams → PSTN: routing by Request-URI host', () => {
  it('a call to the tenant FQDN reaches the first carrier target; responses carry the tenant Contact and Allow', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460123', tenant: ACME, from: '+14255550100' });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    const trying = await call.waitForResponse(100);
    expect(trying.status).toBe(100);
    const ringing = await call.waitForResponse(180);
    for (const res of [ringing, ok]) {
      expect(res.getAll('contact')).toEqual([`<sip:${ACME}:5061;transport=tls>`]);
      const allow = res.getAll('allow').join(',').split(',').map((x) => x.trim());
      expect(allow).toEqual(expect.arrayContaining(['INVITE', 'ACK', 'BYE', 'CANCEL', 'REFER', 'NOTIFY']));
      expect(res.has('record-route')).toBe(false);
    }
    const a = audioOf(parseSdp(ok.body.toString('utf8')))!;
    expect(a.proto).toBe('RTP/SAVP');
    expect(a.crypto.map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
    expect(a.rtcpMux).toBe(true);
    expect(a.codecs.map((c) => c.name.toUpperCase())).not.toContain('SILK');
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const inv = invitesAt(r)[0]!;
    // carrier-a's outbound normalization strips the plus.
    expect(inv.split('\r\n')[0] ?? inv.split('\n')[0]).toMatch(/^INVITE sip:442079460123@127\.0\.6\.30:5060 SIP\/2\.0/);
    expect(header(inv, 'From')).toMatch(/^<sip:14255550100@127\.0\.6\.1(:5060)?>;tag=/);
    expect(inv).toMatch(/m=audio \d+ RTP\/AVP /);
    expect(inv).not.toMatch(/a=crypto|a=ice-|a=candidate|SILK/);
  });

  it('an unknown FQDN gets 403 with a Reason header and reaches no carrier', async () => {
    const call = h.ft.originate({ to: '+442079460123', tenant: 'nobody.customers.example.net' });
    const res = await call.waitForFinal();
    expect(res.status).toBe(403);
    expect(res.get('reason')).toMatch(/^Q\.850;cause=21;text="No trunk config was found/);
  });

  it('§5.3: a To host naming another tenant\'s trunk gets 403; a To host that is no trunk is logged and the Request-URI routes the call', async () => {
    const uriTo = (to: string) => `sip:${to}@${ACME}:${h.config.teams.signalingPort};user=phone;transport=tls`;
    const crossed = h.ft.originate({ to: '+442079460127', tenant: 'plain.customers.example.net', requestUri: uriTo('+442079460127') });
    const res = await crossed.waitForFinal();
    expect(res.status).toBe(403);
    expect(res.get('reason')).toMatch(/^Q\.850;cause=21;text="To host plain\.customers\.example\.net is another trunk/);

    const warned = logged(h, /the To host differs from the Request-URI host/).length;
    const t1 = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460128', tenant: 'sbc.customers.example.net', requestUri: uriTo('+442079460128') });
    expect((await call.waitForFinal()).status).toBe(200);
    expect(logged(h, /the To host differs from the Request-URI host/)).toHaveLength(warned + 1);
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await t1.done);
  });

  it('§2.11: a TLS client without a certificate, or with one Teams\' roots do not sign, is refused before any SIP (the fake Teams, with its certificate, gets through in every test)', async () => {
    const options = (n: number) =>
      [
        `OPTIONS sip:${ACME}:${GW_TLS_PORT};transport=tls SIP/2.0`,
        `Via: SIP/2.0/TLS 127.0.5.9:5061;branch=z9hG4bK-nocert-${n};rport`,
        'Max-Forwards: 70',
        `From: <sip:sip.pstnhub.microsoft.com>;tag=nocert${n}`,
        `To: <sip:${ACME}>`,
        `Call-ID: nocert-${n}@127.0.5.9`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    const attempt = (n: number, cert?: { key: string; cert: string }) =>
      new Promise<{ data: string; ms: number }>((resolve) => {
        const t0 = Date.now();
        let data = '';
        const raw = net.connect({ host: GW_IP, port: GW_TLS_PORT, localAddress: '127.0.5.9' }); // a Teams source address
        const sock = tls.connect({ socket: raw, servername: ACME, ca: h.ft.pki.sbc.ca.cert, minVersion: 'TLSv1.2', ...(cert ?? {}) });
        const timer = setTimeout(() => sock.destroy(), 3000);
        sock.on('secureConnect', () => sock.write(options(n)));
        sock.on('data', (d: Buffer) => (data += d.toString()));
        sock.on('error', () => undefined);
        sock.on('close', () => {
          clearTimeout(timer);
          resolve({ data, ms: Date.now() - t0 });
        });
      });
    for (const [n, cert] of [[1, undefined], [2, { key: h.ft.pki.sbc.client.key, cert: h.ft.pki.sbc.client.cert }]] as const) {
      const r = await attempt(n, cert);
      expect(r.data).toBe('');
      expect(r.ms).toBeLessThan(2500); // closed by the gateway, not by our timer
    }
  });

  it('§5.7: a number with an unescaped # from Teams is accepted, and reaches the carrier escaped (%23, RFC 3261 §25.1)', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460123#55', tenant: ACME });
    expect(call.invite.uri).toContain('+442079460123#55@');
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const inv = invitesAt(r)[0]!;
    expect(inv.split(/\r?\n/)[0]).toBe('INVITE sip:442079460123%2355@127.0.6.30:5060 SIP/2.0');
    expect(header(inv, 'To')).toMatch(/^<sip:442079460123%2355@127\.0\.6\.30>/);
  });

  it('a disabled tenant gets 403', async () => {
    const call = h.ft.originate({ to: '+442079460123', tenant: 'gone.customers.example.net' });
    const res = await call.waitForFinal();
    expect(res.status).toBe(403);
    expect(res.get('reason')).toMatch(/Tenant disabled/);
  });

  it('INVITEs from the Teams ranges over anything but TLS get 403', async () => {
    const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: '127.0.5.5', to: '+442079460123' });
    expectSippOk(r);
    expect(finalStatuses(r)).toEqual([403]);
    expect(header(received(r, /^SIP\/2\.0 403/)[0]!, 'Reason')).toMatch(/must use TLS/);
  });
});

describe('Teams → PSTN: carrier target priority and failover', () => {
  it.each([503, 408])('%i from the first target → the second target answers', async (status) => {
    const t1 = await startTarget({ scenario: `target-reject-${status}.xml`, ip: T1 });
    const t2 = await startTarget({ scenario: 'target-answer.xml', ip: T2 });
    const call = h.ft.originate({ to: '+442079460124', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const [r1, r2] = [await t1.done, await t2.done];
    expectSippOk(r1);
    expectSippOk(r2);
    expect(invitesAt(r1)).toHaveLength(1);
    expect(invitesAt(r2)).toHaveLength(1);
  });

  it('no provisional from the first target in time → CANCEL, the second target answers; Teams had its 100 Trying at once (§1.12)', async () => {
    const t1 = await startTarget({ scenario: 'target-trying-only.xml', ip: T1 });
    const t2 = await startTarget({ scenario: 'target-answer.xml', ip: T2 });
    const call = h.ft.originate({ to: '+442079460125', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    // §1.12: 100 Trying at once, long before the hunt (over a second without a provisional) ended.
    const answeredMs = Date.now() - call.sentAt;
    expect(call.responses.items[0]!.status).toBe(100);
    expect(call.firstResponseMs).toBeLessThan(500);
    expect(answeredMs).toBeGreaterThan(call.firstResponseMs! + 1000);
    expect((await call.bye()).status).toBe(200);
    const r1 = await t1.done;
    expectSippOk(r1);
    expect(received(r1, /^CANCEL /)).toHaveLength(1);
    expectSippOk(await t2.done);
  });

  it('§1.12: silent targets are hunted only within carriers.setupBudgetMs: Teams gets 408 in time to re-route, the last target is never tried', async () => {
    // inviteTimeoutMs is 1.5 s here: without the budget T1 and T2 alone would take 3 s.
    await h.restartGateway({ carriers: { setupBudgetMs: 2000 } });
    try {
      const [t1, t2] = await Promise.all([startTarget({ scenario: 'target-trying-only.xml', ip: T1 }), startTarget({ scenario: 'target-trying-only.xml', ip: T2 })]);
      const mark = h.logs.length;
      const call = h.ft.originate({ to: '+442079460126', tenant: ACME });
      const fin = await call.waitForFinal(6000);
      const ms = Date.now() - call.sentAt;
      expect(fin.status).toBe(408);
      expect(ms).toBeGreaterThanOrEqual(1900);
      expect(ms).toBeLessThan(2800);
      for (const t of [t1, t2]) expect(received(await t.done, /^CANCEL /)).toHaveLength(1);
      const attempts = h.logs.slice(mark).filter((l) => l.msg === 'carrier attempt failed').map((l) => l.target);
      expect(attempts).toEqual([`${T1}:5060`, `${T2}:5060`]);
      expect(h.logs.slice(mark).some((l) => l.msg === 'carrier setup budget spent without a provisional: no further targets tried' && l.next === `${TARGET_IPS[2]}:5060`)).toBe(true);
    } finally {
      await h.restartGateway({ carriers: { setupBudgetMs: defaultConfig().carriers.setupBudgetMs } });
    }
  });

  it('§1.11: every target fails with 502 (before any 18x): Teams gets 503, a code it re-routes on', async () => {
    const targets = await Promise.all([
      startTarget({ scenario: 'target-reject-502.xml', ip: T1 }),
      startTarget({ scenario: 'target-reject-502.xml', ip: T2 }),
      startTarget({ scenario: 'target-reject-502.xml', ip: TARGET_IPS[2], transport: 't1' }),
    ]);
    const call = h.ft.originate({ to: '+442079460129', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(503);
    for (const t of targets) {
      const r = await t.done;
      expectSippOk(r);
      expect(invitesAt(r)).toHaveLength(1);
    }
  });

  it.each([486, 603, 404])('%i from the first target stops routing: Teams gets it', async (status) => {
    const t1 = await startTarget({ scenario: `target-reject-${status}.xml`, ip: T1 });
    const t2 = await startTarget({ scenario: 'target-answer.xml', ip: T2 });
    const call = h.ft.originate({ to: '+442079460126', tenant: ACME });
    const res = await call.waitForFinal();
    expect(res.status).toBe(status);
    expectSippOk(await t1.done);
    const r2 = await stopped(t2);
    expect(invitesAt(r2), sippReport(r2)).toEqual([]);
  });

  it('a digest challenge from the carrier is answered with the configured credentials', async () => {
    const t1 = await startTarget({ scenario: 'target-auth.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460127', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const r = await t1.done;
    expectSippOk(r);
    expect(r.logs).toContain('AUTH OK');
    const second = invitesAt(r)[1]!;
    expect(header(second, 'Authorization')).toMatch(/^Digest .*username="gw-trunk"/);
  });
});

describe('Teams → PSTN: a retry from another Teams datacenter (§1.10)', () => {
  it('Teams loses its connection while the carrier rings and repeats the INVITE from sip2: the pending call follows the retry, the carrier is dialled once', async () => {
    const target = await startTarget({ scenario: 'target-ring-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460131', tenant: ACME, newConnection: true });
    await call.waitForResponse(180);
    // The first datacenter's path breaks; Teams sends the same INVITE (Call-ID, From tag, CSeq)
    // from another datacenter over a new connection.
    expect(h.ft.dropConnections({ endpoint: 'sip', direction: 'outbound' })).toBeGreaterThan(0);
    const mark = call.responses.items.length;
    call.retryFrom('sip2');
    const ok = await call.waitForFinal(8000);
    expect(ok.status).toBe(200);
    const retryVia = call.invite.get('via')!;
    expect(retryVia).toMatch(/^SIP\/2\.0\/TLS 127\.0\.5\.2:/);
    const got = call.responses.items.slice(mark);
    // Its own 100 at once, the ringing it missed, then the answer: all addressed to the retry.
    expect(got.map((r) => r.status)).toEqual([100, 180, 200]);
    for (const r of got) expect(r.get('via')!.startsWith(retryVia)).toBe(true);
    expect(ok.getAll('contact')).toEqual([`<sip:${ACME}:5061;transport=tls>`]);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    expect(invitesAt(r)).toHaveLength(1);
    expect(h.ft.violations).toEqual([]);
  });
});

describe('Teams → PSTN: a retry that is then cancelled (§1.10)', () => {
  it('a CANCEL of the retry reaches the carrier: Teams gets 487 on the retry, the call is gone', async () => {
    const target = await startTarget({ scenario: 'target-trying-only.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460133', tenant: ACME, newConnection: true });
    await call.waitForResponse(100);
    h.ft.dropConnections({ endpoint: 'sip', direction: 'outbound' });
    const mark = call.responses.items.length;
    call.retryFrom('sip2');
    await call.waitForResponse((r) => r.status === 100 && call.responses.items.indexOf(r) >= mark);
    const t0 = Date.now();
    call.cancel();
    expect((await call.waitForFinal()).status).toBe(487);
    // Well before the gateway's own no-provisional timeout (1.5 s) would have cancelled the carrier.
    expect(Date.now() - t0).toBeLessThan(1000);
    const r = await target.done;
    expectSippOk(r);
    expect(invitesAt(r)).toHaveLength(1);
    expect(received(r, /^CANCEL /)).toHaveLength(1);
    expect(h.ft.violations).toEqual([]);
  });
});

describe('Teams → PSTN: a retry after the answer was lost (§1.10)', () => {
  // 'down': the gateway's new connection to the first datacenter (to send its 200) is refused and
  // the first transaction is gone, so the call is found by its dialog; 'hang': that connection
  // hangs, the first transaction is alive. Either way the retry gets the 2xx. ('down' first: a
  // listener closes only once its sockets are gone, and 'hang' leaves one for the connect timeout.)
  it.each(['down', 'hang'] as const)('the first datacenter\'s path breaks before the 200 (%s): the retry gets the same 200, ACKs it, the call works', async (mode) => {
    const target = await startTarget({ scenario: 'target-ring-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460132', tenant: ACME, newConnection: true });
    await call.waitForResponse(180);
    // ('down' closes the listener, which completes once its connections are gone.)
    const moded = h.ft.setMode('sip', mode);
    try {
      // Every connection with the first datacenter, the gateway's own (OPTIONS) included: a
      // response goes over any connection to its Via address (RFC 3261 §18.2.2).
      expect(h.ft.dropConnections({ endpoint: 'sip' })).toBeGreaterThan(0);
      await moded;
      await sleep(2600); // the carrier answers after 2 s; the gateway's 200 cannot reach the first datacenter
      expect(call.responses.items.some((r) => r.status === 200)).toBe(false);
      const mark = call.responses.items.length;
      call.retryFrom('sip2');
      const ok = await call.waitForFinal(5000);
      expect(ok.status).toBe(200);
      const got = call.responses.items.slice(mark);
      expect(got.map((r) => r.status)).toEqual([100, 200]);
      expect(ok.get('via')!.startsWith(call.invite.get('via')!)).toBe(true);
      expect(ok.toTag).toBeTruthy();
      expect(parseSdp(ok.body.toString('utf8')).media[0]?.proto).toBe('RTP/SAVP');
      // The ACK (from sip2) confirmed the call: no ACK-timeout BYE; in-dialog requests work both ways.
      await sleep(300);
      expect(call.requests.items.map((q) => q.method)).not.toContain('BYE');
      expect((await call.bye()).status).toBe(200);
      const r = await target.done;
      expectSippOk(r);
      expect(invitesAt(r)).toHaveLength(1);
      expect(h.ft.violations).toEqual([]);
    } finally {
      await h.ft.setMode('sip', 'up');
    }
  });
});

describe('Teams → PSTN: the gateway\'s requests to Teams go on connections the gateway opens (§2.14)', () => {
  // Teams' proxies carry only their own requests on the connections they open, and close them
  // after 2 idle minutes. A BYE from the gateway must go to Teams' Contact over a connection of
  // its own, whether Teams' connection is still up or not (the fake Teams ignores, and reports, an
  // SBC request on a connection it opened).
  for (const teamsClosed of [false, true]) {
    it(`the carrier hangs up${teamsClosed ? ' after Teams closed the connection its INVITE came on' : ''}: the BYE reaches Teams over the gateway's own connection`, async () => {
      const target = await startTarget({ scenario: 'target-answer-bye.xml', ip: T1 });
      const call = h.ft.originate({ to: '+442079460131', tenant: ACME });
      expect((await call.waitForFinal()).status).toBe(200);
      const teamsConn = h.ft.messages.find((m) => m.dir === 'out' && m.msg instanceof SipRequest && m.msg.method === 'INVITE' && m.msg.callId === call.callId)!.connectionId;
      if (teamsClosed) {
        await sleep(200); // the ACK is through
        expect(h.ft.dropConnections({ direction: 'outbound' }, true)).toBeGreaterThan(0);
      }
      await waitFor(() => call.ended, { timeoutMs: 5000, what: 'BYE from the gateway' });
      expect(call.endedBy).toBe('sbc');
      const bye = h.ft.messages.find((m) => m.dir === 'in' && m.msg instanceof SipRequest && m.msg.method === 'BYE' && m.msg.callId === call.callId)!;
      expect(bye.connectionId).not.toBe(teamsConn);
      expect(h.ft.connections().find((c) => c.id === bye.connectionId)?.direction).toBe('inbound'); // the gateway opened it
      // To the Contact of Teams' INVITE: its FQDN, on the proxy that sent the call.
      expect(bye.endpoint).toBe('sip');
      expect(bye.msg instanceof SipRequest && bye.msg.uri).toBe(`sip:${h.ft.endpoints.sip.fqdn}:${h.ft.endpoints.sip.port};transport=tls`);
      expectSippOk(await target.done);
      expect(h.ft.violations).toEqual([]);
      await waitFor(async () => (await h.pool.activeSessions()) === 0, { what: 'media released' });
    });
  }
});

describe('Teams → PSTN: an emergency call with the caller\'s location (§5.9, PIDF-LO, RFC 6442)', () => {
  /** A SIP message's body as SIPp logged it (everything after the header section). */
  const bodyAfterHead = (text: string): string => text.replace(/^[\s\S]*?\r?\n\r?\n/, '');
  const lf = (t: string) => t.replace(/\r\n/g, '\n');
  const typeOf = (p: BodyPart) => p.headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1];

  it('the multipart body is taken apart: media is anchored on the SDP part, the location part and Geolocation headers reach the carrier unchanged', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460133', tenant: ACME, location: true });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    expect(ok.get('content-type')).toBe('application/sdp');
    expect(audioOf(parseSdp(ok.body.toString('utf8')))!.proto).toBe('RTP/SAVP');
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const inv = invitesAt(r)[0]!;
    expect(header(inv, 'Geolocation')).toBe(call.invite.get('geolocation'));
    expect(header(inv, 'Geolocation-Routing')).toBe('no');
    const parts = parseMultipart(header(inv, 'Content-Type'), bodyAfterHead(inv))!;
    expect(parts.map(typeOf)).toEqual(['application/sdp', 'application/pidf+xml']);
    expect(parts[0]!.body).toMatch(/m=audio \d+ RTP\/AVP /);
    expect(parts[0]!.body).not.toMatch(/a=crypto/);
    const sent = parseMultipart(call.invite.get('content-type'), call.invite.body.toString('utf8'))!;
    expect(lf(parts[1]!.body)).toBe(lf(sent[1]!.body));
    expect(parts[1]!.headers).toEqual(sent[1]!.headers); // Content-ID kept: Geolocation points at it
    expect(logged(h, /location conveyed/)).not.toHaveLength(0);
  });

  it('a body with no SDP part (a multipart with only the location, a lone PIDF-LO) gets 415 with Accept and reaches no carrier', async () => {
    for (const body of [
      { contentType: 'multipart/mixed;boundary=x1', text: `--x1\r\nContent-Type: application/pidf+xml\r\n\r\n${pidfLo('pres:a@b')}\r\n--x1--\r\n` },
      { contentType: 'application/pidf+xml', text: pidfLo('pres:a@b') },
    ]) {
      const res = await h.ft.originate({ to: '+442079460135', tenant: ACME, body }).waitForFinal();
      expect(res.status).toBe(415);
      expect(res.get('accept')).toBe('application/sdp, multipart/mixed');
    }
  });

  it('a carrier that answers 415 to the multipart body gets the SDP alone in the same call: the emergency call goes through', async () => {
    const target = await startTarget({ scenario: 'target-415-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460134', tenant: ACME, location: true });
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const [first, second] = invitesAt(r) as [string, string];
    expect(header(first, 'Content-Type')).toMatch(/^multipart\/mixed/);
    expect(header(second, 'Content-Type')).toBe('application/sdp');
    expect(header(second, 'Geolocation')).toBeUndefined();
    expect(bodyAfterHead(second)).toMatch(/^v=0/);
    expect(header(second, 'Call-ID')).toBe(header(first, 'Call-ID'));
    expect(Number.parseInt(header(second, 'CSeq')!, 10)).toBe(Number.parseInt(header(first, 'CSeq')!, 10) + 1);
    expect(logged(h, /carrier refused the location body \(415\)/)).toHaveLength(1);
  });
});

describe('Teams → PSTN: caller-ID screening (tenant teams.callerIdScreening)', () => {
  const TRANSCODER = 'transcoder.customers.example.net';
  const STRICT = 'strict.customers.example.net';
  /** One answered Teams → PSTN call; the INVITE the carrier got. */
  const callThrough = async (o: Parameters<GatewayHarness['ft']['originate']>[0]): Promise<string> => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate(o);
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    return invitesAt(r)[0]!;
  };

  it('replace: a number the tenant does not own reaches the carrier as its defaultCallerId; its own numbers and anonymous pass', async () => {
    // (carrier-a's outbound normalization strips the plus)
    expect(header(await callThrough({ to: '+442079460140', tenant: TRANSCODER, from: '+15551230000' }), 'From')).toMatch(/^<sip:14255550400@/);
    expect(logged(h, 'caller ID screening: not a number of the tenant, replaced by its default').at(-1)).toMatchObject({ from: '+15551230000', presented: '+14255550400', tenant: 'transcoder' });
    expect(header(await callThrough({ to: '+442079460141', tenant: TRANSCODER, from: '+14255550433' }), 'From')).toMatch(/^<sip:14255550433@/);
    expect(header(await callThrough({ to: '+442079460142', tenant: TRANSCODER, from: 'anonymous' }), 'From')).toMatch(/^<sip:anonymous@/);
  });

  it('reject: a number the tenant does not own gets 403 (Q.850 21) and reaches no carrier', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460143', tenant: STRICT, from: '+14255550100' }); // acme's number, not strict's
    const res = await call.waitForFinal();
    expect(res.status).toBe(403);
    expect(res.get('reason')).toMatch(/^Q\.850;cause=21;text="Caller ID \+14255550100 is not a number of this tenant"/);
    const r = await stopped(target);
    expect(invitesAt(r), sippReport(r)).toEqual([]);
  });

  it('reject: the tenant\'s own number passes; a call one of its users forwards (History-Info) keeps the original caller; PAI goes on only with a number of the tenant', async () => {
    let inv = await callThrough({ to: '+442079460144', tenant: STRICT, from: '+14255550701', pai: '<tel:+14255550701>' });
    expect(header(inv, 'From')).toMatch(/^<sip:14255550701@/);
    expect(header(inv, 'P-Asserted-Identity')).toBe('<tel:+14255550701>');
    inv = await callThrough({ to: '+442079460145', tenant: STRICT, from: '+14255550702', pai: '<tel:+15551230000>' });
    expect(header(inv, 'From')).toMatch(/^<sip:14255550702@/);
    expect(header(inv, 'P-Asserted-Identity')).toBeUndefined();
    // Simultaneous ring / forwarding: the PSTN caller stays the caller, the tenant's user forwarded it.
    const historyInfo = [
      '<sip:+14255550703@sip.pstnhub.microsoft.com;user=phone>;index=1',
      '<sip:+447700900123@sip.pstnhub.microsoft.com;user=phone?Reason=SIP%3Bcause%3D302>;index=1.1',
    ];
    inv = await callThrough({ to: '+447700900123', tenant: STRICT, from: '+15551230000', historyInfo });
    expect(header(inv, 'From')).toMatch(/^<sip:15551230000@/);
    expect(header(inv, 'Diversion')).toBe('<sip:+447700900123@sip.pstnhub.microsoft.com;user=phone>;reason=unconditional;counter=1');
  });
});

describe('Teams → PSTN: identity headers', () => {
  const historyInfo = [
    '<sip:+14255550100@sip.pstnhub.microsoft.com;user=phone>;index=1',
    '<sip:+14255550111@sip.pstnhub.microsoft.com;user=phone?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%20Temporarily%22>;index=1.1',
  ];

  it('PAI and Privacy are forwarded and History-Info becomes Diversion when the tenant enables them', async () => {
    const t1 = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460128', tenant: ACME, from: '+14255550100', pai: '<tel:+14255550100>', privacy: 'id', historyInfo });
    expect((await call.waitForFinal()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    const r = await t1.done;
    expectSippOk(r);
    const inv = invitesAt(r)[0]!;
    expect(header(inv, 'P-Asserted-Identity')).toBe('<tel:+14255550100>');
    expect(header(inv, 'Privacy')).toBe('id');
    expect(header(inv, 'Diversion')).toBe('<sip:+14255550111@sip.pstnhub.microsoft.com;user=phone>;reason=unconditional;counter=1');
  });

  it('a tenant without forwardPai / historyInfoToDiversion sends neither', async () => {
    const t1 = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460129', tenant: 'plain.customers.example.net', pai: '<tel:+14255550100>', privacy: 'id', historyInfo });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    const allow = ok.getAll('allow').join(',').split(',').map((x) => x.trim());
    expect(allow).not.toContain('REFER');
    expect((await call.bye()).status).toBe(200);
    const r = await t1.done;
    expectSippOk(r);
    const inv = invitesAt(r)[0]!;
    expect(header(inv, 'P-Asserted-Identity')).toBeUndefined();
    expect(header(inv, 'Diversion')).toBeUndefined();
    // The fake Teams expects REFER in every Allow: exactly this is flagged.
    expect(h.ft.violations.map((v) => v.rule)).toEqual(['allow']);
    h.ft.violations.splice(0);
  });
});
