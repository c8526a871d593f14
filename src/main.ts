import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createDrachtioServer, type DrachtioServer } from './drachtio/index.js';
import { type Admission, MemoryAdmission, RedisAdmission } from './gateway/admission.js';
import { createGatewayApp } from './gateway/app.js';
import type { GatewayContext } from './gateway/context.js';
import type { MediaService } from './gateway/media-port.js';
import { Resolver } from './gateway/resolver.js';
import { TeamsProxyList } from './gateway/teams-proxies.js';
import { DEFAULT_MEDIA_PROFILES, type MediaProfilesOverride, RtpenginePool, mergeMediaProfiles, validateMediaProfiles } from './media/index.js';
import { createLogger } from './observability/logger.js';
import { ObservedCallSet } from './ops/call-observer.js';
import { ObservedAdmission } from './ops/observed-admission.js';
import { type Ops, startOps } from './ops/ops.js';
import { readTlsMaterial } from './ops/tls-reload.js';
import { createRedisClient, createTenantStore, redisOptionsFromEnv, type TenantStore } from './tenants/index.js';

const require = createRequire(import.meta.url);

export interface Gateway {
  server?: DrachtioServer;
  srf: any;
  ctx: GatewayContext;
  ops: Ops;
  /** SIGTERM behaviour: refuse new calls (503), wait for calls to end (at most drainSeconds), close. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export interface GatewayDeps {
  /** Media anchoring; built from config.media when not given. */
  media?: MediaService;
  tenants?: TenantStore;
  env?: NodeJS.ProcessEnv;
}

/** Composition root: config → logger → SIP server (embedded or external) → call-control app. */
export async function startGateway(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const logger = createLogger(config.log.level, { svc: 'teams-gw' });
  // Embedded SIP server: key, certificate, chain and CA checked together before anything starts;
  // errors name the config key and the file.
  const sc = config.sipServer;
  const tlsMaterial = sc.mode === 'embedded' && sc.tls.keyFile && sc.tls.certFile ? readTlsMaterial(sc.tls) : undefined;
  const env = deps.env ?? process.env;
  const tenants = deps.tenants ?? createTenantStore({ env, logger: logger.child({ component: 'tenants' }) });
  await tenants.start();
  const redisOpts = redisOptionsFromEnv(env);
  const redis = redisOpts ? createRedisClient(redisOpts) : undefined;
  const admission: Admission = redis ? new RedisAdmission(redis as any, { namespace: env.TEAMS_GW_TENANTS_NAMESPACE ?? 'tg' }) : new MemoryAdmission();
  const media = deps.media ?? (await createMedia(config, logger));
  let server: DrachtioServer | undefined;
  let admin = { host: sc.admin.host, port: sc.admin.port, secret: sc.admin.secret };
  const resolver = new Resolver({ hosts: config.teams.hosts, servers: config.teams.dnsServers });
  if (sc.mode === 'embedded') {
    // Same process, but the app still connects over loopback TCP with the real drachtio-srf
    // client, so the wire protocol is exercised on every run.
    admin = { host: '127.0.0.1', port: sc.admin.port, secret: sc.admin.secret || randomBytes(16).toString('hex') };
    server = await createDrachtioServer({
      contacts: sc.contacts,
      admin,
      // 100 Trying to every new INVITE at once (drachtio-server's behaviour), which the
      // gateway's SIPp scenarios expect; the standalone sip-server defers it (§17.2.1).
      tryingDelayMs: 0,
      logger: logger.child({ component: 'sip-server' }),
      cdrs: sc.cdrs,
      dropConnectionOnRetryAfter: sc.dropConnectionOnRetryAfter,
      // Teams §1.10: an INVITE Teams repeats from another datacenter takes the pending one over
      // (drachtio-server would answer it 482, and Teams would drop the call).
      adoptRetries: true,
      // In-dialog requests to Teams go to its Contact/Record-Route FQDN (§2.14), as the app's do.
      resolve: (host) => resolver.resolve(host),
      ...(sc.externalIp ? { externalIp: sc.externalIp } : {}),
      ...(tlsMaterial ? { tls: tlsMaterial.options } : {}),
    });
    admin.port = server.adminPort;
  } else if (!admin.secret) {
    throw new ConfigError('sipServer.admin.secret: required in external mode (or set $DRACHTIO_SECRET)');
  }
  const Srf = require('drachtio-srf');
  const srf = new Srf();
  const calls = new ObservedCallSet();
  const ctx: GatewayContext = {
    srf,
    config,
    log: logger,
    tenants,
    admission,
    media,
    resolver,
    teamsProxies: new TeamsProxyList(config.teams.proxies),
    calls,
    carrierDown: new Set<string>(),
    draining: false,
  };
  createGatewayApp(srf, ctx);
  let sipConnected = false;
  let stopping = false;
  srf.on('connect', () => (sipConnected = true));
  srf.on('reconnecting', () => (sipConnected = false));
  srf.on('disconnect', () => (sipConnected = false));
  await new Promise<void>((resolve, reject) => {
    const onConnect = (err: Error | null, hostport: string) => {
      if (err) return reject(err);
      logger.info({ hostport, mode: sc.mode }, 'call control connected to SIP server');
      resolve();
    };
    srf.once('connect', onConnect);
    srf.on('error', (err: Error) => logger.warn({ err: err.message }, 'drachtio connection error'));
    srf.connect({ host: admin.host, port: admin.port, secret: admin.secret });
  });
  const ops = await startOps({
    config,
    ctx,
    logger,
    ...(server ? { server } : {}),
    ...(tlsMaterial ? { tls: tlsMaterial } : {}),
    ...(media instanceof RtpenginePool ? { pool: media } : {}),
    ...(redis ? { redis: redis as any } : {}),
    sipConnected: () => sipConnected,
    stopping: () => stopping,
  });
  calls.attach(ops.metrics, ops.cdr);
  ctx.onRefused = (r) => ops.metrics.callsRejected.inc({ direction: r.direction, carrier: r.carrier, reason: r.reason });
  ctx.carrierDown = ops.carrierDown;
  ctx.admission = new ObservedAdmission(admission, ops.metrics, redis !== undefined);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await ops.close();
    await Promise.all([...ctx.calls].map((c) => c.close('gateway')));
    srf.disconnect();
    await server?.close();
    await media?.close();
    await admission.close();
    await tenants.close();
    redis?.disconnect();
  };
  return {
    server,
    srf,
    ctx,
    ops,
    async drain() {
      stopping = true;
      ctx.draining = true;
      const deadline = Date.now() + config.shutdown.drainSeconds * 1000;
      logger.info({ calls: ctx.calls.size, drainSeconds: config.shutdown.drainSeconds }, 'draining: new calls get 503');
      while (ctx.calls.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await close();
    },
    close,
  };
}

/** rtpengine-backed media from config (undefined when no rtpengine is configured). */
async function createMedia(config: Config, logger: ReturnType<typeof createLogger>): Promise<MediaService | undefined> {
  if (config.media.rtpengines.length === 0) return undefined;
  const profiles = config.media.profiles as MediaProfilesOverride;
  validateMediaProfiles(mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, profiles));
  const pool = new RtpenginePool({
    instances: config.media.rtpengines,
    commandTimeoutMs: config.media.commandTimeoutMs,
    healthIntervalMs: config.media.healthIntervalMs,
    failuresBeforeDown: config.media.failuresBeforeDown,
    collectStatsOnDelete: true,
    profiles,
    logger: logger.child({ component: 'media' }),
  });
  // The pool starts optimistic; confirm now so /ready and routing reflect reality from the start.
  for (let i = 0; i < config.media.failuresBeforeDown; i++) {
    await pool.checkHealth();
    if (pool.stats().instances.every((s) => s.consecutiveFailures === 0)) break;
  }
  if (pool.liveInstances.length === 0) logger.warn({ rtpengines: config.media.rtpengines }, 'no rtpengine answers: calls will be refused with 503 until one does');
  return pool;
}

export default async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  let config: Config;
  try {
    config = loadConfig(values.config ?? process.env.TEAMS_GW_CONFIG);
  } catch (err) {
    process.stderr.write(`teams-gw run: ${(err as Error).message}\n`);
    return 2;
  }
  const gw = await startGateway(config);
  const stop = async () => {
    await gw.drain();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  // §2.12: a renewed certificate is taken over without a restart (certbot/acme deploy hooks, `kill -HUP`).
  process.on('SIGHUP', () => void gw.ops.reloadTls('SIGHUP'));
  return -1;
}
