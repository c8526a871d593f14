/**
 * `teams-gw sip-server` as a process: the drachtio.conf.xml subset (-f), spammer rules,
 * drachtio_* Prometheus metrics; and `teams-gw run` (the gateway) answering OPTIONS.
 * Addresses 127.0.10.x.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, UdpPeer, waitFor, waitListening } from '../helpers/net.js';
import { optionsFromArgs } from '../../src/drachtio/cli.js';
import { createTestPki } from '../helpers/pki.js';
import { startSipServerCli, type CliServer } from '../helpers/sip-server.js';
import { connectSrf } from '../helpers/srf.js';

const SIP_IP = '127.0.10.1';
const TLS_IP = '127.0.10.4';
const PEER_IP = '127.0.10.2';
const dir = mkdtempSync(join(tmpdir(), 'sip-server-cli-'));

function options(ua: string, branch: string, port: number): string {
  return [
    `OPTIONS sip:ping@${SIP_IP}:5060 SIP/2.0`,
    `Via: SIP/2.0/UDP ${PEER_IP}:${port};branch=z9hG4bK${branch}`,
    `From: <sip:probe@${PEER_IP}>;tag=${branch}`,
    `To: <sip:ping@${SIP_IP}>`,
    `Call-ID: ${branch}@${PEER_IP}`,
    'CSeq: 1 OPTIONS',
    'Max-Forwards: 70',
    `User-Agent: ${ua}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const started: CliServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

describe('teams-gw sip-server -f drachtio.conf.xml', () => {
  it('takes contacts, admin, secret, spammers, cdrs and the prometheus port from the XML file', async () => {
    const admin = await freePort('127.0.0.1', ['tcp']);
    const prom = await freePort('127.0.0.1', ['tcp']);
    const conf = join(dir, 'drachtio.conf.xml');
    writeFileSync(
      conf,
      `<drachtio>
  <admin port="${admin}" secret="xmlsecret">127.0.0.1</admin>
  <sip>
    <contacts><contact>sip:${SIP_IP}:5060;transport=udp</contact></contacts>
    <spammers action="reject" tcp-action="discard">
      <header name="User-Agent"><value>friendly-scanner</value><value>sipvicious</value></header>
    </spammers>
    <user-agent-options-auto-respond>keepalive-probe</user-agent-options-auto-respond>
  </sip>
  <cdrs>true</cdrs>
  <monitoring><prometheus port="${prom}"/></monitoring>
  <logging><loglevel>warn</loglevel></logging>
</drachtio>`,
    );
    const srv = await startSipServerCli({ args: ['-f', conf], ready: { tcp: [['127.0.0.1', admin]], udp: [[SIP_IP, 5060]] } });
    started.push(srv);
    await waitListening('tcp', '0.0.0.0', prom).catch(() => waitListening('tcp', '127.0.0.1', prom));

    // The secret from the file is enforced.
    await expect(connectSrf({ host: '127.0.0.1', port: admin, secret: 'wrong' })).rejects.toThrow();
    const app = await connectSrf({ host: '127.0.0.1', port: admin, secret: 'xmlsecret' });
    const seenByApp: string[] = [];
    app.srf.options((req: any, res: any) => {
      seenByApp.push(req.get('User-Agent'));
      res.send(200);
    });
    await new Promise((r) => setTimeout(r, 200));

    const peer = await UdpPeer.bind(PEER_IP);
    try {
      // spammer over UDP with action="reject" → 603, never reaches the app
      await peer.send(options('friendly-scanner 1.0', 'spam1', peer.port), SIP_IP, 5060);
      const r1 = await peer.waitFor((d) => d.text.includes('spam1'));
      expect(r1.text).toMatch(/^SIP\/2\.0 603 /);
      // the auto-respond User-Agent is answered by the server itself
      await peer.send(options('keepalive-probe', 'auto1', peer.port), SIP_IP, 5060);
      const r2 = await peer.waitFor((d) => d.text.includes('auto1'));
      expect(r2.text).toMatch(/^SIP\/2\.0 200 /);
      // a normal OPTIONS goes to the app
      await peer.send(options('normal-ua', 'norm1', peer.port), SIP_IP, 5060);
      const r3 = await peer.waitFor((d) => d.text.includes('norm1'));
      expect(r3.text).toMatch(/^SIP\/2\.0 200 /);
      expect(seenByApp).toEqual(['normal-ua']);

      const body = await (await fetch(`http://127.0.0.1:${prom}/metrics`)).text();
      expect(body).toMatch(/^drachtio_sip_requests_in_total\{method="OPTIONS"\} 3$/m);
      expect(body).toMatch(/^drachtio_sip_responses_out_total\{method="OPTIONS",code="603"\} 1$/m);
      expect(body).toMatch(/^drachtio_sip_responses_out_total\{method="OPTIONS",code="200"\} 2$/m);
      expect(body).toMatch(/^drachtio_app_connections 1$/m);
      expect(body).toMatch(/^drachtio_build_info\{version="v\d+\.\d+\.\d+[^"]*"\} 1$/m);
    } finally {
      await peer.close();
      await app.close();
    }
  });

  it('reports a bad file with its name and the field', async () => {
    const conf = join(dir, 'bad.conf.xml');
    writeFileSync(conf, '<drachtio><admin port="abc" secret="x">127.0.0.1</admin></drachtio>');
    const child = spawn(process.execPath, ['dist/cli.js', 'sip-server', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(2);
    expect(err).toContain(`${conf}: <admin port="abc"> is not a port number`);
  });
});

describe('teams-gw sip-server: certificate reload on SIGHUP (§2.12)', () => {
  it('a renewed key and certificate are taken over without a restart; a key that does not match is refused and the running certificate stays', async () => {
    const pki = await createTestPki(join(dir, 'pki'), { server: { cn: 'sip-server.test.invalid', sans: ['DNS:sip-server.test.invalid', `IP:${TLS_IP}`] } });
    const renewed = await pki.issue({ name: 'renewed', cn: 'renewed.test.invalid', sans: ['DNS:sip-server.test.invalid', `IP:${TLS_IP}`] });
    const keyFile = join(dir, 'live.key');
    const certFile = join(dir, 'live.crt');
    writeFileSync(keyFile, pki.server.key);
    writeFileSync(certFile, pki.server.cert);
    const admin = await freePort('127.0.0.1', ['tcp']);
    const srv = await startSipServerCli({
      args: ['--contact', `sips:${TLS_IP}:5061;transport=tls`, '--key-file', keyFile, '--cert-file', certFile, '--port', String(admin), '--loglevel', 'info'],
      ready: { tcp: [['127.0.0.1', admin], [TLS_IP, 5061]] },
    });
    started.push(srv);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const sock = tls.connect({ host: TLS_IP, port: 5061, servername: 'sip-server.test.invalid', ca: pki.ca.cert }, () => {
          resolve(String(sock.getPeerCertificate().subject.CN));
          sock.destroy();
        });
        sock.on('error', reject);
      });
    expect(await served()).toBe('sip-server.test.invalid');
    // Half-written renewal: the new key beside the old certificate.
    writeFileSync(keyFile, renewed.key);
    srv.child.kill('SIGHUP');
    await waitFor(() => srv.output().includes('tls reload refused'), { timeoutMs: 5000, what: 'the refusal' });
    expect(srv.output()).toMatch(/key values mismatch/);
    expect(await served()).toBe('sip-server.test.invalid');
    writeFileSync(certFile, renewed.cert);
    srv.child.kill('SIGHUP');
    await waitFor(() => srv.output().includes('tls certificate reloaded'), { timeoutMs: 5000, what: 'the reload' });
    expect(await served()).toBe('renewed.test.invalid');
    expect(srv.child.exitCode).toBeNull();
  });
});

describe('teams-gw sip-server flags', () => {
  it('--adopt-retries turns on the §1.10 retry take-over (off by default, as in drachtio-server)', () => {
    expect(optionsFromArgs(['--adopt-retries']).opts.adoptRetries).toBe(true);
    expect(optionsFromArgs([]).opts.adoptRetries).toBeUndefined();
    expect(() => optionsFromArgs(['--key-file', join(dir, 'none.key')])).toThrow('TLS needs both --key-file and --cert-file');
  });
});

describe('teams-gw run (the gateway, embedded defaults plus a config file)', () => {
  it('starts the embedded server and the call-control app, which answers a carrier\'s OPTIONS with Allow and a stranger\'s with 403', async () => {
    const http = await freePort('127.0.0.1', ['tcp']);
    const cfg = join(dir, 'gw.yaml');
    writeFileSync(cfg, `sipServer:\n  contacts: ["sip:127.0.10.3:5060;transport=udp"]\n  admin: { port: 0 }\nmedia:\n  rtpengines: []\nops:\n  httpPort: ${http}\n`);
    // The example tenant config, with the test peer added to a carrier's source addresses.
    const tenants = join(dir, 'tenants');
    cpSync('config/tenants', tenants, { recursive: true });
    const carriers = readFileSync(join(tenants, 'carriers.yaml'), 'utf8');
    expect(carriers).toContain('      - 198.51.100.10\n');
    writeFileSync(join(tenants, 'carriers.yaml'), carriers.replace('      - 198.51.100.10\n', `      - 198.51.100.10\n      - ${PEER_IP}\n`));
    const child = spawn(process.execPath, ['dist/cli.js', 'run', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TEAMS_GW_LOG_LEVEL: 'warn', TEAMS_GW_TENANTS_DIR: tenants } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const peer = await UdpPeer.bind(PEER_IP);
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${http}/ready`).then((r) => r.status === 200).catch(() => false)) || undefined, { timeoutMs: 15_000 }).catch(() => {
        throw new Error(`gateway not ready:\n${out}`);
      });
      await peer.send(options('probe', 'gw1', peer.port).replaceAll(SIP_IP, '127.0.10.3'), '127.0.10.3', 5060);
      const r = await peer.waitFor((d) => d.text.includes('gw1'));
      expect(r.text).toMatch(/^SIP\/2\.0 200 /);
      expect(r.text).toMatch(/\r\nAllow: [^\r]*INVITE[^\r]*OPTIONS/);
      const stranger = await UdpPeer.bind('127.0.10.4');
      try {
        await stranger.send(options('probe', 'gw2', stranger.port).replaceAll(SIP_IP, '127.0.10.3').replaceAll(PEER_IP, '127.0.10.4'), '127.0.10.3', 5060);
        expect((await stranger.waitFor((d) => d.text.includes('gw2'))).text).toMatch(/^SIP\/2\.0 403 /);
      } finally {
        await stranger.close();
      }
      // SIGTERM drains and exits 0
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((res) => child.on('close', res));
      expect(code).toBe(0);
    } finally {
      await peer.close();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});
