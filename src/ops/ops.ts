import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { DrachtioServer } from '../drachtio/index.js';
import { registerDrachtioMetrics } from '../drachtio/metrics.js';
import { type GatewayContext, teamsNextHop } from '../gateway/context.js';
import type { RtpenginePool } from '../media/index.js';
import { type Cdr, CdrWriter, type CdrStreamSink } from '../observability/cdr.js';
import { OpsHttpServer } from '../observability/http.js';
import { GatewayMetrics, sipClass } from '../observability/metrics.js';
import { type CheckLine, type OptionsProbeResult, runTenantCheck, tcpReachable } from './check.js';
import { OptionsPinger, type OptionsTarget } from './options-pinger.js';
import { type TlsMaterial, type TlsReloadResult, type TlsReloadTrigger, TlsReloader, subjectOf } from './tls-reload.js';

export interface Ops {
  metrics: GatewayMetrics;
  cdr: CdrWriter;
  http: OpsHttpServer;
  teamsPinger: OptionsPinger;
  carrierPinger?: OptionsPinger;
  /** Carrier targets (host:port) currently failing their OPTIONS checks. */
  carrierDown: ReadonlySet<string>;
  check(tenantId: string): Promise<CheckLine[]>;
  /** §2.12: re-read the TLS files and hand a renewed certificate to the SIP server (SIGHUP). */
  reloadTls(trigger: TlsReloadTrigger): TlsReloadResult;
  close(): Promise<void>;
}

export interface OpsDeps {
  config: Config;
  ctx: GatewayContext;
  logger: Logger;
  server?: DrachtioServer;
  /** The TLS material the embedded server runs with (from readTlsMaterial). */
  tls?: TlsMaterial;
  pool?: RtpenginePool;
  redis?: CdrStreamSink & { status?: string };
  /** SIP connection to the server is up (drachtio-srf connected). */
  sipConnected: () => boolean;
  /** The process is stopping (SIGTERM drain): a maintenance drain can no longer be undone. */
  stopping?: () => boolean;
}

/**
 * Operations wiring: Prometheus metrics, the HTTP endpoint, OPTIONS health checks that drive
 * Teams proxy (and carrier target) state, CDRs, and the onboarding self-test.
 */
export async function startOps(d: OpsDeps): Promise<Ops> {
  const { config, ctx, logger } = d;
  const metrics = new GatewayMetrics();
  if (d.server) registerDrachtioMetrics(d.server, metrics.registry);
  const cdr = new CdrWriter({
    logger: logger.child({ component: 'cdr' }),
    ...(d.redis ? { redis: d.redis } : {}),
    stream: config.ops.cdrStream,
    maxLen: config.ops.cdrStreamMaxLen,
    onWritten: (sink) => metrics.cdrsWritten.inc({ sink }),
  });

  // rtpengine health and command latency.
  if (d.pool) {
    for (const s of d.pool.stats().instances) metrics.rtpengineUp.set({ rtpengine: s.address }, s.up ? 1 : 0);
    d.pool.on((ev) => {
      if (ev.type === 'instance-up') metrics.rtpengineUp.set({ rtpengine: ev.instance }, 1);
      else if (ev.type === 'instance-down') metrics.rtpengineUp.set({ rtpengine: ev.instance }, 0);
      else if (ev.type === 'no-rtpengine') metrics.noRtpengine.inc();
      else if (ev.type === 'command') {
        metrics.rtpengineLatency.observe({ rtpengine: ev.instance, command: ev.command }, ev.latencyMs / 1000);
        if (ev.outcome !== 'ok') metrics.rtpengineErrors.inc({ rtpengine: ev.instance, command: ev.command, outcome: ev.outcome });
      }
    });
  }
  // Tenant config version and reloads; the store's health stands for Redis health.
  metrics.tenantConfigVersion.set(ctx.tenants.version());
  metrics.redisUp.set(ctx.tenants.status().state === 'ok' ? 1 : 0);
  ctx.tenants.on('reload', ({ version }) => {
    metrics.tenantConfigVersion.set(version);
    metrics.tenantReloads.inc();
  });
  ctx.tenants.on('status', (st) => {
    metrics.redisUp.set(st.state === 'ok' ? 1 : 0);
    if (st.state === 'degraded') metrics.redisErrors.inc({ op: 'reload' });
  });
  // Certificate expiry (alerting 30 days ahead), and renewals taken over without a restart (§2.12).
  /** For /status: the certificate in use and the last reload attempt. */
  const tlsStatus: { subject?: string; notAfter?: string; lastReload?: { at: string; outcome: string; trigger: string; error?: string } } = {};
  const showCertificate = (c: X509Certificate) => {
    metrics.certExpiry.reset();
    metrics.certExpiry.set({ subject: subjectOf(c) }, Date.parse(c.validTo) / 1000);
    tlsStatus.subject = subjectOf(c);
    tlsStatus.notAfter = c.validTo;
  };
  let tlsReloader: TlsReloader | undefined;
  const tlsSettings = config.sipServer.tls;
  if (d.tls && d.server) {
    const server = d.server;
    showCertificate(d.tls.certificate);
    tlsReloader = new TlsReloader({
      settings: tlsSettings,
      current: d.tls,
      apply: (m) => server.setTls(m.options, tlsSettings.reloadGraceSec * 1000),
      logger: logger.child({ component: 'tls' }),
      intervalMs: tlsSettings.watchIntervalSec * 1000,
      // §2.3/§2.7: the carrier trunk FQDN and every tenant FQDN Teams connects to.
      names: () => {
        const base = ctx.tenants.snapshot().index.settings.carrierBaseDomain;
        return [...(base ? [base] : []), ...ctx.tenants.list().map((t) => t.fqdn)];
      },
      onResult: (r, m) => {
        // A watch poll that found the files unchanged is not an attempt; a failure counts each time.
        if (r.outcome !== 'unchanged' || r.trigger !== 'watch') {
          metrics.tlsReloads.inc({ outcome: r.outcome });
          tlsStatus.lastReload = { at: new Date().toISOString(), outcome: r.outcome, trigger: r.trigger, ...(r.error ? { error: r.error } : {}) };
        }
        if (m && r.outcome === 'reloaded') showCertificate(m.certificate);
      },
    });
    tlsReloader.start();
  } else if (tlsSettings.certFile) {
    // External drachtio-server: it holds the certificate; the file still feeds the expiry alert.
    try {
      showCertificate(new X509Certificate(readFileSync(tlsSettings.certFile)));
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'cannot read TLS certificate for expiry metric');
    }
  }
  const reloadTls = (trigger: TlsReloadTrigger): TlsReloadResult => {
    if (tlsReloader) return tlsReloader.reload(trigger);
    const error = d.server
      ? 'no TLS listen point: sipServer.tls.keyFile and certFile are not set'
      : 'external drachtio-server: it reads its certificate at start; restart it after a renewal';
    logger.warn({ trigger, err: error }, 'tls reload not possible');
    return { outcome: 'failed', trigger, error };
  };

  const sig = config.teams.signalingPort;
  const teamsTargets = async (fqdns: string[]): Promise<OptionsTarget[]> => {
    const out: OptionsTarget[] = [];
    for (const p of config.teams.proxies) {
      let proxy: string | undefined;
      try {
        proxy = await teamsNextHop(ctx, p);
      } catch {
        proxy = undefined;
      }
      for (const fqdn of fqdns) {
        out.push({
          name: p.host,
          kind: 'teams',
          uri: `sip:${p.host}:${p.port};transport=tls`,
          ...(proxy ? { proxy } : {}),
          contact: `<sip:${fqdn}:${sig};transport=tls>`,
          headers: { From: `<sip:${fqdn}:${sig}>`, To: `<sip:${p.host}:${p.port}>`, 'X-MS-SBC': config.teams.sbcHeader, 'Max-Forwards': '70' },
        });
      }
    }
    return out;
  };
  /** §3: OPTIONS for the carrier trunk FQDN; optionally for every tenant FQDN too. Follows reloads. */
  const optionFqdns = (): string[] => {
    const base = ctx.tenants.snapshot().index.settings.carrierBaseDomain;
    const list = base ? [base] : [];
    if (config.ops.optionsPerTenant) for (const t of ctx.tenants.list()) if (t.enabled) list.push(t.fqdn);
    return list;
  };
  const teamsPinger = new OptionsPinger({
    srf: ctx.srf,
    logger: logger.child({ component: 'options' }),
    intervalMs: config.ops.optionsIntervalSec * 1000,
    failuresBeforeDown: config.ops.optionsFailuresBeforeDown,
    timeoutMs: config.ops.optionsTimeoutMs,
    targets: () => teamsTargets(optionFqdns()),
    onResult: (r) => {
      metrics.optionsRtt.observe({ target: r.target.name, kind: 'teams' }, r.rttMs / 1000);
      metrics.optionsStatus.inc({ target: r.target.name, kind: 'teams', class: r.status ? sipClass(r.status) : 'timeout' });
    },
    onStateChange: (t, up) => {
      ctx.teamsProxies.setHealth(t.name, up);
      metrics.optionsUp.set({ target: t.name, kind: 'teams' }, up ? 1 : 0);
    },
  });
  for (const p of config.teams.proxies) metrics.optionsUp.set({ target: p.host, kind: 'teams' }, 1);

  /** Carrier targets (host:port) whose OPTIONS fail: skipped in routing. */
  const carrierDown = new Set<string>();
  let carrierPinger: OptionsPinger | undefined;
  if (config.ops.carrierOptionsIntervalSec > 0) {
    carrierPinger = new OptionsPinger({
      srf: ctx.srf,
      logger: logger.child({ component: 'options' }),
      intervalMs: config.ops.carrierOptionsIntervalSec * 1000,
      failuresBeforeDown: config.ops.optionsFailuresBeforeDown,
      timeoutMs: config.ops.optionsTimeoutMs,
      targets: () => {
        const seen = new Set<string>();
        const out: OptionsTarget[] = [];
        for (const t of ctx.tenants.list()) {
          for (const tr of t.trunks) {
            const c = ctx.tenants.carrier(tr.carrier);
            for (const tg of c?.targets ?? []) {
              const name = `${tg.host}:${tg.port}`;
              if (seen.has(name)) continue;
              seen.add(name);
              out.push({ name, kind: 'carrier', uri: `sip:${tg.host}:${tg.port}${tg.transport === 'udp' ? '' : `;transport=${tg.transport}`}` });
            }
          }
        }
        return out;
      },
      onResult: (r) => {
        metrics.optionsRtt.observe({ target: r.target.name, kind: 'carrier' }, r.rttMs / 1000);
        metrics.optionsStatus.inc({ target: r.target.name, kind: 'carrier', class: r.status ? sipClass(r.status) : 'timeout' });
      },
      onStateChange: (t, up) => {
        if (up) carrierDown.delete(t.name);
        else carrierDown.add(t.name);
        metrics.optionsUp.set({ target: t.name, kind: 'carrier' }, up ? 1 : 0);
      },
    });
  }

  const check = async (tenantId: string): Promise<CheckLine[]> => {
    const tenant = ctx.tenants.get(tenantId) ?? ctx.tenants.byFqdn(tenantId);
    if (!tenant) return [{ name: 'tenant', ok: false, detail: `unknown tenant ${tenantId}`, hint: 'see `teams-gw tenants list`' }];
    const tlsLp = d.server?.listenPoints.find((lp) => lp.protocol === 'tls');
    return runTenantCheck({
      fqdn: tenant.fqdn,
      hosts: config.teams.hosts,
      dnsServers: config.ops.dnsServers,
      tlsPort: tlsLp?.port ?? sig,
      optionsProbe: async () => {
        const targets = await teamsTargets([tenant.fqdn]);
        return Promise.all(
          targets.map(async (t): Promise<OptionsProbeResult> => {
            const r = await teamsPinger.probe(t);
            const out: OptionsProbeResult = { proxy: r.target.name, status: r.status, rttMs: r.rttMs };
            // No answer, or one the SIP server may have made up (timeout → 408, transport error → 503):
            // is the proxy reachable at all?
            if (r.status === 0 || r.status === 408 || r.status === 503) {
              const err = t.proxy ? await tcpReachable(t.proxy) : `cannot resolve ${t.name}`;
              if (err) out.error = err;
            }
            return out;
          }),
        );
      },
    });
  };

  const http = new OpsHttpServer({
    host: config.ops.httpHost,
    port: config.ops.httpPort,
    adminToken: config.ops.adminToken,
    metrics: async () => {
      metrics.mediaSessions.set(d.pool ? d.pool.stats().instances.reduce((n, i) => n + i.sessions, 0) : 0);
      return metrics.metrics();
    },
    metricsContentType: metrics.registry.contentType,
    logger,
    checks: [
      { name: 'sip', check: () => d.sipConnected() },
      { name: 'tenants', check: () => ctx.tenants.status().state === 'ok' && ctx.tenants.version() > 0 },
      { name: 'media', check: () => !d.pool || d.pool.liveInstances.length > 0 },
      // Draining (maintenance or SIGTERM): load balancers and orchestration take the node out.
      { name: 'accepting', check: () => !ctx.draining },
    ],
    status: async () => ({
      calls: ctx.calls.size,
      draining: ctx.draining,
      tenantsVersion: ctx.tenants.version(),
      tenantStore: ctx.tenants.status().state,
      teamsProxies: config.teams.proxies.map((p) => ({ host: p.host, up: ctx.teamsProxies.isUp(p.host) })),
      rtpengines: d.pool?.stats().instances.map((i) => ({ address: i.address, up: i.up, sessions: i.sessions })) ?? [],
      ...(tlsStatus.subject ? { tls: tlsStatus } : {}),
    }),
    route: async (method, url) => {
      // Maintenance: new calls get 503 with Retry-After (Teams and carriers re-route on it),
      // OPTIONS too, /ready fails; calls in progress go on. /resume undoes it (not once stopping).
      if (url === '/drain' || url === '/resume') {
        if (method !== 'POST') return { status: 405, body: JSON.stringify({ error: `POST ${url}` }) };
        const drain = url === '/drain';
        if (!drain && d.stopping?.()) return { status: 409, body: JSON.stringify({ error: 'the gateway is stopping', draining: true, calls: ctx.calls.size }) };
        if (ctx.draining !== drain) logger.warn({ calls: ctx.calls.size, trigger: 'http' }, drain ? 'draining: new calls and OPTIONS get 503' : 'drain ended: accepting new calls');
        ctx.draining = drain;
        return { status: 200, body: JSON.stringify({ draining: ctx.draining, calls: ctx.calls.size }) };
      }
      if (url === '/tls/reload') {
        if (method !== 'POST') return { status: 405, body: JSON.stringify({ error: 'POST /tls/reload' }) };
        const r = reloadTls('http');
        return { status: r.outcome === 'failed' ? 422 : 200, body: JSON.stringify(r) };
      }
      const m = /^\/check\/([^/]+)$/.exec(url);
      if (method !== 'GET' || !m) return undefined;
      const lines = await check(decodeURIComponent(m[1]!));
      return { status: lines.every((l) => l.ok) ? 200 : 422, body: JSON.stringify({ ok: lines.every((l) => l.ok), lines }) };
    },
  });
  await http.start();
  if (!config.ops.adminToken && !isLoopback(config.ops.httpHost)) {
    logger.warn({ httpHost: config.ops.httpHost }, 'ops endpoint off loopback without ops.adminToken: anyone who reaches it can drain the gateway or change its log level');
  }
  // Teams talks TLS only: without a TLS listener (e.g. the loopback quick start) there is
  // nothing to keep alive, and no OPTIONS leave the host.
  const hasTls = !d.server || d.server.listenPoints.some((lp) => lp.protocol === 'tls');
  if (hasTls) teamsPinger.start();
  else logger.info('no TLS SIP listener: OPTIONS to Teams are disabled');
  carrierPinger?.start();
  let closed = false;
  return {
    metrics,
    cdr,
    http,
    teamsPinger,
    ...(carrierPinger ? { carrierPinger } : {}),
    carrierDown,
    check,
    reloadTls,
    async close() {
      if (closed) return;
      closed = true;
      tlsReloader?.close();
      await teamsPinger.close();
      await carrierPinger?.close();
      await http.close();
    },
  };
}

export type { Cdr };

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
