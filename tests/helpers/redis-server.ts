/**
 * Starts a throwaway redis-server on 127.0.0.1 and a free port (no persistence), for tests and
 * benches. `stop()` kills it for good; `kill()` + `restart()` simulate an outage on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

export interface RedisServerHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** SIGKILL the server (same port stays reserved for restart()). */
  kill(): Promise<void>;
  /** Start again on the same port (empty dataset: no persistence). */
  restart(): Promise<void>;
  /** Kill and forget; idempotent. */
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(host: string, port: number, timeoutMs: number, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, host);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** `configFile` goes first on the command line (redis-server requires it there), e.g. a sentinel.conf. */
export async function startRedisServer(
  opts: { host?: string; port?: number; configFile?: string; args?: string[] } = {},
): Promise<RedisServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  let proc: ChildProcess | undefined;
  let stopped = false;
  const launch = async (): Promise<void> => {
    const p = spawn(
      'redis-server',
      [
        ...(opts.configFile ? [opts.configFile] : []),
        '--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    live.add(p);
    p.once('exit', () => live.delete(p));
    proc = p;
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitForPort(host, port, 5000, p).catch((e: Error) => {
      throw new Error(`${e.message}${stderr ? `: ${stderr.trim()}` : ''}`);
    });
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  await launch();
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    kill,
    async restart() {
      if (stopped) throw new Error('redis-server handle was stopped');
      await kill();
      await launch();
    },
    async stop() {
      stopped = true;
      await kill();
    },
  };
}
