import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { DrachtioServerOptions } from '../drachtio/index.js';
import { ConfigError } from '../util/errors.js';

type TlsSettings = Config['sipServer']['tls'];
type TlsOptions = NonNullable<DrachtioServerOptions['tls']>;

/** The TLS files named by `sipServer.tls`, read and checked together. */
export interface TlsMaterial {
  options: TlsOptions;
  certificate: X509Certificate;
  /** sha256 over every file's bytes: equal digests, nothing to reload. */
  digest: string;
}

/** The bytes of the files named by `sipServer.tls`, and a digest over all of them. */
interface TlsFiles {
  key: Buffer;
  cert: Buffer;
  chain: Buffer | undefined;
  ca: Buffer | undefined;
  /** sha256 over every file's bytes: equal digests, nothing to reload. */
  digest: string;
}

/** Reads `sipServer.tls.{keyFile,certFile,chainFile,caFile}`; errors name the config key and the file. */
function readTlsFiles(t: TlsSettings): TlsFiles {
  const read = (key: keyof TlsSettings): Buffer | undefined => {
    const path = t[key];
    if (typeof path !== 'string' || !path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`sipServer.tls.${key} (${path}): cannot read (${(err as Error).message})`);
    }
  };
  const key = read('keyFile');
  const cert = read('certFile');
  if (!key || !cert) throw new ConfigError('sipServer.tls: keyFile and certFile are both needed');
  const chain = read('chainFile');
  const ca = read('caFile');
  const h = createHash('sha256');
  for (const b of [key, cert, chain, ca]) h.update(b ?? '').update('\0');
  return { key, cert, chain, ca, digest: h.digest('hex') };
}

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** Checks of a reload beyond the files belonging together. */
export interface RenewalCheck {
  /** The certificate in use: a renewal may not lose what it has. */
  current: X509Certificate;
  /** Names the certificate must go on covering (carrier base domain, tenant FQDNs). */
  names: string[];
}

/**
 * What a renewal loses against the certificate in use (teams-direct-routing §2.3, §2.6, §2.7):
 * the serverAuth or clientAuth extended key usage (public CAs are dropping clientAuth from their
 * default profiles, and without it Teams' mutual TLS fails), the RSA key, or a name it covered.
 * Only losses count, so a deployment whose certificate already lacks something can still renew.
 */
export function renewalProblems(next: X509Certificate, r: RenewalCheck): string[] {
  const out: string[] = [];
  // No EKU extension: the certificate serves any purpose.
  const has = (c: X509Certificate, oid: string) => c.keyUsage === undefined || c.keyUsage.includes(oid);
  const lost = [
    [EKU_SERVER_AUTH, 'serverAuth'],
    [EKU_CLIENT_AUTH, 'clientAuth'],
  ].filter(([oid]) => has(r.current, oid!) && !has(next, oid!));
  if (lost.length) out.push(`it has no ${lost.map(([, n]) => n).join(' and ')} extended key usage (Teams uses mutual TLS: both are needed; check the CA profile)`);
  const type = next.publicKey.asymmetricKeyType;
  if (r.current.publicKey.asymmetricKeyType === 'rsa' && type !== 'rsa') out.push(`its key is ${type}, not RSA (Teams Direct Routing needs RSA)`);
  const uncovered = r.names.filter((n) => r.current.checkHost(n) !== undefined && next.checkHost(n) === undefined);
  if (uncovered.length) out.push(`it does not cover ${uncovered.slice(0, 5).join(', ')}${uncovered.length > 5 ? ` and ${uncovered.length - 5} more` : ''}, which the certificate in use covers`);
  return out;
}

/**
 * Checks that the files belong together: every error names the config key and the file
 * (ConfigError), so a half-finished renewal (a new certificate beside the old key) is reported
 * as such instead of as an OpenSSL code. With `refuseExpired` (a reload), a certificate past its
 * notAfter is refused too: the one in use cannot be worse; with `renewalOf`, so is one that loses
 * what Teams needs (renewalProblems).
 */
function checkTlsFiles(t: TlsSettings, f: TlsFiles, opts: { refuseExpired?: boolean; now?: number; renewalOf?: RenewalCheck }): TlsMaterial {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(f.cert);
  } catch (err) {
    throw new ConfigError(`sipServer.tls.certFile (${t.certFile}): not a PEM certificate (${(err as Error).message})`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(f.key);
  } catch (err) {
    throw new ConfigError(`sipServer.tls.keyFile (${t.keyFile}): not a PEM private key (${(err as Error).message})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(`sipServer.tls.keyFile (${t.keyFile}) is not the key of the certificate in sipServer.tls.certFile (${t.certFile})`);
  }
  if (opts.refuseExpired && Date.parse(certificate.validTo) <= (opts.now ?? Date.now())) {
    throw new ConfigError(`sipServer.tls.certFile (${t.certFile}): certificate expired on ${certificate.validTo}`);
  }
  const problems = opts.renewalOf ? renewalProblems(certificate, opts.renewalOf) : [];
  if (problems.length) throw new ConfigError(`sipServer.tls.certFile (${t.certFile}): renewal refused: ${problems.join('; ')}`);
  return {
    options: { key: f.key, cert: f.cert, ...(f.chain ? { chain: f.chain } : {}), ...(f.ca ? { ca: f.ca } : {}), verifyPeer: t.verifyPeer, requestClientCert: t.verifyClients },
    certificate,
    digest: f.digest,
  };
}

/** The TLS files named by `sipServer.tls`, read and checked (readTlsFiles, checkTlsFiles). */
export function readTlsMaterial(t: TlsSettings, opts: { refuseExpired?: boolean; now?: number } = {}): TlsMaterial {
  return checkTlsFiles(t, readTlsFiles(t), opts);
}

export type TlsReloadTrigger = 'watch' | 'SIGHUP' | 'http';

export interface TlsReloadResult {
  outcome: 'reloaded' | 'unchanged' | 'failed';
  trigger: TlsReloadTrigger;
  /** Why it failed (names the config key and the file). */
  error?: string;
  /** Reloaded: TLS connections retired (rebuilt on next use). */
  retired?: number;
  subject?: string;
  notAfter?: string;
}

export interface TlsReloaderOptions {
  settings: TlsSettings;
  /** What the SIP server runs with now. */
  current: TlsMaterial;
  /** Hands new material to the SIP server; returns the connections it retired. Throws if unusable. */
  apply: (m: TlsMaterial) => number;
  logger: Logger;
  /** Polling interval; 0: only reload() calls (SIGHUP, HTTP). */
  intervalMs: number;
  /** Names a renewal must keep covering when the certificate in use covers them (default none). */
  names?: () => string[];
  onResult?: (r: TlsReloadResult, m: TlsMaterial | undefined) => void;
}

/**
 * Certificate renewal without a restart (teams-direct-routing §2.12). The files are re-read on
 * SIGHUP, on `POST /tls/reload`, and every `watchIntervalSec`; when their content changed and
 * checks out, the SIP server takes it over and rebuilds its TLS connections. Material that does
 * not check out is refused and the server keeps what it runs with; the watch logs each distinct
 * failure once (a renewal tool writing the files one by one is caught in between).
 */
export class TlsReloader {
  readonly #o: TlsReloaderOptions;
  #applied: string;
  /** The certificate the server runs with (what a renewal is compared with). */
  #current: X509Certificate;
  #lastWatchError: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: TlsReloaderOptions) {
    this.#o = o;
    this.#applied = o.current.digest;
    this.#current = o.current.certificate;
  }

  start(): void {
    if (this.#closed || this.#timer || this.#o.intervalMs <= 0) return;
    this.#timer = setInterval(() => this.reload('watch'), this.#o.intervalMs);
    this.#timer.unref();
  }

  reload(trigger: TlsReloadTrigger): TlsReloadResult {
    const log = this.#o.logger;
    let m: TlsMaterial | undefined;
    let result: TlsReloadResult;
    try {
      // Unchanged files need no checks: the same bytes are what the server runs with.
      const files = readTlsFiles(this.#o.settings);
      if (files.digest === this.#applied) {
        result = { outcome: 'unchanged', trigger };
      } else {
        m = checkTlsFiles(this.#o.settings, files, { refuseExpired: true, renewalOf: { current: this.#current, names: this.#o.names?.() ?? [] } });
        const retired = this.#o.apply(m);
        this.#applied = m.digest;
        this.#current = m.certificate;
        result = { outcome: 'reloaded', trigger, retired, subject: subjectOf(m.certificate), notAfter: m.certificate.validTo };
      }
      this.#lastWatchError = undefined;
    } catch (err) {
      const error = (err as Error).message;
      result = { outcome: 'failed', trigger, error };
      const repeated = trigger === 'watch' && error === this.#lastWatchError;
      if (trigger === 'watch') this.#lastWatchError = error;
      if (!repeated) log.error({ trigger, err: error }, 'tls reload refused: keeping the certificate in use');
      this.#o.onResult?.(result, undefined);
      return result;
    }
    if (result.outcome === 'reloaded') log.info({ trigger, retired: result.retired, subject: result.subject, notAfter: result.notAfter }, 'tls certificate reloaded');
    else if (trigger !== 'watch') log.info({ trigger }, 'tls reload: files unchanged');
    this.#o.onResult?.(result, m);
    return result;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

export function subjectOf(c: X509Certificate): string {
  return c.subject.replace(/\n/g, ', ');
}
