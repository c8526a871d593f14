import { createServer } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DrachtioServer } from './types.js';
import { DrachtioServerImpl, SERVER_VERSION } from './server.js';

/**
 * Prometheus metrics of the SIP server under drachtio-server's names (drachtio_*), so
 * dashboards built for drachtio keep working. Values are read from the server at scrape time.
 */
export function registerDrachtioMetrics(server: DrachtioServer, registry: Registry): void {
  const impl = server instanceof DrachtioServerImpl ? server : undefined;
  const fromMap = (c: Counter<string>, map: Map<string, number> | undefined, labels: (k: string) => Record<string, string>) => {
    c.reset();
    for (const [k, v] of map ?? []) c.inc(labels(k), v);
  };
  const reqLabels = (k: string) => ({ method: k });
  const resLabels = (k: string) => {
    const [method = '', code = ''] = k.split(' ');
    return { method, code };
  };
  new Counter({
    name: 'drachtio_sip_requests_in_total', help: 'count of sip requests received', labelNames: ['method'], registers: [registry],
    collect() { fromMap(this, impl?.traffic.requestsIn, reqLabels); },
  });
  new Counter({
    name: 'drachtio_sip_requests_out_total', help: 'count of sip requests sent', labelNames: ['method'], registers: [registry],
    collect() { fromMap(this, impl?.traffic.requestsOut, reqLabels); },
  });
  new Counter({
    name: 'drachtio_sip_responses_in_total', help: 'count of sip responses received', labelNames: ['method', 'code'], registers: [registry],
    collect() { fromMap(this, impl?.traffic.responsesIn, resLabels); },
  });
  new Counter({
    name: 'drachtio_sip_responses_out_total', help: 'count of sip responses sent', labelNames: ['method', 'code'], registers: [registry],
    collect() { fromMap(this, impl?.traffic.responsesOut, resLabels); },
  });
  new Gauge({ name: 'drachtio_build_info', help: 'drachtio version running', labelNames: ['version'], registers: [registry], collect() { this.set({ version: SERVER_VERSION }, 1); } });
  new Gauge({ name: 'drachtio_time_started', help: 'drachtio start time', registers: [registry], collect() { this.set((impl?.startedAt ?? Date.now()) / 1000); } });
  new Gauge({ name: 'drachtio_stable_dialogs', help: 'count of SIP dialogs in progress', registers: [registry], collect() { this.set(server.stats().dialogs); } });
  new Gauge({ name: 'drachtio_proxy_cores', help: 'count of proxied call setups in progress', registers: [registry], collect() { this.set(impl?.proxy.active.size ?? 0); } });
  new Gauge({ name: 'drachtio_app_connections', help: 'count of connections to drachtio applications', registers: [registry], collect() { this.set(server.stats().appConnections); } });
  new Gauge({ name: 'sofia_server_txns_total', help: 'count of server-side transactions', registers: [registry], collect() { this.set(server.stats().serverTransactions); } });
  new Gauge({ name: 'sofia_client_txns_total', help: 'count of client-side transactions', registers: [registry], collect() { this.set(server.stats().clientTransactions); } });
}

/** Serves /metrics for `teams-gw sip-server --prometheus-scrape-port [addr:]port`. */
export async function startDrachtioMetrics(server: DrachtioServer, spec: string): Promise<{ close(): Promise<void> }> {
  const m = /^(?:(.+):)?(\d+)$/.exec(spec);
  if (!m) throw new Error(`--prometheus-scrape-port: invalid value ${spec}`);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerDrachtioMetrics(server, registry);
  const http = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve) => http.listen(Number(m[2]), m[1] ?? '0.0.0.0', resolve));
  return { close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}
