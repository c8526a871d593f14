import { FakeClock } from '../../../../src/util/clock.js';
import { type SipMessage, SipRequest, SipResponse } from '../../../../src/sip/message/index.js';
import type { Destination, Flow, TransportSender } from '../../../../src/sip/transport/types.js';
import { createResponse } from '../../../../src/sip/transaction/response.js';
import { TransactionLayer, type TransactionLayerOptions } from '../../../../src/sip/transaction/transaction-layer.js';
import type {
  ClientTransactionUser,
  ServerCore,
  ServerTransactionHandle,
  TimerSettings,
} from '../../../../src/sip/transaction/types.js';

export interface Sent {
  at: number;
  msg: SipMessage;
  dest?: Destination;
  flow?: Flow;
  /** The bytes the transaction handed over with the message (it serializes each one once). */
  wire?: Buffer;
}

/**
 * In-memory double of the transport boundary: records every message handed to it with the
 * FakeClock time, and can be told to fail.
 */
export class RecordingTransport implements TransportSender {
  readonly sent: Sent[] = [];
  failSend: ((msg: SipMessage) => boolean) | undefined;
  failResponse: ((res: SipResponse) => boolean) | undefined;

  constructor(readonly clock: FakeClock) {}

  send(msg: SipMessage, dest: Destination): Promise<Flow> {
    this.sent.push({ at: this.clock.now(), msg, dest });
    if (this.failSend?.(msg)) return Promise.reject(new Error('connect ECONNREFUSED'));
    return Promise.resolve({
      protocol: dest.protocol,
      localAddress: '127.0.0.1',
      localPort: 5060,
      remoteAddress: dest.host,
      remotePort: dest.port,
      reliable: dest.protocol !== 'udp',
      ...(dest.protocol !== 'udp' ? { connectionId: 7 } : {}),
    });
  }

  sendResponse(res: SipResponse, flow: Flow, wire?: Buffer): Promise<void> {
    this.sent.push({ at: this.clock.now(), msg: res, flow, ...(wire ? { wire } : {}) });
    if (this.failResponse?.(res)) return Promise.reject(new Error('connection reset'));
    return Promise.resolve();
  }

  requests(method?: string): SipRequest[] {
    return this.sent.map((s) => s.msg).filter((m): m is SipRequest => m instanceof SipRequest && (!method || m.method === method));
  }

  responses(status?: number): SipResponse[] {
    return this.sent.map((s) => s.msg).filter((m): m is SipResponse => m instanceof SipResponse && (status === undefined || m.status === status));
  }

  /** Times at which requests of `method` were handed to the transport. */
  requestTimes(method: string): number[] {
    return this.sent.filter((s) => s.msg instanceof SipRequest && s.msg.method === method).map((s) => s.at);
  }

  responseTimes(status: number): number[] {
    return this.sent.filter((s) => s.msg instanceof SipResponse && s.msg.status === status).map((s) => s.at);
  }

  clear(): void {
    this.sent.length = 0;
  }
}

export const UDP_DEST: Destination = { protocol: 'udp', host: '127.0.0.9', port: 5080 };
export const TCP_DEST: Destination = { protocol: 'tcp', host: '127.0.0.9', port: 5080 };

export function flowOf(protocol: 'udp' | 'tcp' | 'tls' = 'udp', remotePort = 5062): Flow {
  return {
    protocol,
    localAddress: '127.0.0.1',
    localPort: 5060,
    remoteAddress: '127.0.0.2',
    remotePort,
    reliable: protocol !== 'udp',
    ...(protocol === 'udp' ? {} : { connectionId: 7 }),
  };
}

export interface ReqOpts {
  branch?: string;
  sentBy?: string;
  transport?: string;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  cseq?: number;
  uri?: string;
  routes?: string[];
  extraVia?: string;
}

let seq = 0;
export function uniq(): string {
  return `${++seq}x${Math.random().toString(36).slice(2, 8)}`;
}

/** A request as a UA would send it (top Via with branch, tags, CSeq). */
export function makeRequest(method: string, o: ReqOpts = {}): SipRequest {
  const r = new SipRequest(method, o.uri ?? 'sip:+15551234567@127.0.0.1:5060;user=phone');
  const branch = o.branch === undefined ? `z9hG4bK${uniq()}` : o.branch;
  r.add('Via', `SIP/2.0/${o.transport ?? 'UDP'} ${o.sentBy ?? '127.0.0.2:5062'}${branch ? `;branch=${branch}` : ''};rport`);
  if (o.extraVia) r.add('Via', o.extraVia);
  r.add('Max-Forwards', '70');
  for (const rt of o.routes ?? []) r.add('Route', rt);
  r.add('From', `"Alice" <sip:alice@example.com>;tag=${o.fromTag ?? 'ft-' + uniq()}`);
  r.add('To', `<sip:+15551234567@example.com>${o.toTag ? `;tag=${o.toTag}` : ''}`);
  r.add('Call-ID', o.callId ?? `cid-${uniq()}`);
  r.add('CSeq', `${o.cseq ?? 1} ${method}`);
  r.add('Contact', '<sip:alice@127.0.0.2:5062>');
  r.add('Content-Length', '0');
  return r;
}

/** The response a remote UAS would send for `req` (for client-side tests). */
export function reply(req: SipRequest, status: number, toTag?: string): SipResponse {
  return createResponse(req, status, undefined, toTag);
}

export class RecordingTu implements ClientTransactionUser {
  readonly responses: Array<{ at: number; status: number; res: SipResponse }> = [];
  readonly timeouts: number[] = [];
  readonly errors: Error[] = [];
  readonly terminated: number[] = [];

  constructor(readonly clock: FakeClock) {}

  onResponse(res: SipResponse): void {
    this.responses.push({ at: this.clock.now(), status: res.status, res });
  }
  onTimeout(): void {
    this.timeouts.push(this.clock.now());
  }
  onTransportError(err: Error): void {
    this.errors.push(err);
  }
  onTerminated(): void {
    this.terminated.push(this.clock.now());
  }

  statuses(): number[] {
    return this.responses.map((r) => r.status);
  }
}

export class RecordingCore implements ServerCore {
  readonly requests: Array<{ req: SipRequest; txn: ServerTransactionHandle | null; flow: Flow }> = [];
  readonly cancels: Array<{ cancel: SipRequest; invite: ServerTransactionHandle; answered487: boolean }> = [];
  readonly terminated: ServerTransactionHandle[] = [];
  readonly timeouts: Array<{ at: number; txn: ServerTransactionHandle }> = [];
  readonly transportErrors: Array<{ txn: ServerTransactionHandle; err: Error }> = [];
  readonly stray: SipResponse[] = [];
  /** Optional behaviour run on each new request (e.g. respond at once). */
  onNew: ((req: SipRequest, txn: ServerTransactionHandle | null) => void) | undefined;
  /** What adoptsRetry answers (default: no, so merged requests get 482). */
  adoptRetries = false;
  readonly asked: Array<{ req: SipRequest; ongoing: ServerTransactionHandle }> = [];
  readonly adopted: Array<{ req: SipRequest; txn: ServerTransactionHandle; ongoing: ServerTransactionHandle }> = [];

  constructor(readonly clock: FakeClock) {}

  onRequest(req: SipRequest, txn: ServerTransactionHandle | null, flow: Flow): void {
    this.requests.push({ req, txn, flow });
    this.onNew?.(req, txn);
  }
  adoptsRetry(req: SipRequest, ongoing: ServerTransactionHandle): boolean {
    this.asked.push({ req, ongoing });
    return this.adoptRetries;
  }
  onRetryAdopted(req: SipRequest, txn: ServerTransactionHandle, ongoing: ServerTransactionHandle): void {
    this.adopted.push({ req, txn, ongoing });
  }
  onCancel(cancel: SipRequest, invite: ServerTransactionHandle, answered487: boolean): void {
    this.cancels.push({ cancel, invite, answered487 });
  }
  onServerTerminated(txn: ServerTransactionHandle): void {
    this.terminated.push(txn);
  }
  onServerTimeout(txn: ServerTransactionHandle): void {
    this.timeouts.push({ at: this.clock.now(), txn });
  }
  onServerTransportError(txn: ServerTransactionHandle, err: Error): void {
    this.transportErrors.push({ txn, err });
  }
  onStray2xx(res: SipResponse): void {
    this.stray.push(res);
  }
}

export interface Rig {
  clock: FakeClock;
  transport: RecordingTransport;
  core: RecordingCore;
  layer: TransactionLayer;
  errors: unknown[];
}

export function rig(opts: { timers?: Partial<TimerSettings>; autoTrying?: boolean } & Partial<Pick<TransactionLayerOptions, 'onCallbackError' | 'tryingDelayMs'>> = {}): Rig {
  const clock = new FakeClock();
  const transport = new RecordingTransport(clock);
  const core = new RecordingCore(clock);
  const errors: unknown[] = [];
  const layer = new TransactionLayer({
    transport,
    core,
    clock,
    ...(opts.timers ? { timers: opts.timers } : {}),
    ...(opts.autoTrying !== undefined ? { autoTrying: opts.autoTrying } : {}),
    ...(opts.tryingDelayMs !== undefined ? { tryingDelayMs: opts.tryingDelayMs } : {}),
    onCallbackError: opts.onCallbackError ?? ((e) => errors.push(e)),
  });
  return { clock, transport, core, layer, errors };
}

/** Lets promise callbacks (transport send results) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Times t0, t0+d1, t0+d1+d2 … for the given intervals. */
export function cumulative(t0: number, intervals: number[]): number[] {
  const out = [t0];
  let t = t0;
  for (const d of intervals) out.push((t += d));
  return out;
}
