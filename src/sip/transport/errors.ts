import { AppError } from '../../util/errors.js';

/**
 * Transport-layer error catalog. Every TransportError has the stable code `SIP_ERR_TRANSPORT`;
 * `reason` says what failed. RFC 3261 §17.1.4/§17.2.4: the transaction layer turns these into a
 * transport error for its TU (typically a locally generated 503).
 */
export const TransportErrorReasons = {
  /** TCP connect refused/unreachable, or a socket error while connecting. */
  connect: 'could not connect',
  /** Connect (including the TLS handshake) did not finish within connectTimeoutMs. */
  timeout: 'connect timed out',
  /** TLS handshake or certificate verification failed. */
  tls: 'TLS handshake failed',
  /** No listen point matches the destination's protocol and address family. */
  'no-listen-point': 'no matching listen point',
  /** Writing to the socket failed (connection gone, datagram too large ...). */
  send: 'send failed',
  /** Binding a listen point failed. */
  listen: 'listen failed',
  /** TLS material (key, certificate, chain, CA bundle) that cannot be used: not PEM, or a key that does not match the certificate. */
  'tls-config': 'unusable TLS material',
  /** The transport layer is closed (or not started). */
  closed: 'transport closed',
} as const;

export type TransportErrorReason = keyof typeof TransportErrorReasons;

export class TransportError extends AppError {
  readonly reason: TransportErrorReason;
  constructor(reason: TransportErrorReason, message: string, options?: { cause?: unknown }) {
    super('SIP_ERR_TRANSPORT', message, options);
    this.reason = reason;
  }
}

export function isTransportError(e: unknown): e is TransportError {
  return e instanceof TransportError;
}
