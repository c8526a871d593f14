import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ListenPoint, TlsOptions } from '../sip/transport/types.js';
import type { TimerSettings } from '../sip/transaction/types.js';

export type { Logger } from '../util/logger.js';

export interface SpammerRule {
  /** Header to inspect (User-Agent, From, To); undefined = any of them. */
  header?: string;
  /** Substrings that mark a spammer. */
  values: string[];
}

export interface DrachtioServerOptions {
  /**
   * SIP contacts, drachtio syntax: `sip:127.0.0.10:5060;transport=udp,tcp`, `sips:host:5061;transport=tls`.
   * Every protocol of a contact becomes its own listen point.
   */
  contacts: string[];
  /** Admin (wire protocol) listener for srf.connect. */
  admin: { host: string; port: number; secret: string };
  /** TLS material for `transport=tls` contacts (also the client certificate on outbound TLS). */
  tls?: TlsOptions;
  /** Advertised address in Via/Contact/hostports instead of the bound one. */
  externalIp?: string;
  /** Auto-answer OPTIONS whose User-Agent equals this string with 200 (drachtio --user-agent-options-auto-respond). */
  userAgentOptionsAutoRespond?: string;
  /** Send cdr:* events to apps that route them. */
  cdrs?: boolean;
  spammers?: { action: 'reject' | 'discard'; tcpAction?: 'reject' | 'discard'; rules: SpammerRule[] };
  /** Outbound proxy for all new out-of-dialog requests unless the app gives one. */
  outboundProxy?: string;
  /**
   * RFC 3261 §17.2.1: a new INVITE gets 100 Trying only if the app has sent no response after
   * this many ms (default 200; a retransmitted INVITE gets it at once). 0 sends it at once on
   * every INVITE, as drachtio-server does. At most 200.
   */
  tryingDelayMs?: number;
  /** Transaction timers (tests shorten T1). */
  timers?: Partial<TimerSettings>;
  clock?: Clock;
  logger?: Logger;
  /** UDP socket buffers (default 4 MiB). */
  udpBufferBytes?: number;
  /** Max SIP message size in bytes (default 65535). */
  maxMessageBytes?: number;
  /** TCP/TLS: a connection must complete each message within this time (default 20 s; slowloris). */
  headerTimeoutMs?: number;
  /** TCP/TLS: idle connections are closed after this time (default 10 min). */
  idleTimeoutMs?: number;
  /**
   * A TCP/TLS connection this server opened, on which the peer answered 503 with Retry-After,
   * is taken out of reuse and closed shortly after (default false, as drachtio-server).
   */
  dropConnectionOnRetryAfter?: boolean;
  /**
   * An INVITE that repeats a pending one (same Call-ID, From tag and CSeq: a §8.2.2.2 merged
   * request) over another TCP/TLS connection takes the pending one over instead of getting 482:
   * Teams retries a call from another datacenter when its path to the SBC failed (Teams Direct
   * Routing §1.10). The app keeps its one request; what it sends from then on goes the retry's
   * way. Default false (drachtio-server answers 482).
   */
  adoptRetries?: boolean;
  /**
   * Host name → IP address for every request the server sends (the apps' targets and in-dialog
   * targets). Default: the system resolver. The gateway passes its own, which honours
   * `teams.hosts`.
   */
  resolve?: (host: string) => Promise<string>;
  /**
   * Outbound connection mode (wire protocol §15): new out-of-dialog requests whose method has a
   * handler (or any method, with `sipMethod: '*'`) are routed by asking the handler instead of
   * going to the apps that `route`d the method. Requests with no handler keep inbound routing.
   */
  requestHandlers?: RequestHandlerOption[];
  /** Webhook (http/https request handler) answer deadline in ms (default 3000, as drachtio's). */
  requestHandlerTimeoutMs?: number;
  /** Outbound mode: connecting to an app and its `authenticate` must complete within this time (default 5000 ms). */
  outboundConnectTimeoutMs?: number;
}

/** One `<request-handler>` (drachtio.conf.xml) or `--http-handler` (CLI). */
export interface RequestHandlerOption {
  /** SIP method (any case) or `*` for every method without a handler of its own. Default `*`. */
  sipMethod?: string;
  /**
   * `http://…` / `https://…`: a webhook answering a JSON routing instruction;
   * `tcp://host:port` / `tls://host:port`: connect straight to an app (`srf.listen`).
   */
  url: string;
  /** Webhook method: GET (default; the request as query parameters) or POST (the raw SIP message as body). */
  httpMethod?: 'GET' | 'POST';
  /** https:// webhooks and tls:// apps: verify the peer's certificate (default false, as drachtio). */
  verifyPeer?: boolean;
}

export interface DrachtioServerStats {
  appConnections: number;
  clientTransactions: number;
  serverTransactions: number;
  dialogs: number;
  pendingRequests: number;
}

export interface DrachtioServer {
  readonly adminPort: number;
  readonly listenPoints: ListenPoint[];
  stats(): DrachtioServerStats;
  /**
   * A renewed certificate for the SIP listen points and outbound TLS; every TLS connection up now
   * is rebuilt (retired: closed after `graceMs`, default 10 min). Throws, changing nothing, when
   * the material is unusable. Returns the connections retired.
   */
  setTls(t: TlsOptions, graceMs?: number): number;
  close(): Promise<void>;
}
