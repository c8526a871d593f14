/**
 * Test PKI made with the `openssl` CLI (OpenSSL 3.0: leaf validity is set with
 * `openssl ca -startdate/-enddate`, because `x509 -not_before` only exists from 3.4 on).
 *
 *   const pki = await createTestPki(dir, { server: { sans: ['DNS:sbc.example.test', 'IP:127.0.1.10'] } });
 *   pki.server.key / .cert / .keyPath / .certPath, pki.ca.cert, pki.client
 *   const expired = await pki.issue({ name: 'old', cn: 'old.test', expired: true });
 *
 * A second, unrelated CA (for "untrusted" cases) is simply another createTestPki() in another dir.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type KeyType = 'rsa2048' | 'rsa3072' | 'rsa4096' | 'ec256' | 'ec384';
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth' | 'codeSigning' | 'emailProtection';

export interface CertSpec {
  /** File base name: <dir>/<name>.key, <name>.crt. */
  name: string;
  /** Subject CN. */
  cn: string;
  /** subjectAltName entries: 'DNS:x', 'IP:1.2.3.4', 'URI:sip:x' or bare names/IPs (auto-prefixed). Default: [cn]. */
  sans?: string[];
  /** Extended key usages. Default serverAuth + clientAuth (what Teams Direct Routing expects). Empty: no EKU extension. */
  eku?: ExtendedKeyUsage[];
  /** Default rsa2048. */
  keyType?: KeyType;
  /** Validity in days from notBefore (default 365). Ignored when notAfter is set. */
  days?: number;
  /** Default: now - 1 hour (clock skew). */
  notBefore?: Date;
  notAfter?: Date;
  /** Shortcut: valid from 30 days ago until yesterday. */
  expired?: boolean;
  /** Shortcut: valid from tomorrow. */
  notYetValid?: boolean;
  /** Self-signed instead of signed by the test CA. */
  selfSigned?: boolean;
  /** Extra subject fields, e.g. { O: 'Example', OU: 'SBC' }. */
  subject?: Record<string, string>;
  /** An intermediate CA certificate (CA:TRUE, keyCertSign; no SAN or EKU) instead of a leaf. */
  ca?: boolean;
}

export interface IssuedCert {
  name: string;
  keyPath: string;
  certPath: string;
  key: string;
  cert: string;
  /** cert + CA cert (for servers that send their chain). */
  chainPath: string;
}

export interface TestPki {
  dir: string;
  ca: { keyPath: string; certPath: string; key: string; cert: string; cn: string };
  server: IssuedCert;
  client: IssuedCert;
  /** Issues another certificate from the same CA (or self-signed). */
  issue(spec: CertSpec): Promise<IssuedCert>;
}

export interface TestPkiOptions {
  caCn?: string;
  /** Default key type for every certificate. */
  keyType?: KeyType;
  /** Server cert: default CN 'sbc.test.invalid', SANs [DNS:sbc.test.invalid, DNS:localhost, IP:127.0.0.1], EKU serverAuth+clientAuth. */
  server?: Partial<CertSpec>;
  /** Client cert: default CN 'client.test.invalid', EKU clientAuth. */
  client?: Partial<CertSpec>;
  /** Sign with this CA (an intermediate issued with `ca: true` by another PKI) instead of a new root. */
  issuer?: { keyPath: string; certPath: string; cn: string };
}

function keyArgs(t: KeyType): string[] {
  switch (t) {
    case 'rsa2048':
      return ['-newkey', 'rsa:2048'];
    case 'rsa3072':
      return ['-newkey', 'rsa:3072'];
    case 'rsa4096':
      return ['-newkey', 'rsa:4096'];
    case 'ec256':
      return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    case 'ec384':
      return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'];
  }
}

/** YYYYMMDDHHMMSSZ (GeneralizedTime), accepted by `openssl ca -startdate/-enddate`. */
function asn1Time(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
}

function sanEntry(s: string): string {
  if (/^(DNS|IP|URI|email|RID|dirName|otherName):/i.test(s)) return s;
  return isIP(s) ? `IP:${s}` : `DNS:${s}`;
}

function subjectString(cn: string, extra?: Record<string, string>): string {
  const esc = (v: string): string => v.replace(/([/\\=+])/g, '\\$1');
  let s = '';
  for (const [k, v] of Object.entries(extra ?? {})) s += `/${k}=${esc(v)}`;
  return `${s}/CN=${esc(cn)}`;
}

const REQ_CNF = `[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

function caCnf(dir: string): string {
  return `[ ca ]
default_ca = test_ca
[ test_ca ]
database = ${join(dir, 'index.txt')}
new_certs_dir = ${join(dir, 'newcerts')}
serial = ${join(dir, 'serial')}
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
organizationName = optional
organizationalUnitName = optional
countryName = optional
stateOrProvinceName = optional
localityName = optional
`;
}

function leafExt(spec: CertSpec, isEc: boolean): string {
  if (spec.ca) {
    return `[ leaf ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
`;
  }
  const sans = (spec.sans ?? [spec.cn]).map(sanEntry);
  const eku = spec.eku ?? ['serverAuth', 'clientAuth'];
  let s = `[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,${isEc ? 'digitalSignature' : 'digitalSignature,keyEncipherment'}
subjectKeyIdentifier = hash
`;
  if (!spec.selfSigned) s += 'authorityKeyIdentifier = keyid,issuer\n';
  if (eku.length) s += `extendedKeyUsage = ${eku.join(',')}\n`;
  if (sans.length) s += `subjectAltName = ${sans.join(',')}\n`;
  return s;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

export async function createTestPki(dir: string, opts: TestPkiOptions = {}): Promise<TestPki> {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'req.cnf'), REQ_CNF);
  await writeFile(join(dir, 'ca.cnf'), caCnf(dir));
  const defaultKey = opts.keyType ?? 'rsa2048';
  const caCn = opts.caCn ?? 'Test SIP CA';
  const caKeyPath = opts.issuer?.keyPath ?? join(dir, 'ca.key');
  const caCertPath = opts.issuer?.certPath ?? join(dir, 'ca.crt');
  if (!opts.issuer) {
    await openssl(
      ['req', '-x509', '-config', 'req.cnf', '-extensions', 'v3_ca', ...keyArgs(defaultKey), '-nodes', '-keyout', caKeyPath, '-out', caCertPath, '-days', '3650', '-subj', subjectString(caCn)],
      dir,
    );
  }
  const ca = { keyPath: caKeyPath, certPath: caCertPath, key: await readFile(caKeyPath, 'utf8'), cert: await readFile(caCertPath, 'utf8'), cn: opts.issuer?.cn ?? caCn };
  let serial = 0x1000 + Math.floor(Math.random() * 0xffff);
  // `openssl ca` reads and rewrites the serial file and index.txt: concurrent issue() calls
  // must take turns or one reads a half-written serial ("short line").
  let caTurn: Promise<unknown> = Promise.resolve();
  const inCaTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = caTurn.then(fn, fn);
    caTurn = p.catch(() => undefined);
    return p;
  };

  const issue = async (spec: CertSpec): Promise<IssuedCert> => {
    const kt = spec.keyType ?? defaultKey;
    const keyPath = join(dir, `${spec.name}.key`);
    const certPath = join(dir, `${spec.name}.crt`);
    const csrPath = join(dir, `${spec.name}.csr`);
    const extPath = join(dir, `${spec.name}.ext`);
    await writeFile(extPath, leafExt(spec, kt.startsWith('ec')));
    const day = 86_400_000;
    const now = Date.now();
    let notBefore = spec.notBefore ?? new Date(now - 3_600_000);
    let notAfter = spec.notAfter ?? new Date(notBefore.getTime() + (spec.days ?? 365) * day);
    if (spec.expired) {
      notBefore = new Date(now - 30 * day);
      notAfter = new Date(now - day);
    } else if (spec.notYetValid) {
      notBefore = new Date(now + day);
      notAfter = new Date(now + 30 * day);
    }
    await openssl(['req', '-new', '-config', 'req.cnf', ...keyArgs(kt), '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', subjectString(spec.cn, spec.subject)], dir);
    const args = ['ca', '-batch', '-config', 'ca.cnf', '-notext', '-in', csrPath, '-out', certPath, '-extfile', extPath, '-extensions', 'leaf', '-startdate', asn1Time(notBefore), '-enddate', asn1Time(notAfter)];
    if (spec.selfSigned) args.push('-selfsign', '-keyfile', keyPath);
    else args.push('-cert', caCertPath, '-keyfile', caKeyPath);
    await inCaTurn(async () => {
      await writeFile(join(dir, 'serial'), (serial++).toString(16).padStart(6, '0') + '\n');
      await openssl(args, dir);
    });
    const key = await readFile(keyPath, 'utf8');
    const cert = await readFile(certPath, 'utf8');
    const chainPath = join(dir, `${spec.name}.chain.crt`);
    await writeFile(chainPath, spec.selfSigned ? cert : cert + ca.cert);
    return { name: spec.name, keyPath, certPath, key, cert, chainPath };
  };

  const server = await issue({
    name: 'server',
    cn: 'sbc.test.invalid',
    sans: ['DNS:sbc.test.invalid', 'DNS:localhost', 'IP:127.0.0.1'],
    ...opts.server,
  });
  const client = await issue({ name: 'client', cn: 'client.test.invalid', eku: ['clientAuth'], ...opts.client });
  return { dir, ca, server, client, issue };
}
