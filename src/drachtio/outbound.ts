/**
 * Outbound connection mode (wire protocol §15): new out-of-dialog requests whose method has a
 * request handler are routed by that handler instead of the apps that `route`d the method.
 *
 * - webhook answers `reject` / `redirect` are answered here; `proxy` is handed to the server's
 *   proxy core with no app involved;
 * - `route {uri}` (and a `tcp://` / `tls://` handler) opens a connection to an app listening
 *   with `srf.listen`. The socket becomes an ordinary app connection of the server (same
 *   authentication, same message dispatch); once its `authenticate` was answered OK the pending
 *   request is delivered there through the server's inbound delivery path, and the rest of the
 *   call flows over that connection like over any app connection;
 * - `route {tag}` picks an inbound (`srf.connect`) app that routed the method and carries the tag.
 *
 * The server connects once per request; the app ends the connection (`srf.endSession`).
 */
import http from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Clock, TimerHandle } from '../util/clock.js';
import { InvalidStateError } from '../util/errors.js';
import { newTag } from '../util/ids.js';
import type { SipRequest } from '../sip/message/index.js';
import { createResponse } from '../sip/transaction/response.js';
import type { ServerTransactionHandle } from '../sip/transaction/types.js';
import type { Flow, TlsOptions } from '../sip/transport/types.js';
import type { AppSession } from './app-session.js';
import {
  type AppAddress,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
  OutboundUnavailableError,
  type RequestHandler,
  RequestHandlerTable,
  type RoutingInstruction,
  RoutingInstructionError,
  callWebhook,
  normalizeRequestHandlers,
  parseAppAddress,
  parseInstruction,
} from './request-handlers.js';
import type { Logger, RequestHandlerOption } from './types.js';

export const DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS = 5000;

/** What the `proxy` action asks of the server's proxy core (§13 without an app). */
export interface LocalProxyPlan {
  targets: string[];
  recordRoute: boolean;
  followRedirects: boolean;
  simultaneous: boolean;
  /** `5s`, `1500ms` */
  provisionalTimeout: string;
  finalTimeout: string;
}

/** What outbound routing needs from the server. */
export interface OutboundContext {
  log: Logger;
  clock: Clock;
  /** The server's app connections (inbound and outbound). */
  apps(): Iterable<AppSession>;
  /** Makes a socket the server opened an app connection like an accepted one (auth, dispatch, close). */
  adoptApp(socket: Socket): AppSession;
  /** The inbound delivery path: the request becomes the app's pending request (§9.1). */
  deliver(app: AppSession, req: SipRequest, txn: ServerTransactionHandle, flow: Flow): void;
  /** Proxies the request with no app involved. */
  proxy(req: SipRequest, txn: ServerTransactionHandle, flow: Flow, plan: LocalProxyPlan): Promise<void>;
}

export interface OutboundOptions {
  handlers: readonly RequestHandlerOption[];
  webhookTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Client certificate / CA for tls:// apps (the server's TLS material). */
  tls?: TlsOptions;
  /** `User-Agent` of webhook requests. */
  userAgent: string;
}

type AttemptState = 'Lookup' | 'Connecting' | 'Authenticating' | 'Done';

/**
 * One new request being routed by a handler: webhook lookup, then (route {uri}) connecting to
 * the app and waiting for its authentication. Ends in Done whatever happens; close() aborts
 * what is in flight.
 */
class RoutingAttempt {
  // Allowed edges; anything else throws.
  static readonly edges = {
    Lookup: ['Connecting', 'Done'],
    Connecting: ['Authenticating', 'Done'],
    Authenticating: ['Done'],
    Done: [],
  } as const satisfies Record<AttemptState, readonly AttemptState[]>;

  #state: AttemptState = 'Lookup';
  readonly abort = new AbortController();
  timer: TimerHandle | undefined;
  socket: Socket | undefined;
  app: AppSession | undefined;
  /** Settles the connect/authenticate wait. */
  settle: ((err: Error | undefined) => void) | undefined;

  constructor(
    readonly req: SipRequest,
    readonly txn: ServerTransactionHandle,
    readonly flow: Flow,
  ) {}

  get state(): AttemptState {
    return this.#state;
  }

  get closed(): boolean {
    return this.#state === 'Done';
  }

  transition(to: AttemptState): void {
    const allowed: readonly AttemptState[] = RoutingAttempt.edges[this.#state];
    if (!allowed.includes(to)) throw new InvalidStateError(`routing attempt ${this.#state} → ${to} is not allowed`);
    this.#state = to;
  }

  /** Stops whatever is in flight. Idempotent. */
  close(): void {
    if (this.#state === 'Done') return;
    this.#state = 'Done';
    this.abort.abort();
    const settle = this.settle;
    this.settle = undefined;
    settle?.(new OutboundUnavailableError('routing aborted'));
  }
}

export class OutboundRouter {
  readonly #ctx: OutboundContext;
  readonly #table: RequestHandlerTable;
  readonly #webhookTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #tls: TlsOptions | undefined;
  readonly #userAgent: string;
  /** Requests being routed. */
  readonly #attempts = new Set<RoutingAttempt>();
  /** App connections this server opened, until they close. */
  readonly #sessions = new Set<AppSession>();
  /** Outbound connections waiting for their `authenticate`. */
  readonly #awaitingAuth = new Map<AppSession, RoutingAttempt>();
  /** Round-robin cursor per `method\ntag`. */
  readonly #rr = new Map<string, number>();
  /** Webhook connections are kept alive between requests, and closed with the router. */
  readonly #agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  #closed = false;

  constructor(ctx: OutboundContext, opts: OutboundOptions) {
    this.#ctx = ctx;
    this.#table = new RequestHandlerTable(normalizeRequestHandlers(opts.handlers));
    this.#webhookTimeoutMs = opts.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS;
    this.#tls = opts.tls;
    this.#userAgent = opts.userAgent;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Requests waiting for a webhook answer or for their app connection. */
  get pending(): number {
    return this.#attempts.size;
  }

  /** Outbound app connections currently open. */
  get connections(): number {
    return this.#sessions.size;
  }

  /** True for a connection this server opened (outbound mode). */
  isOutbound(app: AppSession): boolean {
    return this.#sessions.has(app);
  }

  /**
   * Takes a new out-of-dialog request when a handler covers its method (§15) and returns true;
   * false leaves it to inbound routing.
   */
  route(req: SipRequest, txn: ServerTransactionHandle, flow: Flow): boolean {
    if (this.#closed) return false;
    const handler = this.#table.find(req.method);
    if (!handler) return false;
    const a = new RoutingAttempt(req, txn, flow);
    this.#attempts.add(a);
    void this.#run(a, handler)
      .catch((err: unknown) => this.#fail(a, err))
      .finally(() => {
        this.#ctx.clock.clearTimeout(a.timer);
        a.close();
        this.#attempts.delete(a);
      });
    return true;
  }

  /** The server answered an app's `authenticate` with OK. */
  authenticated(app: AppSession): void {
    const a = this.#awaitingAuth.get(app);
    if (!a) return;
    this.#awaitingAuth.delete(app);
    const settle = a.settle;
    a.settle = undefined;
    settle?.(undefined);
  }

  /** Aborts routing in progress (503 to those requests) and closes outbound connections. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const a of [...this.#attempts]) {
      a.close();
      this.#respond(a, 503);
    }
    for (const app of [...this.#sessions]) app.close();
    this.#awaitingAuth.clear();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  async #run(a: RoutingAttempt, handler: RequestHandler): Promise<void> {
    let instr: RoutingInstruction;
    if (handler.kind === 'direct') {
      instr = { action: 'route', uri: handler.app!, app: parseAppAddress(handler.app!)! };
    } else {
      a.timer = this.#ctx.clock.setTimeout(() => a.abort.abort(), this.#webhookTimeoutMs);
      const body = await callWebhook(handler, a.req, a.flow, { signal: a.abort.signal, userAgent: this.#userAgent, agents: this.#agents });
      this.#ctx.clock.clearTimeout(a.timer);
      if (this.#gone(a)) return;
      instr = parseInstruction(body);
    }
    if (this.#ctx.log.isLevelEnabled?.('debug')) this.#ctx.log.debug({ callId: a.req.callId, method: a.req.method, action: instr.action }, 'request handler instruction');
    switch (instr.action) {
      case 'reject':
        return this.#respond(a, instr.status, instr.reason);
      case 'redirect':
        return this.#respond(a, 302, 'Moved', instr.contacts);
      case 'proxy':
        await this.#ctx.proxy(a.req, a.txn, a.flow, {
          targets: instr.destinations,
          recordRoute: instr.recordRoute,
          followRedirects: instr.followRedirects,
          simultaneous: instr.simultaneous,
          provisionalTimeout: instr.provisionalTimeout,
          finalTimeout: instr.finalTimeout,
        });
        return;
      case 'route': {
        const app = 'tag' in instr ? this.#pickTagged(a.req.method.toLowerCase(), instr.tag) : await this.#connect(a, instr.app, handler.verifyPeer);
        if (this.#gone(a)) {
          // Canceled while connecting: the connection was opened for this request only.
          if (app && this.#sessions.has(app)) app.close();
          return;
        }
        a.transition('Done');
        this.#ctx.deliver(app, a.req, a.txn, a.flow);
        return;
      }
    }
  }

  /** The request no longer needs routing: the server is closing or a CANCEL answered it (487). */
  #gone(a: RoutingAttempt): boolean {
    return a.closed || this.#closed || a.txn.finalSent;
  }

  #fail(a: RoutingAttempt, err: unknown): void {
    if (a.txn.finalSent || this.#closed) {
      // CANCELed meanwhile (the transaction layer answered 487), or the server is closing (503 sent).
      this.#ctx.log.debug({ callId: a.req.callId, err: (err as Error).message }, 'outbound routing ended after the request was answered');
      return;
    }
    const status = err instanceof RoutingInstructionError || err instanceof OutboundUnavailableError ? err.statusCode : 500;
    const log = status === 500 ? this.#ctx.log.error : this.#ctx.log.warn;
    log.call(this.#ctx.log, { callId: a.req.callId, method: a.req.method, status, err: (err as Error).message, code: (err as { code?: string }).code }, 'outbound routing failed');
    this.#respond(a, status);
  }

  /** Answers the request on the server's behalf (reject, redirect, failures). */
  #respond(a: RoutingAttempt, status: number, reason?: string, contacts?: string[]): void {
    if (!a.closed) a.transition('Done');
    if (a.txn.finalSent) return;
    const res = createResponse(a.req, status, reason, newTag());
    for (const c of contacts ?? []) res.add('Contact', c);
    // (a failed send is logged by the server core's onServerTransportError; the promise is pre-handled)
    void a.txn.respond(res);
  }

  /** Round-robin over authenticated inbound apps that routed `verb` and carry `tag` (drachtio selectClientForTag). */
  #pickTagged(verb: string, tag: string): AppSession {
    const fit: AppSession[] = [];
    for (const app of this.#ctx.apps()) {
      if (app.authenticated && !app.closed && !this.#sessions.has(app) && app.routes.has(verb) && app.tags.includes(tag)) fit.push(app);
    }
    if (fit.length === 0) throw new OutboundUnavailableError(`no inbound app with tag "${tag}" routes ${verb}`);
    const key = `${verb}\n${tag}`;
    const i = (this.#rr.get(key) ?? 0) % fit.length;
    this.#rr.set(key, i + 1);
    return fit[i]!;
  }

  /** Opens the connection to an app (`srf.listen`) and waits until its `authenticate` was answered OK. */
  #connect(a: RoutingAttempt, to: AppAddress, verifyPeer: boolean): Promise<AppSession> {
    a.transition('Connecting');
    return new Promise<AppSession>((resolve, reject) => {
      const where = `${to.transport}://${to.host.includes(':') ? `[${to.host}]` : to.host}:${to.port}`;
      a.settle = (err) => {
        a.settle = undefined;
        this.#ctx.clock.clearTimeout(a.timer);
        if (err) {
          if (a.app) this.#awaitingAuth.delete(a.app);
          // Not authenticated: nothing of the call is bound to it yet.
          if (a.app) a.app.close();
          else a.socket?.destroy();
          reject(err);
        } else {
          resolve(a.app!);
        }
      };
      const fail = (why: string): void => a.settle?.(new OutboundUnavailableError(`app ${where}: ${why}`));
      a.timer = this.#ctx.clock.setTimeout(() => fail(`no authenticated connection within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
      let sock: Socket;
      const onConnected = (): void => {
        if (!a.settle) return;
        a.transition('Authenticating');
        const app = this.#ctx.adoptApp(sock);
        a.app = app;
        this.#sessions.add(app);
        this.#awaitingAuth.set(app, a);
      };
      if (to.transport === 'tls') {
        const t = this.#tls;
        sock = tls.connect(
          {
            host: to.host,
            port: to.port,
            ...(net.isIP(to.host) ? {} : { servername: to.host }),
            rejectUnauthorized: verifyPeer || (t?.verifyPeer ?? false),
            ...(t ? { key: t.key, cert: t.chain ? Buffer.concat([Buffer.from(t.cert), Buffer.from('\n'), Buffer.from(t.chain)]) : t.cert } : {}),
            ...(t?.ca ? { ca: t.ca } : {}),
          },
          onConnected,
        );
      } else {
        sock = net.connect({ host: to.host, port: to.port }, onConnected);
      }
      a.socket = sock;
      sock.on('error', (err) => fail(err.message));
      sock.once('close', () => {
        if (a.app) {
          this.#sessions.delete(a.app);
          this.#awaitingAuth.delete(a.app);
        }
        // Closed before (or while) authenticating: a refused secret, or the app went away.
        fail('connection closed before authentication');
      });
    });
  }
}
