import { lookup } from 'node:dns/promises';
import { isIP, type Server as NetServer, type Socket, createServer } from 'node:net';
import { type Clock, type TimerHandle, realClock } from '../util/clock.js';
import { ChurnMap } from '../util/churn-map.js';
import { newBranch, newCallId, newTag, newUuid } from '../util/ids.js';
import { silentLogger } from '../util/logger.js';
import { Dialog } from '../sip/dialog/dialog.js';
import {
  type HeaderField,
  type NameAddr,
  SipRequest,
  SipResponse,
  type SipMessage,
  field,
  formatNameAddr,
  formatUri,
  parseNameAddr,
  parseUri,
} from '../sip/message/index.js';
import { FixedDelayQueue } from '../sip/transaction/fixed-delay-queue.js';
import { createResponse } from '../sip/transaction/response.js';
import { reasonPhrase } from '../sip/message/status.js';
import { TransactionLayer } from '../sip/transaction/transaction-layer.js';
import type { ClientTransactionUser, ServerTransactionHandle, TimerSettings } from '../sip/transaction/types.js';
import { TransportLayer } from '../sip/transport/transport-layer.js';
import type { Destination, Flow, ListenPoint, Protocol, TlsOptions, TransportSender } from '../sip/transport/types.js';
import { AppSession } from './app-session.js';
import { ProxyCore } from './proxy-core.js';
import { OutboundRouter } from './outbound.js';
import { type AppSip, parseAppSip, wireHeaderName } from './app-sip.js';
import { chooseListenPoint, hostport, isOwnAddress, parseContact, transportUri } from './contacts.js';
import { peerAllowsReuse } from './flow-reuse.js';
import type { AppTxn, DialogRec, NetTxn, Pending2xx } from './records.js';
import type { DrachtioServer, DrachtioServerOptions, DrachtioServerStats, Logger } from './types.js';
import { type WireMessage, safeField, wireTime } from './wire/codec.js';

export const SERVER_VERSION = 'v0.9.9-ts';

/** Methods an app may `route` (wire protocol §9.1). */
const ROUTABLE = new Set(['invite', 'register', 'message', 'options', 'info', 'notify', 'subscribe', 'publish', 'cdr:attempt', 'cdr:start', 'cdr:stop']);
/** §5: headers an app may never set on a CANCEL besides custom ones. */
const CANCEL_UNSAFE = new Set(['from', 'to', 'contact', 'p-asserted-identity', 'call-id', 'cseq', 'max-forwards']);
/** Headers the server computes from the stored request in a response (§9.2). */
const RESPONSE_FIXED = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'record-route', 'route', 'rseq', 'content-length']);
const LOCALHOST_SUBST = new Set(['from', 'to', 'contact', 'p-asserted-identity']);
const APP_TIMEOUT_MS = 64_000;
/** How often pending app requests are checked against APP_TIMEOUT_MS. */
const APP_SWEEP_MS = 1000;
/** §17.2.1: our own 100 Trying waits this long for the app's first response (the RFC's 200 ms). */
export const DEFAULT_TRYING_DELAY_MS = 200;


/**
 * The drachtio-compatible server: SIP transports + transactions below, the drachtio wire
 * protocol above (docs: drachtio-wire-protocol.md). One instance per process or test.
 */
/** How long a retired connection stays open for what is already bound to it. */
const RETIRE_GRACE_MS = 1000;

export class DrachtioServerImpl implements DrachtioServer {
  readonly opts: DrachtioServerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  readonly timers: TimerSettings;
  readonly transport: TransportLayer;
  readonly txl: TransactionLayer;
  readonly proxy: ProxyCore;
  /** Outbound connection mode (§15); undefined when no request handler is configured. */
  readonly #outbound: OutboundRouter | undefined;
  #admin?: NetServer;
  readonly #dropOnRetryAfter: boolean;
  #closed = false;
  readonly apps = new Set<AppSession>();
  /** Round-robin cursor per verb. */
  readonly #rr = new Map<string, number>();
  /** Network requests waiting for their app's final response, in arrival order. */
  readonly netTxns = new ChurnMap<string, NetTxn>();
  #appTimeoutSweep: TimerHandle | undefined;
  /** First wait of every 2xx for its ACK (§13.3.1.4): T1 over UDP, 64*T1 over reliable transports. */
  readonly #first2xx: FixedDelayQueue<Pending2xx>;
  readonly #first2xxReliable: FixedDelayQueue<Pending2xx>;
  readonly #netByTxn = new ChurnMap<ServerTransactionHandle, NetTxn>();
  readonly appTxns = new ChurnMap<string, AppTxn>();
  readonly dialogs = new Map<string, DialogRec>();
  /** Network lookup: `${callId}\n${localTag}` → dialog. */
  readonly #byLocal = new Map<string, DialogRec>();
  #lps: ListenPoint[] = [];
  /** Traffic counters read by the Prometheus exporter (drachtio_* names). */
  readonly traffic = new TrafficCounters();
  readonly startedAt = Date.now();

  constructor(opts: DrachtioServerOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? realClock;
    this.timers = { T1: 500, T2: 4000, T4: 5000, ...opts.timers };
    this.#first2xx = new FixedDelayQueue(this.clock, this.timers.T1, this.#tick2xx);
    this.#first2xxReliable = new FixedDelayQueue(this.clock, 64 * this.timers.T1, this.#tick2xx);
    this.#dropOnRetryAfter = opts.dropConnectionOnRetryAfter ?? false;
    const listen = opts.contacts.flatMap((c) => parseContact(c, opts.externalIp)).map((s) => (s.protocol === 'tls' && opts.tls ? { ...s, tls: opts.tls } : s));
    this.transport = new TransportLayer({
      listen,
      udpBufferBytes: opts.udpBufferBytes ?? 4 * 1024 * 1024,
      maxMessageBytes: opts.maxMessageBytes ?? 65535,
      ...(opts.headerTimeoutMs !== undefined ? { headerTimeoutMs: opts.headerTimeoutMs } : {}),
      ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      logger: this.log,
      onMessage: (msg: SipMessage, flow: Flow) => this.#onSipMessage(msg, flow),
    });
    const counted: TransportSender = {
      send: (msg, dest, wire) => {
        this.traffic.out(msg);
        return this.transport.send(msg, dest, wire);
      },
      sendResponse: (res, flow, wire) => {
        this.traffic.out(res);
        return this.transport.sendResponse(res, flow, wire);
      },
    };
    this.txl = new TransactionLayer({
      transport: counted,
      clock: this.clock,
      timers: this.timers,
      autoTrying: true,
      tryingDelayMs: opts.tryingDelayMs ?? DEFAULT_TRYING_DELAY_MS,
      core: {
        onRequest: (req, txn, flow) => this.#onNetworkRequest(req, txn, flow),
        onCancel: (cancel, invite, answered487, flow) => this.#onNetworkCancel(cancel, invite, answered487, flow),
        onServerTerminated: (txn) => this.#netByTxn.delete(txn),
        // §17.2.4: the transaction terminates by itself; one log line for every response that failed.
        onServerTransportError: (txn, err) => this.log.debug({ txn: txn.id, err: err.message }, 'response send failed'),
        onStray2xx: (res, flow) => this.#onStray2xx(res, flow),
        adoptsRetry: (_req, ongoing, flow) => this.#adoptsRetry(ongoing, flow),
        onRetryAdopted: (req, txn, ongoing, flow) => this.#onRetryAdopted(req, txn, ongoing, flow),
      },
    });
    this.transport.on('connectionClosed', (info, why) => this.txl.connectionClosed(info.id, why));
    this.proxy = new ProxyCore({
      log: this.log,
      clock: this.clock,
      txl: this.txl,
      transport: this.transport,
      listenPoints: () => this.#lps,
      takeNetTxn: (id) => {
        const n = this.netTxns.get(id);
        if (!n) return undefined;
        this.netTxns.delete(n.id);
        return n;
      },
      resolve: (host) => this.#resolve(host),
      cdr: (kind, source, msg, extra) => this.#cdr(kind, source, msg, extra),
    });
    if (opts.requestHandlers?.length) {
      this.#outbound = new OutboundRouter(
        {
          log: this.log,
          clock: this.clock,
          apps: () => this.apps,
          adoptApp: (sock) => this.#onAppConnection(sock),
          deliver: (app, req, txn, flow) => this.#deliverNew(app, req, txn, flow),
          proxy: (req, txn, flow, plan) => this.proxy.handleLocal(this.#newNetTxn(undefined, txn, req, flow, 'new').id, plan),
        },
        {
          handlers: opts.requestHandlers,
          userAgent: `Drachtio/${SERVER_VERSION}`,
          ...(opts.requestHandlerTimeoutMs !== undefined ? { webhookTimeoutMs: opts.requestHandlerTimeoutMs } : {}),
          ...(opts.outboundConnectTimeoutMs !== undefined ? { connectTimeoutMs: opts.outboundConnectTimeoutMs } : {}),
          ...(opts.tls ? { tls: opts.tls } : {}),
        },
      );
    }
  }

  setTls(t: TlsOptions, graceMs?: number): number {
    return this.transport.setTls(t, graceMs);
  }

  get adminPort(): number {
    const a = this.#admin?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  get listenPoints(): ListenPoint[] {
    return this.#lps;
  }

  async start(): Promise<void> {
    await this.transport.start();
    this.#lps = this.transport.listenPoints();
    this.#admin = createServer((sock) => this.#onAppConnection(sock));
    await new Promise<void>((resolve, reject) => {
      this.#admin!.once('error', reject);
      this.#admin!.listen(this.opts.admin.port, this.opts.admin.host, () => {
        this.#admin!.off('error', reject);
        resolve();
      });
    });
    this.log.info({ admin: `${this.opts.admin.host}:${this.adminPort}`, sip: this.#lps.map((lp) => hostport(lp)) }, 'drachtio-compatible server listening');
  }

  stats(): DrachtioServerStats {
    const t = this.txl.stats();
    return {
      // Applications, not sockets: a connection that has not authenticated (yet) is not one.
      appConnections: [...this.apps].filter((a) => a.authenticated).length,
      clientTransactions: t.client,
      serverTransactions: t.server,
      dialogs: this.dialogs.size,
      // (+ new requests still being routed by a request handler, §15)
      pendingRequests: this.netTxns.size + this.appTxns.size + (this.#outbound?.pending ?? 0),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbound?.close();
    for (const app of [...this.apps]) app.close();
    this.clock.clearTimeout(this.#appTimeoutSweep);
    this.#appTimeoutSweep = undefined;
    for (const d of this.dialogs.values()) this.#clearDialogTimers(d);
    this.#first2xx.clear();
    this.#first2xxReliable.clear();
    await new Promise<void>((resolve) => (this.#admin ? this.#admin.close(() => resolve()) : resolve()));
    this.txl.close();
    await this.transport.close();
  }

  // ───────────────────────────── app connections ─────────────────────────────

  /** An accepted admin connection, or one the outbound router opened (§15): the same app handling. */
  #onAppConnection(sock: Socket): AppSession {
    const app = new AppSession(
      sock,
      this.log,
      (s, m) => this.#onAppMessage(s, m),
      (s) => this.#onAppClose(s),
    );
    this.apps.add(app);
    return app;
  }

  #onAppClose(app: AppSession): void {
    this.apps.delete(app);
    // §12: forget its routes; requests still pending for it are failed cleanly (503 upstream).
    for (const n of [...this.netTxns.values()]) {
      if (n.app !== app) continue;
      if (!n.txn.finalSent && !n.canceled) void this.#respondLocal(n, 503);
      else this.#dropNetTxn(n);
    }
    for (const t of this.appTxns.values()) if (t.app === app) t.app = undefined;
    for (const d of this.dialogs.values()) if (d.app === app) d.app = undefined;
  }

  #onAppMessage(app: AppSession, m: WireMessage): void {
    if (!app.authenticated) {
      if (m.type !== 'authenticate') {
        app.reply(m.msgId, ['NO', 'authenticate first']);
        app.close();
        return;
      }
      if (m.args[0] !== this.opts.admin.secret) {
        app.reply(m.msgId, ['NO', 'incorrect secret']);
        app.close();
        return;
      }
      app.authenticated = true;
      app.tags = (m.args[1] ?? '').split(',').filter(Boolean);
      const hp = this.#lps.map((lp) => hostport(lp)).join(',');
      const local = this.#lps.map((lp) => hostport(lp, true)).join(',');
      app.reply(m.msgId, ['OK', hp, SERVER_VERSION, local]);
      // Outbound mode: the pending request goes down this connection now (§15).
      this.#outbound?.authenticated(app);
      return;
    }
    switch (m.type) {
      case 'route': {
        const verb = (m.args[0] ?? '').toLowerCase();
        if (!ROUTABLE.has(verb)) return app.reply(m.msgId, ['NO', 'Route request includes unsupported verb']);
        app.routes.add(verb);
        return app.reply(m.msgId, ['OK']);
      }
      case 'remove_route':
        app.routes.delete((m.args[0] ?? '').toLowerCase());
        return app.reply(m.msgId, ['OK']);
      case 'ping':
        return app.reply(m.msgId, ['OK', 'pong']);
      case 'sip':
        return this.#onAppSip(app, m);
      case 'proxy':
        return this.#onAppProxy(app, m);
      default:
        return app.reply(m.msgId, ['NO', 'Unknown message type']);
    }
  }

  /** Round-robin over the apps that routed `verb` (§1). */
  #pickApp(verb: string): AppSession | undefined {
    let count = 0;
    for (const a of this.apps) if (a.authenticated && a.routes.has(verb)) count++;
    if (count === 0) return undefined;
    const i = (this.#rr.get(verb) ?? 0) % count;
    this.#rr.set(verb, i + 1);
    let k = 0;
    for (const a of this.apps) {
      if (!a.authenticated || !a.routes.has(verb)) continue;
      if (k++ === i) return a;
    }
    return undefined;
  }

  // ───────────────────────────── wire helpers ─────────────────────────────

  /** §4.2: `sip|network|...` to the app. */
  #sendSipToApp(app: AppSession | undefined, msg: SipMessage, flow: Flow, txnId: string, dialogId: string, receivedOn?: Flow, source = 'network'): void {
    if (!app || app.closed) return;
    const raw = msg.raw && source === 'network' ? msg.raw : msg.toBuffer();
    let leader = `${newUuid()}|sip|${source}|${raw.length}|${flow.protocol}|${flow.remoteAddress}|${flow.remotePort}|${wireTime()}|${txnId}|${safeField(dialogId)}|`;
    if (receivedOn) leader += `${receivedOn.localAddress}|${receivedOn.localPort}|`;
    app.sendWithSip(leader, raw);
  }

  /** §6.1: OK reply to an app `sip` message, echoing what went on the wire (`wire`: those bytes). */
  #replySent(app: AppSession, msgId: string, wire: Buffer, proto: Protocol, addr: string, port: number, txnId: string, dialogId: string | undefined): void {
    const tail = dialogId === undefined ? 'Msg sent:|' : `${safeField(dialogId)}||Msg sent:|`;
    app.replyWithSip(msgId, `OK|application|${wire.length}|${proto}|${addr}|${port}|${wireTime()}|${txnId}|${tail}`, wire);
  }

  #cdr(kind: 'attempt' | 'start' | 'stop', source: 'network' | 'application', msg: SipMessage, extra?: string): void {
    if (!this.opts.cdrs) return;
    const app = this.#pickApp(`cdr:${kind}`);
    if (!app) return;
    const leader = `${newUuid()}|cdr:${kind}|${source}|${wireTime()}${extra !== undefined ? `|${extra}` : ''}`;
    app.send(`${leader}\r\n${msg.toString()}`);
  }

  // ───────────────────────────── network → server ─────────────────────────────

  #onSipMessage(msg: SipMessage, flow: Flow): void {
    if (this.#closed) return;
    this.traffic.in(msg);
    // The transport layer emits only messages that passed validateMandatory (§8.2 / §16.3);
    // malformed requests were answered 400 there and malformed responses dropped.
    this.txl.receive(msg, flow);
  }

  #spammer(req: SipRequest): boolean {
    const sp = this.opts.spammers;
    if (!sp) return false;
    for (const rule of sp.rules) {
      const names = rule.header ? [rule.header] : ['user-agent', 'from', 'to'];
      for (const n of names) {
        const v = req.get(n);
        if (v && rule.values.some((s) => v.includes(s))) return true;
      }
    }
    return false;
  }

  #onNetworkRequest(req: SipRequest, txn: ServerTransactionHandle | null, flow: Flow): void {
    // §13: in-dialog requests of a call we proxied with Record-Route.
    if (req.toTag && this.proxy.routedToUs(req)) {
      void this.proxy.forwardInDialog(req, txn ?? undefined);
      return;
    }
    if (!txn) return this.#onNetworkAck(req, flow);
    const toTag = req.toTag;
    if (toTag) return this.#onInDialogRequest(req, txn, flow, toTag);
    const answered = this.#retryOfAnswered(req, flow);
    if (answered) return this.#resend2xx(answered.rec, answered.p, req, txn, flow);

    const method = req.method;
    // §9.1: methods that need a dialog.
    if (method === 'BYE' || method === 'UPDATE' || method === 'PRACK' || method === 'REFER') {
      void txn.respond(createResponse(req, 481));
      return;
    }
    if (this.#spammer(req)) {
      const action = flow.reliable ? (this.opts.spammers!.tcpAction ?? 'discard') : this.opts.spammers!.action;
      if (action === 'reject') void txn.respond(createResponse(req, 603, 'Decline'));
      else txn.close?.();
      return;
    }
    if (method === 'OPTIONS' && this.opts.userAgentOptionsAutoRespond && req.get('user-agent') === this.opts.userAgentOptionsAutoRespond) {
      void txn.respond(createResponse(req, 200));
      return;
    }
    if (method === 'REGISTER') {
      const contacts = req.getAll('contact');
      const star = contacts.some((c) => c.trim() === '*');
      if (star && Number(req.get('expires') ?? '1') !== 0) return void txn.respond(createResponse(req, 400, 'Invalid Contact: * with non-zero Expires'));
      if (!star && contacts.some((c) => !/^\s*("[^"]*"\s*)?<?\s*[a-zA-Z][a-zA-Z0-9+.-]*:/.test(c))) return void txn.respond(createResponse(req, 400, 'Invalid Contact'));
    }
    const verb = method.toLowerCase();
    if (!ROUTABLE.has(verb)) {
      const res = createResponse(req, 405);
      res.set('Allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, SUBSCRIBE, MESSAGE, REGISTER, PUBLISH');
      void txn.respond(res);
      return;
    }
    // §15: a request handler for the method routes it (outbound mode).
    if (this.#outbound?.route(req, txn, flow)) return;
    const app = this.#pickApp(verb);
    if (!app) {
      // srf's tests expect exactly 503 when no app registered the method.
      void txn.respond(createResponse(req, 503));
      return;
    }
    this.#deliverNew(app, req, txn, flow);
  }

  /**
   * Teams Direct Routing §1.10 (`adoptRetries`): a merged INVITE (§8.2.2.2) is a retry of the
   * pending one when it comes over another stream connection while an app owns the first and
   * either has not answered it finally or answered 2xx that no ACK confirmed yet (the 2xx went
   * down the lost path). Over UDP, or after a non-2xx final response, it stays a 482.
   */
  #adoptsRetry(ongoing: ServerTransactionHandle, flow: Flow): boolean {
    if (!this.opts.adoptRetries) return false;
    const n = this.#netByTxn.get(ongoing);
    if (!n?.app || n.kind !== 'new' || n.canceled || !otherConnection(n.flow, flow)) return false;
    return !ongoing.finalSent || !!n.dialog?.pending2xx;
  }

  /**
   * The retry takes the pending request over (#follow). Its sender gets what it missed: the
   * 2xx still waiting for its ACK, else the last provisional response. The first transaction
   * ends silently: its path is gone.
   */
  #onRetryAdopted(req: SipRequest, txn: ServerTransactionHandle, ongoing: ServerTransactionHandle, flow: Flow): void {
    const n = this.#netByTxn.get(ongoing);
    if (!n) return void txn.respond(createResponse(req, 482)).catch(() => {});
    const last = ongoing.lastResponse;
    this.#netByTxn.delete(ongoing);
    ongoing.close?.();
    const p = n.dialog?.pending2xx;
    if (p) return this.#resend2xx(n.dialog!, p, req, txn, flow);
    this.#follow(n, req, txn, flow);
    if (last && last.status > 100 && last.status < 200) void txn.respond(readdressed(last, req)).catch(() => {});
  }

  /**
   * A retried INVITE whose first transaction is gone (its 2xx could not be sent: connection
   * refused or timed out) finds the call by its dialog: the 2xx that waits for an ACK.
   */
  #retryOfAnswered(req: SipRequest, flow: Flow): { rec: DialogRec; p: Pending2xx } | undefined {
    if (!this.opts.adoptRetries || !flow.reliable || req.method !== 'INVITE') return undefined;
    const rec = this.dialogs.get(dialogIdOf(req.callId, req.fromTag));
    const p = rec?.pending2xx;
    if (!rec || !p || rec.d.role !== 'uas' || p.seq !== req.cseq.seq || !otherConnection(p.flow, flow)) return undefined;
    return { rec, p };
  }

  /** The 2xx again, to the retry: its Vias, its connection; retransmissions and in-dialog requests follow. */
  #resend2xx(rec: DialogRec, p: Pending2xx, req: SipRequest, txn: ServerTransactionHandle, flow: Flow): void {
    this.#follow(p.net, req, txn, flow);
    p.res = readdressed(p.res, req);
    p.wire = p.res.toBuffer();
    p.flow = flow;
    void txn.respond(p.res, p.wire).catch(() => {});
  }

  /**
   * The retry becomes the pending request: responses are built from it and go through its
   * transaction and connection, the dialog its answer creates (or created) has its Contact and
   * flow, and its CANCEL reaches the app.
   */
  #follow(n: NetTxn, req: SipRequest, txn: ServerTransactionHandle, flow: Flow): void {
    const was = n.flow;
    this.#netByTxn.delete(n.txn);
    this.#netByTxn.set(txn, n);
    n.txn = txn;
    n.req = req;
    n.flow = flow;
    if (n.dialog) {
      n.dialog.d.flow = flow;
      const c = req.contacts[0];
      if (c) n.dialog.d.remoteTarget = c.uri;
    }
    this.log.info(
      { callId: req.callId, from: `${was.remoteAddress}:${was.remotePort}`, to: `${flow.remoteAddress}:${flow.remotePort}` },
      'INVITE retried over another connection: the pending request follows the retry',
    );
  }

  /** §9.1: a new request becomes `app`'s pending request (inbound routing and outbound mode alike). */
  #deliverNew(app: AppSession, req: SipRequest, txn: ServerTransactionHandle, flow: Flow): void {
    const n = this.#newNetTxn(app, txn, req, flow, 'new');
    if (req.method === 'INVITE') this.#cdr('attempt', 'network', req);
    this.#sendSipToApp(app, req, flow, n.id, '', flow);
  }

  #newNetTxn(app: AppSession | undefined, txn: ServerTransactionHandle, req: SipRequest, flow: Flow, kind: NetTxn['kind'], dialog?: DialogRec): NetTxn {
    const n: NetTxn = { id: newUuid(), app, txn, req, flow, canceled: false, kind, expires: this.clock.now() + APP_TIMEOUT_MS };
    if (dialog) n.dialog = dialog;
    this.netTxns.set(n.id, n);
    this.#netByTxn.set(txn, n);
    this.#appTimeoutSweep ??= this.clock.setTimeout(() => this.#sweepAppTimeouts(), APP_SWEEP_MS);
    return n;
  }

  /**
   * §9.1: if the app does nothing for 64 s the pending state is dropped (answered, so the
   * transaction ends and nothing leaks). One sweep a second instead of a timer per request:
   * netTxns is in arrival order and every entry gets the same 64 s, so the sweep stops at the
   * first entry not yet due.
   */
  #sweepAppTimeouts(): void {
    this.#appTimeoutSweep = undefined;
    const now = this.clock.now();
    for (const n of this.netTxns.values()) {
      if (n.expires > now) break;
      this.#dropNetTxn(n);
      if (!n.txn.finalSent) {
        // drachtio drops the pending state silently: an app may deliberately never answer
        // (e.g. INVITEs from scanners). The transaction is closed without a final response.
        this.log.warn({ callId: n.req.callId, method: n.req.method }, 'app did not answer within 64 s; dropping the request');
        n.txn.close?.();
      }
    }
    if (this.netTxns.size > 0 && !this.#closed) this.#appTimeoutSweep = this.clock.setTimeout(() => this.#sweepAppTimeouts(), APP_SWEEP_MS);
  }

  #dropNetTxn(n: NetTxn, keepForCancel = false): void {
    if (n.unacked) for (const u of n.unacked.values()) this.clock.clearTimeout(u.timer);
    n.unacked?.clear();
    this.netTxns.delete(n.id);
    // The transaction may linger for 32 s (Timer J/L); the record is only needed for a CANCEL
    // that can still change something: one after our 2xx but before its ACK (kept until the
    // 2xx is ACKed, see #stop2xx). Forgetting it here keeps lingering calls out of the heap.
    if (!keepForCancel) this.#netByTxn.delete(n.txn);
  }

  /** A final response generated by the server itself for a pending network request. */
  async #respondLocal(n: NetTxn, status: number): Promise<void> {
    this.#dropNetTxn(n);
    if (n.txn.finalSent) return;
    const res = createResponse(n.req, status, undefined, n.toTag ?? (status > 100 ? newTag() : undefined));
    if (status === 503) res.set('Retry-After', '5');
    if (n.dialog && n.dialog.d.state === 'Early' && n.req.method === 'INVITE' && !n.req.toTag) this.#deleteDialog(n.dialog);
    await n.txn.respond(res).catch(() => {});
  }

  #dialogByNetwork(req: SipMessage, localTag: string): DialogRec | undefined {
    return this.#byLocal.get(localKey(req.callId, localTag));
  }

  /** ACK for a 2xx (no transaction, §13.2.2.4 / §17.2.1 RFC 6026). */
  #onNetworkAck(ack: SipRequest, flow: Flow): void {
    const toTag = ack.toTag;
    const rec = toTag ? this.#dialogByNetwork(ack, toTag) : undefined;
    if (!rec) return;
    const p = rec.pending2xx;
    if (!p || p.seq !== ack.cseq.seq) return; // retransmitted ACK or stray: absorb
    this.#stop2xx(rec);
    this.#sendSipToApp(rec.app, ack, flow, newUuid(), rec.id);
  }

  #onInDialogRequest(req: SipRequest, txn: ServerTransactionHandle, flow: Flow, toTag: string): void {
    const rec = this.#dialogByNetwork(req, toTag);
    const method = req.method;
    if (!rec && method === 'UPDATE') {
      // §9.4: UPDATE inside an INVITE that has no dialog record yet (early, unreliable 1xx).
      const owner = this.#earlyInviteOwner(req, toTag);
      if (owner) {
        const n = this.#newNetTxn(owner.app, txn, req, flow, 'in-dialog');
        this.#sendSipToApp(owner.app, req, flow, n.id, owner.dialogId);
        return;
      }
    }
    if (!rec || (rec.d.remoteTag && rec.d.remoteTag !== req.fromTag)) {
      // §12.2.2: "If the UAS wishes to reject the request because it does not wish to recreate
      // the dialog, it MUST respond to the request with a 481".
      void txn.respond(createResponse(req, 481));
      return;
    }
    if (!rec.d.acceptRemoteSeq(req.cseq.seq, method)) {
      void txn.respond(createResponse(req, 500, 'Out of order CSeq'));
      return;
    }
    if (method === 'BYE') {
      // §9.3: the dialog is deleted when the BYE arrives.
      this.#deleteDialog(rec);
      if (rec.method === 'INVITE') this.#cdr('stop', 'network', req, 'normal-release');
      if (!rec.app || rec.app.closed) {
        void txn.respond(createResponse(req, 200));
        return;
      }
    } else if (!rec.app || rec.app.closed) {
      void txn.respond(createResponse(req, 481));
      return;
    }
    if (method === 'INVITE') {
      // RFC 3261 §14.2: a re-INVITE while another INVITE is in progress on the dialog → 491.
      if ((rec.reinviteIn && !rec.reinviteIn.txn.finalSent) || rec.pending2xx) {
        const res = createResponse(req, rec.pending2xx ? 500 : 491);
        if (rec.pending2xx) res.set('Retry-After', '1');
        void txn.respond(res);
        return;
      }
      const c = req.contacts[0];
      if (c) rec.d.remoteTarget = c.uri; // §12.2: target refresh
    }
    if (method === 'PRACK') this.#onPrack(rec, req);
    if (method === 'NOTIFY' && rec.method === 'SUBSCRIBE' && /^\s*terminated/i.test(req.get('subscription-state') ?? '') && !/^\s*refer/i.test(req.get('event') ?? '')) {
      this.#deleteDialog(rec);
    }
    if (method === 'UPDATE' || method === 'INVITE') {
      const c = req.contacts[0];
      if (c) rec.d.remoteTarget = c.uri;
    }
    const n = this.#newNetTxn(rec.app, txn, req, flow, 'in-dialog', rec);
    if (method === 'INVITE') rec.reinviteIn = n;
    this.#sendSipToApp(rec.app, req, flow, n.id, rec.id);
  }

  /**
   * The app owning an INVITE in progress that an early in-dialog request belongs to: an INVITE
   * we are serving whose To tag we sent, or an INVITE the app sent whose From tag is ours.
   */
  #earlyInviteOwner(req: SipRequest, toTag: string): { app: AppSession | undefined; dialogId: string } | undefined {
    const callId = req.callId;
    for (const n of this.netTxns.values()) {
      if (n.req.method === 'INVITE' && n.toTag === toTag && n.req.callId === callId) return { app: n.app, dialogId: `${callId};from-tag=${n.req.fromTag}` };
    }
    for (const t of this.appTxns.values()) {
      if (t.req.method === 'INVITE' && !t.dialog && t.req.callId === callId && t.req.fromTag === toTag) return { app: t.app, dialogId: t.dialogId };
    }
    return undefined;
  }

  /** RFC 3262 §3: a PRACK stops retransmission of the reliable provisional it acknowledges. */
  #onPrack(rec: DialogRec, prack: SipRequest): void {
    const rack = /^\s*(\d+)\s+(\d+)\s+(\S+)/.exec(prack.get('rack') ?? '');
    if (!rack) return;
    for (const n of this.netTxns.values()) {
      if (n.dialog !== rec || !n.unacked) continue;
      const u = n.unacked.get(Number(rack[1]));
      if (u && n.req.cseq.seq === Number(rack[2])) {
        this.clock.clearTimeout(u.timer);
        n.unacked.delete(Number(rack[1]));
      }
    }
  }

  #onNetworkCancel(cancel: SipRequest, invite: ServerTransactionHandle, answered487: boolean, flow: Flow): void {
    const n = this.#netByTxn.get(invite);
    if (!n) return;
    if (n.onCancel) {
      this.#cdr('stop', 'network', cancel, 'call-canceled');
      return n.onCancel();
    }
    if (!answered487) {
      // §10.1: CANCEL after our 2xx but before the ACK: tear the dialog down.
      const rec = n.dialog;
      if (rec && rec.pending2xx) {
        this.#stop2xx(rec);
        this.#teardown(rec, 'CANCEL after 200 OK');
      }
      return;
    }
    const dialogId = n.dialog ? n.dialog.id : '';
    n.canceled = true;
    this.#dropNetTxn(n);
    if (n.dialog && n.dialog.d.state === 'Early') this.#deleteDialog(n.dialog);
    this.#cdr('stop', 'network', cancel, 'call-canceled');
    this.#sendSipToApp(n.app, cancel, flow, n.id, dialogId);
  }

  /** A 2xx that matched no client transaction, or a retransmission of one (RFC 6026). */
  #onStray2xx(res: SipResponse, _flow: Flow): void {
    const tag = res.fromTag;
    const rec = tag ? this.dialogs.get(`${res.callId};from-tag=${tag}`) : undefined;
    if (rec?.lastAck && rec.lastAck.seq === res.cseq.seq) {
      void this.transport.send(rec.lastAck.msg, rec.lastAck.dest).catch(() => {});
    }
  }

  // ───────────────────────────── app → server `sip` ─────────────────────────────

  #onAppSip(app: AppSession, m: WireMessage): void {
    const [txnId = '', dialogId = '', proxy = ''] = m.args;
    const sip = parseAppSip(m.body);
    if (!sip) return app.reply(m.msgId, ['NOK', `invalid request-uri: ${m.body.split('\r\n')[0] ?? ''}`]);
    if (sip.dropped.length) this.log.warn({ dropped: sip.dropped }, 'dropped invalid header lines from app');
    // §6: the order of these checks is drachtio's.
    if (sip.isResponse) {
      if (!txnId) return app.reply(m.msgId, ['NO', 'transaction id missing']);
      return this.#onAppResponse(app, m.msgId, txnId, sip);
    }
    if (dialogId) return void this.#onAppInDialogRequest(app, m.msgId, dialogId, sip);
    if (txnId && sip.method === 'CANCEL') return this.#onAppCancel(app, m.msgId, txnId, sip);
    void this.#onAppNewRequest(app, m.msgId, sip, proxy);
  }

  /** §5: substitute `@localhost` with the chosen transport's host:port. */
  #substituteLocalhost(value: string, lp: ListenPoint): string {
    if (!value.includes('@localhost')) return value;
    try {
      const na = parseNameAddr(value);
      const u = parseUri(na.uri);
      u.host = lp.externalIp ?? lp.host;
      u.port = lp.port;
      na.uri = formatUri(u);
      return formatNameAddr(na);
    } catch {
      return value;
    }
  }

  /** Applies app headers (§5) onto `msg`, skipping `skip` keys. */
  #applyAppHeaders(msg: SipMessage, headers: HeaderField[], lp: ListenPoint, skip: Set<string>): void {
    for (const h of headers) {
      if (skip.has(h.key)) continue;
      const value = LOCALHOST_SUBST.has(h.key) ? this.#substituteLocalhost(h.value, lp) : h.value;
      if (WELL_KNOWN_SINGLE.has(h.key)) msg.set(h.name, value);
      else msg.add(wireHeaderName(h.name), value);
    }
  }

  /** §5: Content-Type rules; returns an error text or undefined. */
  #applyBody(msg: SipMessage, sip: AppSip): string | undefined {
    msg.body = sip.body;
    if (sip.body.length > 0 && !msg.has('content-type')) {
      if (sip.body.toString('latin1', 0, 3) === 'v=0') msg.set('Content-Type', 'application/sdp');
      else return 'missing content-type';
    }
    return undefined;
  }

  async #resolve(host: string): Promise<string> {
    if (isIP(host)) return host;
    if (this.opts.resolve) return this.opts.resolve(host);
    const r = await lookup(host);
    return r.address;
  }

  async #onAppNewRequest(app: AppSession, msgId: string, sip: AppSip, proxyUri: string): Promise<void> {
    const method = sip.method;
    let ruri;
    try {
      ruri = parseUri(sip.uri);
      if (ruri.user !== undefined && /[\s<>"]/.test(ruri.user)) throw new Error('bad user');
    } catch {
      return app.reply(msgId, ['NOK', `invalid request-uri: ${method} ${sip.uri} SIP/2.0`]);
    }
    const target = proxyUri || this.opts.outboundProxy ? tryUri(proxyUri || this.opts.outboundProxy!) : ruri;
    if (!target || target.scheme === 'tel') return app.reply(msgId, ['NOK', `invalid request-uri: ${method} ${sip.uri} SIP/2.0`]);
    const tparam = target.params.get('transport')?.toLowerCase();
    const explicit: Protocol | undefined = tparam === 'udp' || tparam === 'tcp' || tparam === 'tls' ? tparam : target.scheme === 'sips' ? 'tls' : undefined;
    let host: string;
    try {
      host = await this.#resolve(target.host);
    } catch {
      return app.reply(msgId, ['NOK', `error resolving ${target.host}`]);
    }
    const lp = chooseListenPoint(this.#lps, host, explicit);
    if (!lp) return app.reply(msgId, ['NOK', 'requested protocol/transport not available']);
    const port = target.port ?? (lp.protocol === 'tls' ? 5061 : 5060);
    if (isOwnAddress(this.#lps, target.host, port) || isOwnAddress(this.#lps, host, port)) return app.reply(msgId, ['NOK', 'can not send request to myself']);

    // §7: build the request.
    const req = new SipRequest(method, sip.uri);
    const adv = { host: lp.externalIp ?? lp.host, port: lp.port };
    req.add('Via', `SIP/2.0/${lp.protocol.toUpperCase()} ${adv.host.includes(':') ? `[${adv.host}]` : adv.host}:${adv.port};branch=${newBranch()};rport`);
    const appGet = (k: string) => sip.headers.find((h) => h.key === k)?.value;
    let from: NameAddr;
    try {
      from = parseNameAddr(this.#substituteLocalhost(appGet('from') ?? `<${transportUri(lp)}>`, lp));
    } catch {
      return app.reply(msgId, ['NOK', `invalid from value provided by client: ${appGet('from') ?? ''}`]);
    }
    if (!from.params.get('tag')) from.params.set('tag', newTag());
    req.add('From', formatNameAddr(from));
    const toVal = appGet('to');
    req.add('To', toVal ? this.#substituteLocalhost(toVal, lp) : `<${sip.uri}>`);
    req.add('Call-ID', appGet('call-id') ?? newCallId());
    const cseqNum = /^\s*(\d+)/.exec(appGet('cseq') ?? '')?.[1];
    req.add('CSeq', `${cseqNum ?? Math.floor(Math.random() * 20000) + 1} ${method}`);
    req.add('Max-Forwards', appGet('max-forwards') ?? '70');
    if ((method === 'INVITE' || method === 'SUBSCRIBE') && !appGet('contact')) req.add('Contact', `<${transportUri(lp)}>`);
    this.#applyAppHeaders(req, sip.headers, lp, new Set(['from', 'to', 'call-id', 'cseq', 'max-forwards']));
    const bodyErr = this.#applyBody(req, sip);
    if (bodyErr) return app.reply(msgId, ['NOK', bodyErr]);

    const dest: Destination = { protocol: lp.protocol, host, port, localAddress: lp.host, localPort: lp.port };
    // TLS SNI: the target's name; when the target is an address (an outbound proxy given as
    // an IP), the Request-URI host names the service.
    if (lp.protocol === 'tls') {
      const sni = !isIP(target.host) ? target.host : ruri.scheme !== 'tel' && !isIP(ruri.host) ? ruri.host : undefined;
      if (sni) dest.servername = sni;
    }
    const t: AppTxn = { id: newUuid(), app, req, dest, dialogId: '', canceled: false, lp };
    if (method === 'INVITE' || method === 'SUBSCRIBE') t.dialogId = `${req.callId};from-tag=${req.fromTag}`;
    this.appTxns.set(t.id, t);
    // Reply first so srf knows the transaction id before any response arrives.
    const wire = req.toBuffer();
    this.#replySent(app, msgId, wire, lp.protocol, host, port, t.id, undefined);
    if (method === 'INVITE') this.#cdr('attempt', 'application', req);
    t.handle = this.txl.request(req, dest, this.#clientTu(t), wire);
  }

  #clientTu(t: AppTxn): ClientTransactionUser {
    return {
      onResponse: (res, flow) => this.#onAppTxnResponse(t, res, flow),
      onTimeout: () => this.#onAppTxnFailure(t, 408, 'Request Timeout'),
      onTransportError: (err) => {
        // A lost in-dialog request leaves the far leg up (a BYE) or out of step: worth a warning.
        if (t.dialog) this.log.warn({ method: t.req.method, callId: t.req.callId, dest: `${t.dest.protocol}:${t.dest.servername ?? t.dest.host}:${t.dest.port}`, err: err.message }, 'in-dialog request not delivered');
        this.#onAppTxnFailure(t, 503, 'Service Unavailable');
      },
      onTerminated: () => {
        if (this.appTxns.get(t.id) === t) this.appTxns.delete(t.id);
      },
    };
  }

  /** §7: timeouts and transport failures are passed up as locally generated responses. */
  #onAppTxnFailure(t: AppTxn, status: number, reason: string): void {
    if (this.appTxns.get(t.id) !== t) return;
    this.appTxns.delete(t.id);
    const res = createResponse(t.req, status, reason);
    const flow: Flow = { protocol: t.dest.protocol, localAddress: t.lp.host, localPort: t.lp.port, remoteAddress: t.dest.host, remotePort: t.dest.port, reliable: t.dest.protocol !== 'udp' };
    const dialogId = t.dialog ? t.dialog.id : t.dialogId;
    if (t.dialog && t.req.method === 'BYE') this.#deleteDialog(t.dialog);
    if (!t.dialog && t.req.method === 'INVITE') this.#cdr('stop', 'application', res, 'call-rejected');
    this.#sendSipToApp(t.app, res, flow, t.id, dialogId, undefined, 'network');
  }

  /**
   * RFC 3261 §21.5.4: a 503 with Retry-After asks that no further request go to that server
   * for the period; Teams Direct Routing asks the SBC to drop that connection and use the next
   * proxy. A connection we opened is taken out of reuse at once (the ACK of the 503 already
   * went on it) and closed after a short grace; a connection the peer opened is left alone.
   */
  #dropConnection(connectionId: number): void {
    if (this.transport.connection(connectionId)?.direction !== 'outbound') return;
    this.transport.retire(connectionId, RETIRE_GRACE_MS);
  }

  #onAppTxnResponse(t: AppTxn, res: SipResponse, flow: Flow): void {
    const method = t.req.method;
    const status = res.status;
    if (status === 503 && this.#dropOnRetryAfter && flow.connectionId !== undefined && res.has('retry-after')) this.#dropConnection(flow.connectionId);
    if (status === 100) return; // sofia does not pass 100 up
    if (!t.dialog && (method === 'INVITE' || method === 'SUBSCRIBE')) {
      // Out-of-dialog INVITE/SUBSCRIBE: dialog creation (§11, §12.1.2).
      if ((status >= 200 && status < 300) || (status > 100 && status < 200 && res.has('rseq') && method === 'INVITE')) {
        let rec = this.dialogs.get(t.dialogId);
        if (rec && rec.d.remoteTag !== res.toTag && status >= 200 && rec.d.state === 'Confirmed') {
          // a second fork answered: ACK it and hang it up.
          this.#ackAndByeFork(t, res, flow);
          return;
        }
        if (!rec) {
          rec = this.#createUacDialog(t, res, flow, status >= 200 ? 'Confirmed' : 'Early');
        } else {
          this.#refreshUacDialog(rec, res, flow, status >= 200);
        }
        if (method === 'INVITE') {
          rec.inviteSeq = t.req.cseq.seq;
          if (status >= 200) {
            rec.inviteStatus = status;
            if (t.got2xx) return; // retransmission (RFC 6026 Accepted): absorb until the app ACKs
            t.got2xx = res;
            this.#cdr('start', 'application', res, 'uac');
            if (!t.app || t.app.closed || t.canceled) {
              // nobody will ACK: ACK and BYE ourselves (ACK-BYE race, §8.3).
              this.#sendAck(rec, undefined);
              this.#teardown(rec, t.canceled ? 'ACK-BYE due to cancel race condition' : 'application gone');
              return;
            }
          }
        }
      } else if (status >= 300) {
        // final failure: the dialog skeleton is gone (an early dialog too).
        const rec = this.dialogs.get(t.dialogId);
        if (rec && rec.d.state === 'Early') this.#deleteDialog(rec);
        if (method === 'INVITE') this.#cdr('stop', 'application', res, 'call-rejected');
      }
      if (status >= 200) this.appTxns.delete(t.id);
      this.#sendSipToApp(t.app, res, flow, t.id, t.dialogId);
      return;
    }
    // In-dialog requests (§8).
    const rec = t.dialog;
    if (rec) {
      if (method === 'INVITE' && status >= 200) {
        rec.reinviteOut = undefined;
        rec.inviteSeq = t.req.cseq.seq;
        rec.inviteStatus = status;
        if (status < 300) {
          if (t.got2xx) return;
          t.got2xx = res;
          const c = res.contacts[0];
          if (c) rec.d.remoteTarget = c.uri;
        }
      }
      if (method === 'BYE' && status >= 200 && status !== 401 && status !== 407) {
        this.#deleteDialog(rec);
        if (rec.method === 'INVITE') this.#cdr('stop', 'application', t.req, 'normal-release');
      }
      if (method === 'NOTIFY' && status >= 200 && rec.method === 'SUBSCRIBE' && /^\s*terminated/i.test(t.req.get('subscription-state') ?? '')) this.#deleteDialog(rec);
    }
    if (status >= 200) this.appTxns.delete(t.id);
    this.#sendSipToApp(t.app, res, flow, t.id, rec ? rec.id : '');
  }

  #createUacDialog(t: AppTxn, res: SipResponse, flow: Flow, state: 'Early' | 'Confirmed'): DialogRec {
    const req = t.req;
    const d = new Dialog({
      role: 'uac',
      callId: req.callId,
      localTag: req.fromTag!,
      remoteTag: res.toTag ?? '',
      // §12.1.2: "the route set MUST be set to the list of URIs in the Record-Route header
      // field from the response, taken in reverse order".
      routeSet: res.getAll('record-route').reverse(),
      remoteTarget: res.contacts[0]?.uri ?? req.uri,
      localUri: req.get('from')!,
      remoteUri: res.get('to')!,
      localContact: req.get('contact') ?? `<${transportUri(t.lp)}>`,
      localSeq: req.cseq.seq,
      usage: req.method === 'SUBSCRIBE' ? 'subscribe' : 'invite',
      flow,
      state,
    });
    const rec: DialogRec = { id: t.dialogId, d, app: t.app, lp: t.lp, method: req.method as 'INVITE' | 'SUBSCRIBE' };
    t.dialog = undefined;
    this.#addDialog(rec);
    return rec;
  }

  #refreshUacDialog(rec: DialogRec, res: SipResponse, flow: Flow, confirm: boolean): void {
    if (res.toTag) rec.d.remoteTag = res.toTag;
    const c = res.contacts[0];
    if (c) rec.d.remoteTarget = c.uri;
    if (confirm) {
      rec.d.routeSet = res.getAll('record-route').reverse();
      rec.d.remoteUri = res.get('to') ?? rec.d.remoteUri;
      rec.d.transition('Confirmed');
    }
    rec.d.flow = flow;
  }

  #ackAndByeFork(t: AppTxn, res: SipResponse, flow: Flow): void {
    const d = new Dialog({
      role: 'uac', callId: res.callId, localTag: t.req.fromTag!, remoteTag: res.toTag ?? '', routeSet: res.getAll('record-route').reverse(),
      remoteTarget: res.contacts[0]?.uri ?? t.req.uri, localUri: t.req.get('from')!, remoteUri: res.get('to')!, localContact: t.req.get('contact') ?? '',
      localSeq: t.req.cseq.seq, usage: 'invite', flow,
    });
    const rec: DialogRec = { id: `${t.dialogId}#fork`, d, app: undefined, lp: t.lp, method: 'INVITE', inviteSeq: t.req.cseq.seq };
    this.#sendAck(rec, undefined);
    void this.#sendInDialog(rec, 'BYE', undefined, undefined);
  }

  #addDialog(rec: DialogRec): void {
    this.dialogs.set(rec.id, rec);
    this.#byLocal.set(localKey(rec.d.callId, rec.d.localTag), rec);
  }

  #deleteDialog(rec: DialogRec): void {
    if (this.dialogs.get(rec.id) === rec) this.dialogs.delete(rec.id);
    const k = localKey(rec.d.callId, rec.d.localTag);
    if (this.#byLocal.get(k) === rec) this.#byLocal.delete(k);
    this.#clearDialogTimers(rec);
    if (rec.d.state !== 'Terminated') rec.d.transition('Terminated');
  }

  #clearDialogTimers(rec: DialogRec): void {
    if (rec.pending2xx) this.#stop2xx(rec);
  }

  /**
   * Where in-dialog requests go (§12.2.1.1 + loose routing §16.12). A stream connection stays the
   * dialog's path when we opened it (reopened to the same address if it closed), or when the peer
   * opened it and allows reuse (flow-reuse.ts); otherwise the request goes to the route set or
   * remote target, over a connection of ours.
   */
  async #dialogDestination(rec: DialogRec): Promise<Destination> {
    const flow = rec.d.flow;
    // §18.1.1 lets a request reuse the dialog's connection while it is open. Once the peer has
    // closed it (Teams: after 2 idle minutes) or we retired it (age, certificate reload), the
    // request goes where §12.2.1.1 sends it: the route set or the remote target, with SNI.
    const conn = flow?.reliable && !(rec.targetOnly && flow.direction === 'inbound') ? this.transport.usableConnection(flow.connectionId) : undefined;
    if (flow && conn) {
      const dest: Destination = { protocol: flow.protocol, host: flow.remoteAddress, port: flow.remotePort, localAddress: flow.localAddress, localPort: flow.localPort };
      // Should it be renewed on the way, the new connection is verified against the same name.
      if (conn.tls?.servername) dest.servername = conn.tls.servername;
      return dest;
    }
    const first = rec.d.routeSet[0];
    const uriText = first ? parseNameAddr(first).uri : rec.d.remoteTarget;
    const u = parseUri(uriText);
    const tparam = u.params.get('transport')?.toLowerCase();
    const protocol: Protocol = tparam === 'tcp' || tparam === 'tls' || tparam === 'udp' ? tparam : u.scheme === 'sips' ? 'tls' : (flow?.protocol ?? rec.lp.protocol);
    const host = await this.#resolve(u.host);
    const dest: Destination = { protocol, host, port: u.port ?? (protocol === 'tls' ? 5061 : 5060) };
    if (protocol === 'tls' && !isIP(u.host)) dest.servername = u.host;
    const lp = chooseListenPoint(this.#lps, host, protocol) ?? rec.lp;
    dest.localAddress = lp.host;
    dest.localPort = lp.port;
    return dest;
  }

  /** §12.2.1.1: a request within the dialog. */
  #buildInDialog(rec: DialogRec, method: string, ruri: string | undefined, seq: number): SipRequest {
    const d = rec.d;
    const lp = rec.lp;
    const req = new SipRequest(method, ruri ?? d.remoteTarget);
    const adv = { host: lp.externalIp ?? lp.host, port: lp.port };
    req.add('Via', `SIP/2.0/${(d.flow?.protocol ?? lp.protocol).toUpperCase()} ${adv.host.includes(':') ? `[${adv.host}]` : adv.host}:${adv.port};branch=${newBranch()};rport`);
    for (const r of d.routeSet) req.add('Route', r);
    req.add('Max-Forwards', '70');
    req.add('From', d.role === 'uac' ? d.localUri : withTag(d.localUri, d.localTag));
    req.add('To', d.role === 'uac' ? withTag(d.remoteUri, d.remoteTag) : d.remoteUri);
    req.add('Call-ID', d.callId);
    req.add('CSeq', `${seq} ${method}`);
    return req;
  }

  /** Sends the ACK for a 2xx (§13.2.2.4); remembered for retransmitted 2xx. */
  #sendAck(rec: DialogRec, sip: AppSip | undefined): SipRequest {
    const seq = rec.inviteSeq ?? rec.d.localSeq;
    const ack = this.#buildInDialog(rec, 'ACK', undefined, seq);
    if (sip) {
      this.#applyAppHeaders(ack, sip.headers, rec.lp, IN_DIALOG_FIXED);
      this.#applyBody(ack, sip);
    }
    void this.#dialogDestination(rec).then((dest) => {
      rec.lastAck = { seq, msg: ack, dest };
      return this.transport.send(ack, dest);
    }).catch((err: Error) => this.log.debug({ err: err.message }, 'ACK send failed'));
    return ack;
  }

  /** BYE the dialog on the server's own initiative and tell the app with an `unsolicited` BYE (§4.2 item 7). */
  #teardown(rec: DialogRec, text: string): void {
    const app = rec.app;
    void this.#sendInDialog(rec, 'BYE', [{ name: 'Reason', key: 'reason', value: `SIP ;cause=200 ;text="${text}"` }], undefined).then((bye) => {
      this.#deleteDialog(rec);
      if (bye && app && !app.closed) {
        const flow: Flow = rec.d.flow ?? { protocol: rec.lp.protocol, localAddress: rec.lp.host, localPort: rec.lp.port, remoteAddress: rec.lp.host, remotePort: rec.lp.port, reliable: false };
        this.#sendSipToApp(app, bye, flow, 'unsolicited', rec.id, undefined, 'application');
      }
    });
    if (rec.method === 'INVITE') this.#cdr('stop', 'application', this.#buildInDialog(rec, 'BYE', undefined, rec.d.localSeq), 'system-initiated-termination');
  }

  /** Sends a request in `rec` outside any app transaction (server-initiated BYE). */
  async #sendInDialog(rec: DialogRec, method: string, extra: HeaderField[] | undefined, tu: ClientTransactionUser | undefined): Promise<SipRequest | undefined> {
    try {
      const req = this.#buildInDialog(rec, method, undefined, rec.d.nextSeq());
      for (const h of extra ?? []) req.add(h.name, h.value);
      const dest = await this.#dialogDestination(rec);
      this.txl.request(req, dest, tu ?? { onResponse() {}, onTimeout() {}, onTransportError() {} });
      return req;
    } catch (err) {
      this.log.debug({ err: (err as Error).message, method }, 'in-dialog send failed');
      return undefined;
    }
  }

  async #onAppInDialogRequest(app: AppSession, msgId: string, dialogId: string, sip: AppSip): Promise<void> {
    const rec = this.dialogs.get(dialogId);
    const method = sip.method;
    if (!rec) {
      if (method === 'ACK') return app.reply(msgId, ['NOK', 'Server error: ACK for non-success final response is automatically generated by server']);
      if (method === 'PRACK') return app.reply(msgId, ['NOK', 'Server error: unable to find IIP when sending PRACK']);
      return app.reply(msgId, ['NOK', 'Server error: unable to find dialog for dialog id provided']);
    }
    if (!method) return app.reply(msgId, ['NOK', `Server error: invalid or missing method supplied on start line: ${sip.uri}`]);
    const proto = rec.d.flow?.protocol ?? rec.lp.protocol;
    if (method === 'ACK') {
      if (rec.inviteStatus === undefined || rec.inviteStatus >= 300) {
        if (rec.d.state === 'Early') this.#deleteDialog(rec);
        return app.reply(msgId, ['NOK', 'ACK for non-success responses is automatically generated by the stack']);
      }
      const ack = this.#sendAck(rec, sip);
      this.#replySent(app, msgId, ack.toBuffer(), proto, rec.d.flow?.remoteAddress ?? '', rec.d.flow?.remotePort ?? 0, newUuid(), undefined);
      if (rec.canceled) this.#teardown(rec, 'ACK-BYE due to cancel race condition');
      return;
    }
    const explicitSeq = /^\s*(\d+)/.exec(sip.headers.find((h) => h.key === 'cseq')?.value ?? '')?.[1];
    const req = this.#buildInDialog(rec, method, method === 'PRACK' || sip.uri.includes('placeholder') ? undefined : sip.uri, rec.d.nextSeq(explicitSeq ? Number(explicitSeq) : undefined));
    if ((method === 'INVITE' || method === 'SUBSCRIBE' || method === 'REFER') && !sip.headers.some((h) => h.key === 'contact')) req.add('Contact', rec.d.localContact);
    if (method === 'PRACK' && !sip.headers.some((h) => h.key === 'rack')) {
      const rseq = rec.lastRseq;
      if (rseq !== undefined) req.add('RAck', `${rseq} ${rec.inviteSeq ?? rec.d.localSeq} INVITE`);
    }
    this.#applyAppHeaders(req, sip.headers, rec.lp, IN_DIALOG_FIXED);
    const bodyErr = this.#applyBody(req, sip);
    if (bodyErr) return app.reply(msgId, ['NOK', `Server error: ${bodyErr}`]);
    if (method === 'INVITE' || method === 'UPDATE' || method === 'SUBSCRIBE' || method === 'REFER') {
      const c = req.get('contact');
      if (c && method !== 'UPDATE') rec.d.localContact = c;
    }
    let dest: Destination;
    try {
      dest = await this.#dialogDestination(rec);
    } catch (err) {
      return app.reply(msgId, ['NOK', `Server error: ${(err as Error).message}`]);
    }
    const t: AppTxn = { id: newUuid(), app, req, dest, dialogId: rec.id, dialog: rec, canceled: false, lp: rec.lp };
    this.appTxns.set(t.id, t);
    // §8.1: BYE while our own re-INVITE is pending: CANCEL it first.
    if (method === 'BYE' && rec.reinviteOut?.handle) this.txl.sendCancel(rec.reinviteOut.handle);
    if (method === 'INVITE') rec.reinviteOut = t;
    const wire = req.toBuffer();
    this.#replySent(app, msgId, wire, dest.protocol, dest.host, dest.port, t.id, undefined);
    t.handle = this.txl.request(req, dest, this.#clientTu(t), wire);
  }

  #onAppCancel(app: AppSession, msgId: string, txnId: string, sip: AppSip): void {
    const t = this.appTxns.get(txnId);
    if (!t || !t.handle || t.req.method !== 'INVITE') return app.reply(msgId, ['NOK', `unable to cancel unknown transaction id: ${txnId}`]);
    t.canceled = true;
    const rec = this.dialogs.get(t.dialogId);
    if (rec) rec.canceled = true;
    const extra = sip.headers.filter((h) => !CANCEL_UNSAFE.has(h.key)).map((h) => field(wireHeaderName(h.name), h.value));
    const cancel = this.txl.sendCancel(t.handle, extra);
    this.#replySent(app, msgId, cancel.toBuffer(), t.dest.protocol, t.dest.host, t.dest.port, newUuid(), undefined);
  }

  // ───────────────────────────── app responses (§9.2) ─────────────────────────────

  #onAppResponse(app: AppSession, msgId: string, txnId: string, sip: AppSip): void {
    const n = this.netTxns.get(txnId);
    if (!n) {
      const any = [...this.#netByTxn.values()].find((x) => x.id === txnId);
      if (any?.req.method === 'CANCEL') return app.reply(msgId, ['NOK', '200 OK to incoming CANCEL is automatically generated by the stack']);
      return app.reply(msgId, ['NOK', 'Response not sent due to unknown transaction']);
    }
    const req = n.req;
    const status = sip.status;
    const method = req.method;
    const creates = method === 'INVITE' || method === 'SUBSCRIBE';
    const lp = this.#lpForFlow(n.flow);
    // To tag: the app's, else one per transaction (§9.2).
    const appTo = sip.headers.find((h) => h.key === 'to')?.value;
    const appTag = appTo ? /tag=([^;>\s]+)/.exec(appTo)?.[1] : undefined;
    if (req.toTag) n.toTag = req.toTag;
    else if (appTag) n.toTag = appTag;
    else if (status > 100 && !n.toTag) n.toTag = newTag();
    const res = createResponse(req, status, sip.reason || reasonPhrase(status), status > 100 ? n.toTag : undefined);
    const reliable1xx = status > 100 && status < 200 && method === 'INVITE' && sip.headers.some((h) => (h.key === 'require') && /100rel/i.test(h.value));
    if (reliable1xx) {
      const supported = [...req.getAll('supported'), ...req.getAll('require')].some((v) => /100rel/i.test(v));
      if (!supported) return app.reply(msgId, ['NOK', 'Remote endpoint does not support 100rel']);
    }
    // §12.1.1: Record-Route is copied into dialog-creating responses.
    if (creates && !req.toTag && status > 100 && status < 300) for (const rr of req.getAll('record-route')) res.add('Record-Route', rr);
    this.#applyAppHeaders(res, sip.headers, lp, RESPONSE_FIXED);
    if (creates && (status >= 200 && status < 300 || reliable1xx) && !res.has('contact')) res.add('Contact', `<${transportUri(lp)}>`);
    const bodyErr = this.#applyBody(res, sip);
    if (bodyErr) return app.reply(msgId, ['NOK', bodyErr]);

    // Dialog bookkeeping (§11).
    let dialogId: string | undefined = creates ? dialogIdOf(req.callId, req.fromTag) : n.dialog?.id;
    if (n.kind === 'new' && creates && (reliable1xx || (status >= 200 && status < 300))) {
      let rec = n.dialog;
      if (!rec) {
        if (this.dialogs.has(dialogId!) && status >= 200) {
          // a second fork of a forked INVITE after the call was answered.
          void this.#respondLocal(n, 480);
          return app.reply(msgId, ['NOK', 'dialog already exists, rejecting this request']);
        }
        rec = this.#createUasDialog(n, res, lp, reliable1xx ? 'Early' : 'Confirmed');
      } else if (status >= 200) {
        rec.d.transition('Confirmed');
      }
      dialogId = rec.id;
    }
    if (reliable1xx) {
      n.rseq = (n.rseq ?? Math.floor(Math.random() * 1000) + 1) + (n.rseq === undefined ? 0 : 1);
      res.set('RSeq', String(n.rseq));
      if (n.dialog) n.dialog.lastRseq = n.rseq;
    }
    // Serialized once: sent, retransmitted and echoed to the app from these bytes.
    const wire = res.toBuffer();
    if (status >= 200) {
      this.#dropNetTxn(n, method === 'INVITE' && status < 300);
      if (n.dialog && n.dialog.reinviteIn === n) n.dialog.reinviteIn = undefined;
      if (method === 'INVITE') {
        if (status < 300) {
          const rec = n.dialog!;
          this.#start2xx(rec, res, n.flow, req.cseq.seq, n, wire);
          if (n.kind === 'new') this.#cdr('start', 'application', res, 'uas');
        } else {
          if (n.dialog && n.kind === 'new' && n.dialog.d.state === 'Early') this.#deleteDialog(n.dialog);
          if (n.kind === 'new') this.#cdr('stop', 'application', res, 'call-rejected');
        }
      }
      if (method === 'NOTIFY' && n.dialog && n.dialog.method === 'SUBSCRIBE' && this.dialogs.get(n.dialog.id) !== n.dialog) {
        /* already ended by the terminated NOTIFY */
      }
    }
    if (reliable1xx) this.#startReliable1xx(n, res);
    // (a failed send is logged by onServerTransportError; respond's promise is pre-handled)
    void n.txn.respond(res, wire);
    this.#replySent(app, msgId, wire, n.flow.protocol, n.flow.remoteAddress, n.flow.remotePort, n.id, creates ? (dialogId ?? '') : (n.dialog?.id ?? ''));
  }

  #lpForFlow(flow: Flow): ListenPoint {
    return this.#lps.find((lp) => lp.protocol === flow.protocol && lp.port === flow.localPort && (lp.host === flow.localAddress || lp.host === '0.0.0.0' || lp.host === '::')) ?? this.#lps.find((lp) => lp.protocol === flow.protocol) ?? this.#lps[0]!;
  }

  #createUasDialog(n: NetTxn, res: SipResponse, lp: ListenPoint, state: 'Early' | 'Confirmed'): DialogRec {
    const req = n.req;
    const d = new Dialog({
      role: 'uas',
      callId: req.callId,
      localTag: n.toTag!,
      remoteTag: req.fromTag ?? '',
      // §12.1.1: "The route set MUST be set to the list of URIs in the Record-Route header
      // field from the request, taken in order".
      routeSet: req.getAll('record-route'),
      remoteTarget: req.contacts[0]?.uri ?? req.from.uri,
      localUri: req.get('to')!,
      remoteUri: req.get('from')!,
      localContact: res.get('contact') ?? `<${transportUri(lp)}>`,
      localSeq: Math.floor(Math.random() * 10000) + 1,
      remoteSeq: req.cseq.seq,
      usage: req.method === 'SUBSCRIBE' ? 'subscribe' : 'invite',
      flow: n.flow,
      state,
    });
    const rec: DialogRec = { id: dialogIdOf(req.callId, req.fromTag), d, app: n.app, lp, method: req.method as 'INVITE' | 'SUBSCRIBE' };
    if (!peerAllowsReuse(req, n.flow)) rec.targetOnly = true;
    n.dialog = rec;
    this.#addDialog(rec);
    return rec;
  }

  /**
   * §13.3.1.4: "the UAS core ... MUST retransmit the 2xx ... starting at T1 and doubling until
   * it reaches T2" until the ACK arrives; "If the server retransmits the 2xx response for 64*T1
   * seconds without receiving an ACK, the dialog is confirmed, but the session SHOULD be
   * terminated" (drachtio: BYE with Reason "ACK timeout").
   */
  #start2xx(rec: DialogRec, res: SipResponse, flow: Flow, seq: number, net: NetTxn, wire: Buffer): void {
    this.#stop2xx(rec);
    const T1 = this.timers.T1;
    const p: Pending2xx = { seq, res, wire, flow, interval: T1, deadline: this.clock.now() + 64 * T1, net };
    rec.pending2xx = p;
    p.slot = this.#first2xxQueue(flow).add(p);
  }

  /**
   * Every 2xx waits the same first interval (T1 over UDP, the whole 64*T1 over a reliable
   * transport) and almost every one is ACKed within it: that wait is a slot in a shared queue,
   * not a timer per call. Later waits (no ACK yet) are timers of their own.
   */
  #first2xxQueue(flow: Flow): FixedDelayQueue<Pending2xx> {
    return flow.reliable ? this.#first2xxReliable : this.#first2xx;
  }

  /** One 2xx retransmission step: resend (UDP) and wait again, or end the session at the deadline. */
  readonly #tick2xx = (p: Pending2xx): void => {
    const rec = p.net.dialog;
    if (!rec || rec.pending2xx !== p) return;
    p.slot = undefined;
    const left = p.deadline - this.clock.now();
    // (< 1: timers run on the loop's whole-millisecond clock and may land a fraction early)
    if (left < 1) {
      this.#stop2xx(rec);
      this.#teardown(rec, 'ACK timeout');
      return;
    }
    void this.transport.sendResponse(p.res, p.flow, p.wire).catch(() => {});
    p.interval = Math.min(p.interval * 2, this.timers.T2);
    p.timer = this.clock.setTimeout(() => this.#tick2xx(p), Math.min(p.interval, left));
  };

  #stop2xx(rec: DialogRec): void {
    const p = rec.pending2xx;
    if (!p) return;
    if (p.slot !== undefined) this.#first2xxQueue(p.flow).cancel(p.slot, p);
    this.clock.clearTimeout(p.timer);
    rec.pending2xx = undefined;
    // A CANCEL for the INVITE can no longer change anything (see #dropNetTxn).
    if (this.#netByTxn.get(p.net.txn) === p.net) this.#netByTxn.delete(p.net.txn);
  }

  /** RFC 3262 §3: retransmit a reliable provisional with T1 doubling until PRACKed (UDP only). */
  #startReliable1xx(n: NetTxn, res: SipResponse): void {
    const rseq = n.rseq!;
    n.unacked ??= new Map();
    const u = { res, interval: this.timers.T1, started: this.clock.now() } as { res: SipResponse; timer?: TimerHandle; interval: number; started: number };
    n.unacked.set(rseq, u);
    if (n.flow.reliable) return;
    const tick = () => {
      if (n.unacked?.get(rseq) !== u || n.txn.finalSent) return;
      if (this.clock.now() - u.started >= 64 * this.timers.T1) {
        // "the UAS SHOULD reject the original request with a 5xx response"
        n.unacked.delete(rseq);
        void this.#respondLocal(n, 504);
        return;
      }
      void this.transport.sendResponse(res, n.flow).catch(() => {});
      u.interval *= 2;
      u.timer = this.clock.setTimeout(tick, u.interval);
    };
    u.timer = this.clock.setTimeout(tick, u.interval);
  }

  // ───────────────────────────── proxy (§13) ─────────────────────────────

  #onAppProxy(app: AppSession, m: WireMessage): void {
    void this.proxy.handle(app, m);
  }


}

/**
 * Per-method / per-status SIP message counts, in and out. Counted per message without building
 * a key string (method → status → counter); the `${method} ${status}` maps the Prometheus
 * exporter reads are assembled when asked for.
 */
export class TrafficCounters {
  readonly #reqIn = new Map<string, Counter>();
  readonly #reqOut = new Map<string, Counter>();
  readonly #resIn = new Map<string, Map<number, Counter>>();
  readonly #resOut = new Map<string, Map<number, Counter>>();

  in(msg: SipMessage): void {
    if (msg instanceof SipRequest) count(this.#reqIn, msg.method);
    else countResponse(this.#resIn, msg as SipResponse);
  }

  out(msg: SipMessage): void {
    if (msg instanceof SipRequest) count(this.#reqOut, msg.method);
    else countResponse(this.#resOut, msg as SipResponse);
  }

  get requestsIn(): Map<string, number> {
    return flat(this.#reqIn);
  }

  get requestsOut(): Map<string, number> {
    return flat(this.#reqOut);
  }

  /** key: `${method} ${status}` */
  get responsesIn(): Map<string, number> {
    return flatResponses(this.#resIn);
  }

  /** key: `${method} ${status}` */
  get responsesOut(): Map<string, number> {
    return flatResponses(this.#resOut);
  }
}

interface Counter {
  n: number;
}

function count(map: Map<string, Counter>, k: string): void {
  const c = map.get(k);
  if (c) c.n++;
  else map.set(k, { n: 1 });
}

function countResponse(map: Map<string, Map<number, Counter>>, res: SipResponse): void {
  let m = '';
  try {
    m = res.cseq.method;
  } catch {
    /* counted without method */
  }
  let byStatus = map.get(m);
  if (!byStatus) map.set(m, (byStatus = new Map()));
  const c = byStatus.get(res.status);
  if (c) c.n++;
  else byStatus.set(res.status, { n: 1 });
}

function flat(map: Map<string, Counter>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, c] of map) out.set(k, c.n);
  return out;
}

function flatResponses(map: Map<string, Map<number, Counter>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [m, byStatus] of map) for (const [status, c] of byStatus) out.set(`${m} ${status}`, c.n);
  return out;
}

/** Headers of an app in-dialog request that the dialog always determines. */
const IN_DIALOG_FIXED = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'route', 'record-route', 'max-forwards', 'content-length', 'rseq']);
/** Well-known headers an app value replaces instead of adding (§5). */
const WELL_KNOWN_SINGLE = new Set(['from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'content-type', 'require', 'supported', 'session-expires', 'min-se', 'refer-to', 'replaces', 'p-asserted-identity', 'authorization', 'proxy-authorization', 'expires', 'event', 'subscription-state', 'rack', 'allow', 'user-agent', 'server', 'referred-by', 'subject']);

/*
 * Map keys built with join() are flat strings: a template literal makes a rope that is hashed
 * through a temporary copy on every lookup and keeps the slices of the parsed message alive.
 */
function localKey(callId: string, localTag: string): string {
  return [callId, localTag].join('\n');
}

/** Two stream connections, not the same one: a retry came another way (Teams §1.10). */
function otherConnection(first: Flow, retry: Flow): boolean {
  return first.reliable && retry.reliable && first.connectionId !== retry.connectionId;
}

/** `res` addressed to `req` instead: its Via headers, everything else as it was sent. */
function readdressed(res: SipResponse, req: SipRequest): SipResponse {
  return new SipResponse(res.status, res.reason, [...req.headers.filter((h) => h.key === 'via'), ...res.headers.filter((h) => h.key !== 'via')], res.body);
}

/** The drachtio dialog id: `<Call-ID>;from-tag=<tag of the creating request's From>`. */
function dialogIdOf(callId: string, fromTag: string | undefined): string {
  return [callId, ';from-tag=', String(fromTag)].join('');
}

function withTag(value: string, tag: string): string {
  if (!tag || /;\s*tag=/i.test(value)) return value;
  return `${value};tag=${tag}`;
}

function tryUri(s: string) {
  try {
    return parseUri(s.startsWith('sip') ? s : `sip:${s}`);
  } catch {
    return undefined;
  }
}

export type { DialogRec };
