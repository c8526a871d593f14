import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/load.js';
import { X509Certificate } from 'node:crypto';
import { type TlsMaterial, TlsReloader, readTlsMaterial, renewalProblems } from '../../../src/ops/tls-reload.js';
import { waitFor } from '../../helpers/net.js';
import { type IssuedCert, type TestPki, createTestPki } from '../../helpers/pki.js';

let dir: string;
let pki: TestPki;
let expired: IssuedCert;
let renewed: IssuedCert;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tls-reload-'));
  pki = await createTestPki(join(dir, 'pki'));
  [expired, renewed] = await Promise.all([pki.issue({ name: 'expired', cn: 'sbc.test.invalid', expired: true }), pki.issue({ name: 'renewed', cn: 'sbc.test.invalid' })]);
}, 60_000);
afterAll(async () => rm(dir, { recursive: true, force: true }));

const settings = (files: Partial<Record<'keyFile' | 'certFile' | 'chainFile' | 'caFile', string>>) => ({ ...defaultConfig().sipServer.tls, ...files });

/** Key and certificate files holding the server certificate (what a renewal then overwrites), and their settings. */
async function liveFiles(name: string) {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await writeFile(keyFile, pki.server.key);
  await writeFile(certFile, pki.server.cert);
  return { keyFile, certFile, s: settings({ keyFile, certFile }) };
}

describe('readTlsMaterial', () => {
  it('reads key, certificate, chain and CA; the digest covers every file', () => {
    const m = readTlsMaterial(settings({ keyFile: pki.server.keyPath, certFile: pki.server.certPath, caFile: pki.ca.certPath }));
    expect(m.certificate.subject).toMatch(/CN=sbc\.test\.invalid/);
    expect(m.options).toMatchObject({ verifyPeer: false, requestClientCert: false });
    expect(m.options.ca?.toString()).toBe(pki.ca.cert);
    const withChain = readTlsMaterial(settings({ keyFile: pki.server.keyPath, certFile: pki.server.certPath, caFile: pki.ca.certPath, chainFile: pki.ca.certPath }));
    expect(withChain.digest).not.toBe(m.digest);
    expect(readTlsMaterial(settings({ keyFile: pki.server.keyPath, certFile: pki.server.certPath, caFile: pki.ca.certPath })).digest).toBe(m.digest);
  });

  it('every error names the config key and the file', async () => {
    const missing = join(dir, 'nope.crt');
    expect(() => readTlsMaterial(settings({ keyFile: pki.server.keyPath, certFile: missing }))).toThrow(new RegExp(`^sipServer\\.tls\\.certFile \\(${missing}\\): cannot read \\(ENOENT`));
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    expect(() => readTlsMaterial(settings({ keyFile: pki.server.keyPath, certFile: garbage }))).toThrow(`sipServer.tls.certFile (${garbage}): not a PEM certificate`);
    expect(() => readTlsMaterial(settings({ keyFile: garbage, certFile: pki.server.certPath }))).toThrow(`sipServer.tls.keyFile (${garbage}): not a PEM private key`);
    expect(() => readTlsMaterial(settings({ keyFile: pki.client.keyPath, certFile: pki.server.certPath }))).toThrow(
      `sipServer.tls.keyFile (${pki.client.keyPath}) is not the key of the certificate in sipServer.tls.certFile (${pki.server.certPath})`,
    );
    expect(() => readTlsMaterial(settings({ keyFile: pki.server.keyPath, certFile: pki.server.certPath, caFile: missing }))).toThrow(`sipServer.tls.caFile (${missing}): cannot read`);
    expect(() => readTlsMaterial(settings({ keyFile: garbage, certFile: pki.server.certPath }))).toThrow(expect.objectContaining({ code: 'CONFIG_ERR_INVALID' }));
  });

  it('an expired certificate is refused on reload only (at start the gateway comes up and the expiry alert fires)', () => {
    const s = settings({ keyFile: expired.keyPath, certFile: expired.certPath });
    expect(readTlsMaterial(s).certificate.validTo).toBeTruthy();
    expect(() => readTlsMaterial(s, { refuseExpired: true })).toThrow(new RegExp(`^sipServer\\.tls\\.certFile \\(${expired.certPath}\\): certificate expired on `));
    // Files that did not change are not checked again: unchanged, not a refused renewal.
    const logger = pino({ level: 'silent' });
    const r = new TlsReloader({ settings: s, current: readTlsMaterial(s), apply: () => 0, logger, intervalMs: 0 });
    expect(r.reload('SIGHUP')).toEqual({ outcome: 'unchanged', trigger: 'SIGHUP' });
  });
});

describe('TlsReloader', () => {
  it('applies changed files once, keeps what runs on a failure, and the watch logs a repeated failure once', async () => {
    const { keyFile, certFile, s } = await liveFiles('live');
    const applied: TlsMaterial[] = [];
    const logged: Array<{ msg: string; err?: string; trigger?: string }> = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (logged.push(JSON.parse(c.toString())), cb()) }));
    const r = new TlsReloader({ settings: s, current: readTlsMaterial(s), apply: (m) => (applied.push(m), 3), logger, intervalMs: 30 });
    try {
      expect(r.reload('SIGHUP')).toEqual({ outcome: 'unchanged', trigger: 'SIGHUP' });
      // Half-written renewal: the new certificate beside the old key.
      await writeFile(certFile, renewed.cert);
      r.start();
      await waitFor(() => logged.filter((l) => l.trigger === 'watch').length >= 1 || undefined, { what: 'the watch failure' });
      await new Promise((res) => setTimeout(res, 200)); // several more polls of the same failure
      const failures = logged.filter((l) => l.msg === 'tls reload refused: keeping the certificate in use');
      expect(failures).toHaveLength(1);
      expect(failures[0]!.err).toBe(`sipServer.tls.keyFile (${keyFile}) is not the key of the certificate in sipServer.tls.certFile (${certFile})`);
      expect(applied).toEqual([]);
      // The key arrives: the next poll applies it, once.
      await writeFile(keyFile, renewed.key);
      await waitFor(() => applied.length === 1 || undefined, { what: 'the watch reload' });
      await new Promise((res) => setTimeout(res, 150));
      expect(applied).toHaveLength(1);
      expect(applied[0]!.certificate.serialNumber).toBe(readTlsMaterial(s).certificate.serialNumber);
      expect(logged.find((l) => l.msg === 'tls certificate reloaded')).toMatchObject({ trigger: 'watch', retired: 3 });
      expect(r.reload('http')).toEqual({ outcome: 'unchanged', trigger: 'http' });
      // apply() refusing (the SIP server found the material unusable) is a failure too; nothing is recorded as applied.
      await writeFile(keyFile, pki.server.key);
      await writeFile(certFile, pki.server.cert);
      r.close();
      const refusing = new TlsReloader({ settings: s, current: applied[0]!, apply: () => { throw new Error('unusable TLS material: test'); }, logger, intervalMs: 0 });
      expect(refusing.reload('http')).toEqual({ outcome: 'failed', trigger: 'http', error: 'unusable TLS material: test' });
      expect(refusing.reload('http').outcome).toBe('failed');
    } finally {
      r.close();
      r.close();
    }
  });
});

describe('renewalProblems: a renewal may not lose what Teams needs', () => {
  const names = ['customers.example.net', 'acme.customers.example.net', 'beta.customers.example.net'];
  const sans = ['DNS:*.customers.example.net', 'DNS:customers.example.net'];
  let full: X509Certificate;
  let ec: X509Certificate;
  let serverOnly: X509Certificate;
  let noEku: X509Certificate;
  let oneTenant: X509Certificate;
  beforeAll(async () => {
    const issue = async (name: string, spec: object) => new X509Certificate((await pki.issue({ name, cn: '*.customers.example.net', sans, ...spec })).cert);
    [full, ec, serverOnly, noEku, oneTenant] = await Promise.all([
      issue('r-full', {}),
      issue('r-ec', { keyType: 'ec256' }),
      issue('r-server-only', { eku: ['serverAuth'] }),
      issue('r-no-eku', { eku: [] }),
      issue('r-one', { sans: ['DNS:acme.customers.example.net', 'DNS:customers.example.net'] }),
    ]);
  }, 60_000);

  it('the same properties: nothing lost', () => {
    expect(renewalProblems(full, { current: full, names })).toEqual([]);
  });

  it('clientAuth dropped by the CA, an EC key, names no longer covered', () => {
    expect(renewalProblems(serverOnly, { current: full, names })).toEqual(['it has no clientAuth extended key usage (Teams uses mutual TLS: both are needed; check the CA profile)']);
    expect(renewalProblems(ec, { current: full, names })).toEqual(['its key is ec, not RSA (Teams Direct Routing needs RSA)']);
    expect(renewalProblems(oneTenant, { current: full, names })).toEqual(['it does not cover beta.customers.example.net, which the certificate in use covers']);
    const many = Array.from({ length: 8 }, (_, i) => `t${i}.customers.example.net`);
    expect(renewalProblems(oneTenant, { current: full, names: many })[0]).toBe('it does not cover t0.customers.example.net, t1.customers.example.net, t2.customers.example.net, t3.customers.example.net, t4.customers.example.net and 3 more, which the certificate in use covers');
  });

  it('only losses count: a deployment whose certificate already lacks something can renew; no EKU extension serves any purpose', () => {
    expect(renewalProblems(serverOnly, { current: serverOnly, names })).toEqual([]);
    expect(renewalProblems(full, { current: oneTenant, names })).toEqual([]);
    expect(renewalProblems(noEku, { current: full, names })).toEqual([]);
    expect(renewalProblems(serverOnly, { current: noEku, names })).toHaveLength(1);
  });

  it('the reloader refuses such a renewal and keeps the certificate in use', async () => {
    const { keyFile, certFile, s } = await liveFiles('r-live');
    const current = readTlsMaterial(s);
    const lost = await pki.issue({ name: 'r-lost', cn: 'sbc.test.invalid', eku: ['serverAuth'] });
    await writeFile(keyFile, lost.key);
    await writeFile(certFile, lost.cert);
    const applied: TlsMaterial[] = [];
    const r = new TlsReloader({ settings: s, current, apply: (m) => (applied.push(m), 0), logger: pino({ level: 'silent' }), intervalMs: 0, names: () => ['sbc.test.invalid'] });
    expect(r.reload('SIGHUP')).toEqual({ outcome: 'failed', trigger: 'SIGHUP', error: `sipServer.tls.certFile (${certFile}): renewal refused: it has no clientAuth extended key usage (Teams uses mutual TLS: both are needed; check the CA profile)` });
    expect(applied).toEqual([]);
    // A proper renewal then goes through, and becomes what the next one is compared with.
    await writeFile(keyFile, renewed.key);
    await writeFile(certFile, renewed.cert);
    expect(r.reload('SIGHUP').outcome).toBe('reloaded');
    expect(applied).toHaveLength(1);
  });
});
