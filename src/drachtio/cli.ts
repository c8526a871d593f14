import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createDrachtioServer } from './index.js';
import { ConfigError, loadXmlConfig } from './conf-xml.js';
import { normalizeRequestHandlers } from './request-handlers.js';
import type { DrachtioServerOptions } from './types.js';

const USAGE = `usage: teams-gw sip-server [options]
  -f, --file <drachtio.conf.xml>        read the common subset of drachtio's XML config
  --contact <sip-uri>                    SIP listen contact, repeatable (sip:127.0.0.1:5060;transport=udp,tcp)
  --address <ip>                         admin (wire protocol) address [127.0.0.1]
  --port <n>                             admin port [9022]
  --secret <s>                           admin secret [$DRACHTIO_SECRET or cymru]
  --external-ip <ip>                     advertised address for all contacts
  --key-file, --cert-file, --chain-file  TLS material for transport=tls contacts; re-read on SIGHUP
                                         (a renewed certificate: every TLS connection is rebuilt)
  --adopt-retries                        an INVITE repeated over another TCP/TLS connection (same
                                         Call-ID, From tag, CSeq) takes the pending one over
                                         instead of getting 482 (Teams datacenter retries)
  --loglevel <level>                     error|warn|info|debug [info]
  --user-agent-options-auto-respond <ua> answer OPTIONS from this User-Agent with 200
  --prometheus-scrape-port <[addr:]port> serve drachtio_* metrics on /metrics
  --cdrs                                 send cdr:* events to apps
  --trying-delay-ms <0..200>             100 Trying to a new INVITE only if the app has not
                                         responded within this time [200]; 0 = at once (drachtio)
  --http-handler <url>                   outbound mode for every new request: http(s)://… asks this
                                         webhook where to route it; tcp://host:port or
                                         tls://host:port connects to an app (srf.listen) directly
  --http-method <GET|POST>               webhook method [GET]: GET sends the request as query
                                         parameters, POST also sends the raw SIP message as body
`;

export interface ParsedArgs {
  opts: DrachtioServerOptions;
  loglevel: string;
  prometheus?: string;
  /** Where the TLS material came from (re-read on SIGHUP). */
  tlsFiles?: TlsFiles;
}

interface TlsFiles {
  keyFile: string;
  certFile: string;
  chainFile?: string;
}

function readTls(f: TlsFiles): NonNullable<DrachtioServerOptions['tls']> {
  const t: NonNullable<DrachtioServerOptions['tls']> = { key: readFileSync(f.keyFile), cert: readFileSync(f.certFile) };
  if (f.chainFile) t.chain = readFileSync(f.chainFile);
  return t;
}

/** Builds server options from drachtio-style flags (+ optional XML file); flags win over the file. */
export function optionsFromArgs(argv: string[]): ParsedArgs {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      file: { type: 'string', short: 'f' },
      contact: { type: 'string', multiple: true },
      address: { type: 'string' },
      port: { type: 'string' },
      secret: { type: 'string' },
      'external-ip': { type: 'string' },
      'key-file': { type: 'string' },
      'cert-file': { type: 'string' },
      'chain-file': { type: 'string' },
      'adopt-retries': { type: 'boolean' },
      loglevel: { type: 'string' },
      'user-agent-options-auto-respond': { type: 'string' },
      'prometheus-scrape-port': { type: 'string' },
      cdrs: { type: 'boolean' },
      'trying-delay-ms': { type: 'string' },
      'http-handler': { type: 'string' },
      'http-method': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new UsageError(USAGE);
  const xml = values.file ? loadXmlConfig(values.file) : undefined;
  const contacts = values.contact?.length ? values.contact : (xml?.contacts ?? []);
  if (contacts.length === 0) contacts.push('sip:127.0.0.1:5060;transport=udp,tcp');
  const port = values.port ?? (xml?.admin?.port !== undefined ? String(xml.admin.port) : '9022');
  if (!/^\d+$/.test(port)) throw new ConfigError(`--port: "${port}" is not a port number`);
  const opts: DrachtioServerOptions = {
    contacts,
    admin: {
      host: values.address ?? xml?.admin?.host ?? '127.0.0.1',
      port: Number(port),
      secret: values.secret ?? process.env.DRACHTIO_SECRET ?? xml?.admin?.secret ?? 'cymru',
    },
  };
  const ext = values['external-ip'] ?? xml?.externalIp;
  if (ext) opts.externalIp = ext;
  const keyFile = values['key-file'] ?? xml?.tls?.keyFile;
  const certFile = values['cert-file'] ?? xml?.tls?.certFile;
  const chainFile = values['chain-file'] ?? xml?.tls?.chainFile;
  let tlsFiles: TlsFiles | undefined;
  if (keyFile || certFile) {
    if (!keyFile || !certFile) throw new ConfigError('TLS needs both --key-file and --cert-file');
    tlsFiles = { keyFile, certFile, ...(chainFile ? { chainFile } : {}) };
    opts.tls = readTls(tlsFiles);
  }
  if (values['adopt-retries']) opts.adoptRetries = true;
  const ua = values['user-agent-options-auto-respond'] ?? xml?.userAgentOptionsAutoRespond;
  if (ua) opts.userAgentOptionsAutoRespond = ua;
  if (values.cdrs || xml?.cdrs) opts.cdrs = true;
  const trying = values['trying-delay-ms'];
  if (trying !== undefined) {
    if (!/^\d+$/.test(trying) || Number(trying) > 200) throw new ConfigError(`--trying-delay-ms: "${trying}" is not a number of ms from 0 to 200`);
    opts.tryingDelayMs = Number(trying);
  }
  const httpMethod = values['http-method']?.toUpperCase();
  if (httpMethod !== undefined && httpMethod !== 'GET' && httpMethod !== 'POST') throw new ConfigError(`--http-method: "${values['http-method']}" must be GET or POST`);
  if (values['http-handler'] !== undefined) {
    // Flags win over the file: --http-handler replaces its <request-handlers>.
    opts.requestHandlers = [{ sipMethod: '*', url: values['http-handler'], httpMethod: httpMethod ?? 'GET' }];
  } else if (httpMethod !== undefined) {
    throw new ConfigError('--http-method needs --http-handler');
  } else if (xml?.requestHandlers?.length) {
    opts.requestHandlers = xml.requestHandlers;
  }
  if (opts.requestHandlers) normalizeRequestHandlers(opts.requestHandlers);
  if (xml?.spammers) opts.spammers = xml.spammers;
  if (xml?.outboundProxy) opts.outboundProxy = xml.outboundProxy;
  const prometheus = values['prometheus-scrape-port'] ?? (xml?.prometheusPort ? String(xml.prometheusPort) : undefined);
  const out: ParsedArgs = { opts, loglevel: values.loglevel ?? xml?.loglevel ?? 'info' };
  if (prometheus) out.prometheus = prometheus;
  if (tlsFiles) out.tlsFiles = tlsFiles;
  return out;
}

class UsageError extends Error {}

export default async function sipServerCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = optionsFromArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stdout.write(err.message);
      return 0;
    }
    process.stderr.write(`teams-gw sip-server: ${(err as Error).message}\n${err instanceof ConfigError ? '' : USAGE}`);
    return 2;
  }
  const logger = pino({ level: parsed.loglevel === 'notice' ? 'info' : parsed.loglevel, base: { svc: 'sip-server' } });
  parsed.opts.logger = logger;
  const server = await createDrachtioServer(parsed.opts);
  let metrics: { close(): Promise<void> } | undefined;
  if (parsed.prometheus) {
    const { startDrachtioMetrics } = await import('./metrics.js');
    metrics = await startDrachtioMetrics(server, parsed.prometheus);
  }
  const stop = async (sig: string) => {
    logger.info({ sig }, 'shutting down');
    // Never hang on shutdown (an app connection that does not close): exit after 3 s regardless.
    setTimeout(() => process.exit(0), 3000).unref();
    await metrics?.close();
    await server.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // A renewed certificate without a restart (Teams Direct Routing §2.12): unusable files are
  // refused and the running certificate stays.
  const files = parsed.tlsFiles;
  process.on('SIGHUP', () => {
    if (!files) return void logger.warn('SIGHUP: no --key-file/--cert-file to reload');
    try {
      logger.info({ retired: server.setTls(readTls(files)) }, 'tls certificate reloaded');
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'tls reload refused: keeping the certificate in use');
    }
  });
  return -1;
}
