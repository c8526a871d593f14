import { type ConnectionOptions, type TlsOptions as NodeTlsServerOptions, type TLSSocket, createSecureContext } from 'node:tls';
import { TransportError } from './errors.js';
import type { TlsOptions } from './types.js';

/**
 * TLS settings for SIP over TLS (RFC 3261 §26.3.1, RFC 5630). Minimum TLS 1.2 (Microsoft Teams
 * Direct Routing requires 1.2+). The same certificate serves as server certificate on the listen
 * point and as client certificate on outbound connections: Teams requires mutual TLS and
 * checks the SBC's certificate on connections the SBC opens.
 */

function certWithChain(t: TlsOptions): string | Buffer {
  if (!t.chain) return t.cert;
  const cert = t.cert.toString().trimEnd();
  return `${cert}\n${t.chain.toString().trim()}\n`;
}

/**
 * Builds the secure context once to prove the material usable before anything depends on it:
 * PEM that parses, a key that matches its certificate, a CA bundle that loads. Throws a
 * TransportError ('tls-config') with OpenSSL's reason otherwise.
 */
export function checkTlsMaterial(t: TlsOptions): void {
  try {
    createSecureContext({ key: t.key, cert: certWithChain(t), ...(t.ca ? { ca: t.ca } : {}) });
  } catch (err) {
    throw new TransportError('tls-config', `unusable TLS material: ${(err as Error).message}`, { cause: err });
  }
}

/** Options for tls.createServer(). */
export function serverTlsOptions(t: TlsOptions, handshakeTimeoutMs: number): NodeTlsServerOptions {
  const requestCert = t.requestClientCert ?? false;
  const o: NodeTlsServerOptions = {
    key: t.key,
    cert: certWithChain(t),
    minVersion: t.minVersion ?? 'TLSv1.2',
    requestCert,
    // Without requestCert there is nothing to verify; with it, verifyPeer makes a missing or
    // untrusted client certificate fail the handshake.
    rejectUnauthorized: requestCert && (t.verifyPeer ?? false),
    handshakeTimeout: handshakeTimeoutMs,
  };
  if (t.ca) o.ca = t.ca;
  return o;
}

/**
 * Options for tls.connect(). `t` is the TLS configuration of the local listen point (client
 * certificate + trust anchors), or undefined when there is no TLS listen point.
 */
export function clientTlsOptions(t: TlsOptions | undefined, servername: string | undefined): ConnectionOptions {
  const o: ConnectionOptions = {
    minVersion: t?.minVersion ?? 'TLSv1.2',
    rejectUnauthorized: t?.verifyPeer ?? false,
  };
  if (t) {
    o.key = t.key;
    o.cert = certWithChain(t);
    if (t.ca) o.ca = t.ca;
  }
  // RFC 6066 §3: SNI carries a DNS name, never an IP literal.
  if (servername && !/^[\d.]+$/.test(servername) && !servername.includes(':')) o.servername = servername;
  return o;
}

/** What the peer proved about itself on a TLS connection. */
export interface TlsPeerInfo {
  /** SNI the client asked for (server side) or sent (client side). */
  servername?: string;
  /** The peer certificate verified against the configured CA. */
  authorized: boolean;
  authorizationError?: string;
  /** Peer certificate subject CN and subjectAltName string, when it sent one. */
  peerSubjectCN?: string;
  peerSubjectAltName?: string;
  protocol?: string;
}

export function tlsPeerInfo(s: TLSSocket): TlsPeerInfo {
  const info: TlsPeerInfo = { authorized: s.authorized };
  const sn = (s as TLSSocket & { servername?: string | false }).servername;
  if (typeof sn === 'string' && sn) info.servername = sn;
  if (s.authorizationError) info.authorizationError = String(s.authorizationError);
  const p = s.getProtocol();
  if (p) info.protocol = p;
  const cert = s.getPeerCertificate();
  if (cert && Object.keys(cert).length > 0) {
    const cn = cert.subject?.CN;
    if (cn) info.peerSubjectCN = Array.isArray(cn) ? cn.join(',') : cn;
    if (cert.subjectaltname) info.peerSubjectAltName = cert.subjectaltname;
  }
  return info;
}
