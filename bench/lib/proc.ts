/**
 * Readers for the Linux accounting the CPS benchmark relies on:
 *   - /proc/<pid>/stat utime + stime (own CPU) and cutime + cstime (waited-for children),
 *   - /proc/stat aggregate CPU (user, system, idle, steal, softirq ...),
 *   - /proc/net/snmp Udp counters (InErrors, RcvbufErrors, SndbufErrors: system-wide),
 *   - `ss -uamn` per-socket memory: granted rcvbuf/sndbuf and the socket's own drop counter.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const MS_PER_TICK = 1000 / CLK_TCK;

export interface ProcCpu {
  /** utime + stime of the process itself, ms. */
  selfMs: number;
  /** cutime + cstime (children the process has waited for), ms. */
  childrenMs: number;
  /** Resident set size, KiB (from /proc/<pid>/status). */
  rssKiB: number;
}

/** CPU of one process, or undefined if it is gone. */
export function readProcCpu(pid: number): ProcCpu | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(stat, pid);
}

/** Parses one /proc/<pid>/stat line (the comm field may contain spaces and parentheses). */
export function parseProcStat(stat: string, pid?: number): ProcCpu {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); utime is field 14 → rest[11]
  const f = (n: number): number => Number(rest[n - 3] ?? 0);
  let rssKiB = 0;
  if (pid !== undefined) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      rssKiB = m ? Number(m[1]) : 0;
    } catch {
      /* gone */
    }
  }
  return { selfMs: (f(14) + f(15)) * MS_PER_TICK, childrenMs: (f(16) + f(17)) * MS_PER_TICK, rssKiB };
}

export interface SystemCpu {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
  total: number;
}

/** The aggregate `cpu` line of /proc/stat, in ms (summed over all CPUs). */
export function readSystemCpu(): SystemCpu {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map((x) => Number(x) * MS_PER_TICK);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  return { user, nice, system, idle, iowait, irq, softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

export interface SystemCpuDelta {
  /** Percent of all CPU time in the interval. */
  busyPct: number;
  stealPct: number;
  softirqPct: number;
  idlePct: number;
}

export function systemCpuDelta(a: SystemCpu, b: SystemCpu): SystemCpuDelta {
  const total = b.total - a.total || 1;
  const pct = (k: keyof SystemCpu): number => round1(((b[k] - a[k]) / total) * 100);
  return {
    busyPct: round1(100 - ((b.idle - a.idle + b.iowait - a.iowait) / total) * 100),
    stealPct: pct('steal'),
    softirqPct: pct('softirq'),
    idlePct: pct('idle'),
  };
}

export type UdpSnmp = Record<string, number>;

/** The Udp counters of /proc/net/snmp (system-wide: other users of the box show up too). */
export function readUdpSnmp(): UdpSnmp {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const vals = (lines[1] ?? '').split(/\s+/).slice(1);
  const out: UdpSnmp = {};
  names.forEach((n, i) => (out[n] = Number(vals[i] ?? 0)));
  return out;
}

export function snmpDelta(a: UdpSnmp, b: UdpSnmp): UdpSnmp {
  const out: UdpSnmp = {};
  for (const k of ['InDatagrams', 'InErrors', 'RcvbufErrors', 'SndbufErrors']) out[k] = (b[k] ?? 0) - (a[k] ?? 0);
  return out;
}

export interface UdpSocketMem {
  local: string;
  /** Granted SO_RCVBUF / SO_SNDBUF, bytes (the kernel doubles the requested value, capped at rmem_max*2). */
  rcvbuf: number;
  sndbuf: number;
  /** Datagrams this socket dropped (sk_drops). */
  drops: number;
}

/** Per-socket memory of the UDP sockets bound to `local` ("127.0.7.1:5060"). */
export function readUdpSocket(local: string): UdpSocketMem | undefined {
  let out: string;
  try {
    out = execFileSync('ss', ['-uamnH', 'src', local], { encoding: 'utf8' });
  } catch {
    return undefined;
  }
  const m = /skmem:\(([^)]*)\)/.exec(out);
  if (!m || !m[1]) return undefined;
  const kv: Record<string, number> = {};
  for (const part of m[1].split(',')) {
    const mm = /^([a-z_]+?)(\d+)$/.exec(part);
    if (mm && mm[1]) kv[mm[1]] = Number(mm[2]);
  }
  return { local, rcvbuf: kv.rb ?? 0, sndbuf: kv.tb ?? 0, drops: kv.d ?? 0 };
}

export function machineFacts(): Record<string, unknown> {
  const sysctl = (k: string): number | undefined => {
    try {
      return Number(fs.readFileSync(`/proc/sys/${k.replace(/\./g, '/')}`, 'utf8').trim());
    } catch {
      return undefined;
    }
  };
  const cpus = os.cpus();
  return {
    nproc: cpus.length,
    cpuModel: cpus[0]?.model,
    memTotalMiB: Math.round(os.totalmem() / 1048576),
    kernel: os.release(),
    node: process.version,
    loadavg: os.loadavg().map(round1),
    rmemMax: sysctl('net.core.rmem_max'),
    wmemMax: sysctl('net.core.wmem_max'),
    rmemDefault: sysctl('net.core.rmem_default'),
    clkTck: CLK_TCK,
  };
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
