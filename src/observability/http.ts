import { timingSafeEqual } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { Level, Logger } from 'pino';
import { setLogLevel } from './logger.js';

export interface ReadinessCheck {
  name: string;
  /** true when the dependency is available. */
  check(): boolean | Promise<boolean>;
}

export interface OpsHttpOptions {
  host: string;
  port: number;
  metrics: () => Promise<string>;
  metricsContentType: string;
  checks: ReadinessCheck[];
  /** JSON for /status (teams-gw status). */
  status: () => Promise<Record<string, unknown>>;
  /** Bearer token required for every request but GET/HEAD; empty or undefined: none. */
  adminToken?: string;
  /** Extra routes (e.g. /check/<tenant>); undefined = not handled. */
  route?: (method: string, url: string) => Promise<{ status: number; body: string } | undefined>;
  logger: Logger;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);

/**
 * The operations endpoint: /metrics (Prometheus), /health (liveness), /ready (readiness: every
 * dependency available), /status (JSON), and PUT /loglevel/<level> to change the log level at
 * run time (of the logger given and every child logger created from it). With `adminToken`, every
 * request but GET/HEAD needs `Authorization: Bearer <token>`.
 */
export class OpsHttpServer {
  readonly #opts: OpsHttpOptions;
  #server?: Server;
  #closed = false;

  constructor(opts: OpsHttpOptions) {
    this.#opts = opts;
  }

  get port(): number {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
    const checks: Record<string, boolean> = {};
    for (const c of this.#opts.checks) {
      try {
        checks[c.name] = await c.check();
      } catch {
        checks[c.name] = false;
      }
    }
    return { ready: Object.values(checks).every(Boolean), checks };
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => res.writeHead(code, { 'Content-Type': type }).end(body);
      const url = (req.url ?? '/').split('?')[0]!;
      const run = async () => {
        // Reads stay open (Prometheus, load balancers); a change needs the token when one is set.
        if (req.method !== 'GET' && req.method !== 'HEAD' && !this.#authorized(req.headers.authorization)) {
          this.#opts.logger.warn({ method: req.method, url, from: req.socket.remoteAddress }, 'ops request refused: missing or wrong bearer token');
          res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Bearer realm="teams-gw ops"' }).end(JSON.stringify({ error: 'bearer token required (ops.adminToken)' }));
          return;
        }
        if (req.method === 'GET' && url === '/metrics') return send(200, await this.#opts.metrics(), this.#opts.metricsContentType);
        if (req.method === 'GET' && (url === '/health' || url === '/healthz')) return send(200, 'ok\n');
        if (req.method === 'GET' && (url === '/ready' || url === '/readyz')) {
          const r = await this.readiness();
          return send(r.ready ? 200 : 503, JSON.stringify(r), 'application/json');
        }
        if (req.method === 'GET' && url === '/status') {
          const r = await this.readiness();
          return send(200, JSON.stringify({ ...r, ...(await this.#opts.status()) }), 'application/json');
        }
        const lv = /^\/loglevel\/([a-z]+)$/.exec(url);
        if (req.method === 'PUT' && lv) {
          if (!LEVELS.has(lv[1]!)) return send(400, `unknown level ${lv[1]}\n`);
          const loggers = setLogLevel(this.#opts.logger, lv[1] as Level);
          this.#opts.logger.info({ to: lv[1], loggers }, 'log level changed');
          return send(200, `${lv[1]}\n`);
        }
        if (req.method === 'GET' && url === '/loglevel') return send(200, `${this.#opts.logger.level}\n`);
        const extra = await this.#opts.route?.(req.method ?? 'GET', url);
        if (extra) return send(extra.status, extra.body, 'application/json');
        return send(404, 'not found\n');
      };
      run().catch((err: Error) => send(500, `${err.message}\n`));
    });
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
  }

  #authorized(header: string | undefined): boolean {
    const token = this.#opts.adminToken;
    if (!token) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return false;
    const a = Buffer.from(m[1]!);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async close(): Promise<void> {
    if (this.#closed || !this.#server) return;
    this.#closed = true;
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
  }
}
