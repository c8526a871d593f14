/**
 * Runs Debian's SIPp 3.6.1 (`sipp`, package sip-tester) from tests.
 *
 * - Every run gets its own temp dir with the error log (-trace_err), the statistics file
 *   (-trace_stat, final line written when SIPp exits), the message log (-trace_msg), the
 *   <log> action output (-trace_logs) and the final screen (-trace_screen).
 * - `-max_socket 4096` is always passed: Debian's SIPp refuses TCP when its default socket
 *   limit exceeds the open-files limit of this machine.
 * - A hard timeout kills SIPp (SIGUSR1 to let it write its statistics, then SIGKILL).
 * - Processes started here are tracked and killed by pid on `stopAllSipp()` and at exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitListening } from './net.js';

export const SCENARIO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../sipp/scenarios');

/** u1: UDP one socket; un: UDP socket per call; t1: TCP one connection; tn: TCP connection per call. */
export type SippTransport = 'u1' | 'un' | 't1' | 'tn';

export interface SippOptions {
  /** File name in tests/sipp/scenarios, an absolute path, or `sn:<builtin>` (e.g. `sn:uac`). */
  scenario: string;
  /** -i: local address SIPp binds. */
  localIp: string;
  /** -p: local SIP port. */
  localPort: number;
  /** Remote host:port (UAC scenarios). */
  remote?: string;
  /** -t (default u1). */
  transport?: SippTransport;
  /** -m: stop after this many calls (default 1; 0 = no limit, run until stopped). */
  calls?: number;
  /** -r calls per period (default: SIPp's 10). */
  rate?: number;
  /** -rp in ms. */
  ratePeriodMs?: number;
  /** -l: max simultaneous calls. */
  maxConcurrent?: number;
  /** -d: duration of <pause/> without milliseconds (default 0). */
  pauseMs?: number;
  /** -key name value, used as [name] in scenarios. */
  keys?: Record<string, string | number>;
  /** -s: user part of the Request-URI ([service]). */
  service?: string;
  /** -au / -ap: credentials for <action><verifyauth> and [authentication]. */
  auth?: { username: string; password: string };
  /** -recv_timeout (ms): default timeout of every <recv>. */
  recvTimeoutMs?: number;
  /** Hard timeout: SIPp is stopped after this many ms (default 20000). */
  timeoutMs?: number;
  /** Keep -trace_msg on (default true; turn off for load runs). */
  traceMessages?: boolean;
  extraArgs?: string[];
  /** Used in the temp dir name. */
  label?: string;
  /** Keep the temp dir even when SIPp exits 0 (failed runs always keep it for inspection). */
  keepDir?: boolean;
  /** Parent of the per-run temp dir (default: the OS temp dir). */
  baseDir?: string;
}

export interface SippStats {
  successful: number;
  failed: number;
  /** Retransmissions SIPp itself sent (UDP). */
  retransmissions: number;
  outgoingCalls: number;
  incomingCalls: number;
  failedTimeoutOnRecv: number;
  failedUnexpectedMessage: number;
  failedMaxUdpRetrans: number;
  failedRegexpDoesntMatch: number;
  failedRegexpHdrNotFound: number;
  deadCallMsgs: number;
  outOfCallMsgs: number;
  /** Every cumulative (C) column of the final statistics line, by name without the (C). */
  raw: Record<string, string>;
}

/** One row of SIPp's scenario screen. */
export interface SippMessageRow {
  /** Method or status code (`INVITE`, `200`), or `Pause`. */
  label: string;
  direction: 'send' | 'recv' | 'pause' | 'other';
  count: number;
  /** For send rows: retransmissions sent; for recv rows: retransmissions received. */
  retrans: number;
  timeouts: number;
  unexpected: number;
}

export interface LoggedSipMessage {
  direction: 'sent' | 'received';
  transport: string;
  text: string;
  /** Start line. */
  firstLine: string;
}

export interface SippResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stats: SippStats | undefined;
  messages: SippMessageRow[];
  errorLog: string;
  messageLog: string;
  /** Output of <log> actions. */
  logs: string;
  stdout: string;
  stderr: string;
  dir: string;
  args: string[];
}

const running = new Set<ChildProcess>();

function killAllSync(): void {
  for (const cp of running) {
    try {
      if (cp.pid) process.kill(cp.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  running.clear();
}
process.once('exit', killAllSync);

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function parseStatsCsv(csv: string): SippStats | undefined {
  const lines = csv.split('\n').filter((l) => l.trim().length > 0);
  const header = lines[0];
  const last = lines[lines.length - 1];
  if (!header || !last || lines.length < 2) return undefined;
  const names = header.split(';');
  const values = last.split(';');
  const raw: Record<string, string> = {};
  names.forEach((n, i) => {
    const m = /^(.*)\(C\)$/.exec(n);
    if (m && m[1]) raw[m[1]] = values[i] ?? '';
  });
  const num = (k: string): number => Number.parseInt(raw[k] ?? '0', 10) || 0;
  return {
    successful: num('SuccessfulCall'),
    failed: num('FailedCall'),
    retransmissions: num('Retransmissions'),
    outgoingCalls: num('OutgoingCall'),
    incomingCalls: num('IncomingCall'),
    failedTimeoutOnRecv: num('FailedTimeoutOnRecv'),
    failedUnexpectedMessage: num('FailedUnexpectedMessage'),
    failedMaxUdpRetrans: num('FailedMaxUDPRetrans'),
    failedRegexpDoesntMatch: num('FailedRegexpDoesntMatch'),
    failedRegexpHdrNotFound: num('FailedRegexpHdrNotFound'),
    deadCallMsgs: num('DeadCallMsgs'),
    outOfCallMsgs: num('OutOfCallMsgs'),
    raw,
  };
}

/** Parses the last scenario screen (the "Messages Retrans Timeout Unexpected-Msg" table). */
export function parseScenarioScreen(screen: string): SippMessageRow[] {
  const start = screen.lastIndexOf('Messages  Retrans');
  if (start < 0) return [];
  const body = screen.slice(start).split('\n').slice(1);
  const rows: SippMessageRow[] = [];
  const nums = (s: string): number[] =>
    s
      .replace(/\b[A-Z]*-?RTD\d+\b/g, ' ')
      .trim()
      .split(/\s+/)
      .filter((x) => /^\d+$/.test(x))
      .map(Number);
  for (const line of body) {
    if (/^-{5,}/.test(line.trim()) || /Test Terminated|Statistics Screen/.test(line)) break;
    let m: RegExpExecArray | null;
    let label: string | undefined;
    let direction: SippMessageRow['direction'] = 'other';
    let rest = '';
    if ((m = /^\s*(\S+) -{5,}>\s*(.*)$/.exec(line))) {
      label = m[1];
      direction = 'send';
      rest = m[2] ?? '';
    } else if ((m = /^\s*(\S+) <-{5,}\s*(.*)$/.exec(line))) {
      label = m[1];
      direction = 'recv';
      rest = m[2] ?? '';
    } else if ((m = /^\s*-{5,}> (\S+)\s*(.*)$/.exec(line))) {
      label = m[1];
      direction = 'recv';
      rest = m[2] ?? '';
    } else if ((m = /^\s*<-{5,} (\S+)\s*(.*)$/.exec(line))) {
      label = m[1];
      direction = 'send';
      rest = m[2] ?? '';
    } else if ((m = /Pause\s+(.*)$/.exec(line)) || (m = /^\s*\[.*\]\s+Pause\s+(.*)$/.exec(line))) {
      label = 'Pause';
      direction = 'pause';
      rest = (m[1] ?? '').replace(/^\[[^\]]*\]/, '');
    }
    if (!label) continue;
    const n = nums(rest);
    if (direction === 'pause') {
      rows.push({ label, direction, count: n[0] ?? 0, retrans: 0, timeouts: 0, unexpected: n[1] ?? 0 });
    } else {
      rows.push({ label, direction, count: n[0] ?? 0, retrans: n[1] ?? 0, timeouts: n[2] ?? 0, unexpected: n[3] ?? 0 });
    }
  }
  return rows;
}

/** Splits a -trace_msg log into messages. */
export function parseMessageLog(log: string): LoggedSipMessage[] {
  const out: LoggedSipMessage[] = [];
  const parts = log.split(/^-{20,}[^\n]*\n/m);
  for (const part of parts) {
    const m = /^(\S+) message (received|sent) [^\n]*\n+([\s\S]*)$/.exec(part);
    if (!m) continue;
    const text = (m[3] ?? '').replace(/\n+$/, '\n');
    out.push({
      direction: m[2] === 'sent' ? 'sent' : 'received',
      transport: m[1] ?? '',
      text,
      firstLine: (text.split(/\r?\n/)[0] ?? '').trim(),
    });
  }
  return out;
}

/** Received SIP messages whose start line matches (e.g. /^CANCEL /, /^SIP\/2.0 200/). */
export function receivedMessages(r: SippResult, startLine: RegExp): LoggedSipMessage[] {
  return parseMessageLog(r.messageLog).filter((m) => m.direction === 'received' && startLine.test(m.firstLine));
}

/** Value of the first header `name` (case-insensitive, compact forms not expanded) in a message text. */
export function headerValue(text: string, name: string): string | undefined {
  const re = new RegExp(`^${name.replace(/[-]/g, '\\-')}\\s*:\\s*(.*)$`, 'im');
  const m = re.exec(text.split(/\r?\n\r?\n/)[0] ?? '');
  return m?.[1]?.trim();
}

/** Every value of header `name`, one entry per header line. */
export function headerValues(text: string, name: string): string[] {
  const re = new RegExp(`^${name.replace(/[-]/g, '\\-')}\\s*:\\s*(.*)$`, 'gim');
  const head = text.split(/\r?\n\r?\n/)[0] ?? '';
  return [...head.matchAll(re)].map((m) => (m[1] ?? '').trim());
}

export function rowsFor(r: SippResult, label: string, direction?: SippMessageRow['direction']): SippMessageRow[] {
  return r.messages.filter((x) => x.label === label && (!direction || x.direction === direction));
}

/** A multi-line summary for assertion messages. */
export function sippReport(r: SippResult): string {
  const table = r.messages.map((m) => `  ${m.direction.padEnd(5)} ${m.label.padEnd(8)} n=${m.count} retrans=${m.retrans} timeout=${m.timeouts} unexpected=${m.unexpected}`).join('\n');
  const err = r.errorLog.trim().split('\n').slice(-40).join('\n');
  return [
    `sipp ${r.args.join(' ')}`,
    `exit=${r.exitCode} signal=${r.signal} timedOut=${r.timedOut} ${r.durationMs}ms dir=${r.dir}`,
    r.stats ? `successful=${r.stats.successful} failed=${r.stats.failed} retransmissions=${r.stats.retransmissions}` : 'no statistics',
    table,
    err ? `error log (tail):\n${err}` : '',
    r.stderr.trim() ? `stderr:\n${r.stderr.trim().slice(-2000)}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

function buildArgs(opts: SippOptions, dir: string): string[] {
  const args: string[] = ['-max_socket', '4096'];
  if (opts.scenario.startsWith('sn:')) args.push('-sn', opts.scenario.slice(3));
  else args.push('-sf', path.isAbsolute(opts.scenario) ? opts.scenario : path.join(SCENARIO_DIR, opts.scenario));
  args.push('-i', opts.localIp, '-p', String(opts.localPort));
  args.push('-t', opts.transport ?? 'u1');
  if (opts.calls !== 0) args.push('-m', String(opts.calls ?? 1));
  if (opts.rate !== undefined) args.push('-r', String(opts.rate));
  if (opts.ratePeriodMs !== undefined) args.push('-rp', `${opts.ratePeriodMs}ms`);
  if (opts.maxConcurrent !== undefined) args.push('-l', String(opts.maxConcurrent));
  if (opts.pauseMs !== undefined) args.push('-d', String(opts.pauseMs));
  if (opts.service !== undefined) args.push('-s', opts.service);
  if (opts.auth) args.push('-au', opts.auth.username, '-ap', opts.auth.password);
  if (opts.recvTimeoutMs !== undefined) args.push('-recv_timeout', String(opts.recvTimeoutMs));
  for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, String(v));
  const timeoutMs = opts.timeoutMs ?? 20_000;
  args.push('-timeout', `${Math.max(1, Math.ceil(timeoutMs / 1000))}s`, '-timeout_error');
  args.push('-nostdin');
  args.push('-trace_err', '-error_file', path.join(dir, 'errors.log'));
  args.push('-trace_stat', '-stf', path.join(dir, 'stats.csv'), '-fd', '1');
  args.push('-trace_logs', '-log_file', path.join(dir, 'logs.log'));
  args.push('-trace_screen', '-screen_file', path.join(dir, 'screen.log'));
  if (opts.traceMessages !== false) args.push('-trace_msg', '-message_file', path.join(dir, 'messages.log'));
  args.push(...(opts.extraArgs ?? []));
  if (opts.remote) args.push(opts.remote);
  return args;
}

export interface SippProcess {
  readonly pid: number;
  readonly dir: string;
  /** Settles when SIPp exits by itself (or is stopped). Never rejects. */
  readonly done: Promise<SippResult>;
  /** Graceful stop (SIGUSR1, then SIGKILL after 2 s); resolves with the result. Idempotent. */
  stop(): Promise<SippResult>;
}

/** Spawns SIPp and returns at once (see startSippUas / runSipp for the usual entry points). */
export function spawnSipp(opts: SippOptions): SippProcess {
  const base = opts.baseDir ?? os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base, `sipp-${(opts.label ?? path.basename(opts.scenario)).replace(/[^\w.-]/g, '_')}-`));
  const args = buildArgs(opts, dir);
  const started = Date.now();
  const cp = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  running.add(cp);
  let stdout = '';
  let stderr = '';
  cp.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString('latin1');
    if (stdout.length > 2_000_000) stdout = stdout.slice(-1_000_000);
  });
  cp.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString('latin1');
  });
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const hardMs = (opts.timeoutMs ?? 20_000) + 3000;
  const softStop = (): void => {
    if (cp.exitCode !== null || cp.signalCode !== null) return;
    try {
      cp.kill('SIGUSR1');
    } catch {
      /* gone */
    }
    killTimer = setTimeout(() => {
      try {
        cp.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, 2000);
  };
  const hardTimer = setTimeout(() => {
    timedOut = true;
    softStop();
  }, hardMs);

  const done = new Promise<SippResult>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(hardTimer);
      if (killTimer) clearTimeout(killTimer);
      running.delete(cp);
      const screen = readIfExists(path.join(dir, 'screen.log')) || stdout;
      const result: SippResult = {
        exitCode: code,
        signal,
        timedOut,
        durationMs: Date.now() - started,
        stats: parseStatsCsv(readIfExists(path.join(dir, 'stats.csv'))),
        messages: parseScenarioScreen(screen),
        errorLog: readIfExists(path.join(dir, 'errors.log')),
        messageLog: readIfExists(path.join(dir, 'messages.log')),
        logs: readIfExists(path.join(dir, 'logs.log')),
        stdout,
        stderr,
        dir,
        args,
      };
      if (code === 0 && !opts.keepDir) fs.rmSync(dir, { recursive: true, force: true });
      resolve(result);
    };
    cp.once('error', (err) => {
      stderr += `\nspawn error: ${err.message}`;
      finish(-1, null);
    });
    cp.once('close', (code, signal) => finish(code, signal));
  });

  let stopping: Promise<SippResult> | undefined;
  return {
    pid: cp.pid ?? -1,
    dir,
    done,
    stop(): Promise<SippResult> {
      if (!stopping) {
        softStop();
        stopping = done;
      }
      return stopping;
    },
  };
}

/** Runs SIPp to completion (UAC scenarios, or a UAS with -m). Never rejects; check `exitCode`. */
export function runSipp(opts: SippOptions): Promise<SippResult> {
  return spawnSipp(opts).done;
}

/**
 * Starts a SIPp UAS (no remote) and waits until its SIP port is bound. Stop it with
 * `stop()` (or let it finish after `calls`); `stopAllSipp()` kills leftovers.
 */
export async function startSippUas(opts: SippOptions): Promise<SippProcess> {
  const p = spawnSipp({ timeoutMs: 60_000, ...opts });
  const tcp = opts.transport === 't1' || opts.transport === 'tn';
  try {
    await Promise.race([
      waitListening(tcp ? 'tcp' : 'udp', opts.localIp, opts.localPort, 5000),
      p.done.then((r) => {
        throw new Error(`SIPp UAS exited before listening:\n${sippReport(r)}`);
      }),
    ]);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return p;
}

/** Kills (by pid) every SIPp this module started that is still running. */
export async function stopAllSipp(): Promise<void> {
  const list = [...running];
  for (const cp of list) {
    try {
      cp.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  await Promise.all(list.map((cp) => (cp.exitCode !== null || cp.signalCode !== null ? undefined : new Promise((r) => cp.once('close', r)))));
}
