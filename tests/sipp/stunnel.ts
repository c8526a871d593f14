/**
 * Runs stunnel4 in front of SIPp for the TLS acceptance tests (SIPp 3.6.1 from Debian has no TLS).
 *   client mode: plain TCP in (SIPp) → TLS out (our server), presenting a client certificate;
 *   server mode: TLS in (our server) → plain TCP out (SIPp), requiring and verifying a client
 *   certificate (mutual TLS).
 * The process runs in the foreground and is stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { waitListening } from '../helpers/net.js';

export interface StunnelService {
  name: string;
  client: boolean;
  accept: { host: string; port: number };
  connect: { host: string; port: number };
  /** Local address for outgoing connections. */
  local?: string;
  certPath: string;
  keyPath: string;
  caPath: string;
  /** Server mode: refuse peers without a valid client certificate. Client mode: verify the server. */
  verify: boolean;
  /** Client mode: expected IP in the server certificate. */
  checkIp?: string;
}

export interface Stunnel {
  pid: number;
  logPath: string;
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const cp of live) {
    try {
      cp.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

export async function startStunnel(dir: string, services: StunnelService[]): Promise<Stunnel> {
  const logPath = path.join(dir, `stunnel-${services.map((s) => s.name).join('-')}.log`);
  const conf = [
    'foreground = yes',
    `output = ${logPath}`,
    'debug = 7',
    'syslog = no',
    '',
    ...services.flatMap((s) => [
      `[${s.name}]`,
      `client = ${s.client ? 'yes' : 'no'}`,
      `accept = ${s.accept.host}:${s.accept.port}`,
      `connect = ${s.connect.host}:${s.connect.port}`,
      ...(s.local ? [`local = ${s.local}`] : []),
      `cert = ${s.certPath}`,
      `key = ${s.keyPath}`,
      `CAfile = ${s.caPath}`,
      'sslVersionMin = TLSv1.2',
      ...(s.verify ? ['verifyChain = yes', ...(s.client ? [] : ['requireCert = yes'])] : ['verifyChain = no']),
      ...(s.checkIp ? [`checkIP = ${s.checkIp}`] : []),
      '',
    ]),
  ].join('\n');
  const confPath = path.join(dir, `stunnel-${services.map((s) => s.name).join('-')}.conf`);
  fs.writeFileSync(confPath, conf);
  const cp = spawn('stunnel4', [confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(cp);
  let out = '';
  cp.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  cp.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => cp.once('close', () => r()));
  const stop = async (): Promise<void> => {
    live.delete(cp);
    if (cp.exitCode === null && cp.signalCode === null) {
      cp.kill('SIGTERM');
      const t = setTimeout(() => cp.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    }
  };
  try {
    await Promise.race([
      (async () => {
        for (const s of services) await waitListening('tcp', s.accept.host, s.accept.port, 5000);
      })(),
      exited.then(() => {
        throw new Error(`stunnel exited early: ${out}\n${fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : ''}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid: cp.pid ?? -1,
    logPath,
    log: () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : ''),
    stop,
  };
}
