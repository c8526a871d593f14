/**
 * Outbound connection mode (drachtio wire protocol §15): request handlers (webhook and
 * tcp://), the JSON routing actions, and real drachtio-srf 5.0.29 apps that `srf.listen` while
 * the server connects to them. The SIP caller is a raw UDP peer; the webhook is a node:http
 * server on loopback. Addresses 127.0.12.x.
 */
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Srf from 'drachtio-srf';
import { afterEach, describe, expect, it } from 'vitest';
import { optionsFromArgs } from '../../src/drachtio/cli.js';
import type { DrachtioServerOptions } from '../../src/drachtio/types.js';
import { freePort, sleep, UdpPeer, waitFor, withTimeout, type Datagram } from '../helpers/net.js';
import { startSipServer, TEST_SECRET, waitForIdle, type StartedSipServer } from '../helpers/sip-server.js';
import { createTestPki } from '../helpers/pki.js';
import { connectSrf, type ConnectedSrf, type SrfInstance } from '../helpers/srf.js';
import { headerValue as header, headerValues as headers } from '../helpers/sipp.js';

const SIP_IP = '127.0.12.1';
const HOOK_IP = '127.0.12.2';
const APP_IP = '127.0.12.3';
const CALLER_IP = '127.0.12.10';
const TARGET_IP = '127.0.12.20';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.12.10\r\ns=-\r\nc=IN IP4 127.0.12.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
const APP_SDP = 'v=0\r\no=- 2 2 IN IP4 127.0.12.3\r\ns=-\r\nc=IN IP4 127.0.12.3\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

// ───────────────────────────── helpers ─────────────────────────────

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  // Last started, first closed: the server before the apps it is connected to.
  while (cleanups.length) await Promise.resolve(cleanups.pop()!()).catch(() => undefined);
});

let seq = 0;
const uid = (p: string): string => `${p}${Date.now().toString(36)}${(seq++).toString(36)}`;

/** A SIP call from the raw UDP caller. */
class Caller {
  readonly callId = `${uid('call')}@${CALLER_IP}`;
  readonly fromTag = uid('ft');
  readonly branch = `z9hG4bK${uid('b')}`;
  constructor(
    readonly peer: UdpPeer,
    readonly server: StartedSipServer,
    readonly ruri = `sip:bob@${SIP_IP}:${server.sipPort}`,
  ) {}

  invite(extra: string[] = [], body = SDP): string {
    return [
      `INVITE ${this.ruri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${CALLER_IP}:${this.peer.port};branch=${this.branch};rport`,
      `From: "Alice" <sip:alice@${CALLER_IP}:${this.peer.port}>;tag=${this.fromTag}`,
      `To: <sip:bob@${SIP_IP}>`,
      `Call-ID: ${this.callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:alice@${CALLER_IP}:${this.peer.port}>`,
      'Max-Forwards: 70',
      ...extra,
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
  }

  async sendInvite(extra: string[] = []): Promise<string> {
    const text = this.invite(extra);
    await this.peer.send(text, SIP_IP, this.server.sipPort);
    return text;
  }

  /** An out-of-dialog MESSAGE to `user` (a method without an INVITE handler of its own). */
  async sendMessage(user: string, cseq: number): Promise<void> {
    const text = [
      `MESSAGE sip:${user}@${SIP_IP}:${this.server.sipPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${CALLER_IP}:${this.peer.port};branch=z9hG4bK${uid('m')};rport`,
      `From: <sip:alice@${CALLER_IP}>;tag=${uid('t')}`,
      `To: <sip:${user}@${SIP_IP}>`,
      `Call-ID: ${uid('msg')}`,
      `CSeq: ${cseq} MESSAGE`,
      'Max-Forwards: 70',
      'Content-Type: text/plain',
      'Content-Length: 2',
      '',
      'hi',
    ].join('\r\n');
    await this.peer.send(text, SIP_IP, this.server.sipPort);
  }

  /** Sends the INVITE, waits for its non-2xx final `status` and ACKs it; returns that response. */
  async rejected(status: number): Promise<Datagram> {
    await this.sendInvite();
    const r = await this.response(status);
    await this.ackFailure(r);
    return r;
  }

  /** ACK for a non-2xx final: same branch, the response's To (§17.1.1.3). */
  ackFailure(res: Datagram): Promise<void> {
    return this.#sameBranch('ACK', String(header(res.text, 'To')));
  }

  /** CANCEL of the INVITE: same branch and To as the INVITE (§9.1). */
  cancel(): Promise<void> {
    return this.#sameBranch('CANCEL', `<sip:bob@${SIP_IP}>`);
  }

  /** A request of the INVITE's transaction (its branch, CSeq number and Request-URI). */
  async #sameBranch(method: 'ACK' | 'CANCEL', to: string): Promise<void> {
    await this.peer.send(
      [
        `${method} ${this.ruri} SIP/2.0`,
        `Via: SIP/2.0/UDP ${CALLER_IP}:${this.peer.port};branch=${this.branch};rport`,
        `From: "Alice" <sip:alice@${CALLER_IP}:${this.peer.port}>;tag=${this.fromTag}`,
        `To: ${to}`,
        `Call-ID: ${this.callId}`,
        `CSeq: 1 ${method}`,
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      SIP_IP,
      this.server.sipPort,
    );
  }

  /** A request in the dialog a 2xx created, sent to `to` (the server, or a proxied target). */
  async inDialog(method: 'ACK' | 'BYE', ok: Datagram, cseq: number, to: { host: string; port: number }): Promise<void> {
    const contact = /<([^>]+)>/.exec(header(ok.text, 'Contact') ?? '')?.[1] ?? this.ruri;
    await this.peer.send(
      [
        `${method} ${contact} SIP/2.0`,
        `Via: SIP/2.0/UDP ${CALLER_IP}:${this.peer.port};branch=z9hG4bK${uid('ind')};rport`,
        `From: "Alice" <sip:alice@${CALLER_IP}:${this.peer.port}>;tag=${this.fromTag}`,
        `To: ${header(ok.text, 'To')}`,
        `Call-ID: ${this.callId}`,
        `CSeq: ${cseq} ${method}`,
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      to.host,
      to.port,
    );
  }

  /** The next response of this call with `status` (and CSeq method). */
  response(status: number, method = 'INVITE', timeoutMs = 5000): Promise<Datagram> {
    return this.peer.waitFor((d) => d.text.startsWith(`SIP/2.0 ${status} `) && d.text.includes(this.callId) && new RegExp(`\r\nCSeq: \\d+ ${method}\r\n`, 'i').test(d.text), timeoutMs);
  }
}

interface HookRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The request-handler webhook: a real HTTP server answering with `answer(request)`. */
class Webhook {
  readonly requests: HookRequest[] = [];
  answer: (r: HookRequest) => { status?: number; body: string; delayMs?: number; headers?: Record<string, string> } = () => ({ body: '{}' });
  private constructor(
    readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<Webhook> {
    const port = await freePort(HOOK_IP, ['tcp']);
    const server = http.createServer();
    const hook = new Webhook(server, port);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: HookRequest = { method: req.method ?? '', url: new URL(req.url ?? '/', `http://${HOOK_IP}:${port}`), headers: req.headers, body: Buffer.concat(chunks) };
        hook.requests.push(r);
        const a = hook.answer(r);
        setTimeout(() => {
          res.writeHead(a.status ?? 200, { 'Content-Type': 'application/json', ...a.headers });
          res.end(a.body);
        }, a.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, HOOK_IP, () => resolve());
    });
    cleanups.push(() => hook.close());
    return hook;
  }

  get url(): string {
    return `http://${HOOK_IP}:${this.port}/route`;
  }

  reply(instruction: unknown): void {
    this.answer = () => ({ body: typeof instruction === 'string' ? instruction : JSON.stringify(instruction) });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface ListeningApp {
  srf: SrfInstance;
  port: number;
  /** Sockets the server opened to this app so far. */
  connections: number;
}

/** A real drachtio-srf app in outbound mode: `srf.listen({host, port, secret})`. */
async function listenApp(secret = TEST_SECRET, tls?: { key: string; cert: string }): Promise<ListeningApp> {
  const srf: SrfInstance = new Srf();
  const port = await freePort(APP_IP, ['tcp']);
  const server = srf.listen({ host: APP_IP, port, secret, ...(tls ? { tls } : {}) });
  const app: ListeningApp = { srf, port, connections: 0 };
  server.on('connection', () => app.connections++);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  srf.on('error', () => undefined);
  cleanups.push(async () => {
    await withTimeout(new Promise<void>((r) => srf.close(() => r())), 3000, 'srf.close').catch(() => undefined);
  });
  return app;
}

async function server(extra: Partial<DrachtioServerOptions>): Promise<StartedSipServer> {
  const s = await startSipServer({ host: SIP_IP, protocols: ['udp'], timers: { T1: 50, T2: 400, T4: 200 }, extra });
  cleanups.push(() => s.close());
  return s;
}

async function caller(s: StartedSipServer, ruri?: string): Promise<Caller> {
  const peer = await UdpPeer.bind(CALLER_IP);
  cleanups.push(() => peer.close());
  return new Caller(peer, s, ruri);
}

/** Transactions, dialogs, pending requests and (outbound) app connections all back to 0. */
async function expectIdle(s: StartedSipServer, includeApps = true): Promise<void> {
  const st = await waitForIdle(s, 8000, { includeApps });
  expect(st).toMatchObject({ clientTransactions: 0, serverTransactions: 0, dialogs: 0, pendingRequests: 0 });
  if (includeApps) expect(st.appConnections).toBe(0);
}

// ───────────────────────────── tests ─────────────────────────────

describe('outbound mode: tcp:// request handler (srf.listen)', () => {
  it('connects to the app, which answers the INVITE 200; the caller’s BYE reaches it and it ends the session', async () => {
    const app = await listenApp();
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: `tcp://${APP_IP}:${app.port}` }] });
    const seen: { source?: string; server?: unknown; hostport?: string } = {};
    const destroyed = new Promise<void>((resolve) => {
      app.srf.invite(async (req: any, res: any) => {
        seen.source = `${req.source_address}:${req.source_port}`;
        seen.server = req.server;
        const uas = await app.srf.createUAS(req, res, { localSdp: APP_SDP });
        uas.on('destroy', () => {
          app.srf.endSession(req);
          resolve();
        });
      });
    });
    const c = await caller(s);
    await c.sendInvite();
    const ok = await c.response(200);
    expect(ok.text).toContain('o=- 2 2 IN IP4 127.0.12.3');
    expect(seen.source).toBe(`${CALLER_IP}:${c.peer.port}`);
    expect(seen.server).toMatchObject({ hostport: `udp/${SIP_IP}:${s.sipPort}` });
    expect(app.connections).toBe(1);
    expect(s.stats().appConnections).toBe(1);
    await c.inDialog('ACK', ok, 1, { host: SIP_IP, port: s.sipPort });
    await sleep(100);
    await c.inDialog('BYE', ok, 2, { host: SIP_IP, port: s.sipPort });
    await c.response(200, 'BYE');
    await withTimeout(destroyed, 3000, 'uas destroy');
    // srf.endSession closed the connection: not an error, and nothing is left behind.
    await expectIdle(s);
    expect(s.logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });

  it('opens one connection per new request (two calls, two connections)', async () => {
    const app = await listenApp();
    const s = await server({ requestHandlers: [{ sipMethod: '*', url: `tcp://${APP_IP}:${app.port}` }] });
    app.srf.invite((req: any, res: any) => {
      res.send(486, 'Busy Here');
      app.srf.endSession(req);
    });
    for (let i = 0; i < 2; i++) {
      const c = await caller(s);
      await c.sendInvite();
      const busy = await c.response(486);
      await c.ackFailure(busy);
    }
    expect(app.connections).toBe(2);
    await expectIdle(s);
  });

  it('answers 503 when the app ends the session in the middle of the transaction, and nothing leaks', async () => {
    const app = await listenApp();
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: `tcp://${APP_IP}:${app.port}` }] });
    app.srf.invite((req: any, res: any) => {
      res.send(180);
      setTimeout(() => app.srf.endSession(req), 100);
    });
    const c = await caller(s);
    await c.sendInvite();
    await c.response(180);
    const unavailable = await c.response(503);
    expect(header(unavailable.text, 'Retry-After')).toBe('5');
    await c.ackFailure(unavailable);
    await expectIdle(s);
  });

  it('answers 480 when the app is unreachable or refuses the secret', async () => {
    const closedPort = await freePort(APP_IP, ['tcp']);
    const wrong = await listenApp('not-the-secret');
    const hook = await Webhook.start();
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: `tcp://${APP_IP}:${closedPort}` }, { sipMethod: '*', url: hook.url }] });
    const c1 = await caller(s);
    await c1.sendInvite();
    const r1 = await c1.response(480);
    expect(r1.text).toMatch(/^SIP\/2\.0 480 Temporarily Unavailable\r\n/);
    await c1.ackFailure(r1);

    // A webhook route{uri} to an app whose secret differs: authenticate refused → 480.
    hook.reply({ action: 'route', data: { uri: `${APP_IP}:${wrong.port}` } });
    // (the tcp:// handler is for INVITE only; a MESSAGE goes to the `*` webhook)
    const c2 = await caller(s);
    await c2.sendMessage('carol', 1);
    const r2 = await c2.peer.waitFor((d) => d.text.includes('CSeq: 1 MESSAGE'), 5000);
    expect(r2.text).toMatch(/^SIP\/2\.0 480 /);
    expect(wrong.connections).toBe(1);
    await expectIdle(s);
  });
});

describe('outbound mode: tls:// request handler', () => {
  it('connects over TLS, checking the app certificate when verify-peer is on (untrusted → 480)', async () => {
    const pki = await createTestPki(mkdtempSync(join(tmpdir(), 'outbound-pki-')), { server: { cn: 'app.test.invalid', sans: [`IP:${APP_IP}`] } });
    const other = await createTestPki(mkdtempSync(join(tmpdir(), 'outbound-pki2-')));
    const app = await listenApp(TEST_SECRET, { key: pki.server.key, cert: pki.server.cert });
    app.srf.invite((req: any, res: any) => {
      res.send(486, `Busy over ${req.socket.encrypted ? 'tls' : 'tcp'}`);
      app.srf.endSession(req);
    });
    const handlers = [{ sipMethod: 'INVITE', url: `tls://${APP_IP}:${app.port}`, verifyPeer: true }];
    const trusted = await server({ requestHandlers: handlers, tls: { key: pki.client.key, cert: pki.client.cert, ca: pki.ca.cert } });
    const c = await caller(trusted);
    const r = await c.rejected(486);
    expect(r.text).toMatch(/^SIP\/2\.0 486 Busy over tls\r\n/);
    await expectIdle(trusted);
    await trusted.close();

    const untrusting = await server({ requestHandlers: handlers, tls: { key: other.client.key, cert: other.client.cert, ca: other.ca.cert } });
    const c2 = await caller(untrusting);
    await c2.sendInvite();
    const r2 = await c2.response(480);
    await c2.ackFailure(r2);
    expect(untrusting.logger.entries.some((e) => (e.obj as { code?: string }).code === 'WIRE_ERR_OUTBOUND_UNAVAILABLE')).toBe(true);
    await expectIdle(untrusting);
    expect(app.connections).toBe(2);
  });
});

describe('outbound mode: webhook request handler', () => {
  it('route {uri}: the app answers 200 and its BYE reaches the caller over the same connection', async () => {
    const app = await listenApp();
    const hook = await Webhook.start();
    hook.reply({ action: 'route', data: { uri: `${APP_IP}:${app.port};transport=tcp` } });
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    const ended = new Promise<number>((resolve) => {
      app.srf.invite(async (req: any, res: any) => {
        const uas = await app.srf.createUAS(req, res, { localSdp: APP_SDP });
        uas.on('ack', () => {
          // The app hangs up: BYE out through the server, the caller's 200 back to the app.
          uas.destroy().then((bye: any) => {
            app.srf.endSession(req);
            resolve(bye ? 1 : 0);
          });
        });
      });
    });
    const c = await caller(s);
    await c.sendInvite();
    const ok = await c.response(200);
    await c.inDialog('ACK', ok, 1, { host: SIP_IP, port: s.sipPort });
    const bye = await c.peer.waitFor((d) => d.text.startsWith('BYE ') && d.text.includes(c.callId));
    const byeTo = bye.from;
    await c.peer.send(
      ['SIP/2.0 200 OK', ...['Via', 'From', 'To', 'Call-ID', 'CSeq'].flatMap((h) => headers(bye.text, h).map((v) => `${h}: ${v}`)), 'Content-Length: 0', '', ''].join('\r\n'),
      byeTo.address,
      byeTo.port,
    );
    await withTimeout(ended, 3000, 'app BYE answered');
    expect(hook.requests).toHaveLength(1);
    expect(hook.requests[0]!.method).toBe('GET');
    await expectIdle(s);
  });

  it('GET: the query string carries method, domain, protocol, source_address, users, contentType, uri and the R-URI parameters', async () => {
    const hook = await Webhook.start();
    hook.reply({ action: 'reject', data: { status: 403 } });
    const s = await server({ requestHandlers: [{ url: hook.url }] });
    const c = await caller(s);
    const ruri = `sip:bob@${SIP_IP}:${s.sipPort};foo=bar;flag`;
    const c2 = new Caller(c.peer, s, ruri);
    await c2.rejected(403);
    expect(hook.requests).toHaveLength(1);
    const q = hook.requests[0]!;
    expect(q.method).toBe('GET');
    expect(q.url.pathname).toBe('/route/');
    expect(q.headers.accept).toBe('application/json');
    expect(Object.fromEntries(q.url.searchParams)).toEqual({
      method: 'INVITE',
      domain: SIP_IP,
      protocol: 'udp',
      source_address: CALLER_IP,
      fromUser: 'alice',
      toUser: 'bob',
      uriUser: 'bob',
      contentType: 'application/sdp',
      uri: ruri,
      foo: 'bar',
      flag: '',
    });
    expect([...q.url.searchParams.keys()].slice(0, 9)).toEqual(['method', 'domain', 'protocol', 'source_address', 'fromUser', 'toUser', 'uriUser', 'contentType', 'uri']);
    await expectIdle(s);
  });

  it('POST: the body is the raw SIP message as received', async () => {
    const hook = await Webhook.start();
    hook.reply({ action: 'reject', data: { status: 404 } });
    const s = await server({ requestHandlers: [{ url: hook.url, httpMethod: 'POST' }] });
    const c = await caller(s);
    const sent = await c.sendInvite(['X-Custom: héllo wörld']);
    const r = await c.response(404);
    await c.ackFailure(r);
    const q = hook.requests[0]!;
    expect(q.method).toBe('POST');
    expect(q.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(q.body.equals(Buffer.from(sent, 'utf8'))).toBe(true);
    expect(q.url.searchParams.get('method')).toBe('INVITE');
    await expectIdle(s);
  });

  it('reject: the status and reason reach the caller', async () => {
    const hook = await Webhook.start();
    hook.reply({ action: 'reject', data: { status: 486, reason: 'Busy Right Now' } });
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    const c = await caller(s);
    const r = await c.rejected(486);
    expect(r.text).toMatch(/^SIP\/2\.0 486 Busy Right Now\r\n/);
    expect(header(r.text, 'To')).toMatch(/;tag=\S+/);
    await expectIdle(s);
  });

  it('redirect: 302 Moved with every Contact', async () => {
    const hook = await Webhook.start();
    hook.reply({ action: 'redirect', data: { contact: ['<sip:bob@192.0.2.10:5060>', 'sip:bob@192.0.2.11:5080;transport=tcp'] } });
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    const c = await caller(s);
    const r = await c.rejected(302);
    expect(r.text).toMatch(/^SIP\/2\.0 302 Moved\r\n/);
    expect(headers(r.text, 'Contact')).toEqual(['<sip:bob@192.0.2.10:5060>', 'sip:bob@192.0.2.11:5080;transport=tcp']);
    await expectIdle(s);
  });

  it('proxy: the request reaches a second SIP peer and its answer comes back to the caller', async () => {
    const target = await UdpPeer.bind(TARGET_IP);
    cleanups.push(() => target.close());
    const hook = await Webhook.start();
    hook.reply({ action: 'proxy', data: { destination: `sip:${TARGET_IP}:${target.port}` } });
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    const c = await caller(s);
    await c.sendInvite(['X-Trace: proxied']);
    const inv = await target.waitFor((d) => d.text.startsWith('INVITE ') && d.text.includes(c.callId));
    // §16.6: our Via on top, Max-Forwards decremented, R-URI retargeted (it named us).
    expect(inv.text).toMatch(new RegExp(`^INVITE sip:${TARGET_IP.replaceAll('.', '\\.')}:${target.port} SIP/2\\.0\r\n`));
    expect(headers(inv.text, 'Via')[0]).toContain(`${SIP_IP}:${s.sipPort}`);
    expect(headers(inv.text, 'Via')).toHaveLength(2);
    expect(header(inv.text, 'Max-Forwards')).toBe('69');
    expect(header(inv.text, 'X-Trace')).toBe('proxied');
    const answer = (status: string, extra: string[] = []): string =>
      [`SIP/2.0 ${status}`, ...['Via', 'From'].flatMap((h) => headers(inv.text, h).map((v) => `${h}: ${v}`)), `To: ${header(inv.text, 'To')};tag=tgt1`, `Call-ID: ${c.callId}`, 'CSeq: 1 INVITE', ...extra, 'Content-Length: 0', '', ''].join('\r\n');
    await target.send(answer('180 Ringing'), inv.from.address, inv.from.port);
    await c.response(180);
    await target.send(answer('200 OK', [`Contact: <sip:bob@${TARGET_IP}:${target.port}>`]), inv.from.address, inv.from.port);
    const ok = await c.response(200);
    expect(header(ok.text, 'To')).toContain('tag=tgt1');
    expect(headers(ok.text, 'Via')).toHaveLength(1);
    // No Record-Route (recordRoute defaults to false): the ACK goes straight to the target.
    expect(header(ok.text, 'Record-Route')).toBeUndefined();
    await c.inDialog('ACK', ok, 1, { host: TARGET_IP, port: target.port });
    await target.waitFor((d) => d.text.startsWith('ACK ') && d.text.includes(c.callId));
    await expectIdle(s);
  });

  it('route {tag}: an inbound srf.connect app with that tag gets the request (round-robin), not the others', async () => {
    const hook = await Webhook.start();
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    const seen: string[] = [];
    const apps: ConnectedSrf[] = [];
    for (const [name, tags] of [['plain', undefined], ['blue1', ['blue', 'x']], ['blue2', ['blue']], ['red', ['red']]] as const) {
      const a = await connectSrf({ ...s.admin, ...(tags ? { tags: [...tags] } : {}) });
      apps.push(a);
      cleanups.push(() => a.close());
      a.srf.invite((req: any, res: any) => {
        seen.push(name);
        res.send(486, `Busy ${name}`);
      });
    }
    await waitFor(() => s.stats().appConnections === 4);
    await sleep(100); // route|invite registered
    hook.reply({ action: 'route', data: { tag: 'blue' } });
    for (let i = 0; i < 2; i++) {
      const c = await caller(s);
      const r = await c.rejected(486);
      expect(r.text).toMatch(/^SIP\/2\.0 486 Busy blue[12]\r\n/);
    }
    expect(seen.sort()).toEqual(['blue1', 'blue2']);
    // No inbound app carries the tag → 480.
    hook.reply({ action: 'route', data: { tag: 'green' } });
    const c = await caller(s);
    await c.rejected(480);
    expect(seen).toHaveLength(2);
    await expectIdle(s, false);
  });

  it('an unknown action, bad JSON or a bad instruction is answered 500', async () => {
    const hook = await Webhook.start();
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    const bad: unknown[] = [
      { action: 'teleport', data: {} },
      'this is { not json',
      { action: 'reject' },
      { action: 'reject', data: { status: 'busy' } },
      { action: 'route', data: { uri: 'no-port-here' } },
      { action: 'redirect', data: { contact: 42 } },
      '[1,2,3]',
    ];
    for (const body of bad) {
      hook.reply(body);
      const c = await caller(s);
      await c.rejected(500);
    }
    expect(hook.requests).toHaveLength(bad.length);
    expect(s.logger.entries.filter((e) => (e.obj as { code?: string }).code === 'WIRE_ERR_ROUTING_INSTRUCTION')).toHaveLength(bad.length);
    await expectIdle(s);
  });

  it('follows the webhook\'s HTTP redirects (303 turns a POST into a GET); a redirect loop or an HTTP error answer is 480', async () => {
    const hook = await Webhook.start();
    hook.answer = (r) => {
      if (r.url.pathname === '/route/') return { status: 307, body: '', headers: { Location: '/moved/' + r.url.search } };
      if (r.url.pathname === '/moved/') return { status: 303, body: '', headers: { Location: `http://${HOOK_IP}:${hook.port}/final` } };
      if (r.url.pathname === '/final') return { body: JSON.stringify({ action: 'reject', data: { status: 486, reason: 'Followed' } }) };
      return { status: 404, body: 'no' };
    };
    const s = await server({ requestHandlers: [{ url: hook.url, httpMethod: 'POST' }] });
    const c = await caller(s);
    const sent = await c.sendInvite();
    const r = await c.response(486);
    expect(r.text).toMatch(/^SIP\/2\.0 486 Followed\r\n/);
    await c.ackFailure(r);
    expect(hook.requests.map((q) => [q.method, q.url.pathname])).toEqual([
      ['POST', '/route/'],
      ['POST', '/moved/'],
      ['GET', '/final'],
    ]);
    // 307 keeps the method, the body and the query string; 303 drops the body.
    expect(hook.requests[1]!.body.equals(Buffer.from(sent, 'utf8'))).toBe(true);
    expect(hook.requests[1]!.url.searchParams.get('method')).toBe('INVITE');
    expect(hook.requests[2]!.body.length).toBe(0);

    // A loop: the fourth redirect is not followed.
    hook.requests.length = 0;
    hook.answer = () => ({ status: 302, body: '', headers: { Location: '/route/' } });
    const c2 = await caller(s);
    await c2.sendInvite();
    await c2.ackFailure(await c2.response(480));
    expect(hook.requests).toHaveLength(4);

    // An HTTP error answer: the router could not decide.
    hook.requests.length = 0;
    hook.answer = () => ({ status: 503, body: JSON.stringify({ action: 'reject', data: { status: 486 } }) });
    const c3 = await caller(s);
    await c3.sendInvite();
    await c3.ackFailure(await c3.response(480));
    expect(hook.requests).toHaveLength(1);
    await expectIdle(s);
  });

  it('answers 480 when the webhook cannot be reached or does not answer in time', async () => {
    const hook = await Webhook.start();
    hook.answer = () => ({ body: JSON.stringify({ action: 'reject', data: { status: 486 } }), delayMs: 1500 });
    const deadPort = await freePort(HOOK_IP, ['tcp']);
    const s = await server({
      requestHandlers: [
        { sipMethod: 'INVITE', url: `http://${HOOK_IP}:${deadPort}/route` },
        { sipMethod: 'MESSAGE', url: hook.url },
      ],
      requestHandlerTimeoutMs: 500,
    });
    const c = await caller(s);
    await c.rejected(480);
    const t0 = Date.now();
    await c.sendMessage('bob', 7);
    const r2 = await c.peer.waitFor((d) => d.text.includes('CSeq: 7 MESSAGE'), 5000);
    expect(r2.text).toMatch(/^SIP\/2\.0 480 /);
    expect(Date.now() - t0).toBeLessThan(1400);
    await expectIdle(s);
  });

  it('a CANCEL while the webhook is thinking gets 200/487, and the later route opens no connection', async () => {
    const app = await listenApp();
    const hook = await Webhook.start();
    hook.answer = () => ({ body: JSON.stringify({ action: 'route', data: { uri: `${APP_IP}:${app.port}` } }), delayMs: 400 });
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: hook.url }] });
    let invites = 0;
    app.srf.invite(() => invites++);
    const c = await caller(s);
    await c.sendInvite();
    await sleep(50);
    expect(s.stats().pendingRequests).toBe(1);
    await c.cancel();
    await c.response(200, 'CANCEL');
    const terminated = await c.response(487);
    await c.ackFailure(terminated);
    await sleep(600);
    expect(hook.requests).toHaveLength(1);
    expect(invites).toBe(0);
    await expectIdle(s);
  });

  it('server.close() aborts routing in progress and closes outbound connections', async () => {
    const app = await listenApp();
    const hook = await Webhook.start();
    hook.answer = () => ({ body: JSON.stringify({ action: 'reject', data: { status: 486 } }), delayMs: 2000 });
    const s = await server({ requestHandlers: [{ sipMethod: 'INVITE', url: `tcp://${APP_IP}:${app.port}` }, { sipMethod: 'MESSAGE', url: hook.url }] });
    const appSockets: import('node:net').Socket[] = [];
    app.srf.invite((req: any, res: any) => {
      appSockets.push(req.socket);
      res.send(180);
    });
    const c = await caller(s);
    await c.sendInvite();
    await c.response(180);
    await c.sendMessage('bob', 3);
    await waitFor(() => hook.requests.length === 1);
    expect(s.stats()).toMatchObject({ appConnections: 1, pendingRequests: 2 });
    await s.close();
    await s.close(); // idempotent
    expect(appSockets).toHaveLength(1);
    await waitFor(() => appSockets[0]!.destroyed || appSockets[0]!.readyState === 'closed', { timeoutMs: 3000, what: 'outbound connection closed' });
    await waitFor(() => s.stats().pendingRequests === 0 && s.stats().appConnections === 0, { what: 'nothing pending after close' });
  });
});

describe('outbound mode configuration', () => {
  it('--http-handler / --http-method and <request-handlers> become requestHandlers; bad values are ConfigErrors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbound-mode-'));
    const conf = join(dir, 'drachtio.conf.xml');
    writeFileSync(
      conf,
      `<drachtio>
  <admin port="9022" secret="s">127.0.0.1</admin>
  <request-handlers>
    <request-handler sip-method="INVITE" http-method="POST" verify-peer="true">https://router.example/route?a=1&amp;b=2</request-handler>
    <request-handler>tcp://127.0.12.3:3001</request-handler>
  </request-handlers>
</drachtio>`,
    );
    expect(optionsFromArgs(['-f', conf]).opts.requestHandlers).toEqual([
      { url: 'https://router.example/route?a=1&b=2', sipMethod: 'INVITE', httpMethod: 'POST', verifyPeer: true },
      { url: 'tcp://127.0.12.3:3001', sipMethod: '*', httpMethod: 'GET' },
    ]);
    // Flags win over the file.
    expect(optionsFromArgs(['-f', conf, '--http-handler', 'http://127.0.12.2:8080/x', '--http-method', 'post']).opts.requestHandlers).toEqual([
      { sipMethod: '*', url: 'http://127.0.12.2:8080/x', httpMethod: 'POST' },
    ]);
    expect(optionsFromArgs(['--http-handler', 'tcp://127.0.12.3:3001']).opts.requestHandlers).toEqual([{ sipMethod: '*', url: 'tcp://127.0.12.3:3001', httpMethod: 'GET' }]);
    expect(optionsFromArgs([]).opts.requestHandlers).toBeUndefined();
    for (const [args, msg] of [
      [['--http-handler', 'ftp://x/'], 'the URL must be http://, https://, tcp://host:port or tls://host:port'],
      [['--http-handler', 'tcp://127.0.12.3'], 'tcp:// needs host:port'],
      [['--http-handler', 'http://x/', '--http-method', 'PUT'], '--http-method: "PUT" must be GET or POST'],
      [['--http-method', 'GET'], '--http-method needs --http-handler'],
    ] as const) {
      expect(() => optionsFromArgs([...args]), msg).toThrow(expect.objectContaining({ code: 'CONFIG_ERR_INVALID', message: expect.stringContaining(msg) }));
    }
    writeFileSync(conf, '<drachtio><request-handlers><request-handler http-method="PATCH">http://x/</request-handler></request-handlers></drachtio>');
    expect(() => optionsFromArgs(['-f', conf])).toThrow(`${conf}: <request-handler http-method="PATCH"> must be GET or POST`);
  });

  it('a server started from --http-handler tcp://… routes a call to the srf.listen app', async () => {
    const app = await listenApp();
    const { opts } = optionsFromArgs(['--contact', `sip:${SIP_IP}:5060;transport=udp`, '--address', SIP_IP, '--port', '0', '--http-handler', `tcp://${APP_IP}:${app.port}`]);
    const s = await startSipServer({ host: SIP_IP, sipPort: 5060, protocols: ['udp'], timers: { T1: 50, T2: 400, T4: 200 }, extra: { requestHandlers: opts.requestHandlers! } });
    cleanups.push(() => s.close());
    app.srf.invite((req: any, res: any) => {
      res.send(603, 'Declined By Listener');
      app.srf.endSession(req);
    });
    const c = await caller(s);
    const r = await c.rejected(603);
    expect(r.text).toMatch(/^SIP\/2\.0 603 Declined By Listener\r\n/);
    await expectIdle(s);
  });
});
