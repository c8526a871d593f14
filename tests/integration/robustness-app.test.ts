/**
 * Issue 2 acceptance, bad input from apps:
 *   - an app sending malformed wire-protocol messages gets NO/NOK replies (or, for broken
 *     framing, a closed connection) and nothing else is affected;
 *   - an app that disconnects while an INVITE it was given is still unanswered: the caller gets
 *     503 and the server is left with no transactions, dialogs, pending requests or connections.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsFor, runSipp, sippReport, stopAllSipp } from '../helpers/sipp.js';
import { connectSrf, deferred, expectSrfConnectError, sdp, type ConnectedSrf } from '../helpers/srf.js';
import { startSipServer, TEST_SECRET, waitForIdle, type StartedSipServer } from '../helpers/sip-server.js';
import { freePort, TcpPeer, waitFor } from '../helpers/net.js';

const SERVER_IP = '127.0.3.80';
const SIPP_IP = '127.0.3.81';
const WIRE_IP = '127.0.3.82';

let s: StartedSipServer;

beforeAll(async () => {
  s = await startSipServer({ host: SERVER_IP, timers: { T1: 50, T2: 400, T4: 500 } });
});

afterAll(async () => {
  await stopAllSipp();
  await s?.close();
});

interface WireReply {
  appMsgId: string;
  fields: string[];
  sip: string | undefined;
}

/** A raw drachtio wire-protocol client: `<bytes>#<payload>` framing, replies by msgId. */
class WireClient {
  private buf = Buffer.alloc(0);
  readonly replies: WireReply[] = [];

  private constructor(readonly peer: TcpPeer) {
    peer.socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (true) {
        const hash = this.buf.indexOf(0x23);
        if (hash < 0) return;
        const len = Number.parseInt(this.buf.subarray(0, hash).toString('latin1'), 10);
        if (!(len >= 0) || this.buf.length < hash + 1 + len) return;
        const payload = this.buf.subarray(hash + 1, hash + 1 + len).toString('utf8');
        this.buf = this.buf.subarray(hash + 1 + len);
        const cr = payload.indexOf('\r\n');
        const leader = cr < 0 ? payload : payload.slice(0, cr);
        const parts = leader.split('|');
        if (parts[1] === 'response') this.replies.push({ appMsgId: parts[2] ?? '', fields: parts.slice(3), sip: cr < 0 ? undefined : payload.slice(cr + 2) });
      }
    });
  }

  static async connect(): Promise<WireClient> {
    return new WireClient(await TcpPeer.connect(s.admin.host, s.admin.port, WIRE_IP));
  }

  raw(bytes: string | Buffer): Promise<void> {
    return this.peer.write(bytes);
  }

  /** Sends `<id>|<leader>` [+ CRLF + sip] framed by its UTF-8 byte length; returns the id. */
  async send(leader: string, sip?: string): Promise<string> {
    const id = randomUUID();
    const payload = `${id}|${leader}${sip !== undefined ? `\r\n${sip}` : ''}`;
    await this.peer.write(`${Buffer.byteLength(payload)}#${payload}`);
    return id;
  }

  async reply(id: string, timeoutMs = 2000): Promise<WireReply> {
    return waitFor(() => this.replies.find((r) => r.appMsgId === id), { timeoutMs, intervalMs: 10, what: `wire reply to ${id}` });
  }

  async request(leader: string, sip?: string): Promise<WireReply> {
    return this.reply(await this.send(leader, sip));
  }

  close(): void {
    this.peer.close();
  }
}

const sipText = (lines: string[], body = ''): string => `${lines.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('malformed wire messages from an app', () => {
  it('srf.connect with a wrong secret fails with an error and leaves no connection behind', async () => {
    const err = await expectSrfConnectError({ ...s.admin, secret: 'wrong-secret' });
    expect(err.message).toMatch(/authenticate|secret/i);
    await waitFor(() => s.stats().appConnections === 0, { timeoutMs: 2000, what: 'refused app gone' });
  });

  it('a wrong secret gets NO and the connection is closed', async () => {
    const c = await WireClient.connect();
    try {
      const r = await c.request('authenticate|not-the-secret|');
      expect(r.fields[0]).toBe('NO');
      expect(r.fields.join('|')).toMatch(/incorrect secret/i);
      expect(await c.peer.waitClosed(2000)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('an authenticated app gets NO/NOK for every malformed request and its connection keeps working', async () => {
    const c = await WireClient.connect();
    try {
      const auth = await c.request(`authenticate|${TEST_SECRET}|`);
      expect(auth.fields[0]).toBe('OK');
      expect(auth.fields[1]).toContain(`udp/${SERVER_IP}:${s.sipPort}`);
      expect(auth.fields[2]).toMatch(/^v\d+\.\d+\.\d+/);

      const failures: Array<[string, string, string | undefined, RegExp | undefined]> = [
        ['unknown message type', 'no-such-type|x|y', undefined, undefined],
        ['sip with an unparsable SIP message', 'sip||', 'this is not SIP\r\n\r\n', undefined],
        ['sip with an invalid request-uri', 'sip||', sipText(['INVITE not-a-uri SIP/2.0', 'From: <sip:a@localhost>']), /request-uri/i],
        ['a response for an unknown transaction', 'sip|no-such-transaction|', sipText(['SIP/2.0 200 OK', 'CSeq: 1 INVITE', 'Call-ID: x']), /unknown transaction/i],
        ['an in-dialog request for an unknown dialog', 'sip||no-such-call;from-tag=none', sipText(['BYE sip:placeholder SIP/2.0']), /unable to find dialog/i],
        ['a CANCEL for an unknown transaction', 'sip|no-such-transaction|', sipText(['CANCEL sip:x@127.0.3.99 SIP/2.0']), /unknown transaction/i],
        ['proxy for an unknown transaction', `proxy|no-such-transaction|remainInDialog|fullResponse||serial|||sip:x@127.0.3.99`, sipText(['INVITE sip:x@127.0.3.99 SIP/2.0']), /unknown transaction/i],
        ['a body without Content-Type', 'sip||', sipText(['MESSAGE sip:x@127.0.3.99 SIP/2.0', 'From: <sip:a@localhost>'], 'not sdp'), /content-type/i],
      ];
      for (const [what, leader, sip, text] of failures) {
        const r = await c.request(leader, sip);
        expect(r.fields[0], what).toMatch(/^NOK?$/);
        if (text) expect(r.fields.slice(1).join('|'), what).toMatch(text);
      }
      // a payload with no fields at all
      await c.raw(`${Buffer.byteLength('garbage-without-bars')}#garbage-without-bars`);
      await waitFor(() => c.replies.some((r) => r.appMsgId === '' && /^NOK?$/.test(r.fields[0] ?? '')), { timeoutMs: 2000, what: 'NO reply to a payload without fields' });
      // byte-length framing with multi-byte UTF-8 still lines up, and the connection still works
      const ping = await c.request('ping');
      expect(ping.fields.slice(0, 2)).toEqual(['OK', 'pong']);
      const route = await c.request('route|invite');
      expect(route.fields[0]).toBe('OK');
      const utf8 = await c.request('sip||', sipText(['MESSAGE sip:x@127.0.3.99 SIP/2.0', 'From: <sip:a@localhost>', 'X-Name: Zoë Ünicode'], 'ünïcödé'));
      expect(utf8.fields[0]).toMatch(/^NOK?$/); // missing Content-Type, but the frame was read whole
      expect((await c.request('ping')).fields[0]).toBe('OK');
      expect(c.peer.closed).toBe(false);
    } finally {
      c.close();
    }
  });

  it('a non-numeric frame length closes that connection only; a real srf app keeps working', async () => {
    const app = await connectSrf(s.admin);
    try {
      app.srf.invite((req: any, res: any) => app.srf.createUAS(req, res, { localSdp: sdp('app-wire', SERVER_IP) }));
      const c = await WireClient.connect();
      expect((await c.request(`authenticate|${TEST_SECRET}|`)).fields[0]).toBe('OK');
      await c.raw('xyz#1234|ping');
      expect(await c.peer.waitClosed(2000)).toBe(true);
      const r = await runSipp({ scenario: 'uac-invite-200.xml', localIp: SIPP_IP, localPort: await freePort(SIPP_IP), remote: s.sipHostPort, pauseMs: 50 });
      expect(r.exitCode, sippReport(r)).toBe(0);
      expect(app.errors).toEqual([]);
    } finally {
      await app.close();
    }
    await waitFor(() => s.stats().appConnections === 0, { timeoutMs: 3000, what: 'apps gone' });
  });
});

describe('an app that disconnects with work pending', () => {
  let app: ConnectedSrf | undefined;
  afterAll(async () => {
    await app?.close();
  });

  it('the caller of an INVITE the app never answered gets 503, and nothing is left behind', async () => {
    await waitFor(() => s.stats().appConnections === 0, { timeoutMs: 3000, what: 'no apps connected' });
    const a = await connectSrf(s.admin);
    app = a;
    const got = deferred<void>();
    a.srf.invite(() => {
      got.resolve();
      // never answers; goes away instead
      void a.close();
    });
    const call = runSipp({ scenario: 'uac-invite-reject.xml', localIp: SIPP_IP, localPort: await freePort(SIPP_IP), remote: s.sipHostPort, timeoutMs: 15_000 });
    await got.promise;
    const r = await call;
    expect(r.exitCode, sippReport(r)).toBe(0);
    expect(rowsFor(r, '503', 'recv')[0]?.count, sippReport(r)).toBe(1);
    // §17.2.1: 100 Trying only when the 503 took the server longer than 200 ms (never twice).
    expect(rowsFor(r, '100', 'recv')[0]?.count ?? 0).toBeLessThanOrEqual(1);
    const stats = await waitForIdle(s, 8000, { includeApps: true });
    expect(stats).toEqual({ appConnections: 0, clientTransactions: 0, serverTransactions: 0, dialogs: 0, pendingRequests: 0 });
  });

  it('with no app connected, a new INVITE gets 503 at once', async () => {
    const r = await runSipp({ scenario: 'uac-invite-reject.xml', localIp: SIPP_IP, localPort: await freePort(SIPP_IP), remote: s.sipHostPort, timeoutMs: 10_000 });
    expect(r.exitCode, sippReport(r)).toBe(0);
    expect(rowsFor(r, '503', 'recv')[0]?.count).toBe(1);
    await waitForIdle(s, 8000, { includeApps: true });
  });
});
