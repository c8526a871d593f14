/**
 * Certificate renewal without a restart (teams-direct-routing §2.12: after a renewal every TLS
 * connection must be rebuilt, or Teams keeps warning about the old certificate). The renewed
 * files are written over the ones the gateway was started with, then taken over through
 * POST /tls/reload and through the file watch. The fake Teams records the certificate the
 * gateway presents on every connection, both the ones it accepts (Teams → gateway) and the ones
 * it opens (the gateway's OPTIONS and INVITEs, with the certificate as client certificate).
 */
import { copyFile, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '../../helpers/fake-teams/index.js';
import type { IssuedCert } from '../../helpers/pki.js';
import { sleep, waitFor } from '../../helpers/net.js';
import { expectSippOk, startTarget } from '../../sipp/gateway/sipp-gateway.js';
import { GW_IP, type GatewayHarness, TARGET_IPS, startGatewayHarness } from './harness.js';

let h: GatewayHarness;
let original: { key: string; cert: string };
let renewed: IssuedCert;
let opsUrl: string;
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

beforeAll(async () => {
  h = await startGatewayHarness({ config: { sipServer: { tls: { watchIntervalSec: 0, reloadGraceSec: 1 } }, ops: { optionsIntervalSec: 0.5 } } });
  const s = h.ft.pki.sbc.server;
  original = { key: s.key, cert: s.cert };
  // Same names and CA, new key and serial: what a renewal gives.
  renewed = await h.ft.pki.sbc.issue({ name: 'renewed', cn: `*.${h.ft.baseDomain}`, sans: [`DNS:*.${h.ft.baseDomain}`, `DNS:${h.ft.baseDomain}`], eku: ['serverAuth', 'clientAuth'] });
  opsUrl = `http://${GW_IP}:${h.gw.ops.http.port}`;
}, 60_000);
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const reload = async () => {
  const r = await fetch(`${opsUrl}/tls/reload`, { method: 'POST' });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
const presented = (c: ConnectionRecord) => c.tls.peerFingerprint256;
const metric = async (name: string) => {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
};

describe('TLS certificate reload (§2.12)', () => {
  it('POST /tls/reload takes the renewed certificate over: connections both ways are rebuilt with it, a call up across the reload ends normally', async () => {
    const oldFp = fingerprint(original.cert);
    const newFp = fingerprint(renewed.cert);
    // Both directions up with the old certificate: OPTIONS (gateway → Teams) and a Teams → PSTN call.
    await waitFor(() => h.ft.connections().some((c) => c.direction === 'inbound' && !c.closedAt) || undefined, { what: 'the gateway\'s OPTIONS connection' });
    const target = await startTarget({ scenario: 'target-answer.xml', ip: TARGET_IPS[0] });
    const call = h.ft.originate({ to: '+442079460150', tenant: 'acme.customers.example.net', from: '+14255550100' });
    expect((await call.waitForFinal()).status).toBe(200);
    const before = h.ft.connections().filter((c) => !c.closedAt);
    expect(before.some((c) => c.direction === 'outbound')).toBe(true);
    expect(before.map(presented).every((f) => f === oldFp)).toBe(true);

    expect(await reload()).toEqual({ status: 200, body: { outcome: 'unchanged', trigger: 'http' } });
    await writeFile(h.ft.pki.sbc.server.keyPath, renewed.key);
    await writeFile(h.ft.pki.sbc.server.certPath, renewed.cert);
    const r = await reload();
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ outcome: 'reloaded', trigger: 'http', notAfter: new X509Certificate(renewed.cert).validTo });
    expect(r.body.retired).toBeGreaterThanOrEqual(2);

    // After the grace (1 s) every connection that carried the old certificate is closed…
    await waitFor(() => before.every((b) => h.ft.connections().find((c) => c.id === b.id)?.closedAt) || undefined, { timeoutMs: 5000, what: 'old connections closed' });
    // …and the new ones, both directions, carry the renewed certificate.
    await waitFor(() => h.ft.connections().some((c) => c.direction === 'inbound' && !c.closedAt && presented(c) === newFp) || undefined, { what: 'an OPTIONS connection with the renewed certificate' });
    expect((await call.bye()).status).toBe(200);
    expectSippOk(await target.done);
    const open = h.ft.connections().filter((c) => !c.closedAt);
    expect(open.length).toBeGreaterThanOrEqual(2);
    expect(open.map(presented).every((f) => f === newFp)).toBe(true);
    expect(open.some((c) => c.direction === 'outbound')).toBe(true);
    expect(h.ft.tlsFailures).toEqual([]);

    // The expiry metric follows; the reload is counted.
    const expiry = await metric('teamsgw_tls_certificate_expiry_timestamp_seconds{');
    expect(expiry).toHaveLength(1);
    expect(Number(expiry[0]!.split(' ').at(-1))).toBe(Date.parse(new X509Certificate(renewed.cert).validTo) / 1000);
    expect(await metric('teamsgw_tls_reloads_total{outcome="reloaded"}')).toEqual(['teamsgw_tls_reloads_total{outcome="reloaded"} 1']);
    // /status (and `teams-gw status`) show the certificate in use and the last reload.
    const status = (await (await fetch(`${opsUrl}/status`)).json()) as { tls: Record<string, any> };
    expect(status.tls).toMatchObject({ notAfter: new X509Certificate(renewed.cert).validTo, lastReload: { outcome: 'reloaded', trigger: 'http' } });
  });

  it('a key that does not belong to the certificate is refused with the config key and file named; the server keeps its certificate and connections', async () => {
    const inUse = fingerprint(renewed.cert);
    const open = h.ft.connections().filter((c) => !c.closedAt).map((c) => c.id);
    await copyFile(h.ft.pki.sbc.server.keyPath, `${h.ft.pki.sbc.server.keyPath}.renewed`);
    await writeFile(h.ft.pki.sbc.server.keyPath, original.key); // the certificate file stays the renewed one
    try {
      const r = await reload();
      expect(r.status).toBe(422);
      expect(r.body).toEqual({
        outcome: 'failed',
        trigger: 'http',
        error: `sipServer.tls.keyFile (${h.ft.pki.sbc.server.keyPath}) is not the key of the certificate in sipServer.tls.certFile (${h.ft.pki.sbc.server.certPath})`,
      });
      await sleep(1500); // longer than the grace: nothing was retired
      const still = h.ft.connections().filter((c) => !c.closedAt);
      expect(open.every((id) => still.some((c) => c.id === id))).toBe(true);
      expect(still.map(presented).every((f) => f === inUse)).toBe(true);
      expect(await metric('teamsgw_tls_reloads_total{outcome="failed"}')).toEqual(['teamsgw_tls_reloads_total{outcome="failed"} 1']);
      const status = (await (await fetch(`${opsUrl}/status`)).json()) as { tls: Record<string, any> };
      expect(status.tls).toMatchObject({ notAfter: new X509Certificate(renewed.cert).validTo, lastReload: { outcome: 'failed', error: expect.stringContaining('is not the key of the certificate') } });
    } finally {
      await copyFile(`${h.ft.pki.sbc.server.keyPath}.renewed`, h.ft.pki.sbc.server.keyPath);
    }
  });

  it('a renewal that loses what Teams needs (clientAuth, the apex name) is refused, naming what it lost; the certificate in use stays', async () => {
    const inUse = fingerprint(renewed.cert);
    const base = h.ft.baseDomain;
    const [noClientAuth, noApex] = await Promise.all([
      h.ft.pki.sbc.issue({ name: 'no-client-auth', cn: `*.${base}`, sans: [`DNS:*.${base}`, `DNS:${base}`], eku: ['serverAuth'] }),
      h.ft.pki.sbc.issue({ name: 'no-apex', cn: `*.${base}`, sans: [`DNS:*.${base}`], eku: ['serverAuth', 'clientAuth'] }),
    ]);
    const { keyPath, certPath } = h.ft.pki.sbc.server;
    try {
      for (const [cert, lost] of [
        [noClientAuth, 'it has no clientAuth extended key usage'],
        [noApex, `it does not cover ${base}, which the certificate in use covers`],
      ] as const) {
        await writeFile(keyPath, cert.key);
        await writeFile(certPath, cert.cert);
        const r = await reload();
        expect(r.status).toBe(422);
        expect(r.body.error).toMatch(new RegExp(`^sipServer\\.tls\\.certFile \\(${certPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): renewal refused: `));
        expect(r.body.error).toContain(lost);
      }
      await sleep(1200); // longer than the grace: nothing was retired
      expect(h.ft.connections().filter((c) => !c.closedAt).map(presented).every((f) => f === inUse)).toBe(true);
    } finally {
      await writeFile(keyPath, renewed.key);
      await writeFile(certPath, renewed.cert);
    }
    expect((await reload()).body.outcome).toBe('unchanged');
  });

  it('the file watch picks up a renewal by itself', async () => {
    await h.restartGateway({ sipServer: { tls: { watchIntervalSec: 0.2, reloadGraceSec: 1 } } });
    opsUrl = `http://${GW_IP}:${h.gw.ops.http.port}`;
    const third = await h.ft.pki.sbc.issue({ name: 'third', cn: `*.${h.ft.baseDomain}`, sans: [`DNS:*.${h.ft.baseDomain}`, `DNS:${h.ft.baseDomain}`], eku: ['serverAuth', 'clientAuth'] });
    await writeFile(h.ft.pki.sbc.server.keyPath, third.key);
    await writeFile(h.ft.pki.sbc.server.certPath, third.cert);
    const fp = fingerprint(third.cert);
    await waitFor(() => h.ft.connections().some((c) => c.direction === 'inbound' && !c.closedAt && presented(c) === fp) || undefined, { timeoutMs: 5000, what: 'an OPTIONS connection with the watched certificate' });
    expect(await metric('teamsgw_tls_reloads_total{outcome="reloaded"}')).toEqual(['teamsgw_tls_reloads_total{outcome="reloaded"} 1']);
  });
});
