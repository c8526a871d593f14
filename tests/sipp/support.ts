/**
 * Shared set-up for the SIPp acceptance tests: one server and one drachtio-srf app per test
 * file, with per-test request handlers (so no test depends on how fast the server forgets an
 * app that disconnected).
 */
import { expect } from 'vitest';
import { startSipServer, type StartSipServerOptions, type StartedSipServer } from '../helpers/sip-server.js';
import { connectSrf, type ConnectedSrf } from '../helpers/srf.js';
import { freePort } from '../helpers/net.js';
import { headerValue, receivedMessages, sippReport, type LoggedSipMessage, type SippResult, type SippTransport } from '../helpers/sipp.js';

export interface TransportCase {
  name: 'udp' | 'tcp';
  sipp: SippTransport;
  /** URI parameter that makes the server use this transport towards SIPp. */
  uriParam: string;
}

export const TRANSPORTS: TransportCase[] = [
  { name: 'udp', sipp: 'u1', uriParam: '' },
  { name: 'tcp', sipp: 't1', uriParam: ';transport=tcp' },
];

/** Short timers keep Timer B/F/H/J/K and the RFC 6026 Accepted state at a few seconds. */
export const FAST_TIMERS = { T1: 50, T2: 400, T4: 500 };

export type Handler = (req: any, res: any) => void | Promise<void>;

export interface Harness {
  s: StartedSipServer;
  app: ConnectedSrf;
  /** Handler for new INVITEs (default: 500 so a forgotten handler is visible). */
  onInvite: Handler;
  onSubscribe: Handler;
  onOptions: Handler;
  /** Errors thrown by handlers (asserted empty by tests that care). */
  handlerErrors: unknown[];
  close(): Promise<void>;
}

export async function startHarness(opts: StartSipServerOptions): Promise<Harness> {
  const s = await startSipServer({ timers: FAST_TIMERS, ...opts });
  let app: ConnectedSrf;
  try {
    app = await connectSrf(s.admin);
  } catch (err) {
    await s.close();
    throw err;
  }
  const h: Harness = {
    s,
    app,
    onInvite: (_req, res) => res.send(500, 'No Test Handler'),
    onSubscribe: (_req, res) => res.send(500, 'No Test Handler'),
    onOptions: (_req, res) => res.send(200),
    handlerErrors: [],
    async close() {
      await app.close();
      await s.close();
    },
  };
  const wrap = (pick: () => Handler) => (req: any, res: any) => {
    try {
      const r = pick()(req, res);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch((e) => h.handlerErrors.push(e));
    } catch (e) {
      h.handlerErrors.push(e);
    }
  };
  app.srf.invite(wrap(() => h.onInvite));
  app.srf.subscribe(wrap(() => h.onSubscribe));
  app.srf.options(wrap(() => h.onOptions));
  return h;
}

/** A free SIP port on `ip` for SIPp. */
export const sippPort = (ip: string): Promise<number> => freePort(ip, ['udp', 'tcp']);

export function expectSippOk(r: SippResult): void {
  expect(r.exitCode, sippReport(r)).toBe(0);
  expect(r.stats?.failed ?? -1, sippReport(r)).toBe(0);
}

/** The one received message whose start line matches, with a readable failure. */
export function oneReceived(r: SippResult, startLine: RegExp, index = 0): LoggedSipMessage {
  const all = receivedMessages(r, startLine);
  const m = all[index];
  if (!m) throw new Error(`SIPp did not receive ${startLine} (#${index}); got:\n${receivedMessages(r, /./).map((x) => x.firstLine).join('\n')}\n${sippReport(r)}`);
  return m;
}

export function header(m: LoggedSipMessage, name: string): string | undefined {
  return headerValue(m.text, name);
}

export function body(m: LoggedSipMessage): string {
  const i = m.text.search(/\r?\n\r?\n/);
  return i < 0 ? '' : m.text.slice(i).trim();
}
