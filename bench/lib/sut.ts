/**
 * The system under test for the CPS benchmark, each piece in its own process:
 *   - our SIP server: `node dist/cli.js sip-server --contact sip:<ip>:5060;transport=udp ...`
 *     (optionally under `node --cpu-prof`),
 *   - the drachtio-srf app: `node bench/lib/srf-app.mjs --mode uas|b2b`.
 * Processes are started in their own process group and stopped by that pid only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readUdpSocket } from './proc.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');
const APP = path.join(REPO_ROOT, 'bench', 'lib', 'srf-app.mjs');
const IO_FLOOR = path.join(REPO_ROOT, 'bench', 'lib', 'io-floor.mjs');

export interface Proc {
  name: string;
  pid: number;
  cp: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const cp of live) if (cp.pid && cp.exitCode === null) try { process.kill(-cp.pid, 'SIGKILL'); } catch { /* gone */ }
});

function startProc(name: string, cmd: string, args: string[], cwd: string): Proc {
  const cp = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (!cp.pid) throw new Error(`${name}: spawn failed`);
  live.add(cp);
  let out = '';
  const add = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  cp.stdout?.on('data', add);
  cp.stderr?.on('data', add);
  const exited = new Promise<void>((r) => cp.once('exit', () => r()));
  return {
    name,
    pid: cp.pid,
    cp,
    output: () => out,
    async stop() {
      if (cp.exitCode === null && cp.signalCode === null) {
        if (name.startsWith('srf-app')) {
          process.kill(cp.pid!, 'SIGUSR2'); // the app prints its counters
          await new Promise((r) => setTimeout(r, 300));
        }
        try {
          process.kill(cp.pid!, 'SIGTERM');
        } catch {
          /* gone */
        }
        const t = setTimeout(() => {
          try {
            process.kill(-cp.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 8000);
        await exited;
        clearTimeout(t);
      }
      live.delete(cp);
      fs.writeFileSync(path.join(cwd, `${name.replace(/[()]/g, '-')}.log`), out);
    },
  };
}

async function waitUntil(what: string, ms: number, fn: () => boolean | Promise<boolean>, proc?: Proc): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    if (proc && proc.cp.exitCode !== null) throw new Error(`${proc.name} exited while waiting for ${what}: ${proc.output().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${proc ? `: ${proc.output().slice(-1500)}` : ''}`);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface ServerOptions {
  sipIp: string;
  sipPort: number;
  adminPort: number;
  metricsPort: number;
  secret: string;
  /** Directory for `--cpu-prof` output; undefined = no profiling. */
  cpuProfDir?: string;
  cwd: string;
}

export async function startServer(o: ServerOptions): Promise<Proc> {
  const nodeArgs = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
  const p = startProc('sip-server', process.execPath, [
    ...nodeArgs, CLI, 'sip-server',
    '--contact', `sip:${o.sipIp}:${o.sipPort};transport=udp`,
    '--address', o.sipIp, '--port', String(o.adminPort), '--secret', o.secret,
    '--prometheus-scrape-port', `${o.sipIp}:${o.metricsPort}`,
  ], o.cwd);
  await waitUntil('sip-server admin port', 15_000, () => canConnect(o.sipIp, o.adminPort), p);
  await waitUntil('sip-server UDP socket', 5_000, () => readUdpSocket(`${o.sipIp}:${o.sipPort}`) !== undefined, p);
  return p;
}

export async function startApp(o: { host: string; port: number; secret: string; mode: 'uas' | 'b2b'; target?: string; cwd: string }): Promise<Proc> {
  const args = [APP, '--host', o.host, '--port', String(o.port), '--secret', o.secret, '--mode', o.mode];
  if (o.target) args.push('--target', o.target);
  const p = startProc(`srf-app(${o.mode})`, process.execPath, args, o.cwd);
  await waitUntil('srf app ready', 15_000, () => p.output().includes('"ready":true'), p);
  return p;
}

/** The Node I/O floor (bench/lib/io-floor.mjs) in place of our server: the same traffic, no SIP logic. */
export async function startIoFloor(o: { sipIp: string; sipPort: number; adminPort: number; secret: string; cwd: string }): Promise<Proc> {
  const p = startProc('io-floor', process.execPath, [IO_FLOOR, '--address', o.sipIp, '--sip-port', String(o.sipPort), '--port', String(o.adminPort), '--secret', o.secret], o.cwd);
  await waitUntil('io-floor ready', 15_000, () => p.output().includes('"ready":true'), p);
  return p;
}

/** Scrapes the server's Prometheus endpoint and returns the gauges the benchmark checks. */
export async function scrapeGauges(host: string, port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const res = await fetch(`http://${host}:${port}/metrics`);
    const text = await res.text();
    for (const name of ['drachtio_stable_dialogs', 'sofia_server_txns_total', 'sofia_client_txns_total', 'drachtio_app_connections']) {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      if (m && m[1]) out[name] = Number(m[1]);
    }
  } catch {
    /* not available */
  }
  return out;
}
