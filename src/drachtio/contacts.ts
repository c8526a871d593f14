import { isIP } from 'node:net';
import { SipError, formatHost, parseUri } from '../sip/message/index.js';
import type { ListenPoint, ListenSpec, Protocol } from '../sip/transport/types.js';

/**
 * drachtio `<contact>` / `--contact` syntax (wire protocol §14):
 *   sip:10.0.0.5:5060;transport=udp,tcp   sips:10.0.0.5:5061;transport=tls   sip:*;transport=udp
 * Every protocol listed becomes its own listen point.
 */
export function parseContact(contact: string, externalIp?: string): ListenSpec[] {
  const m = /^(sips?):(?:[^@]*@)?(\[[^\]]+\]|[^:;]+)(?::(\d+))?(;.*)?$/i.exec(contact.trim());
  if (!m) throw new SipError('SIP_ERR_BAD_URI', `invalid contact: ${contact}`);
  const scheme = m[1]!.toLowerCase();
  let host = m[2]!.replace(/^\[|\]$/g, '');
  if (host === '*') host = '0.0.0.0';
  const params = new Map<string, string>();
  for (const p of (m[4] ?? '').split(';').filter(Boolean)) {
    const [k, v = ''] = p.split('=');
    params.set(k!.toLowerCase(), v);
  }
  const protos = (params.get('transport') ?? (scheme === 'sips' ? 'tls' : 'udp')).split(',').map((s) => s.trim().toLowerCase());
  const ext = params.get('external-ip') ?? externalIp;
  return protos.map((p) => {
    if (p !== 'udp' && p !== 'tcp' && p !== 'tls') throw new SipError('SIP_ERR_BAD_URI', `unsupported transport ${p} in contact ${contact}`);
    const port = m[3] ? Number(m[3]) : p === 'tls' ? 5061 : 5060;
    const spec: ListenSpec = { protocol: p, host, port };
    if (ext) spec.externalIp = ext;
    return spec;
  });
}

/** The host:port a listen point advertises (external IP when configured). */
export function advertised(lp: ListenPoint): { host: string; port: number } {
  return { host: lp.externalIp ?? lp.host, port: lp.port };
}

/** `proto/host:port` as in the authenticate reply (hostports). */
export function hostport(lp: ListenPoint, local = false): string {
  const h = local ? lp.host : (lp.externalIp ?? lp.host);
  return `${lp.protocol}/${formatHost(h)}:${lp.port}`;
}

/** §14: the Contact URI of a transport: <sip:HOST:PORT[;transport=tcp]> or sips for TLS. */
export function transportUri(lp: ListenPoint, user?: string): string {
  const { host, port } = advertised(lp);
  const u = user ? `${user}@` : '';
  if (lp.protocol === 'tls') return `sips:${u}${formatHost(host)}:${port}`;
  return `sip:${u}${formatHost(host)}:${port}${lp.protocol === 'tcp' ? ';transport=tcp' : ''}`;
}

function family(host: string): 4 | 6 | 0 {
  const f = isIP(host);
  return f === 4 ? 4 : f === 6 ? 6 : 0;
}

function leadingOctets(a: string, b: string): number {
  const x = a.split('.');
  const y = b.split('.');
  let n = 0;
  while (n < 4 && x[n] !== undefined && x[n] === y[n]) n++;
  return n;
}

/**
 * §14 transport choice for a new out-of-dialog request: the right protocol (explicit, else any),
 * the right IP family, then the closest address. Returns undefined when an explicit protocol
 * is not available.
 */
export function chooseListenPoint(lps: ListenPoint[], targetHost: string, proto: Protocol | undefined): ListenPoint | undefined {
  const fam = family(targetHost) || 4;
  let cands = lps.filter((lp) => (proto ? lp.protocol === proto : true) && (family(lp.host) === fam || (lp.host === '0.0.0.0' && fam === 4) || (lp.host === '::' && fam === 6)));
  if (!proto) {
    const udp = cands.filter((lp) => lp.protocol === 'udp');
    if (udp.length) cands = udp;
  }
  if (cands.length === 0) return proto ? undefined : lps[0];
  const loopTarget = targetHost.startsWith('127.') || targetHost === '::1';
  const score = (lp: ListenPoint) =>
    (lp.host === targetHost ? 100 : 0) +
    leadingOctets(lp.host, targetHost) * 10 +
    (lp.externalIp ? 2 : 0) +
    ((lp.host.startsWith('127.') || lp.host === '::1') === loopTarget ? 5 : 0);
  return [...cands].sort((a, b) => score(b) - score(a))[0];
}

/** Is `host:port` one of our own listen addresses (drachtio refuses to send to itself)? */
export function isOwnAddress(lps: ListenPoint[], host: string, port: number | undefined, extraDomains: string[] = []): boolean {
  if (extraDomains.includes(host.toLowerCase())) return true;
  return lps.some((lp) => {
    const p = port ?? (lp.protocol === 'tls' ? 5061 : 5060);
    if (p !== lp.port) return false;
    return host === lp.host || host === lp.externalIp || (host === 'localhost' && lp.host === '127.0.0.1');
  });
}

/** Parses a URI, returning undefined on error (for app-supplied values). */
export function tryParseUri(s: string) {
  try {
    return parseUri(s);
  } catch {
    return undefined;
  }
}
