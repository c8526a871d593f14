import { afterEach, describe, expect, it } from 'vitest';
import { SipRequest, SipResponse, field } from '../../../../src/sip/message/index.js';
import { TransportError } from '../../../../src/sip/transport/errors.js';
import { TransportLayer } from '../../../../src/sip/transport/transport-layer.js';
import { type UdpPeer, collect, delay, request, udpPeer } from './net-helpers.js';

const SRV = '127.0.1.10';
const SRV2 = '127.0.1.12';
const CLI = '127.0.1.11';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function layer(opts: Partial<ConstructorParameters<typeof TransportLayer>[0]> = {}): Promise<TransportLayer> {
  const tl = new TransportLayer({ listen: [{ protocol: 'udp', host: SRV, port: 0 }], ...opts });
  cleanup.push(() => tl.close());
  await tl.start();
  return tl;
}

async function peer(): Promise<UdpPeer> {
  const p = await udpPeer(CLI);
  cleanup.push(() => p.close());
  return p;
}

function responseTo(req: SipRequest, status = 200): SipResponse {
  const res = new SipResponse(status, 'OK');
  for (const h of req.headers) if (['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
  return res;
}

describe('TransportLayer over UDP', () => {
  it('reports bound listen points, several at once', async () => {
    const tl = await layer({ listen: [{ protocol: 'udp', host: SRV, port: 0, externalIp: '203.0.113.5' }, { protocol: 'udp', host: SRV2, port: 0 }] });
    const lps = tl.listenPoints();
    expect(lps).toHaveLength(2);
    expect(lps[0]).toMatchObject({ protocol: 'udp', host: SRV, externalIp: '203.0.113.5' });
    expect(lps[1]).toMatchObject({ protocol: 'udp', host: SRV2 });
    expect(lps.every((l) => l.port > 0)).toBe(true);
  });

  it('receives a request with its flow, adds received and fills rport (RFC 3581)', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer();
    const lp = tl.listenPoints()[0]!;
    await p.send(request(), lp.port, SRV);
    const { msg, flow } = await box.next();
    expect(msg).toBeInstanceOf(SipRequest);
    expect(flow).toEqual({ protocol: 'udp', localAddress: SRV, localPort: lp.port, remoteAddress: CLI, remotePort: p.port, reliable: false });
    expect(msg.topVia.params.get('received')).toBe(CLI);
    expect(msg.topVia.params.get('rport')).toBe(String(p.port));
    expect(msg.get('via')).toBe(`SIP/2.0/UDP 10.9.9.9:5099;branch=z9hG4bKtest1;rport=${p.port};received=${CLI}`);
    expect(tl.stats.messagesIn).toBe(1);
  });

  it('adds received only when the sent-by host differs from the source, and leaves set rport alone', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer();
    const port = tl.listenPoints()[0]!.port;
    await p.send(request({ via: `SIP/2.0/UDP ${CLI}:${p.port};branch=z9hG4bKsame` }), port, SRV);
    const a = await box.next();
    expect(a.msg.topVia.params.has('received')).toBe(false);
    expect(a.msg.get('via')).toBe(`SIP/2.0/UDP ${CLI}:${p.port};branch=z9hG4bKsame`);
    await p.send(request({ via: 'SIP/2.0/UDP client.test.invalid;branch=z9hG4bKname;rport=1234', callId: 'c2' }), port, SRV);
    const b = await box.next();
    expect(b.msg.topVia.params.get('received')).toBe(CLI);
    expect(b.msg.topVia.params.get('rport')).toBe('1234');
    // Responses are not touched.
    await p.send('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKr;rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n', port, SRV);
    const c = await box.next();
    expect(c.msg).toBeInstanceOf(SipResponse);
    expect(c.msg.topVia.params.get('rport')).toBeNull();
  });

  it('routes a response to the source address and rport (RFC 3581 §4), from the receiving socket', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer();
    const port = tl.listenPoints()[0]!.port;
    await p.send(request(), port, SRV);
    const { msg, flow } = await box.next();
    await tl.sendResponse(responseTo(msg as SipRequest), flow);
    const got = await p.inbox.next();
    expect(got.msg).toBeInstanceOf(SipResponse);
    expect((got.msg as SipResponse).status).toBe(200);
    expect(got.port).toBe(port); // symmetric: sent from the listen socket
    expect(got.msg.topVia.params.get('received')).toBe(CLI);
    expect(tl.stats.messagesOut).toBe(1);
  });

  it('without rport, routes a response to the received address and the sent-by port (§18.2.2)', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer();
    const target = await peer(); // stands in for "the port in sent-by"
    await p.send(request({ via: `SIP/2.0/UDP client.test.invalid:${target.port};branch=z9hG4bKnorport` }), tl.listenPoints()[0]!.port, SRV);
    const { msg, flow } = await box.next();
    await tl.sendResponse(responseTo(msg as SipRequest, 180), flow);
    const got = await target.inbox.next();
    expect((got.msg as SipResponse).status).toBe(180);
    expect(p.inbox.length).toBe(0);
  });

  it('sends requests from the listen socket matching the pinned local address', async () => {
    const tl = await layer({ listen: [{ protocol: 'udp', host: SRV, port: 0 }, { protocol: 'udp', host: SRV2, port: 0 }] });
    const p = await peer();
    const [a, b] = tl.listenPoints();
    const req = new SipRequest('OPTIONS', `sip:${CLI}`, [field('Via', `SIP/2.0/UDP ${SRV2}:${b!.port};branch=z9hG4bKout`), field('Call-ID', 'x'), field('CSeq', '1 OPTIONS')]);
    const flow = await tl.send(req, { protocol: 'udp', host: CLI, port: p.port, localAddress: SRV2 });
    expect(flow).toMatchObject({ protocol: 'udp', localAddress: SRV2, localPort: b!.port, remoteAddress: CLI, remotePort: p.port, reliable: false });
    const got = await p.inbox.next();
    expect(got.address).toBe(SRV2);
    expect(got.port).toBe(b!.port);
    await tl.send(req, { protocol: 'udp', host: CLI, port: p.port });
    const got2 = await p.inbox.next();
    expect(got2.address).toBe(SRV);
    expect(got2.port).toBe(a!.port);
  });

  it('answers a request with a malformed CSeq with 400 and a reason phrase', async () => {
    const tl = await layer();
    const box = collect(tl);
    const malformed: unknown[] = [];
    tl.on('malformed', (e) => malformed.push(e));
    const p = await peer();
    await p.send(request().replace('CSeq: 1 OPTIONS', 'CSeq: x OPTIONS'), tl.listenPoints()[0]!.port, SRV);
    const got = await p.inbox.next();
    const res = got.msg as SipResponse;
    expect(res.status).toBe(400);
    expect(res.reason).toMatch(/^Bad Request \(.*CSeq.*\)$/);
    expect(res.callId).toBe('call-1');
    expect(res.toTag).toBeTruthy();
    expect(res.topVia.params.get('rport')).toBe(String(p.port));
    expect(box.length).toBe(0);
    expect(tl.stats.parseErrors).toBe(1);
    expect(malformed).toEqual([expect.objectContaining({ answered: 400 })]);
  });

  it('drops garbage, requests without Via and ACKs silently, and keeps serving', async () => {
    const tl = await layer();
    const box = collect(tl);
    const p = await peer();
    const port = tl.listenPoints()[0]!.port;
    const garbage = Buffer.alloc(900);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) % 256;
    await p.send(garbage, port, SRV);
    await p.send(request().replace(/Via: .*\r\n/, ''), port, SRV);
    await p.send(request({ method: 'ACK' }).replace('Max-Forwards: 70', 'Max-Forwards: many'), port, SRV);
    await p.send('SIP/2.0 999 Nope\r\n\r\n', port, SRV);
    await p.send(request({ callId: 'after' }), port, SRV);
    const { msg } = await box.next();
    expect(msg.callId).toBe('after');
    await delay(50);
    expect(p.inbox.length).toBe(0);
    expect(tl.stats.parseErrors).toBe(4);
  });

  it('answers 505 for another SIP version and 513 for a datagram above maxMessageBytes', async () => {
    const tl = await layer({ maxMessageBytes: 2000 });
    const p = await peer();
    const port = tl.listenPoints()[0]!.port;
    await p.send(request().replace('SIP/2.0\r\n', 'SIP/3.0\r\n'), port, SRV);
    expect(((await p.inbox.next()).msg as SipResponse).status).toBe(505);
    await p.send(request({ body: 'x'.repeat(3000) }), port, SRV);
    const big = (await p.inbox.next()).msg as SipResponse;
    expect(big.status).toBe(513);
    expect(big.reason).toMatch(/^Message Too Large/);
  });

  it('counts CRLF keep-alives without answering them', async () => {
    const tl = await layer();
    const kas: unknown[] = [];
    tl.on('keepalive', (f) => kas.push(f));
    const p = await peer();
    await p.send('\r\n\r\n', tl.listenPoints()[0]!.port, SRV);
    await delay(50);
    expect(tl.stats.keepAlives).toBe(1);
    expect(kas).toHaveLength(1);
    expect(p.inbox.length).toBe(0);
  });

  it('a throwing message listener does not break the socket', async () => {
    const tl = await layer();
    let calls = 0;
    tl.on('message', () => {
      calls++;
      throw new Error('app bug');
    });
    const p = await peer();
    const port = tl.listenPoints()[0]!.port;
    await p.send(request(), port, SRV);
    await p.send(request({ callId: 'two' }), port, SRV);
    await delay(50);
    expect(calls).toBe(2);
  });

  it('applies udpBufferBytes to the sockets', async () => {
    const small = await layer({ udpBufferBytes: 32 * 1024 });
    const big = await layer({ listen: [{ protocol: 'udp', host: SRV2, port: 0 }] });
    const s = small.udpBufferSizes()[0]!;
    const b = big.udpBufferSizes()[0]!;
    expect(b.recv).toBeGreaterThan(s.recv);
    expect(b.send).toBeGreaterThan(s.send);
  });

  it('rejects sends without a matching listen point and after close; close is idempotent', async () => {
    const tl = await layer();
    const req = new SipRequest('OPTIONS', 'sip:x', [field('Via', 'SIP/2.0/UDP h;branch=z9hG4bK1')]);
    await expect(tl.send(req, { protocol: 'udp', host: '::1', port: 5060 })).rejects.toMatchObject({ code: 'SIP_ERR_TRANSPORT', reason: 'no-listen-point' });
    await Promise.all([tl.close(), tl.close()]);
    await tl.close();
    const err = await tl.send(req, { protocol: 'udp', host: CLI, port: 5060 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'SIP_ERR_TRANSPORT', reason: 'closed' });
  });

  it('fails start() when a port is taken, releasing what it bound', async () => {
    const first = await layer();
    const port = first.listenPoints()[0]!.port;
    const tl = new TransportLayer({ listen: [{ protocol: 'udp', host: SRV2, port: 0 }, { protocol: 'udp', host: SRV, port }] });
    await expect(tl.start()).rejects.toMatchObject({ code: 'SIP_ERR_TRANSPORT', reason: 'listen' });
    expect(tl.closed).toBe(true);
  });
});
