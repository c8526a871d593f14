/**
 * Connects real drachtio-srf 5.0.29 apps (inbound mode, `srf.connect`) for tests.
 *
 *   const app = await connectSrf({ host, port, secret });
 *   app.srf.invite((req, res) => res.send(486));
 *   ...
 *   await app.close();            // srf.disconnect() and wait until the socket is closed
 *
 * Connect errors (wrong secret, refused) reject; later 'error' events are collected in
 * `app.errors` instead of crashing the test process.
 */
import Srf from 'drachtio-srf';
import { withTimeout } from './net.js';

/**
 * drachtio-srf's bundled .d.ts lacks most of what the tests use (srf.options/subscribe/message,
 * promise forms of proxyRequest/destroy, createUAC progress callbacks with (err, req)...), so
 * apps are typed loosely.
 */
export type SrfInstance = any;

export interface SrfConnectOptions {
  host: string;
  port: number;
  secret: string;
  /** Optional srf tags (`new Srf(tags)`). */
  tags?: string[];
  timeoutMs?: number;
}

export interface ConnectedSrf {
  srf: SrfInstance;
  /** `hostports` from the authenticate reply, e.g. "udp/127.0.3.10:5060,tcp/127.0.3.10:5060". */
  hostports: string;
  version: string;
  localHostports: string | undefined;
  /** 'error' events emitted after the connection was established. */
  errors: Error[];
  /** srf.disconnect() and wait for the socket to close. Idempotent. */
  close(): Promise<void>;
}

const live = new Set<ConnectedSrf>();

function socketOf(srf: SrfInstance): import('node:net').Socket | undefined {
  return (srf as any)._app?.wp?.socket ?? undefined;
}

/**
 * Stops srf's wire protocol for good: srf reconnects forever after a connection error or a
 * refused authentication unless `closing` is set, so set it, cancel a pending retry and
 * destroy the socket.
 */
function hardStop(srf: SrfInstance): void {
  const wp = (srf as any)._app?.wp;
  if (!wp) return;
  wp.closing = true;
  if (wp.reconnectVars?.retryTimer) clearTimeout(wp.reconnectVars.retryTimer);
  if (wp.reconnectVars) wp.reconnectVars.retryTimer = null;
  if (wp.enablePing && wp.socket && typeof wp._stopPinging === 'function') wp._stopPinging(wp.socket);
  wp.socket?.destroy?.();
}

export async function connectSrf(opts: SrfConnectOptions): Promise<ConnectedSrf> {
  const srf: SrfInstance = opts.tags ? new Srf(opts.tags) : new Srf();
  const errors: Error[] = [];
  let connected = false;
  const result = await withTimeout(
    new Promise<{ hostports: string; version: string; localHostports?: string }>((resolve, reject) => {
      srf.on('error', (err: Error) => {
        if (!connected) reject(err);
        else errors.push(err);
      });
      (srf as any).on('connect', (err: Error | null, hostports: string, version: string, localHostports?: string) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        connected = true;
        resolve({ hostports, version, ...(localHostports !== undefined ? { localHostports } : {}) });
      });
      srf.connect({ host: opts.host, port: opts.port, secret: opts.secret });
    }),
    opts.timeoutMs ?? 5000,
    `srf.connect to ${opts.host}:${opts.port}`,
  ).catch((err: unknown) => {
    hardStop(srf);
    throw err;
  });

  let closing: Promise<void> | undefined;
  const app: ConnectedSrf = {
    srf,
    hostports: result.hostports,
    version: result.version,
    localHostports: result.localHostports,
    errors,
    close(): Promise<void> {
      if (!closing) {
        live.delete(app);
        closing = (async () => {
          const sock = socketOf(srf);
          const closed =
            sock && !sock.destroyed ? new Promise<void>((r) => sock.once('close', () => r())) : Promise.resolve();
          try {
            srf.disconnect();
          } catch {
            /* already gone */
          }
          await withTimeout(closed, 3000, 'srf socket close').catch(() => undefined);
          hardStop(srf);
        })();
      }
      return closing;
    },
  };
  live.add(app);
  return app;
}

/** Expects srf.connect to fail (e.g. wrong secret); resolves with the error. */
export async function expectSrfConnectError(opts: SrfConnectOptions): Promise<Error> {
  try {
    const app = await connectSrf(opts);
    await app.close();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
  throw new Error('srf.connect unexpectedly succeeded');
}

/** Disconnects every app this module connected that is still open. */
export async function disconnectAllSrf(): Promise<void> {
  await Promise.all([...live].map((a) => a.close()));
}

/** A promise plus its resolvers (for app-side events the test waits for). */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const d: Deferred<T> = {
    settled: false,
    promise: new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: (v) => {
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      d.settled = true;
      reject(e);
    },
  };
  d.promise.catch(() => undefined);
  return d;
}

/** A minimal SDP offer/answer with a recognisable origin user (`o=<user>`). */
export function sdp(user: string, ip = '127.0.0.1', port = 40000): string {
  return ['v=0', `o=${user} 1 1 IN IP4 ${ip}`, 's=-', `c=IN IP4 ${ip}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}
