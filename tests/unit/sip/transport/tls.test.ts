import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SipRequest, SipResponse, field } from '../../../../src/sip/message/index.js';
import type { ConnectionInfo } from '../../../../src/sip/transport/tcp.js';
import { TransportLayer, type TransportLayerOptions } from '../../../../src/sip/transport/transport-layer.js';
import type { TlsOptions } from '../../../../src/sip/transport/types.js';
import { type TestPki, createTestPki } from '../../../helpers/pki.js';
import { collect, delay, request, tlsPeer, until } from './net-helpers.js';

const SRV = '127.0.1.30';
const CLI = '127.0.1.31';
const SNI = 'sbc.test.invalid';

let dir: string;
let pki: TestPki;
let rogue: TestPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sip-tls-'));
  pki = await createTestPki(join(dir, 'ok'), { server: { sans: [`DNS:${SNI}`, `IP:${SRV}`] }, client: { cn: 'peer.test.invalid', sans: ['DNS:peer.test.invalid'], eku: ['serverAuth', 'clientAuth'] } });
  rogue = await createTestPki(join(dir, 'rogue'), { caCn: 'Rogue CA', server: { sans: [`DNS:${SNI}`, `IP:${SRV}`] } });
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function serverTls(extra: Partial<TlsOptions> = {}): TlsOptions {
  return { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert, ...extra };
}

async function layer(host: string, t: TlsOptions, opts: Partial<TransportLayerOptions> = {}): Promise<TransportLayer> {
  const tl = new TransportLayer({ listen: [{ protocol: 'tls', host, port: 0, tls: t }], ...opts });
  cleanup.push(() => tl.close());
  await tl.start();
  return tl;
}

function options(n: string, from: string): SipRequest {
  return new SipRequest('OPTIONS', `sip:${SNI}`, [
    field('Via', `SIP/2.0/TLS ${from}:5061;branch=z9hG4bK${n}`),
    field('Max-Forwards', '70'),
    field('From', '<sip:peer@test.invalid>;tag=f1'),
    field('To', `<sip:${SNI}>`),
    field('Call-ID', `tls-${n}`),
    field('CSeq', '1 OPTIONS'),
  ]);
}

describe('TransportLayer over TLS', () => {
  it('mutual TLS: a client without a certificate is rejected, one with a CA-signed certificate is accepted; SNI is seen', async () => {
    const srv = await layer(SRV, serverTls({ requestClientCert: true, verifyPeer: true }));
    const box = collect(srv);
    const port = srv.listenPoints()[0]!.port;

    // No client certificate: the handshake fails (TLS 1.3 reports it after the client's Finished).
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: SRV, port, servername: SNI, ca: pki.ca.cert, localAddress: CLI } as tls.ConnectionOptions);
      s.on('error', (e) => resolve(`error: ${e.message}`));
      s.on('close', () => resolve('closed'));
      s.on('secureConnect', () => s.write(request({ via: `SIP/2.0/TLS ${CLI};branch=z9hG4bKnocert` })));
      s.on('data', () => resolve('data'));
    });
    expect(outcome).not.toBe('data');
    // A client certificate from another CA is rejected too.
    const rogueOutcome = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: SRV, port, servername: SNI, key: rogue.client.key, cert: rogue.client.cert, rejectUnauthorized: false, localAddress: CLI } as tls.ConnectionOptions);
      s.on('error', () => resolve('error'));
      s.on('close', () => resolve('closed'));
      s.on('secureConnect', () => s.write(request({ via: `SIP/2.0/TLS ${CLI};branch=z9hG4bKrogue` })));
    });
    expect(rogueOutcome).not.toBe('data');
    expect(box.length).toBe(0);

    // The peer is a TransportLayer with its own TLS listen point: its certificate doubles as client cert.
    const cli = await layer(CLI, { key: pki.client.key, cert: pki.client.cert, ca: pki.ca.cert, verifyPeer: true });
    const flow = await cli.send(options('mtls', CLI), { protocol: 'tls', host: SRV, port, servername: SNI });
    expect(flow).toMatchObject({ protocol: 'tls', reliable: true, remoteAddress: SRV, localAddress: CLI });
    const got = await box.next();
    expect(got.msg.callId).toBe('tls-mtls');
    expect(got.flow.protocol).toBe('tls');
    const info = srv.connection(got.flow.connectionId!) as ConnectionInfo;
    expect(info.tls).toMatchObject({ servername: SNI, authorized: true, peerSubjectCN: 'peer.test.invalid' });
    expect(info.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    const outInfo = cli.connection(flow.connectionId!)!;
    expect(outInfo.tls).toMatchObject({ authorized: true, peerSubjectCN: SNI });
    expect(outInfo.direction).toBe('outbound');

    // Response goes back over the same TLS connection.
    const res = new SipResponse(200, 'OK');
    for (const h of got.msg.headers) if (['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
    const cliBox = collect(cli);
    await srv.sendResponse(res, got.flow);
    const back = await cliBox.next();
    expect((back.msg as SipResponse).status).toBe(200);
    expect(back.flow.connectionId).toBe(flow.connectionId);
  });

  it('sends the intermediate chain (teams-direct-routing §2.9): a client trusting only the root verifies the server; without chain it cannot', async () => {
    const inter = await pki.issue({ name: 'intermediate', cn: 'Test Intermediate CA', ca: true });
    const sub = await createTestPki(join(dir, 'sub'), { issuer: { keyPath: inter.keyPath, certPath: inter.certPath, cn: 'Test Intermediate CA' }, server: { sans: [`DNS:${SNI}`, `IP:${SRV}`] } });
    const handshake = async (t: TlsOptions) => {
      const tl = await layer(SRV, t);
      const port = tl.listenPoints()[0]!.port;
      // The client trusts only the root: it verifies the leaf only if the server sent the intermediate.
      return new Promise<{ authorized: boolean; error: string | undefined }>((resolve) => {
        const sock = tls.connect({ host: SRV, port, servername: SNI, ca: pki.ca.cert, rejectUnauthorized: false }, () => {
          resolve({ authorized: sock.authorized, error: sock.authorizationError?.toString() });
          sock.destroy();
        });
        sock.on('error', (err) => resolve({ authorized: false, error: err.message }));
      });
    };
    const withChain = await handshake({ key: sub.server.key, cert: sub.server.cert, chain: inter.cert });
    expect(withChain).toMatchObject({ authorized: true, error: undefined });
    const without = await handshake({ key: sub.server.key, cert: sub.server.cert });
    expect(without.authorized).toBe(false);
    expect(without.error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate/i);
  });

  it('without requestClientCert, any TLS client is served and the layer reports it unauthenticated', async () => {
    const srv = await layer(SRV, serverTls());
    const box = collect(srv);
    const p = await tlsPeer({ host: SRV, port: srv.listenPoints()[0]!.port, localAddress: CLI, servername: SNI, ca: pki.ca.cert });
    cleanup.push(() => p.close());
    await p.write(request({ via: `SIP/2.0/TLS ${CLI};branch=z9hG4bKplain` }));
    const got = await box.next();
    expect(srv.connection(got.flow.connectionId!)!.tls).toMatchObject({ servername: SNI, authorized: false });
    expect(srv.connection(got.flow.connectionId!)!.tls?.peerSubjectCN).toBeUndefined();
  });

  it('verifies the server against ca when verifyPeer is set: wrong name or untrusted CA fail with reason tls', async () => {
    const good = await layer(SRV, serverTls());
    const bad = await layer('127.0.1.32', { key: rogue.server.key, cert: rogue.server.cert });
    const cli = await layer(CLI, { key: pki.client.key, cert: pki.client.cert, ca: pki.ca.cert, verifyPeer: true });
    const gp = good.listenPoints()[0]!.port;
    await expect(cli.send(options('v1', CLI), { protocol: 'tls', host: SRV, port: gp, servername: SNI })).resolves.toMatchObject({ protocol: 'tls' });
    await expect(cli.send(options('v2', CLI), { protocol: 'tls', host: SRV, port: gp, servername: 'other.test.invalid' })).resolves.toMatchObject({ protocol: 'tls' });
    // The second send reused the verified connection (same ip:port), so check a fresh layer for the name mismatch.
    const cli2 = await layer('127.0.1.33', { key: pki.client.key, cert: pki.client.cert, ca: pki.ca.cert, verifyPeer: true });
    await expect(cli2.send(options('v3', '127.0.1.33'), { protocol: 'tls', host: SRV, port: gp, servername: 'other.test.invalid' })).rejects.toMatchObject({
      code: 'SIP_ERR_TRANSPORT',
      reason: 'tls',
    });
    await expect(cli2.send(options('v4', '127.0.1.33'), { protocol: 'tls', host: '127.0.1.32', port: bad.listenPoints()[0]!.port, servername: SNI })).rejects.toMatchObject({
      code: 'SIP_ERR_TRANSPORT',
      reason: 'tls',
    });
    // Without verifyPeer the rogue server is accepted (drachtio-compatible default).
    const lax = await layer('127.0.1.34', { key: pki.client.key, cert: pki.client.cert });
    await expect(lax.send(options('v5', '127.0.1.34'), { protocol: 'tls', host: '127.0.1.32', port: bad.listenPoints()[0]!.port, servername: SNI })).resolves.toMatchObject({ protocol: 'tls' });
  });

  it('rejects with reason timeout when the server never completes the handshake', async () => {
    const mute = net.createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => mute.listen(0, '127.0.1.35', r));
    const sockets: net.Socket[] = [];
    mute.on('connection', (s) => sockets.push(s));
    cleanup.push(() => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      mute.close(() => r());
    }));
    const cli = await layer(CLI, { key: pki.client.key, cert: pki.client.cert }, { connectTimeoutMs: 300 });
    const t0 = Date.now();
    await expect(cli.send(options('mute', CLI), { protocol: 'tls', host: '127.0.1.35', port: (mute.address() as net.AddressInfo).port })).rejects.toMatchObject({
      code: 'SIP_ERR_TRANSPORT',
      reason: 'timeout',
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect(cli.stats.connectionsOpen).toBe(0);
  });

  it('closes a TLS connection whose handshake never starts within headerTimeoutMs', async () => {
    const srv = await layer(SRV, serverTls(), { headerTimeoutMs: 300 });
    const s = net.connect({ host: SRV, port: srv.listenPoints()[0]!.port, localAddress: CLI });
    let closed = false;
    s.on('error', () => undefined);
    s.on('close', () => (closed = true));
    cleanup.push(() => void s.destroy());
    const t0 = Date.now();
    await until(() => closed, 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('setTls (a renewed certificate, §2.12): new handshakes both ways use it, every TLS connection up is retired and closed after the grace; unusable material changes nothing', async () => {
    const renewed = await pki.issue({ name: 'renewed', cn: 'sbc-renewed.test.invalid', sans: [`DNS:${SNI}`, `IP:${SRV}`] });
    const gw = await layer(SRV, serverTls({ requestClientCert: true, verifyPeer: true }));
    const peerCert = { key: pki.client.key, cert: pki.client.cert, ca: pki.ca.cert, verifyPeer: true, requestClientCert: true };
    const peer = await layer(CLI, peerCert);
    const gwBox = collect(gw);
    const peerBox = collect(peer);
    const gwPort = gw.listenPoints()[0]!.port;
    const peerPort = peer.listenPoints()[0]!.port;
    /** CN of the certificate the gateway layer presents on a fresh handshake to its listen point. */
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const sock = tls.connect({ host: SRV, port: gwPort, servername: SNI, key: pki.client.key, cert: pki.client.cert, ca: pki.ca.cert }, () => {
          resolve(String(sock.getPeerCertificate().subject.CN));
          sock.destroy();
        });
        sock.on('error', reject);
      });
    // One connection each way: the peer's (inbound at gw) and gw's own (outbound).
    const inFlow = await peer.send(options('in1', CLI), { protocol: 'tls', host: SRV, port: gwPort, servername: SNI });
    const inReq = await gwBox.next();
    expect(peer.connection(inFlow.connectionId!)!.tls?.peerSubjectCN).toBe('sbc.test.invalid');
    const outFlow = await gw.send(options('out1', SRV), { protocol: 'tls', host: CLI, port: peerPort, servername: 'peer.test.invalid' });
    const atPeer = await peerBox.next();
    expect(peer.connection(atPeer.flow.connectionId!)!.tls?.peerSubjectCN).toBe('sbc.test.invalid');
    expect(gw.stats.connectionsOpen).toBe(2);
    // Our own connection remembers the name it was verified against (reused for in-dialog requests).
    expect(gw.usableConnection(outFlow.connectionId)?.tls?.servername).toBe('peer.test.invalid');
    expect(gw.usableConnection(inReq.flow.connectionId)).toBeDefined();

    // A key that does not belong to the certificate: refused, nothing replaced or retired.
    expect(() => gw.setTls({ ...serverTls({ requestClientCert: true, verifyPeer: true }), key: renewed.key }, 300)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_TRANSPORT', reason: 'tls-config', message: expect.stringMatching(/unusable TLS material: .*key values mismatch/) }),
    );
    expect(await served()).toBe('sbc.test.invalid');
    await delay(400);
    expect(gw.stats.connectionsOpen).toBe(2);

    expect(gw.setTls({ key: renewed.key, cert: renewed.cert, ca: pki.ca.cert, verifyPeer: true, requestClientCert: true }, 300)).toBe(2);
    // Retired: still open, but no longer offered for new requests.
    expect(gw.connection(outFlow.connectionId!)).toBeDefined();
    expect(gw.usableConnection(outFlow.connectionId)).toBeUndefined();
    expect(gw.usableConnection(inReq.flow.connectionId)).toBeUndefined();
    expect(await served()).toBe('sbc-renewed.test.invalid');
    // What is bound to a retired connection still uses it during the grace: the response to in1.
    const res = new SipResponse(200, 'OK');
    for (const h of inReq.msg.headers) if (['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
    await gw.sendResponse(res, inReq.flow);
    expect((await peerBox.next()).flow.connectionId).toBe(inFlow.connectionId);
    // A new request opens a new connection, with the renewed certificate as client certificate.
    const outFlow2 = await gw.send(options('out2', SRV), { protocol: 'tls', host: CLI, port: peerPort, servername: 'peer.test.invalid' });
    expect(outFlow2.connectionId).not.toBe(outFlow.connectionId);
    const atPeer2 = await peerBox.next();
    expect(atPeer2.msg.callId).toBe('tls-out2');
    expect(peer.connection(atPeer2.flow.connectionId!)!.tls?.peerSubjectCN).toBe('sbc-renewed.test.invalid');
    // After the grace both old connections are gone; the new one stays.
    await until(() => gw.connection(inReq.flow.connectionId!) === undefined && gw.connection(outFlow.connectionId!) === undefined, 3000);
    expect(gw.connection(outFlow2.connectionId!)).toBeDefined();
  });
});
