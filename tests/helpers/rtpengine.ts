/**
 * Starts real rtpengine daemons (Debian 10.5, userspace only) for tests, on one loopback
 * address each, and stops them for good. `kill()` + `restart()` simulate a crash and a
 * recovery on the same ng port.
 *
 * Flags follow docs/benchmarking §2.3: `--table=-1` (no kernel module here), explicit
 * `--num-threads=2`, a private port range per instance, `--delete-delay=0` so session counts
 * drain at once, and `--config-file=none` so /etc/rtpengine/rtpengine.conf (table=0,
 * recording dirs) is never read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { freePort } from './net.js';

export interface RtpengineHandle {
  /** Media interface address (also the ng address host). */
  readonly ip: string;
  readonly ngPort: number;
  /** `ip:ngPort`, as the pool expects. */
  readonly ngAddress: string;
  readonly portMin: number;
  readonly portMax: number;
  /** PID of the current process, undefined while killed. */
  readonly pid: number | undefined;
  /** SIGKILL (a crash). The ng port stays reserved for restart(). */
  kill(): Promise<void>;
  /** Starts again on the same address, ng port and media range, and waits for `ping`. */
  restart(): Promise<void>;
  /** Stops for good (SIGTERM, then SIGKILL after 2 s). Idempotent. */
  stop(): Promise<void>;
  /** Last lines of rtpengine's stderr log, for failure messages. */
  logTail(lines?: number): string;
}

export interface StartRtpengineOptions {
  /** Loopback address in this suite's range, e.g. 127.0.4.10. */
  ip: string;
  ngPort?: number;
  /** Default: 20000 + last octet × 100 (100 ports, distinct per address). */
  portMin?: number;
  portMax?: number;
  /** RTP inactivity timeout (s). Default 60. */
  timeoutSec?: number;
  extraArgs?: string[];
  startTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Sends one ng `ping`; true when `pong` came back within `timeoutMs`. */
export async function ngPing(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  const sock = dgram.createSocket('udp4');
  const cookie = `p${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  try {
    return await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      sock.on('message', (msg) => {
        const s = msg.toString('latin1');
        if (s.startsWith(`${cookie} `) && s.includes('4:pong')) {
          clearTimeout(t);
          resolve(true);
        }
      });
      sock.on('error', () => {
        clearTimeout(t);
        resolve(false);
      });
      sock.send(Buffer.from(`${cookie} d7:command4:pinge`), port, host);
    });
  } finally {
    sock.close();
  }
}

export async function startRtpengine(opts: StartRtpengineOptions): Promise<RtpengineHandle> {
  const ip = opts.ip;
  const octet = Number(ip.split('.').pop());
  if (!Number.isInteger(octet) || octet < 1 || octet > 254) throw new Error(`startRtpengine: bad ip ${ip}`);
  const ngPort = opts.ngPort ?? (await freePort(ip, ['udp']));
  const portMin = opts.portMin ?? 20000 + octet * 100;
  const portMax = opts.portMax ?? portMin + 99;
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  const args = [
    '--config-file=none',
    '--foreground',
    '--table=-1',
    `--interface=${ip}`,
    `--listen-ng=${ip}:${ngPort}`,
    `--port-min=${portMin}`,
    `--port-max=${portMax}`,
    '--num-threads=2',
    '--delete-delay=0',
    `--timeout=${opts.timeoutSec ?? 60}`,
    '--log-level=5',
    '--log-stderr',
    '--no-log-timestamps',
    ...(opts.extraArgs ?? []),
  ];
  let proc: ChildProcess | undefined;
  let stopped = false;
  let log: string[] = [];

  const launch = async (): Promise<void> => {
    const p = spawn('/usr/bin/rtpengine', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(p);
    p.once('exit', () => live.delete(p));
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (chunk: string) => {
      log.push(...chunk.split('\n').filter(Boolean));
      if (log.length > 400) log = log.slice(-200);
    });
    proc = p;
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) {
        throw new Error(`rtpengine on ${ip} exited (${p.exitCode ?? p.signalCode}) during start:\n${log.slice(-20).join('\n')}`);
      }
      if (await ngPing(ip, ngPort, 200)) return;
      if (Date.now() > deadline) {
        await kill();
        throw new Error(`rtpengine on ${ip}:${ngPort} did not answer ping within ${startTimeoutMs} ms:\n${log.slice(-20).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  };

  const waitExit = (p: ChildProcess, signal: NodeJS.Signals, graceMs?: number): Promise<void> =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      let t: NodeJS.Timeout | undefined;
      p.once('exit', () => {
        if (t) clearTimeout(t);
        resolve();
      });
      p.kill(signal);
      if (graceMs !== undefined) t = setTimeout(() => p.kill('SIGKILL'), graceMs);
    });

  async function kill(): Promise<void> {
    const p = proc;
    proc = undefined;
    if (p) await waitExit(p, 'SIGKILL');
  }

  await launch();
  return {
    ip,
    ngPort,
    ngAddress: `${ip}:${ngPort}`,
    portMin,
    portMax,
    get pid() {
      return proc?.pid;
    },
    kill,
    async restart() {
      if (stopped) throw new Error('rtpengine handle was stopped');
      await kill();
      await launch();
    },
    async stop() {
      stopped = true;
      const p = proc;
      proc = undefined;
      if (p) await waitExit(p, 'SIGTERM', 2000);
    },
    logTail(lines = 30) {
      return log.slice(-lines).join('\n');
    },
  };
}
