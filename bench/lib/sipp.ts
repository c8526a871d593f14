/**
 * SIPp 3.6.1 (Debian sip-tester) for the CPS benchmark.
 *
 * - `runUac` runs one bounded step (-m calls at -r cps) inside `sh -c`, so the shell's
 *   cutime + cstime after `wait` is SIPp's exact CPU for the step; it returns the final
 *   statistics line, the per-message screen table (INVITE retransmissions) and the response
 *   times of the rtd timers (-trace_rtt, µs precision in the file but SIPp's clock moves in
 *   coarse steps on this machine).
 * - `startUas` starts a long-lived UAS; its CPU is read from /proc by the caller.
 * Every process is started in its own process group and stopped by that pid only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseProcStat } from './proc.js';

export interface SippStats {
  successful: number;
  failed: number;
  outgoing: number;
  /** Retransmissions SIPp sent (all messages). */
  retransmissions: number;
  deadCallMsgs: number;
  outOfCallMsgs: number;
  failedDetail: Record<string, number>;
  /** Mean response time per rtd, ms, as SIPp's stat file reports it. */
  raw: Record<string, string>;
}

export interface ScreenRow {
  label: string;
  direction: 'send' | 'recv' | 'other';
  count: number;
  retrans: number;
  timeouts: number;
  unexpected: number;
}

export function parseStatCsv(csv: string): SippStats | undefined {
  const lines = csv.split('\n').filter((l) => l.trim().length > 0);
  const header = lines[0];
  const last = lines[lines.length - 1];
  if (!header || !last || lines.length < 2) return undefined;
  const names = header.split(';');
  const vals = last.split(';');
  const raw: Record<string, string> = {};
  names.forEach((n, i) => (raw[n] = vals[i] ?? ''));
  const num = (k: string): number => Number.parseInt(raw[`${k}(C)`] ?? '0', 10) || 0;
  const failedDetail: Record<string, number> = {};
  for (const n of names) {
    const m = /^(Failed\w+)\(C\)$/.exec(n);
    if (m && m[1] && num(m[1]) > 0) failedDetail[m[1]] = num(m[1]);
  }
  return {
    successful: num('SuccessfulCall'),
    failed: num('FailedCall'),
    outgoing: num('OutgoingCall'),
    retransmissions: num('Retransmissions'),
    deadCallMsgs: num('DeadCallMsgs'),
    outOfCallMsgs: num('OutOfCallMsgs'),
    failedDetail,
    raw,
  };
}

/** The last "Messages Retrans Timeout Unexpected-Msg" table of a -trace_screen file. */
export function parseScreen(screen: string): ScreenRow[] {
  const start = screen.lastIndexOf('Messages  Retrans');
  if (start < 0) return [];
  const rows: ScreenRow[] = [];
  for (const line of screen.slice(start).split('\n').slice(1)) {
    if (/Test Terminated|Statistics Screen|Adjust rate/.test(line)) break;
    const m = /^\s*(\S+)\s+(-{3,}>|<-{3,})\s*(.*)$/.exec(line);
    if (!m || !m[1]) continue;
    const nums = (m[3] ?? '')
      .replace(/\b[A-Z]*-?RTD\d+\b/g, ' ')
      .trim()
      .split(/\s+/)
      .filter((x) => /^\d+$/.test(x))
      .map(Number);
    rows.push({
      label: m[1],
      direction: (m[2] ?? '').endsWith('>') ? 'send' : 'recv',
      count: nums[0] ?? 0,
      retrans: nums[1] ?? 0,
      timeouts: nums[2] ?? 0,
      unexpected: nums[3] ?? 0,
    });
  }
  return rows;
}

/** Percentiles (ms) per rtd name from SIPp's `<scenario>_<pid>_rtt.csv`. */
export function parseRtt(csv: string): Record<string, { n: number; p50: number; p95: number; p99: number }> {
  const by = new Map<string, number[]>();
  for (const line of csv.split('\n')) {
    const [, rt, name] = line.split(';');
    if (!name || rt === undefined || !/^[\d.]+$/.test(rt)) continue;
    const key = name.trim();
    let a = by.get(key);
    if (!a) by.set(key, (a = []));
    a.push(Number(rt));
  }
  const out: Record<string, { n: number; p50: number; p95: number; p99: number }> = {};
  for (const [k, a] of by) {
    a.sort((x, y) => x - y);
    const q = (p: number): number => Math.round((a[Math.min(a.length - 1, Math.floor(p * a.length))] ?? 0) * 1000) / 1000;
    out[k] = { n: a.length, p50: q(0.5), p95: q(0.95), p99: q(0.99) };
  }
  return out;
}

export interface UacStepOptions {
  scenario: string;
  localIp: string;
  localPort: number;
  remote: string;
  rate: number;
  calls: number;
  holdMs: number;
  dir: string;
  /** Hard stop (ms); SIPp also gets -timeout slightly below it. */
  timeoutMs: number;
}

export interface UacStepResult {
  exitCode: number | null;
  wallMs: number;
  /** SIPp's own CPU for the whole step (exact, from the waiting shell's cutime+cstime). */
  cpuMs: number | undefined;
  stats: SippStats | undefined;
  screen: ScreenRow[];
  rtt: ReturnType<typeof parseRtt>;
  inviteRetrans: number;
  errors: string;
  /** Resolves with the SIPp pid once it is known (for live sampling). */
  pid: number | undefined;
}

function readIf(f: string): string {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

const live = new Set<ChildProcess>();
export function killGroup(cp: ChildProcess, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!cp.pid || cp.exitCode !== null || cp.signalCode !== null) return;
  try {
    process.kill(-cp.pid, sig);
  } catch {
    /* gone */
  }
}
process.once('exit', () => {
  for (const cp of live) killGroup(cp);
});

function baseArgs(o: { scenario: string; localIp: string; localPort: number }): string[] {
  return ['-sf', o.scenario, '-i', o.localIp, '-p', String(o.localPort), '-t', 'u1', '-nostdin', '-max_socket', '4096', '-buff_size', '4194304', '-s', 'bench'];
}

export async function runUac(o: UacStepOptions): Promise<UacStepResult> {
  fs.mkdirSync(o.dir, { recursive: true });
  const args = [
    o.remote,
    ...baseArgs(o),
    '-r', String(o.rate), '-rp', '1000', '-m', String(o.calls), '-d', String(o.holdMs),
    '-l', String(Math.max(1000, Math.ceil(3 * o.rate * Math.max(1, o.holdMs / 1000)))),
    '-trace_stat', '-stf', 'stat.csv', '-fd', '1',
    '-trace_screen', '-screen_file', 'screen.log',
    '-trace_err', '-error_file', 'err.log',
    '-trace_rtt', '-rtt_freq', '200',
    '-timeout', `${Math.floor(o.timeoutMs / 1000)}s`, '-timeout_error',
  ];
  // `$$` is the shell; after `wait` its cutime/cstime hold SIPp's CPU.
  const script = 'sipp "$@" & echo $! > sipp.pid; wait $!; rc=$?; cat /proc/$$/stat > shell.stat; exit $rc';
  const t0 = Date.now();
  const cp = spawn('sh', ['-c', script, 'sh', ...args], { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(cp);
  let stderr = '';
  cp.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const hard = setTimeout(() => killGroup(cp), o.timeoutMs + 10_000);
  const exitCode = await new Promise<number | null>((resolve) => cp.once('exit', (code) => resolve(code)));
  clearTimeout(hard);
  live.delete(cp);
  const wallMs = Date.now() - t0;
  const shellStat = readIf(path.join(o.dir, 'shell.stat'));
  const cpuMs = shellStat ? parseProcStat(shellStat).childrenMs : undefined;
  const stats = parseStatCsv(readIf(path.join(o.dir, 'stat.csv')));
  const screen = parseScreen(readIf(path.join(o.dir, 'screen.log')));
  const rttFile = fs.readdirSync(o.dir).find((f) => f.endsWith('_rtt.csv'));
  const rtt = rttFile ? parseRtt(readIf(path.join(o.dir, rttFile))) : {};
  const inviteRow = screen.find((r) => r.label === 'INVITE' && r.direction === 'send');
  const pidTxt = readIf(path.join(o.dir, 'sipp.pid')).trim();
  return {
    exitCode,
    wallMs,
    cpuMs,
    stats,
    screen,
    rtt,
    inviteRetrans: inviteRow?.retrans ?? -1,
    errors: (readIf(path.join(o.dir, 'err.log')).split('\n').filter(Boolean).slice(-5).join('\n') + stderr).slice(-2000),
    pid: pidTxt ? Number(pidTxt) : undefined,
  };
}

export interface UasHandle {
  pid: number;
  dir: string;
  stop(): Promise<void>;
  /** The last statistics line written so far (-fd 1). */
  stats(): SippStats | undefined;
}

export async function startUas(o: { scenario: string; localIp: string; localPort: number; dir: string }): Promise<UasHandle> {
  fs.mkdirSync(o.dir, { recursive: true });
  const args = [...baseArgs(o), '-trace_stat', '-stf', 'stat.csv', '-fd', '1', '-trace_err', '-error_file', 'err.log'];
  const cp = spawn('sipp', args, { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(cp);
  let stderr = '';
  cp.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => cp.once('exit', () => r()));
  await new Promise((r) => setTimeout(r, 700));
  if (cp.exitCode !== null || !cp.pid) throw new Error(`sipp UAS on ${o.localIp}:${o.localPort} exited: ${stderr.slice(-500)}`);
  return {
    pid: cp.pid,
    dir: o.dir,
    stats: () => parseStatCsv(readIf(path.join(o.dir, 'stat.csv'))),
    async stop() {
      killGroup(cp, 'SIGUSR1'); // SIPp writes its final statistics and exits on SIGUSR1
      const t = setTimeout(() => killGroup(cp), 3000);
      await exited;
      clearTimeout(t);
      live.delete(cp);
    },
  };
}
