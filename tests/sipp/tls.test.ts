/**
 * Issue 2 acceptance, TLS with mutual authentication: SIPp behind stunnel4 and a small Node TLS
 * peer, against a drachtio-srf app on our server's `transport=tls` listen point.
 *
 *   inbound:  SIPp (TCP) → stunnel client (presents the test client cert) → our TLS port
 *             (requestClientCert + verifyPeer) → app answers with createUAS
 *   outbound: app createUAC(;transport=tls) → our server (presents its cert as client cert)
 *             → stunnel server (requireCert + verifyChain) → SIPp (TCP)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { runSipp, startSippUas, stopAllSipp } from '../helpers/sipp.js';
import { deferred, sdp } from '../helpers/srf.js';
import { waitForIdle } from '../helpers/sip-server.js';
import { freePort, waitFor } from '../helpers/net.js';
import { expectSippOk, header, oneReceived, sippPort, startHarness, type Harness } from './support.js';
import { startStunnel, type Stunnel } from './stunnel.js';

const SERVER_IP = '127.0.3.60';
const STUNNEL_IN_IP = '127.0.3.61';
const STUNNEL_OUT_IP = '127.0.3.62';
const SIPP_IP = '127.0.3.63';

let h: Harness;
let pki: TestPki;
let dir: string;
const tunnels: Stunnel[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-acceptance-'));
  pki = await createTestPki(dir, { server: { sans: ['DNS:sbc.test.invalid', `IP:${SERVER_IP}`] } });
  h = await startHarness({
    host: SERVER_IP,
    tls: { options: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert, requestClientCert: true, verifyPeer: true, minVersion: 'TLSv1.2' } },
  });
}, 60_000);

afterAll(async () => {
  await stopAllSipp();
  for (const t of tunnels) await t.stop();
  await h?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Sends one SIP request over a Node TLS connection; resolves with whatever came back before close/timeout. */
async function tlsExchange(opts: tls.ConnectionOptions, request: string, waitMs: number): Promise<{ secure: boolean; text: string; closed: boolean; error?: string }> {
  return new Promise((resolve) => {
    let text = '';
    let secure = false;
    let closed = false;
    let error: string | undefined;
    const sock = tls.connect(opts, () => {
      secure = true;
      sock.write(request);
    });
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.on('error', (e) => (error = e.message));
    const done = (): void => resolve({ secure, text, closed, ...(error ? { error } : {}) });
    const t = setTimeout(() => {
      sock.destroy();
      done();
    }, waitMs);
    sock.on('close', () => {
      closed = true;
      clearTimeout(t);
      done();
    });
  });
}

function options(uri: string, localHp: string, branch: string): string {
  return [
    `OPTIONS ${uri} SIP/2.0`,
    `Via: SIP/2.0/TLS ${localHp};branch=z9hG4bK${branch};rport`,
    `From: <sip:probe@${localHp}>;tag=${branch}`,
    `To: <${uri}>`,
    `Call-ID: ${branch}@tls-test`,
    'CSeq: 1 OPTIONS',
    'Max-Forwards: 70',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('TLS with mutual authentication', () => {
  it('the authenticate reply lists the TLS listen point', () => {
    expect(h.app.hostports.split(',')).toContain(`tls/${SERVER_IP}:${h.s.tlsPort}`);
  });

  it('a Node TLS peer with a client certificate gets an answer to OPTIONS; without one it is refused', async () => {
    const seen = deferred<string>();
    h.onOptions = (req, res) => {
      seen.resolve(req.protocol);
      res.send(200, { headers: { 'X-Tls-Test': 'yes' } });
    };
    const uri = `sip:app@${SERVER_IP}:${h.s.tlsPort};transport=tls`;
    const base = { host: SERVER_IP, port: h.s.tlsPort!, ca: pki.ca.cert, servername: 'sbc.test.invalid', minVersion: 'TLSv1.2' as const };
    const withCert = await tlsExchange({ ...base, key: pki.client.key, cert: pki.client.cert }, options(uri, `${SIPP_IP}:5061`, 'mtls1'), 3000);
    expect(withCert.secure).toBe(true);
    expect(withCert.text).toMatch(/^SIP\/2\.0 200 /);
    expect(withCert.text).toMatch(/^X-Tls-Test: yes\r$/m);
    expect(await seen.promise).toBe('tls');

    const noCert = await tlsExchange(base, options(uri, `${SIPP_IP}:5061`, 'mtls2'), 3000);
    expect(noCert.text).not.toMatch(/^SIP\/2\.0/);
    expect(noCert.closed || noCert.error !== undefined).toBe(true);

    const untrusted = await createTestPki(path.join(dir, 'other-ca'));
    const wrongCa = await tlsExchange({ ...base, key: untrusted.client.key, cert: untrusted.client.cert }, options(uri, `${SIPP_IP}:5061`, 'mtls3'), 3000);
    expect(wrongCa.text).not.toMatch(/^SIP\/2\.0/);
    expect(wrongCa.closed || wrongCa.error !== undefined).toBe(true);
  }, 30_000);

  it('inbound: SIPp behind a stunnel client (client cert) calls the app over TLS; createUAS answers; BYE ends it', async () => {
    const inPort = await freePort(STUNNEL_IN_IP, ['tcp']);
    const tunnel = await startStunnel(dir, [
      {
        name: 'sip-in',
        client: true,
        accept: { host: STUNNEL_IN_IP, port: inPort },
        connect: { host: SERVER_IP, port: h.s.tlsPort! },
        local: STUNNEL_IN_IP,
        certPath: pki.client.certPath,
        keyPath: pki.client.keyPath,
        caPath: pki.ca.certPath,
        verify: true,
        checkIp: SERVER_IP,
      },
    ]);
    tunnels.push(tunnel);
    const seen = deferred<{ protocol: string; source: string }>();
    const destroyed = deferred<void>();
    h.onInvite = async (req, res) => {
      seen.resolve({ protocol: req.protocol, source: req.source_address });
      const dlg = await h.app.srf.createUAS(req, res, { localSdp: sdp('app-tls-in', SERVER_IP) });
      dlg.on('destroy', () => destroyed.resolve());
    };
    const r = await runSipp({ scenario: 'uac-invite-200.xml', localIp: SIPP_IP, localPort: await sippPort(SIPP_IP), remote: `${STUNNEL_IN_IP}:${inPort}`, transport: 't1', pauseMs: 200 });
    expectSippOk(r);
    const app = await seen.promise;
    expect(app.protocol).toBe('tls');
    expect(app.source).toBe(STUNNEL_IN_IP);
    await destroyed.promise;
    const ok = oneReceived(r, /^SIP\/2\.0 200/);
    expect(header(ok, 'Contact')).toMatch(new RegExp(`^<sips?:[^>]*${SERVER_IP.replace(/\./g, '\\.')}:${h.s.tlsPort}`));
    expect(tunnel.log()).toMatch(/TLSv1\.[23]/);
    await tunnel.stop();
  }, 30_000);

  it('outbound: createUAC over TLS presents our certificate to a stunnel server that requires one (mutual TLS)', async () => {
    const outPort = await freePort(STUNNEL_OUT_IP, ['tcp']);
    const sippTcpPort = await sippPort(SIPP_IP);
    const stunnelCert = await pki.issue({ name: 'stunnel-out', cn: 'far-end.test.invalid', sans: [`IP:${STUNNEL_OUT_IP}`] });
    const tunnel = await startStunnel(dir, [
      {
        name: 'sip-out',
        client: false,
        accept: { host: STUNNEL_OUT_IP, port: outPort },
        connect: { host: SIPP_IP, port: sippTcpPort },
        certPath: stunnelCert.certPath,
        keyPath: stunnelCert.keyPath,
        caPath: pki.ca.certPath,
        verify: true,
      },
    ]);
    tunnels.push(tunnel);
    const callee = await startSippUas({
      scenario: 'uas-answer-200-tls.xml',
      localIp: SIPP_IP,
      localPort: sippTcpPort,
      transport: 't1',
      calls: 1,
      timeoutMs: 20_000,
      keys: { tls_contact: `${STUNNEL_OUT_IP}:${outPort}` },
    });
    const dlg = await h.app.srf.createUAC(`sip:bob@${STUNNEL_OUT_IP}:${outPort};transport=tls`, { localSdp: sdp('app-tls-out', SERVER_IP) });
    expect(dlg.remote.sdp).toContain('o=sippcallee');
    await dlg.destroy();
    const r = await callee.done;
    expectSippOk(r);
    const invite = oneReceived(r, /^INVITE /);
    expect(header(invite, 'Via')).toMatch(new RegExp(`^SIP/2\\.0/TLS ${SERVER_IP.replace(/\./g, '\\.')}:${h.s.tlsPort};`));
    expect(header(invite, 'Contact')).toMatch(/transport=tls|^<sips:/i);
    // the BYE went to the far end's Contact, which names the TLS terminator
    expect(oneReceived(r, /^BYE /).firstLine).toMatch(/^BYE sips?:2000@/);
    // stunnel accepted the certificate our server presented as TLS client
    await waitFor(() => /Certificate accepted at depth=0: CN=sbc\.test\.invalid/.test(tunnel.log()), { timeoutMs: 2000, what: 'stunnel accepted our client certificate' });
    expect(tunnel.log()).not.toMatch(/CERT: Verification error|peer did not return a certificate/i);
    await tunnel.stop();
  }, 30_000);

  it('leaves no transactions, dialogs or pending requests behind', async () => {
    await waitForIdle(h.s, 8000);
    expect(h.handlerErrors).toEqual([]);
  });
});
