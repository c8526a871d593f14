/**
 * Starts our drachtio-compatible SIP server for tests, either in-process
 * (`createDrachtioServer`) or as a child process (`node dist/cli.js sip-server ...`).
 *
 *   const s = await startSipServer({ host: '127.0.3.10', protocols: ['udp', 'tcp'], timers: { T1: 50 } });
 *   const app = await connectSrf(s.admin);
 *   ... SIPp → s.sipUri('udp') ...
 *   await s.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDrachtioServer } from '../../src/drachtio/index.js';
import type { DrachtioServer, DrachtioServerOptions, DrachtioServerStats, Logger } from '../../src/drachtio/types.js';
import type { TlsOptions } from '../../src/sip/transport/types.js';
import { freePort, waitFor, waitListening } from './net.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI (`npm run build`); SIP_SERVER_CLI overrides it (e.g. a build in another outDir). */
export const CLI_PATH = process.env.SIP_SERVER_CLI ? path.resolve(process.env.SIP_SERVER_CLI) : path.join(REPO_ROOT, 'dist', 'cli.js');
export const TEST_SECRET = 'cymru';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: unknown;
  msg?: string;
}

/** A logger that keeps warn/error entries in memory (for failure messages) and prints nothing. */
export function memoryLogger(keepDebug = false): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const add =
    (level: LogEntry['level']) =>
    (obj: unknown, msg?: string): void => {
      if (!keepDebug && (level === 'debug' || level === 'info')) return;
      if (entries.length < 5000) entries.push({ level, obj, ...(msg !== undefined ? { msg } : {}) });
    };
  const logger: Logger & { entries: LogEntry[] } = {
    entries,
    debug: add('debug'),
    info: add('info'),
    warn: add('warn'),
    error: add('error'),
    child: () => logger,
    isLevelEnabled: (l: string) => keepDebug || l === 'warn' || l === 'error',
  };
  return logger;
}

export interface StartSipServerOptions {
  /** SIP listen address (one of the 127.0.3.x test addresses). */
  host: string;
  /** Plain SIP port for udp/tcp (default: a free one). */
  sipPort?: number;
  /** Default ['udp', 'tcp']. Empty: no plain SIP contact. */
  protocols?: Array<'udp' | 'tcp'>;
  /** Adds `sips:host:port;transport=tls` with this TLS material. */
  tls?: { port?: number; options: TlsOptions };
  /** Admin listener address (default: host) and port (default 0 = any). */
  adminHost?: string;
  adminPort?: number;
  secret?: string;
  timers?: DrachtioServerOptions['timers'];
  /** Anything else to pass through (cdrs, spammers, maxMessageBytes, ...). */
  extra?: Partial<DrachtioServerOptions>;
}

export interface StartedSipServer {
  server: DrachtioServer;
  host: string;
  sipPort: number;
  tlsPort: number | undefined;
  /** What connectSrf needs. */
  admin: { host: string; port: number; secret: string };
  logger: Logger & { entries: LogEntry[] };
  /** `host:port` for SIPp's remote argument. */
  sipHostPort: string;
  stats(): DrachtioServerStats;
  close(): Promise<void>;
}

const liveServers = new Set<StartedSipServer>();

export async function startSipServer(opts: StartSipServerOptions): Promise<StartedSipServer> {
  const protocols = opts.protocols ?? ['udp', 'tcp'];
  const sipPort = opts.sipPort ?? (await freePort(opts.host, protocols.length ? protocols : ['tcp']));
  const contacts: string[] = [];
  if (protocols.length) contacts.push(`sip:${opts.host}:${sipPort};transport=${protocols.join(',')}`);
  let tlsPort: number | undefined;
  if (opts.tls) {
    tlsPort = opts.tls.port ?? (await freePort(opts.host, ['tcp']));
    contacts.push(`sips:${opts.host}:${tlsPort};transport=tls`);
  }
  const logger = memoryLogger();
  const secret = opts.secret ?? TEST_SECRET;
  const adminHost = opts.adminHost ?? opts.host;
  const serverOpts: DrachtioServerOptions = {
    contacts,
    admin: { host: adminHost, port: opts.adminPort ?? 0, secret },
    logger,
    ...(opts.tls ? { tls: opts.tls.options } : {}),
    ...(opts.timers ? { timers: opts.timers } : {}),
    ...opts.extra,
  };
  const server = await createDrachtioServer(serverOpts);
  let closing: Promise<void> | undefined;
  const started: StartedSipServer = {
    server,
    host: opts.host,
    sipPort,
    tlsPort,
    admin: { host: adminHost, port: server.adminPort, secret },
    logger,
    sipHostPort: `${opts.host}:${sipPort}`,
    stats: () => server.stats(),
    close(): Promise<void> {
      if (!closing) {
        liveServers.delete(started);
        closing = server.close();
      }
      return closing;
    },
  };
  liveServers.add(started);
  return started;
}

export async function closeAllSipServers(): Promise<void> {
  await Promise.all([...liveServers].map((s) => s.close()));
}

/** Stats with appConnections left out (what "no leaks" means while the app stays connected). */
export function sipStateCounts(s: DrachtioServerStats): Omit<DrachtioServerStats, 'appConnections'> {
  return {
    clientTransactions: s.clientTransactions,
    serverTransactions: s.serverTransactions,
    dialogs: s.dialogs,
    pendingRequests: s.pendingRequests,
  };
}

export interface IdleOptions {
  /** Also require appConnections === 0. */
  includeApps?: boolean;
  /**
   * Tolerate up to this many client transactions (INVITE client transactions that got a
   * non-2xx over UDP legitimately wait for Timer D, >= 32 s whatever T1 is).
   */
  allowClientTransactions?: number;
}

/**
 * Waits until transactions, dialogs and pending requests are all zero (and, with
 * `includeApps`, app connections too). Rejects with the last stats seen.
 */
export async function waitForIdle(s: { stats(): DrachtioServerStats }, timeoutMs = 8000, opts: IdleOptions = {}): Promise<DrachtioServerStats> {
  let last: DrachtioServerStats | undefined;
  const allowCt = opts.allowClientTransactions ?? 0;
  try {
    await waitFor(
      () => {
        last = s.stats();
        const c = sipStateCounts(last);
        return c.clientTransactions <= allowCt && c.serverTransactions === 0 && c.dialogs === 0 && c.pendingRequests === 0 && (!opts.includeApps || last.appConnections === 0);
      },
      { timeoutMs, intervalMs: 100, what: 'server idle' },
    );
  } catch {
    throw new Error(`server not idle after ${timeoutMs} ms: ${JSON.stringify(last)}`);
  }
  return s.stats();
}

// ---------------------------------------------------------------------------------------------
// CLI variant

export interface CliServer {
  pid: number;
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after 3 s. Idempotent. */
  stop(): Promise<number | null>;
}

export interface StartCliOptions {
  /** Arguments after `sip-server`. */
  args: string[];
  /** Wait until these listen before resolving. */
  ready: { tcp?: Array<[string, number]>; udp?: Array<[string, number]> };
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where to append the process output (default: kept in memory only). */
  logFile?: string;
  readyTimeoutMs?: number;
}

const liveCli = new Set<CliServer>();
process.once('exit', () => {
  for (const c of liveCli) {
    try {
      c.child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

export function assertCliBuilt(): void {
  if (!fs.existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` first`);
}

/** Starts `node dist/cli.js sip-server <args>` and waits until it listens. */
export async function startSipServerCli(opts: StartCliOptions): Promise<CliServer> {
  assertCliBuilt();
  const child = spawn(process.execPath, [CLI_PATH, 'sip-server', ...opts.args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    if (out.length > 1_000_000) out = out.slice(-500_000);
    log?.write(d);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let stopping: Promise<number | null> | undefined;
  const cli: CliServer = {
    pid: child.pid ?? -1,
    child,
    output: () => out,
    stop(): Promise<number | null> {
      if (!stopping) {
        liveCli.delete(cli);
        stopping = (async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 3000);
            const code = await exited;
            clearTimeout(t);
            log?.end();
            return code;
          }
          log?.end();
          return child.exitCode;
        })();
      }
      return stopping;
    },
  };
  liveCli.add(cli);
  const timeout = opts.readyTimeoutMs ?? 15_000;
  try {
    await Promise.race([
      (async () => {
        for (const [h, p] of opts.ready.tcp ?? []) await waitListening('tcp', h, p, timeout);
        for (const [h, p] of opts.ready.udp ?? []) await waitListening('udp', h, p, timeout);
      })(),
      exited.then((code) => {
        throw new Error(`sip-server exited early with code ${code}:\n${out.slice(-3000)}`);
      }),
    ]);
  } catch (err) {
    await cli.stop();
    throw err;
  }
  return cli;
}
