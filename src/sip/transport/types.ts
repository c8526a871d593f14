import type { SipMessage, SipResponse } from '../message/message.js';

export type Protocol = 'udp' | 'tcp' | 'tls';

/**
 * The path a message travelled (RFC 5626 "flow"): protocol, both ends and, for stream
 * transports, the connection it used.
 */
export interface Flow {
  protocol: Protocol;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** RFC 3261 §17.1.1.2: reliable transports (TCP/TLS) skip retransmission timers. */
  reliable: boolean;
  /** Stream transports: id of the connection (stable for its lifetime). */
  connectionId?: number;
  /**
   * Stream transports: who opened the connection ('inbound': the peer). RFC 5923 §5: a
   * connection the peer opened carries our requests only if the peer asked for it.
   */
  direction?: 'inbound' | 'outbound';
}

/** Where to send a request: an IP literal (resolution happens above) plus the protocol. */
export interface Destination {
  protocol: Protocol;
  host: string;
  port: number;
  /** TLS: server name for SNI and certificate verification. */
  servername?: string;
  /** Pin the local listen point to send from (its host:port), when several match. */
  localAddress?: string;
  localPort?: number;
}

export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** Intermediate chain, appended to cert. */
  chain?: string | Buffer;
  /** CA bundle used to verify peers (server side: client certs; client side: servers). */
  ca?: string | Buffer;
  /** Verify the peer certificate against `ca` (default false: accept any, like drachtio). */
  verifyPeer?: boolean;
  /** Server side: ask clients for a certificate (mutual TLS). */
  requestClientCert?: boolean;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface ListenSpec {
  protocol: Protocol;
  host: string;
  port: number;
  /** Advertised address (Via sent-by, Contact) when behind NAT. */
  externalIp?: string;
  tls?: TlsOptions;
}

/** A bound listen point, as reported to apps (drachtio `hostports`). */
export interface ListenPoint extends ListenSpec {
  /** The port actually bound (differs from spec.port when 0 was asked). */
  port: number;
}

/** What the transaction layer needs from the transport layer. */
export interface TransportSender {
  /**
   * Sends a request (or ACK/CANCEL) to `dest`; resolves with the flow used. Rejects on
   * connect/TLS failure. `wire`, when given, is `msg.toBuffer()` done already (sent as is).
   */
  send(msg: SipMessage, dest: Destination, wire?: Buffer): Promise<Flow>;
  /**
   * RFC 3261 §18.2.2: sends a response back along `flow` per the top Via (received/rport/maddr).
   * `wire`, when given, is `res.toBuffer()` done already (sent as is).
   */
  sendResponse(res: SipResponse, flow: Flow, wire?: Buffer): Promise<void>;
}
