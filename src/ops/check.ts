import { X509Certificate } from 'node:crypto';
import { Resolver as DnsResolver } from 'node:dns/promises';
import { connect as tcpConnect, isIP } from 'node:net';
import { connect } from 'node:tls';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from './tls-reload.js';

export interface CheckLine {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it fails. */
  hint?: string;
}

export interface TenantCheckDeps {
  fqdn: string;
  /** Static host overrides (config teams.hosts), consulted first. */
  hosts: Record<string, string>;
  /** DNS servers to ask ("ip" or "ip:port"); empty = system resolver. */
  dnsServers: string[];
  /** Port Teams connects to (teams.signalingPort). */
  tlsPort: number;
  /** Where to connect for the served certificate when the FQDN does not resolve locally. */
  tlsAddressOverride?: string;
  /**
   * OPTIONS round trip to each Teams proxy with Contact = the tenant FQDN. `error`: the proxy
   * could not be reached at all (a locally generated 408/503 is then no answer from Teams).
   */
  optionsProbe: () => Promise<OptionsProbeResult[]>;
  now?: Date;
}

export interface OptionsProbeResult {
  proxy: string;
  status: number;
  rttMs: number;
  error?: string;
}

/**
 * Whether a TCP connection to the host:port of a SIP URI (`sip:1.2.3.4:5061;transport=tls`)
 * can be opened: undefined when it can, else the reason. Used to tell "Teams answered 503" from
 * "the proxy is unreachable" when an OPTIONS fails.
 */
export function tcpReachable(uri: string, timeoutMs = 2000): Promise<string | undefined> {
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?/i.exec(uri);
  if (!m) return Promise.resolve(`cannot parse ${uri}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2] ?? 5061);
  return new Promise((resolve) => {
    const sock = tcpConnect({ host, port });
    const done = (err?: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done(`no TCP connection to ${host}:${port} within ${timeoutMs} ms`), timeoutMs);
    sock.once('connect', () => done());
    sock.once('error', (err: NodeJS.ErrnoException) => done(`cannot connect to ${host}:${port} (${err.code ?? err.message})`));
  });
}


async function resolveFqdn(d: TenantCheckDeps): Promise<string> {
  const o = d.hosts[d.fqdn];
  if (o) return o;
  const r = new DnsResolver({ timeout: 2000, tries: 1 });
  if (d.dnsServers.length) r.setServers(d.dnsServers);
  const a = await r.resolve4(d.fqdn);
  if (!a[0]) throw new Error('no A record');
  return a[0];
}

function servedCertificate(host: string, port: number, servername: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, servername, rejectUnauthorized: false, timeout: 3000 }, () => {
      const peer = sock.getPeerX509Certificate();
      sock.destroy();
      if (!peer) reject(new Error('no certificate presented'));
      else resolve(peer);
    });
    sock.on('timeout', () => {
      sock.destroy();
      reject(new Error('TLS connection timed out'));
    });
    sock.on('error', reject);
  });
}

/**
 * `teams-gw check <tenant>`: DNS, the certificate Teams will see for the tenant FQDN, and an
 * OPTIONS round trip to the Teams proxies with that FQDN as Contact. One line per check.
 */
export async function runTenantCheck(d: TenantCheckDeps): Promise<CheckLine[]> {
  const out: CheckLine[] = [];
  const now = d.now ?? new Date();
  let address: string | undefined;
  try {
    address = await resolveFqdn(d);
    out.push({ name: 'dns', ok: true, detail: `${d.fqdn} resolves to ${address}` });
  } catch (err) {
    out.push({ name: 'dns', ok: false, detail: `${d.fqdn} does not resolve (${(err as Error).message})`, hint: `publish an A record for ${d.fqdn} pointing at the SBC's public address (Teams fails with 569015 otherwise)` });
  }
  const tlsHost = d.tlsAddressOverride ?? address;
  if (!tlsHost || !isIP(tlsHost)) {
    out.push({ name: 'certificate', ok: false, detail: 'no address to connect to', hint: 'fix DNS first' });
  } else {
    try {
      const cert = await servedCertificate(tlsHost, d.tlsPort, d.fqdn);
      const from = new Date(cert.validFrom);
      const to = new Date(cert.validTo);
      const eku = cert.keyUsage ?? [];
      const covers = cert.checkHost(d.fqdn) !== undefined;
      const rsa = cert.publicKey.asymmetricKeyType === 'rsa';
      const subject = cert.subject.replace(/\n/g, ', ');
      out.push(
        now < from || now > to
          ? { name: 'certificate validity', ok: false, detail: `certificate ${subject} is valid from ${from.toISOString()} to ${to.toISOString()}: ${now > to ? 'expired' : 'not yet valid'}`, hint: 'renew the certificate and reload the gateway' }
          : { name: 'certificate validity', ok: true, detail: `valid until ${to.toISOString()} (${Math.floor((to.getTime() - now.getTime()) / 86_400_000)} days left)` },
      );
      out.push(
        covers
          ? { name: 'certificate name', ok: true, detail: `covers ${d.fqdn}` }
          : { name: 'certificate name', ok: false, detail: `certificate SAN does not cover ${d.fqdn} (${cert.subjectAltName ?? 'no SAN'})`, hint: 'use a wildcard certificate for the carrier base domain plus its apex' },
      );
      const missing = [EKU_SERVER_AUTH, EKU_CLIENT_AUTH].filter((o) => !eku.includes(o));
      out.push(
        missing.length === 0
          ? { name: 'certificate usage', ok: true, detail: 'has serverAuth and clientAuth extended key usage' }
          : { name: 'certificate usage', ok: false, detail: `missing extended key usage: ${missing.map((o) => (o === EKU_CLIENT_AUTH ? 'clientAuth' : 'serverAuth')).join(', ')}`, hint: 'Teams uses mutual TLS: the certificate needs both serverAuth and clientAuth EKUs (many public CAs dropped clientAuth; check your CA profile)' },
      );
      out.push(rsa ? { name: 'certificate key', ok: true, detail: 'RSA key' } : { name: 'certificate key', ok: false, detail: `key type ${cert.publicKey.asymmetricKeyType}`, hint: 'Teams Direct Routing requires an RSA key' });
    } catch (err) {
      out.push({ name: 'certificate', ok: false, detail: `could not get the certificate from ${tlsHost}:${d.tlsPort} (${(err as Error).message})`, hint: 'is the gateway listening on TLS at that address?' });
    }
  }
  try {
    const probes = await d.optionsProbe();
    for (const p of probes) {
      const ok = p.status >= 200 && p.status < 300;
      const name = `options ${p.proxy}`;
      if (ok) out.push({ name, ok: true, detail: `${p.status} in ${Math.round(p.rttMs)} ms` });
      else if (p.error) out.push({ name, ok: false, detail: `unreachable: ${p.error}`, hint: `allow outbound TCP to ${p.proxy} port 5061 (Teams signalling ranges 52.112.0.0/14, 52.120.0.0/14) and check DNS` });
      else if (p.status === 403) out.push({ name, ok: false, detail: 'answered 403 Forbidden', hint: `Teams does not know ${d.fqdn}: add the domain to the customer tenant, create the derived trunk / voice route, and make sure Contact is an FQDN covered by the certificate` });
      else out.push({ name, ok: false, detail: p.status ? `answered ${p.status}` : 'no answer (timed out)', hint: 'the TLS handshake may fail: check the certificate chain (full chain, trusted root), both EKUs, and that Teams can reach the SBC' });
    }
  } catch (err) {
    out.push({ name: 'options', ok: false, detail: (err as Error).message, hint: 'is the gateway running?' });
  }
  return out;
}

export function formatCheck(lines: CheckLine[]): string {
  return lines.map((l) => `${l.ok ? 'PASS' : 'FAIL'}  ${l.name}: ${l.detail}${!l.ok && l.hint ? `\n      hint: ${l.hint}` : ''}`).join('\n') + '\n';
}
