import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SipRequest, SipResponse, field } from '../../../../src/sip/message/index.js';
import type { ConnectionInfo } from '../../../../src/sip/transport/tcp.js';
import { TransportLayer, type TransportLayerOptions } from '../../../../src/sip/transport/transport-layer.js';
import { type StreamPeer, collect, delay, request, tcpPeer, until } from './net-helpers.js';

const SRV = '127.0.1.20';
const CLI = '127.0.1.21';
const OTHER = '127.0.1.22';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function layer(host = SRV, opts: Partial<TransportLayerOptions> = {}): Promise<TransportLayer> {
  const tl = new TransportLayer({ listen: [{ protocol: 'tcp', host, port: 0 }], ...opts });
  cleanup.push(() => tl.close());
  await tl.start();
  return tl;
}

async function peer(tl: TransportLayer, from = CLI): Promise<StreamPeer> {
  const p = await tcpPeer(SRV, tl.listenPoints()[0]!.port, from);
  cleanup.push(() => p.close());
  return p;
}

function responseTo(req: SipMessage, status = 200): SipResponse {
  const res = new SipResponse(status, 'OK');
  for (const h of req.headers) if (['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
  return res;
}
type SipMessage = import('../../../../src/sip/message/index.js').SipMessage;

/** OPTIONS number `n` from the layer `cli` (on CLI) to SRV; Call-ID `<name>-<n>`. */
function optionsFrom(cli: TransportLayer, name: string, n: number): SipRequest {
  return new SipRequest('OPTIONS', `sip:${SRV}`, [
    field('Via', `SIP/2.0/TCP ${CLI}:${cli.listenPoints()[0]!.port};branch=z9hG4bK${name}${n}`),
    field('From', '<sip:a@x>;tag=1'),
    field('To', '<sip:b@y>'),
    field('Call-ID', `${name}-${n}`),
    field('CSeq', `${n} OPTIONS`),
    field('Max-Forwards', '70'),
  ]);
}

const tcpVia = (n: number | string): string => `SIP/2.0/TCP ${CLI}:5090;branch=z9hG4bK${n}`;

describe('TransportLayer over TCP', () => {
  it('frames split and coalesced writes into the same messages', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer(tl);
    const msgs = [1, 2, 3].map((i) => request({ via: tcpVia(i), callId: `c${i}`, body: `body ${i}\r\n\r\nwith blank line` }));
    await p.write(msgs.join(''));
    const byteWise = Buffer.from(request({ via: tcpVia(4), callId: 'c4', body: 'Ä' }));
    for (let i = 0; i < byteWise.length; i += 7) await p.write(byteWise.subarray(i, i + 7));
    const got = [await box.next(), await box.next(), await box.next(), await box.next()];
    expect(got.map((g) => g.msg.callId)).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(got[0]!.msg.body.toString()).toBe('body 1\r\n\r\nwith blank line');
    expect(got[3]!.msg.body.toString()).toBe('Ä');
    const flow = got[0]!.flow;
    expect(flow).toMatchObject({ protocol: 'tcp', localAddress: SRV, remoteAddress: CLI, reliable: true });
    expect(flow.connectionId).toBeGreaterThan(0);
    expect(new Set(got.map((g) => g.flow.connectionId)).size).toBe(1);
    // No received: the sent-by host is the source address (ports are not compared, §18.2.1).
    expect(got[0]!.msg.topVia.params.has('received')).toBe(false);
    expect(tl.stats.connectionsOpen).toBe(1);
  });

  it('sends a response back over the connection the request came in on', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer(tl);
    await p.write(request({ via: `${tcpVia('r')};rport` }));
    const { msg, flow } = await box.next();
    expect(msg.topVia.params.get('rport')).toBe(String(p.socket.localPort));
    await tl.sendResponse(responseTo(msg), flow);
    const res = (await p.inbox.next()) as SipResponse;
    expect(res.status).toBe(200);
    expect(res.callId).toBe('call-1');
  });

  it('when that connection is gone, opens one to received + sent-by port (§18.2.2)', async () => {
    const tl = await layer();
    const box = collect(tl);
    // The client's own listen socket at the sent-by port.
    const client = await layer(CLI);
    const clientBox = collect(client);
    const clientPort = client.listenPoints()[0]!.port;
    const p = await peer(tl, CLI);
    await p.write(request({ via: `SIP/2.0/TCP client.test.invalid:${clientPort};branch=z9hG4bKgone` }));
    const { msg, flow } = await box.next();
    expect(msg.topVia.params.get('received')).toBe(CLI);
    p.close();
    await until(() => tl.stats.connectionsOpen === 0);
    await tl.sendResponse(responseTo(msg, 486), flow);
    const got = await clientBox.next();
    expect((got.msg as SipResponse).status).toBe(486);
    expect(got.flow.remoteAddress).toBe(SRV);
  });

  it('answers a CRLFCRLF ping with a single CRLF pong and skips lone CRLFs', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer(tl);
    await p.write('\r\n\r\n');
    await until(() => Buffer.concat(p.raw).length >= 2);
    await delay(30);
    expect(Buffer.concat(p.raw).toString()).toBe('\r\n');
    await p.write('\r\n');
    await p.write(request({ via: tcpVia('after-ping') }));
    expect((await box.next()).msg.topVia.params.get('branch')).toBe('z9hG4bKafter-ping');
    expect(Buffer.concat(p.raw).toString()).toBe('\r\n');
    expect(tl.stats.keepAlives).toBe(1);
  });

  it('answers an oversize request with 513 and closes the connection', async () => {
    const tl = await layer(SRV, { maxMessageBytes: 4096 });
    const p = await peer(tl);
    await p.write(request({ via: tcpVia('big'), method: 'INVITE' }).replace('Content-Length: 0', 'Content-Length: 100000'));
    const res = (await p.inbox.next()) as SipResponse;
    expect(res.status).toBe(513);
    expect(res.reason).toMatch(/^Message Too Large/);
    await p.closed;
    expect(tl.stats.parseErrors).toBe(1);
  });

  it('answers 513 to an endless header section, and 400 to a missing Content-Length, then closes', async () => {
    const tl = await layer(SRV, { maxHeaderBytes: 1024 });
    const p = await peer(tl);
    const head = request({ via: tcpVia('hdr') }).replace(/Content-Length: 0\r\n\r\n$/, '');
    await p.write(head);
    for (let i = 0; i < 40 && !p.isClosed(); i++) await p.write(`X-Filler-${i}: ${'z'.repeat(40)}\r\n`).catch(() => undefined);
    expect(((await p.inbox.next()) as SipResponse).status).toBe(513);
    await p.closed;

    const q = await peer(tl);
    await q.write(request({ via: tcpVia('nocl'), noContentLength: true }));
    const r = (await q.inbox.next()) as SipResponse;
    expect(r.status).toBe(400);
    expect(r.reason).toMatch(/Content-Length/);
    await q.closed;
  });

  it('survives garbage: closes that connection, others keep working', async () => {
    const tl = await layer(SRV, { maxMessageBytes: 8192 });
    const box = collect(tl);
    const good = await peer(tl);
    const bad = await peer(tl, OTHER);
    const junk = Buffer.alloc(20000);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 31 + 7) % 256;
    await bad.write(junk).catch(() => undefined);
    await bad.closed;
    await good.write(request({ via: tcpVia('good') }));
    expect((await box.next()).msg.topVia.params.get('branch')).toBe('z9hG4bKgood');
    expect(tl.stats.parseErrors).toBeGreaterThanOrEqual(1);
    // A framed message that does not parse (bad header line) is answered and the stream continues.
    await good.write(request({ via: tcpVia('badhdr'), extra: ['this is not a header'] }));
    expect(((await good.inbox.next()) as SipResponse).status).toBe(400);
    await good.write(request({ via: tcpVia('good2') }));
    expect((await box.next()).msg.topVia.params.get('branch')).toBe('z9hG4bKgood2');
  });

  it('closes a slowloris connection after headerTimeoutMs, and a silent one too', async () => {
    const tl = await layer(SRV, { headerTimeoutMs: 300 });
    const closedReasons: string[] = [];
    tl.on('connectionClosed', (_i, reason) => closedReasons.push(reason));
    const slow = await peer(tl);
    const silent = await peer(tl, OTHER);
    const t0 = Date.now();
    const partial = request({ via: tcpVia('slow') });
    // Drip a few bytes every 100 ms: the message never completes.
    for (let i = 0; i < 10 && !slow.isClosed(); i++) {
      await slow.write(partial.slice(i * 10, i * 10 + 10)).catch(() => undefined);
      await delay(100);
    }
    await Promise.all([slow.closed, silent.closed]);
    const elapsed = Date.now() - t0;
    // The peers may see the FIN before the server's own close event has been emitted.
    for (let i = 0; i < 50 && closedReasons.length < 2; i++) await delay(20);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1500);
    expect(closedReasons).toEqual(['header timeout', 'header timeout']);
    expect(tl.stats.connectionsTimedOut).toBe(2);
  });

  it('times out a message that starts after earlier complete ones', async () => {
    const tl = await layer(SRV, { headerTimeoutMs: 300 });
    const box = collect(tl);
    const p = await peer(tl);
    await p.write(request({ via: tcpVia('first') }));
    await box.next();
    await delay(200);
    const t0 = Date.now();
    await p.write(request({ via: tcpVia('second') }).slice(0, 50));
    await p.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(box.length).toBe(0);
  });

  it('keeps a connection that completes messages in time, and closes it once idle', async () => {
    const tl = await layer(SRV, { headerTimeoutMs: 250, idleTimeoutMs: 600 });
    const box = collect(tl);
    const p = await peer(tl);
    for (let i = 0; i < 3; i++) {
      await p.write(request({ via: tcpVia(`k${i}`) }));
      await box.next();
      await delay(200);
    }
    expect(p.isClosed()).toBe(false);
    const t0 = Date.now();
    await p.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  it('refuses inbound connections beyond maxConnections', async () => {
    const tl = await layer(SRV, { maxConnections: 2 });
    const box = collect(tl);
    const a = await peer(tl);
    const b = await peer(tl);
    await until(() => tl.stats.connectionsOpen === 2);
    const c = await peer(tl, OTHER);
    await c.closed;
    expect(tl.stats.connectionsRejected).toBe(1);
    await a.write(request({ via: tcpVia('a') }));
    await b.write(request({ via: tcpVia('b') }));
    expect([(await box.next()).msg.callId, (await box.next()).msg.callId]).toEqual(['call-1', 'call-1']);
    a.close();
    await until(() => tl.stats.connectionsOpen === 1);
    const d = await peer(tl, OTHER);
    await d.write(request({ via: tcpVia('d') }));
    expect((await box.next()).msg.topVia.params.get('branch')).toBe('z9hG4bKd');
  });

  it('reuses one connection for sends to the same destination and for responses', async () => {
    const srv = await layer();
    const srvBox = collect(srv);
    const cli = await layer(CLI);
    const cliBox = collect(cli);
    const dest = { protocol: 'tcp' as const, host: SRV, port: srv.listenPoints()[0]!.port };
    const mk = (n: number) => optionsFrom(cli, 'reuse', n);
    const [f1, f2] = await Promise.all([cli.send(mk(1), dest), cli.send(mk(2), dest)]);
    const f3 = await cli.send(mk(3), dest);
    expect(f1.connectionId).toBeDefined();
    expect(f2.connectionId).toBe(f1.connectionId);
    expect(f3.connectionId).toBe(f1.connectionId);
    expect(f1).toMatchObject({ protocol: 'tcp', remoteAddress: SRV, remotePort: dest.port, localAddress: CLI, reliable: true });
    expect(cli.stats.connectionsOutbound).toBe(1);
    const got = [await srvBox.next(), await srvBox.next(), await srvBox.next()];
    expect(new Set(got.map((g) => g.flow.connectionId)).size).toBe(1);
    expect(srv.stats.connectionsAccepted).toBe(1);

    // The response goes back on the same connection: the client sees it on its outbound flow.
    await srv.sendResponse(responseTo(got[0]!.msg), got[0]!.flow);
    const res = await cliBox.next();
    expect(res.flow.connectionId).toBe(f1.connectionId);

    // A request from the server to the client's ephemeral address reuses the inbound connection.
    const back = got[0]!.flow;
    const f4 = await srv.send(mk(4), { protocol: 'tcp', host: back.remoteAddress, port: back.remotePort });
    expect(f4.connectionId).toBe(back.connectionId);
    expect((await cliBox.next()).msg.callId).toBe('reuse-4');
    expect(srv.stats.connectionsOutbound).toBe(0);
  });

  it('renews its own connections past maxConnectionAgeMs (Teams §2.14): the next request opens a new one, the old one stays for what is bound to it', async () => {
    const srv = await layer();
    const srvBox = collect(srv);
    const cli = await layer(CLI, { maxConnectionAgeMs: 300 });
    const cliBox = collect(cli);
    const dest = { protocol: 'tcp' as const, host: SRV, port: srv.listenPoints()[0]!.port };
    const mk = (n: number) => optionsFrom(cli, 'age', n);
    const f1 = await cli.send(mk(1), dest);
    expect((await cli.send(mk(2), dest)).connectionId).toBe(f1.connectionId);
    await delay(400);
    const f3 = await cli.send(mk(3), dest);
    expect(f3.connectionId).not.toBe(f1.connectionId);
    expect((await cli.send(mk(4), dest)).connectionId).toBe(f3.connectionId);
    expect(cli.stats.connectionsOutbound).toBe(2);
    const got = [await srvBox.next(), await srvBox.next(), await srvBox.next(), await srvBox.next()];
    expect(got.map((g) => g.msg.callId)).toEqual(['age-1', 'age-2', 'age-3', 'age-4']);
    expect(new Set(got.map((g) => g.flow.connectionId)).size).toBe(2);
    // The retired connection is still open (closed after 10 min): a late response on it arrives.
    expect(srv.stats.connectionsOpen).toBe(2);
    await srv.sendResponse(responseTo(got[0]!.msg), got[0]!.flow);
    const late = await cliBox.next();
    expect([late.msg.callId, late.flow.connectionId]).toEqual(['age-1', f1.connectionId]);
  });

  it('honours the RFC 5923 Via alias parameter for requests towards the advertised port', async () => {
    const srv = await layer();
    const srvBox = collect(srv);
    const p = await peer(srv);
    await p.write(request({ via: 'SIP/2.0/TCP 127.0.1.21:5999;branch=z9hG4bKalias;alias' }));
    const { flow } = await srvBox.next();
    const req = new SipRequest('OPTIONS', 'sip:x', [field('Via', `SIP/2.0/TCP ${SRV};branch=z9hG4bKa2`), field('Call-ID', 'al'), field('CSeq', '1 OPTIONS')]);
    const f = await srv.send(req, { protocol: 'tcp', host: CLI, port: 5999 });
    expect(f.connectionId).toBe(flow.connectionId);
    expect((await p.inbox.next()).callId).toBe('al');
  });

  it('rejects a send to a closed port with a TransportError (reason connect)', async () => {
    const tl = await layer();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, OTHER, r));
    const port = (blocker.address() as net.AddressInfo).port;
    await new Promise<void>((r) => blocker.close(() => r()));
    const req = new SipRequest('OPTIONS', 'sip:x', [field('Via', `SIP/2.0/TCP ${SRV};branch=z9hG4bKc`)]);
    await expect(tl.send(req, { protocol: 'tcp', host: OTHER, port })).rejects.toMatchObject({ code: 'SIP_ERR_TRANSPORT', reason: 'connect' });
    expect(tl.stats.sendErrors).toBe(1);
  });

  it('emits connection events and closes everything on close()', async () => {
    const tl = await layer();
    const opened: ConnectionInfo[] = [];
    tl.on('connection', (i) => opened.push(i));
    const p = await peer(tl);
    await until(() => opened.length === 1);
    expect(opened[0]).toMatchObject({ protocol: 'tcp', direction: 'inbound', flow: { remoteAddress: CLI } });
    expect(tl.connections()).toHaveLength(1);
    await tl.close();
    await p.closed;
    expect(tl.stats.connectionsOpen).toBe(0);
    await expect(tl.sendResponse(new SipResponse(200, 'OK'), opened[0]!.flow)).rejects.toMatchObject({ reason: 'closed' });
  });
});
