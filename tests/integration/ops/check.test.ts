/**
 * `teams-gw check <tenant>` (issue 6): the real CLI (node src/cli.ts check) against a running
 * gateway whose TLS listener serves the certificate under test, DNS answered by a tiny DNS
 * responder (config ops.dnsServers), OPTIONS to the fake Teams proxies.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCert } from '../../helpers/pki.js';
import { type DnsResponder, startDnsResponder } from '../../helpers/dns-responder.js';
import { BASE_DOMAIN, type OpsHarness, getJson, startOpsHarness, slotAddresses } from './harness.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const ACME = `acme.${BASE_DOMAIN}`;
const addr = slotAddresses(2);

let h: OpsHarness;
let dns: DnsResponder;
const certs: Record<'wrongSan' | 'noClientEku' | 'expired', IssuedCert> = {} as never;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, timeout: 20_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

const line = (out: string, name: string): string => out.split('\n').find((l) => l.includes(` ${name}:`)) ?? `(no line "${name}")\n${out}`;
const hintAfter = (out: string, name: string): string => {
  const ls = out.split('\n');
  const i = ls.findIndex((l) => l.includes(` ${name}:`));
  return i >= 0 && ls[i + 1]?.trim().startsWith('hint:') ? ls[i + 1]!.trim() : '';
};

async function useCert(c: IssuedCert | undefined): Promise<void> {
  const tls = c ? { certFile: c.certPath, keyFile: c.keyPath } : { certFile: h.ft.pki.sbc.server.certPath, keyFile: h.ft.pki.sbc.server.keyPath };
  await h.restart({ sipServer: { tls } });
}

beforeAll(async () => {
  dns = await startDnsResponder(addr.gw, { [ACME]: addr.gw, [`tiny.${BASE_DOMAIN}`]: addr.gw });
  h = await startOpsHarness({ slot: 2, media: false, config: { ops: { dnsServers: [dns.server], optionsTimeoutMs: 1500 } } });
  const sbc = h.ft.pki.sbc;
  [certs.wrongSan, certs.noClientEku, certs.expired] = await Promise.all([
    sbc.issue({ name: 'wrong-san', cn: '*.other.example.org', sans: ['DNS:*.other.example.org', 'DNS:other.example.org'] }),
    sbc.issue({ name: 'no-client-eku', cn: `*.${BASE_DOMAIN}`, sans: [`DNS:*.${BASE_DOMAIN}`, `DNS:${BASE_DOMAIN}`], eku: ['serverAuth'] }),
    sbc.issue({ name: 'expired', cn: `*.${BASE_DOMAIN}`, sans: [`DNS:*.${BASE_DOMAIN}`, `DNS:${BASE_DOMAIN}`], expired: true }),
  ]);
}, 60_000);
afterAll(async () => {
  await h?.close();
  await dns?.close();
}, 30_000);

describe('teams-gw check', () => {
  it('passes against a correct setup: DNS, certificate (validity, name, both EKUs, RSA), OPTIONS via sip/sip2/sip3', async () => {
    const r = await cli('check', 'acme', '--url', h.opsUrl);
    expect(r.code, r.out + r.err).toBe(0);
    expect(line(r.out, 'dns')).toBe(`PASS  dns: ${ACME} resolves to ${addr.gw}`);
    expect(line(r.out, 'certificate validity')).toMatch(/^PASS {2}certificate validity: valid until \S+ \(36\d days left\)$/);
    expect(line(r.out, 'certificate name')).toBe(`PASS  certificate name: covers ${ACME}`);
    expect(line(r.out, 'certificate usage')).toBe('PASS  certificate usage: has serverAuth and clientAuth extended key usage');
    expect(line(r.out, 'certificate key')).toBe('PASS  certificate key: RSA key');
    for (const p of h.ft.proxies) expect(line(r.out, `options ${p.host}`)).toMatch(new RegExp(`^PASS {2}options ${p.host.replace(/\./g, '\\.')}: 200 in \\d+ ms$`));
    expect(r.out).not.toContain('FAIL');
    // It asked our DNS server, and the OPTIONS carried the tenant FQDN as Contact.
    expect(dns.queries.some((q) => q.name === ACME && q.type === 1)).toBe(true);
    const probes = h.ft.options.filter((o) => o.contact === `<sip:${ACME}:5061;transport=tls>`);
    expect(new Set(probes.map((o) => o.endpoint))).toEqual(new Set(['sip', 'sip2', 'sip3']));
    // By FQDN as well, and as JSON over HTTP.
    const j = await getJson(`${h.opsUrl}/check/${ACME}`);
    expect(j.status).toBe(200);
    expect(j.body.ok).toBe(true);
    expect(j.body.lines.map((l: { name: string }) => l.name)).toEqual(['dns', 'certificate validity', 'certificate name', 'certificate usage', 'certificate key', ...h.ft.proxies.map((p) => `options ${p.host}`)]);
  }, 30_000);

  it('fails for a certificate whose SAN does not cover the tenant FQDN', async () => {
    await useCert(certs.wrongSan);
    const r = await cli('check', 'acme', '--url', h.opsUrl);
    expect(r.code).toBe(1);
    expect(line(r.out, 'certificate name')).toBe(`FAIL  certificate name: certificate SAN does not cover ${ACME} (DNS:*.other.example.org, DNS:other.example.org)`);
    expect(hintAfter(r.out, 'certificate name')).toBe('hint: use a wildcard certificate for the carrier base domain plus its apex');
    expect(line(r.out, 'certificate usage')).toMatch(/^PASS/);
    expect(line(r.out, 'certificate validity')).toMatch(/^PASS/);
  }, 30_000);

  it('fails for a certificate without the clientAuth EKU', async () => {
    await useCert(certs.noClientEku);
    const r = await cli('check', 'acme', '--url', h.opsUrl);
    expect(r.code).toBe(1);
    expect(line(r.out, 'certificate usage')).toBe('FAIL  certificate usage: missing extended key usage: clientAuth');
    expect(hintAfter(r.out, 'certificate usage')).toMatch(/both serverAuth and clientAuth EKUs/);
    expect(line(r.out, 'certificate name')).toMatch(/^PASS/);
  }, 30_000);

  it('fails for an expired certificate', async () => {
    await useCert(certs.expired);
    const r = await cli('check', 'acme', '--url', h.opsUrl);
    expect(r.code).toBe(1);
    expect(line(r.out, 'certificate validity')).toMatch(/^FAIL {2}certificate validity: certificate .*CN=\*\.customers\.example\.net.* is valid from \S+ to \S+: expired$/);
    expect(hintAfter(r.out, 'certificate validity')).toBe('hint: renew the certificate and reload the gateway');
    // The fake Teams refuses an expired client certificate: no OPTIONS answer either.
    expect(line(r.out, `options ${h.ft.proxies[0]!.host}`)).toMatch(/^FAIL/);
  }, 30_000);

  it('fails for an unreachable Teams proxy, naming it', async () => {
    await useCert(undefined);
    const down = h.ft.setMode('sip2', 'down');
    h.ft.dropConnections({ endpoint: 'sip2' });
    await down;
    try {
      const r = await cli('check', 'acme', '--url', h.opsUrl);
      expect(r.code).toBe(1);
      const sip2 = h.ft.endpoints.sip2;
      expect(line(r.out, `options ${sip2.fqdn}`)).toBe(`FAIL  options ${sip2.fqdn}: unreachable: cannot connect to ${sip2.address}:${sip2.port} (ECONNREFUSED)`);
      expect(hintAfter(r.out, `options ${sip2.fqdn}`)).toMatch(/^hint: allow outbound TCP to sip2\.pstnhub\.microsoft\.com port 5061/);
      expect(line(r.out, `options ${h.ft.endpoints.sip.fqdn}`)).toMatch(/^PASS/);
      expect(line(r.out, `options ${h.ft.endpoints.sip3.fqdn}`)).toMatch(/^PASS/);
      expect(r.out.match(/^FAIL/gm)).toHaveLength(1);
    } finally {
      await h.ft.setMode('sip2', 'up');
    }
  }, 30_000);

  it('fails when the tenant FQDN does not resolve, and for an unknown tenant', async () => {
    await h.setTenants([{ id: 'acme', dids: ['+14255550100-+14255550199'] }, { id: 'nodns', dids: ['+14255550800-+14255550899'] }]);
    const r = await cli('check', 'nodns', '--url', h.opsUrl);
    expect(r.code).toBe(1);
    expect(line(r.out, 'dns')).toMatch(new RegExp(`^FAIL {2}dns: nodns\\.customers\\.example\\.net does not resolve \\(.*ENOTFOUND.*\\)$`));
    expect(hintAfter(r.out, 'dns')).toMatch(/publish an A record for nodns\.customers\.example\.net/);
    const u = await cli('check', 'nosuch', '--url', h.opsUrl);
    expect(u.code).toBe(1);
    expect(u.out).toBe('FAIL  tenant: unknown tenant nosuch\n      hint: see `teams-gw tenants list`\n');
    const gone = await cli('check', 'acme', '--url', 'http://127.0.8.81:1');
    expect(gone.code).toBe(3);
    expect(gone.err).toMatch(/gateway not reachable at http:\/\/127\.0\.8\.81:1/);
  }, 30_000);
});

describe('teams-gw status', () => {
  it('prints readiness, proxies and config version, exit 0 when ready', async () => {
    const r = await cli('status', '--url', h.opsUrl);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^ready: yes\n/);
    expect(r.out).toContain('ok   sip\n');
    expect(r.out).toMatch(/tenant config version: \d+ \(ok\)/);
    for (const p of h.ft.proxies) expect(r.out).toContain(`teams proxy ${p.host}: up`);
    // The certificate in use (no reload yet).
    expect(r.out).toMatch(/^tls certificate .*CN=\*\.customers\.example\.net, valid until \w{3} +\d+ [\d:]+ \d{4} GMT\n/m);
    const j = await cli('status', '--url', h.opsUrl, '--json');
    expect(JSON.parse(j.out)).toMatchObject({ ready: true, checks: { sip: true, tenants: true, media: true }, calls: 0, draining: false });
  }, 30_000);
});
