import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createDrachtioServer, type DrachtioServer } from './drachtio/index.js';
import { createGatewayApp } from './gateway/app.js';
import { createLogger } from './observability/logger.js';

const require = createRequire(import.meta.url);

export interface Gateway {
  server?: DrachtioServer;
  srf: any;
  close(): Promise<void>;
}

/** Composition root: config → logger → SIP server (embedded or external) → call-control app. */
export async function startGateway(config: Config): Promise<Gateway> {
  const logger = createLogger(config.log.level, { svc: 'teams-gw' });
  const sc = config.sipServer;
  let server: DrachtioServer | undefined;
  let admin = { host: sc.admin.host, port: sc.admin.port, secret: sc.admin.secret };
  if (sc.mode === 'embedded') {
    // Same process, but the app still connects over loopback TCP with the real drachtio-srf
    // client, so the wire protocol is exercised on every run.
    admin = { host: '127.0.0.1', port: sc.admin.port, secret: sc.admin.secret || randomBytes(16).toString('hex') };
    const tls = sc.tls.keyFile && sc.tls.certFile
      ? {
          key: readFileSync(sc.tls.keyFile), cert: readFileSync(sc.tls.certFile),
          ...(sc.tls.chainFile ? { chain: readFileSync(sc.tls.chainFile) } : {}),
          ...(sc.tls.caFile ? { ca: readFileSync(sc.tls.caFile) } : {}),
          verifyPeer: sc.tls.verifyPeer,
        }
      : undefined;
    server = await createDrachtioServer({
      contacts: sc.contacts,
      admin,
      logger: logger.child({ component: 'sip-server' }),
      cdrs: sc.cdrs,
      ...(sc.externalIp ? { externalIp: sc.externalIp } : {}),
      ...(tls ? { tls } : {}),
    });
    admin.port = server.adminPort;
  } else if (!admin.secret) {
    throw new ConfigError('sipServer.admin.secret: required in external mode (or set $DRACHTIO_SECRET)');
  }
  const Srf = require('drachtio-srf');
  const srf = new Srf();
  createGatewayApp(srf, { logger });
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
  let closed = false;
  return {
    server,
    srf,
    async close() {
      if (closed) return;
      closed = true;
      srf.disconnect();
      await server?.close();
    },
  };
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
    await gw.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  return -1;
}
