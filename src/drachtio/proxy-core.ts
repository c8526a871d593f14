import { type TimerHandle, type Clock } from '../util/clock.js';
import { newBranch } from '../util/ids.js';
import { SipRequest, SipResponse, parseMessage, parseNameAddr, parseUri, formatHost } from '../sip/message/index.js';
import { createResponse } from '../sip/transaction/response.js';
import type { TransactionLayer } from '../sip/transaction/transaction-layer.js';
import type { ClientTransactionHandle, ServerTransactionHandle } from '../sip/transaction/types.js';
import type { Destination, Flow, ListenPoint, Protocol, TransportSender } from '../sip/transport/types.js';
import type { AppSession } from './app-session.js';
import { parseAppSip, wireHeaderName } from './app-sip.js';
import { chooseListenPoint, isOwnAddress } from './contacts.js';
import type { NetTxn } from './records.js';
import type { Logger } from './types.js';
import type { WireMessage } from './wire/codec.js';
import { wireTime } from './wire/codec.js';

/** What the proxy needs from the server. */
export interface ProxyContext {
  log: Logger;
  clock: Clock;
  txl: TransactionLayer;
  transport: TransportSender;
  listenPoints(): ListenPoint[];
  /** Takes a pending network request away from app ownership (the proxy answers it now). */
  takeNetTxn(id: string): NetTxn | undefined;
  resolve(host: string): Promise<string>;
  cdr(kind: 'attempt' | 'start' | 'stop', source: 'network' | 'application', msg: SipRequest | SipResponse, extra?: string): void;
}

interface Branch {
  target: string;
  handle?: ClientTransactionHandle;
  done: boolean;
  gotProvisional: boolean;
  timer?: TimerHandle;
  flow?: Flow;
}

/** `2s`, `1500ms`, `` → milliseconds or undefined. */
function duration(s: string | undefined): number | undefined {
  const m = /^(\d+)(ms|s)?$/.exec((s ?? '').trim());
  if (!m) return undefined;
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

const OWN_ROUTE_PARAM = 'lr';

/**
 * RFC 3261 §16 stateful proxy for the drachtio `proxy` command (wire protocol §13): serial or
 * simultaneous forking, Record-Route, provisional/final timeouts, redirects, and the
 * `continue`/`done` reports to the app. Later in-dialog requests carrying our Route are
 * forwarded by {@link ProxyCore.forwardInDialog}.
 */
export class ProxyCore {
  readonly #ctx: ProxyContext;
  /** Active proxy operations (for stats/close). */
  readonly active = new Set<ProxyOperation>();

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  async handle(app: AppSession, m: WireMessage): Promise<void> {
    const [txnId = '', remain, full, follow, forking, provTo, finalTo, ...dests] = m.args;
    const targets = dests.filter(Boolean);
    if (!txnId || targets.length === 0) return app.reply(m.msgId, ['NOK', 'Invalid proxy request: not enough information provided']);
    const n = this.#ctx.takeNetTxn(txnId);
    if (!n) return app.reply(m.msgId, ['NOK', `Unknown transaction id: ${txnId}`]);
    await this.#start(n, app, m.msgId, {
      recordRoute: remain === 'remainInDialog',
      fullResponse: full === 'fullResponse',
      followRedirects: follow === 'followRedirects',
      simultaneous: forking === 'simultaneous',
      provisionalTimeout: duration(provTo),
      finalTimeout: duration(finalTo),
      targets,
      extra: parseAppSip(m.body)?.headers ?? [],
    });
  }

  /**
   * Proxies a pending request on the server's own initiative, with no app to report to (the
   * request handler `proxy` action, §15). Timeouts as `5s` / `1500ms`.
   */
  async handleLocal(
    txnId: string,
    plan: { targets: string[]; recordRoute: boolean; followRedirects: boolean; simultaneous: boolean; provisionalTimeout: string; finalTimeout: string },
  ): Promise<void> {
    const n = this.#ctx.takeNetTxn(txnId);
    if (!n) return;
    await this.#start(n, undefined, '', {
      ...plan,
      fullResponse: false,
      provisionalTimeout: duration(plan.provisionalTimeout),
      finalTimeout: duration(plan.finalTimeout),
      extra: [],
    });
  }

  async #start(n: NetTxn, app: AppSession | undefined, msgId: string, plan: ProxyPlan): Promise<void> {
    const mf = n.req.maxForwards;
    if (mf !== undefined && mf <= 0) {
      void n.txn.respond(createResponse(n.req, 483)).catch(() => {});
      return app?.reply(msgId, ['NOK', 'Rejected with 483 Too Many Hops due to Max-Forwards value of 0']);
    }
    const op = new ProxyOperation(this.#ctx, this, app, msgId, n, plan);
    this.active.add(op);
    n.onCancel = () => op.cancel();
    await op.start();
  }

  /**
   * RFC 3261 §16.4/§16.12: an in-dialog request whose top Route names us (we Record-Routed):
   * remove that entry and forward statefully to the next Route or the Request-URI.
   * Returns false when the request is not for the proxy.
   */
  routedToUs(req: SipRequest): boolean {
    const top = req.getAll('route')[0];
    if (!top) return false;
    try {
      const u = parseUri(parseNameAddr(top).uri);
      return isOwnAddress(this.#ctx.listenPoints(), u.host, u.port) && u.params.has(OWN_ROUTE_PARAM);
    } catch {
      return false;
    }
  }

  async forwardInDialog(req: SipRequest, txn: ServerTransactionHandle | undefined): Promise<void> {
    const fwd = cloneRequest(req);
    fwd.removeFirst('route');
    const next = fwd.getAll('route')[0];
    const uriText = next ? parseNameAddr(next).uri : fwd.uri;
    let dest: Destination;
    try {
      dest = await destinationFor(this.#ctx, uriText);
    } catch {
      if (txn) void txn.respond(createResponse(req, 502)).catch(() => {});
      return;
    }
    const lp = chooseListenPoint(this.#ctx.listenPoints(), dest.host, dest.protocol)!;
    addVia(fwd, lp);
    decrementMaxForwards(fwd);
    if (!txn) {
      // ACK for a 2xx: forwarded statelessly (§16.11 / §16.6).
      void this.#ctx.transport.send(fwd, dest).catch(() => {});
      return;
    }
    this.#ctx.txl.request(fwd, dest, {
      onResponse: (res) => {
        if (res.status === 100) return;
        void txn.respond(stripVia(res)).catch(() => {});
      },
      onTimeout: () => void txn.respond(createResponse(req, 408)).catch(() => {}),
      onTransportError: () => void txn.respond(createResponse(req, 503)).catch(() => {}),
    });
  }
}

interface ProxyPlan {
  recordRoute: boolean;
  fullResponse: boolean;
  followRedirects: boolean;
  simultaneous: boolean;
  provisionalTimeout: number | undefined;
  finalTimeout: number | undefined;
  targets: string[];
  extra: { name: string; key: string; value: string }[];
}

class ProxyOperation {
  readonly #ctx: ProxyContext;
  readonly #owner: ProxyCore;
  /** undefined: proxying on the server's own initiative (request handler), nothing to report. */
  readonly #app: AppSession | undefined;
  readonly #msgId: string;
  readonly #n: NetTxn;
  readonly #plan: ProxyPlan;
  readonly #branches: Branch[] = [];
  #queue: string[];
  #best: SipResponse | undefined;
  #finished = false;
  #sentAny = false;

  constructor(ctx: ProxyContext, owner: ProxyCore, app: AppSession | undefined, msgId: string, n: NetTxn, plan: ProxyPlan) {
    this.#ctx = ctx;
    this.#owner = owner;
    this.#app = app;
    this.#msgId = msgId;
    this.#n = n;
    this.#plan = plan;
    this.#queue = [...plan.targets];
  }

  async start(): Promise<void> {
    if (!this.#plan.fullResponse) this.#app?.reply(this.#msgId, ['OK', 'done']);
    if (this.#plan.simultaneous) {
      const all = this.#queue.splice(0);
      await Promise.all(all.map((t) => this.#launch(t)));
    } else {
      await this.#next();
    }
    this.#maybeFinish();
  }

  async #next(): Promise<void> {
    while (this.#queue.length && !this.#finished) {
      const t = this.#queue.shift()!;
      if (await this.#launch(t)) return;
    }
  }

  /** Starts one branch; false if it could not be sent at all. */
  async #launch(target: string): Promise<boolean> {
    const b: Branch = { target, done: false, gotProvisional: false };
    this.#branches.push(b);
    const req = this.#n.req;
    let dest: Destination;
    try {
      dest = await destinationFor(this.#ctx, target);
    } catch {
      b.done = true;
      return false;
    }
    const lps = this.#ctx.listenPoints();
    const lp = chooseListenPoint(lps, dest.host, dest.protocol) ?? lps[0]!;
    dest.protocol = lp.protocol;
    const fwd = cloneRequest(req);
    // §16.6 step 1–2: R-URI replaced only when the request was addressed to us.
    const ru = req.parsedUri;
    if (ru.scheme !== 'tel' && isOwnAddress(lps, ru.host, ru.port)) fwd.uri = target.startsWith('sip') ? target : `sip:${target}`;
    // Remove a pre-loaded Route naming us.
    if (this.#owner.routedToUs(fwd)) fwd.removeFirst('route');
    decrementMaxForwards(fwd);
    if (this.#plan.recordRoute) {
      const host = formatHost(lp.externalIp ?? lp.host);
      const rr = `<sip:${host}:${lp.port}${lp.protocol === 'udp' ? '' : `;transport=${lp.protocol}`};lr>`;
      if (req.method === 'REGISTER') {
        fwd.prepend('Path', rr);
        fwd.set('Require', 'path');
      } else {
        fwd.prepend('Record-Route', rr);
      }
    }
    for (const h of this.#plan.extra) {
      if (['via', 'route', 'record-route', 'content-length', 'call-id', 'cseq', 'from', 'to', 'max-forwards'].includes(h.key)) continue;
      fwd.set(wireHeaderName(h.name), h.value);
    }
    addVia(fwd, lp);
    if (req.method === 'INVITE') this.#ctx.cdr('attempt', 'application', fwd);
    this.#sentAny = true;
    b.handle = this.#ctx.txl.request(fwd, dest, {
      onResponse: (res, flow) => this.#onResponse(b, res, flow),
      onTimeout: () => this.#onFinal(b, createResponse(fwd, 408), undefined),
      onTransportError: () => this.#onFinal(b, createResponse(fwd, 503), undefined),
    });
    if (this.#plan.provisionalTimeout && !this.#plan.simultaneous) {
      b.timer = this.#ctx.clock.setTimeout(() => {
        if (!b.gotProvisional && !b.done) this.#abandon(b);
      }, this.#plan.provisionalTimeout);
    }
    if (this.#plan.finalTimeout) {
      this.#ctx.clock.setTimeout(() => {
        if (!b.done) this.#abandon(b);
      }, this.#plan.finalTimeout);
    }
    return true;
  }

  #abandon(b: Branch): void {
    if (b.handle && b.handle.provisionalReceived) this.#ctx.txl.sendCancel(b.handle);
    else b.handle?.close();
    this.#onFinal(b, createResponse(this.#n.req, 408), undefined);
  }

  #onResponse(b: Branch, res: SipResponse, flow: Flow): void {
    if (b.done && res.status < 200) return;
    if (res.status === 100) return;
    if (res.status < 200) {
      b.gotProvisional = true;
      this.#ctx.clock.clearTimeout(b.timer);
      if (!this.#finished) void this.#n.txn.respond(stripVia(res)).catch(() => {});
      return;
    }
    this.#onFinal(b, res, flow);
  }

  #report(res: SipResponse, flow: Flow | undefined): void {
    if (!this.#plan.fullResponse || !this.#app || this.#app.closed) return;
    const text = res.raw ? res.raw.toString('utf8') : res.toString();
    const fields = ['OK', 'network', String(Buffer.byteLength(text)), flow?.protocol ?? 'udp', flow?.remoteAddress ?? '', String(flow?.remotePort ?? ''), wireTime(), '', '', 'continue'];
    this.#app.reply(this.#msgId, fields, text);
  }

  #onFinal(b: Branch, res: SipResponse, flow: Flow | undefined): void {
    if (res.status >= 200 && res.status < 300) {
      // 2xx: forward at once (also later 2xx from other forks, §16.7 step 5), CANCEL the rest.
      this.#report(res, flow);
      void this.#n.txn.respond(stripVia(res)).catch(() => {});
      if (!b.done) {
        b.done = true;
        this.#ctx.clock.clearTimeout(b.timer);
      }
      if (!this.#finished) {
        if (this.#n.req.method === 'INVITE') this.#ctx.cdr('start', 'application', res, 'proxy-uas');
        this.#cancelOthers(b);
        this.#finish(undefined);
      }
      return;
    }
    if (b.done) return;
    b.done = true;
    this.#ctx.clock.clearTimeout(b.timer);
    this.#report(res, flow);
    if (res.status >= 300 && res.status < 400 && this.#plan.followRedirects && !this.#finished) {
      for (const c of res.contacts) this.#queue.push(c.uri);
    }
    if (!this.#best || rank(res) < rank(this.#best)) this.#best = res;
    // 401/407 end the search and go upstream.
    if ((res.status === 401 || res.status === 407) && !this.#finished) {
      this.#cancelOthers(b);
      this.#finish(res);
      return;
    }
    if (res.status >= 600 && !this.#finished) {
      this.#cancelOthers(b);
      this.#finish(res);
      return;
    }
    if (!this.#finished && this.#queue.length && (!this.#plan.simultaneous || this.#branches.every((x) => x.done))) {
      if (this.#plan.simultaneous) {
        const all = this.#queue.splice(0);
        void Promise.all(all.map((t) => this.#launch(t))).then(() => this.#maybeFinish());
      } else {
        void this.#next().then(() => this.#maybeFinish());
      }
      return;
    }
    this.#maybeFinish();
  }

  #cancelOthers(winner: Branch): void {
    this.#queue = [];
    for (const x of this.#branches) {
      if (x === winner || x.done) continue;
      x.done = true;
      this.#ctx.clock.clearTimeout(x.timer);
      if (x.handle) this.#ctx.txl.sendCancel(x.handle, [{ name: 'Reason', key: 'reason', value: 'SIP;cause=200;text="Call completed elsewhere"' }]);
    }
  }

  #maybeFinish(): void {
    if (this.#finished) return;
    if (this.#queue.length || this.#branches.some((b) => !b.done)) return;
    if (!this.#sentAny) {
      this.#finished = true;
      this.#owner.active.delete(this);
      void this.#n.txn.respond(createResponse(this.#n.req, 500)).catch(() => {});
      if (this.#plan.fullResponse) this.#app?.reply(this.#msgId, ['NOK', 'error proxying request to ']);
      return;
    }
    this.#finish(this.#best ?? createResponse(this.#n.req, 408));
  }

  /** §16.7 step 6: forward the best final response when no 2xx came. */
  #finish(best: SipResponse | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#owner.active.delete(this);
    if (best && !this.#n.txn.finalSent) {
      const up = best.raw ? stripVia(best) : createResponse(this.#n.req, best.status, best.reason);
      void this.#n.txn.respond(up).catch(() => {});
    }
    if (this.#plan.fullResponse && this.#app && !this.#app.closed) this.#app.reply(this.#msgId, ['OK', 'done']);
  }

  /** CANCEL from upstream: the transaction layer already sent 200 + 487; cancel every branch (§16.10). */
  cancel(): void {
    this.#queue = [];
    for (const b of this.#branches) {
      if (b.done) continue;
      b.done = true;
      this.#ctx.clock.clearTimeout(b.timer);
      if (b.handle) this.#ctx.txl.sendCancel(b.handle);
    }
    this.#finish(undefined);
  }
}

/** Lower is better (§16.7 step 6: prefer 6xx, then 401/407/415/420/484, then the lowest class). */
function rank(res: SipResponse): number {
  if (res.status >= 600) return 0;
  if ([401, 407, 415, 420, 484].includes(res.status)) return 1;
  if (res.status === 503) return 5000;
  return res.status;
}

function cloneRequest(req: SipRequest): SipRequest {
  const c = parseMessage(req.raw ?? req.toBuffer()) as SipRequest;
  c.raw = undefined;
  return c;
}

function addVia(msg: SipRequest, lp: ListenPoint): void {
  const host = formatHost(lp.externalIp ?? lp.host);
  msg.prepend('Via', `SIP/2.0/${lp.protocol.toUpperCase()} ${host}:${lp.port};branch=${newBranch()};rport`);
}

function decrementMaxForwards(msg: SipRequest): void {
  const mf = msg.maxForwards;
  msg.set('Max-Forwards', String(mf === undefined ? 70 : Math.max(0, mf - 1)));
}

/** §16.7 step 3: the response forwarded upstream loses our (top) Via. */
function stripVia(res: SipResponse): SipResponse {
  const c = parseMessage(res.raw ?? res.toBuffer()) as SipResponse;
  c.raw = undefined;
  c.removeFirst('via');
  return c;
}

async function destinationFor(ctx: ProxyContext, target: string): Promise<Destination> {
  const u = parseUri(target.startsWith('sip') ? target : `sip:${target}`);
  const t = u.params.get('transport')?.toLowerCase();
  const protocol: Protocol = t === 'tcp' || t === 'tls' || t === 'udp' ? t : u.scheme === 'sips' ? 'tls' : 'udp';
  const host = await ctx.resolve(u.host);
  return { protocol, host, port: u.port ?? (protocol === 'tls' ? 5061 : 5060) };
}

