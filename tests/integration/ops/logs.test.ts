/**
 * Logs and CDR log lines of the real process (`teams-gw run` as a child process, its stdout
 * captured): one CDR line per answered, failed and cancelled call, run-time log level changes
 * reaching component loggers, credentials never printed (carrier digest password, admin
 * secret, Authorization/Proxy-Authorization). Plus the redaction rules themselves, in process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CENSOR, createLogger, setLogLevel } from '../../../src/observability/logger.js';
import { FakeTeams, step } from '../../helpers/fake-teams/index.js';
import { freePort, waitFor } from '../../helpers/net.js';
import { type RtpengineHandle, startRtpengine } from '../../helpers/rtpengine.js';
import { type SippResult, headerValue, parseMessageLog, runSipp, sippReport, spawnSipp, startSippUas, stopAllSipp } from '../../helpers/sipp.js';
import { BASE_DOMAIN, CARRIER_PASSWORD, CARRIER_PASSWORD_ENV, DEFAULT_TENANTS, OPS_SCENARIOS, slotAddresses, writeTenantDir } from './harness.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const addr = slotAddresses(3);
const ADMIN_SECRET = 'adm1n-S3cret-0ps-t3st';

interface Line {
  level: number;
  msg?: string;
  [k: string]: any;
}

let dir: string;
let ft: FakeTeams;
let rtp: RtpengineHandle;
let proc: ChildProcess;
let opsUrl: string;
let stdout = '';
const lines: Line[] = [];
let exit: Promise<number | null>;
const ids: Record<string, string> = {};

function callIdOf(r: SippResult): string {
  return headerValue(parseMessageLog(r.messageLog).find((m) => m.direction === 'sent')?.text ?? '', 'Call-ID') ?? '';
}

async function carrierArgs(scenario: string, to: string, source: number, pauseMs = 300) {
  const from = addr.carriers[source]!;
  return {
    scenario: join(OPS_SCENARIOS, `${scenario}.xml`),
    localIp: from,
    localPort: await freePort(from, ['udp']),
    remote: `${addr.gw}:5060`,
    service: to,
    pauseMs,
    keys: { from_user: '+14155550123', rtp_ip: from, rtp_port: 6000 },
    timeoutMs: 15_000,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ops-logs-'));
  const tenantDir = join(dir, 'tenants');
  await mkdir(tenantDir);
  await writeTenantDir(tenantDir, addr, DEFAULT_TENANTS);
  [ft, rtp] = await Promise.all([
    FakeTeams.start({ tenants: DEFAULT_TENANTS.map((t) => `${t.id}.${BASE_DOMAIN}`), addresses: addr.teams, sbc: { host: addr.gw, port: 5061 }, ackTimeoutMs: 3000 }),
    startRtpengine({ ip: addr.rtpengine, timeoutSec: 30 }),
  ]);
  const httpPort = await freePort(addr.gw, ['tcp']);
  opsUrl = `http://${addr.gw}:${httpPort}`;
  const config = {
    log: { level: 'info' },
    sipServer: {
      mode: 'embedded',
      contacts: [`sip:${addr.gw}:5060;transport=udp,tcp`, `sips:${addr.gw}:5061;transport=tls`],
      admin: { port: 0, secret: ADMIN_SECRET },
      tls: { keyFile: ft.pki.sbc.server.keyPath, certFile: ft.pki.sbc.server.certPath, caFile: ft.pki.teams.ca.certPath, verifyPeer: true },
    },
    teams: { proxies: ft.proxies, hosts: ft.hosts, signalingPort: 5061, sbcHeader: 'TestVendor/teams-dr-gateway/0.0.0-ops', sourceCidrs: [`127.0.9.0/24`], inviteTimeoutMs: 1500 },
    media: { rtpengines: [rtp.ngAddress], commandTimeoutMs: 300, healthIntervalMs: 500, failuresBeforeDown: 1 },
    ops: { httpHost: addr.gw, httpPort, optionsIntervalSec: 1, optionsTimeoutMs: 800 },
    shutdown: { drainSeconds: 2 },
  };
  const file = join(dir, 'gateway.json');
  await writeFile(file, JSON.stringify(config));
  proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'run', '-c', file], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TEAMS_GW_TENANTS_DIR: tenantDir, [CARRIER_PASSWORD_ENV]: CARRIER_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let partial = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    stdout += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as Line);
      } catch {
        lines.push({ level: -1, msg: p });
      }
    }
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  exit = new Promise((r) => proc.once('exit', (code) => r(code)));
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`gateway exited ${proc.exitCode}: ${stderr}\n${stdout}`);
      return (await fetch(`${opsUrl}/ready`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 25_000, intervalMs: 200, what: 'gateway ready' },
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nstderr: ${stderr}\nstdout: ${stdout}`);
  });

  // Run-time log level: debug from here on, for the root and every component logger.
  const put = await fetch(`${opsUrl}/loglevel/debug`, { method: 'PUT' });
  expect(put.status).toBe(200);

  // 1. answered, the carrier hangs up
  ft.script([step.ringing(0), step.answer(100)], { times: 1 });
  const a = await runSipp(await carrierArgs('carrier-call-bye', '+14255550111', 0));
  expect(a.exitCode, sippReport(a)).toBe(0);
  ids.answered = callIdOf(a);
  // 2. failed: Teams says 486
  ft.script([step.reject(486)], { times: 1 });
  const f = await runSipp(await carrierArgs('carrier-call-reject', '+14255550112', 1));
  expect(f.exitCode, sippReport(f)).toBe(0);
  ids.failed = callIdOf(f);
  // 3. cancelled by the carrier while Teams rings
  ft.script([step.ringing(0)], { times: 1 });
  const c = await spawnSipp(await carrierArgs('carrier-call-cancel', '+14255550113', 2, 400)).done;
  expect(c.exitCode, sippReport(c)).toBe(0);
  ids.cancelled = callIdOf(c);
  // 4. Teams → PSTN to a carrier that challenges (407): the gateway answers with digest
  //    credentials from env:OPS_TEST_CARRIER_PASSWORD. New TLS connection from Teams.
  const target = await startSippUas({ scenario: join(OPS_SCENARIOS, 'target-auth.xml'), localIp: addr.target, localPort: 5060, calls: 1, keys: { rtp_ip: addr.target, rtp_port: 6000 }, timeoutMs: 20_000 });
  const out = ft.originate({ to: '+14255550122', tenant: `acme.${BASE_DOMAIN}`, newConnection: true });
  expect((await out.waitForFinal(8000)).status).toBe(200);
  ids.outbound = out.callId;
  await new Promise((r) => setTimeout(r, 150));
  await out.bye();
  const t = await target.done;
  expect(t.exitCode, sippReport(t)).toBe(0);
  expect(t.logs).toContain('AUTH OK');
  await waitFor(() => lines.filter((l) => l.msg === 'cdr').length >= 4, { timeoutMs: 5000, what: '4 CDR log lines' });
}, 90_000);

afterAll(async () => {
  await stopAllSipp();
  if (proc && proc.exitCode === null) {
    proc.kill('SIGKILL');
    await exit;
  }
  await ft?.close();
  await rtp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

describe('CDR log lines (the real process)', () => {
  it('one "cdr" line per answered, failed and cancelled call, with the CDR fields', () => {
    const cdrs = lines.filter((l) => l.msg === 'cdr');
    expect(cdrs).toHaveLength(4);
    const by = new Map(cdrs.map((l) => [l.cdr.callId as string, l]));
    for (const l of cdrs) {
      expect(l).toMatchObject({ level: 30, svc: 'teams-gw', component: 'cdr' });
      expect(Object.keys(l.cdr).sort()).toEqual(
        ['answerTime', 'callId', 'carrier', 'direction', 'durationSec', 'endCause', 'endTime', 'finalStatus', 'from', 'hangupBy', 'media', 'startTime', 'teamsProxy', 'tenant', 'to'].sort(),
      );
    }
    expect(by.get(ids.answered!)?.cdr).toMatchObject({ direction: 'inbound', tenant: 'acme', finalStatus: 200, hangupBy: 'caller' });
    expect(by.get(ids.answered!)?.cdr.answerTime).toEqual(expect.any(String));
    expect(by.get(ids.failed!)?.cdr).toMatchObject({ direction: 'inbound', tenant: 'acme', finalStatus: 486, answerTime: null, durationSec: 0 });
    expect(by.get(ids.cancelled!)?.cdr).toMatchObject({ direction: 'inbound', tenant: 'acme', finalStatus: 487, hangupBy: 'caller', answerTime: null });
    const o = cdrs.find((l) => l.cdr.direction === 'outbound');
    expect(o?.cdr).toMatchObject({ tenant: 'acme', finalStatus: 200, hangupBy: 'caller' });
    expect(Object.keys(o?.cdr.media ?? {}).length).toBeGreaterThan(0);
  });

  it('per-call log lines carry Call-ID, tenant and direction', () => {
    const ended = lines.filter((l) => l.msg === 'call ended');
    expect(ended.length).toBeGreaterThanOrEqual(4);
    const answered = ended.find((l) => l.callId === ids.answered);
    expect(answered).toMatchObject({ callId: ids.answered, tenant: 'acme', direction: 'inbound' });
  });
});

describe('run-time log level', () => {
  it('PUT /loglevel/debug reaches component loggers created at start (sip-server debug lines appear)', async () => {
    const changed = lines.find((l) => l.msg === 'log level changed');
    expect(changed).toMatchObject({ level: 30, to: 'debug' });
    expect(changed!.loggers).toBeGreaterThanOrEqual(5); // root + components (sip-server, options, media, cdr, tenants …)
    expect((await (await fetch(`${opsUrl}/loglevel`)).text()).trim()).toBe('debug');
    // Nothing below info before the change; debug lines from the SIP server's child logger after.
    const changeAt = lines.findIndex((l) => l.msg === 'log level changed');
    expect(lines.slice(0, changeAt).filter((l) => l.level < 30)).toEqual([]);
    expect(lines.slice(changeAt).some((l) => l.level === 20 && l.svc === 'teams-gw' && l.component === 'sip-server' && l.msg === 'connection open')).toBe(true);
    expect((await fetch(`${opsUrl}/loglevel/verbose`, { method: 'PUT' })).status).toBe(400);
    const back = await fetch(`${opsUrl}/loglevel/info`, { method: 'PUT' });
    expect(back.status).toBe(200);
    expect((await (await fetch(`${opsUrl}/loglevel`)).text()).trim()).toBe('info');
  });
});

describe('certificate renewal (§2.12)', () => {
  it('SIGHUP takes a renewed certificate over without stopping the process; new connections to Teams present it', async () => {
    const base = ft.pki.baseDomain;
    const renewed = await ft.pki.sbc.issue({ name: 'renewed-sighup', cn: `*.${base}`, sans: [`DNS:*.${base}`, `DNS:${base}`], eku: ['serverAuth', 'clientAuth'] });
    const fp = new X509Certificate(renewed.cert).fingerprint256;
    await writeFile(ft.pki.sbc.server.keyPath, renewed.key);
    await writeFile(ft.pki.sbc.server.certPath, renewed.cert);
    const from = lines.length;
    proc.kill('SIGHUP');
    const done = await waitFor(() => lines.slice(from).find((l) => l.component === 'tls' && l.msg === 'tls certificate reloaded'), { timeoutMs: 5000, what: 'the reload log line' });
    expect(done).toMatchObject({ level: 30, trigger: 'SIGHUP', notAfter: new X509Certificate(renewed.cert).validTo });
    expect(done.retired).toBeGreaterThanOrEqual(1);
    expect(proc.exitCode).toBeNull();
    expect((await fetch(`${opsUrl}/ready`)).status).toBe(200);
    // The next OPTIONS to Teams (every 1 s) goes on a new connection presenting the renewed certificate.
    await waitFor(() => ft.connections().some((c) => c.direction === 'inbound' && c.tls.peerFingerprint256 === fp) || undefined, { timeoutMs: 5000, what: 'a connection with the renewed certificate' });
  });
});

describe('redaction', () => {
  it('the process never printed the carrier password, the admin secret or auth headers (debug level, digest auth call)', () => {
    expect(stdout.length).toBeGreaterThan(1000);
    expect(stdout).not.toContain(CARRIER_PASSWORD);
    expect(stdout).not.toContain(ADMIN_SECRET);
    expect(stdout).not.toMatch(/proxy-authorization"?\s*:\s*"?digest/i);
    expect(stdout).not.toMatch(/authorization"?\s*:\s*"?digest/i);
    expect(stdout).not.toMatch(/response=\\?"[0-9a-f]{32}/i);
  });

  it('SIGTERM drains and exits 0', async () => {
    proc.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(lines.some((l) => /^draining/.test(l.msg ?? ''))).toBe(true);
  }, 15_000);

  it('createLogger censors secrets at any depth and in any case, and credentials inside strings', () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger('debug', { svc: 't' }, sink);
    const callLog = log.child({ callId: 'c1' });
    const digest = 'Digest username="ops-trunk", realm="carrier.test", nonce="abc", uri="sip:x", response="0123456789abcdef0123456789abcdef"';
    callLog.info({ req: { headers: { 'Proxy-Authorization': digest, authorization: digest, 'Call-ID': 'c1' } } }, 'request');
    callLog.info({ carrier: { name: 'carrier-a', auth: { username: 'ops-trunk', password: CARRIER_PASSWORD } } }, 'carrier');
    callLog.info({ config: { sipServer: { admin: { host: 'h', secret: ADMIN_SECRET } } }, Token: 'tok-123456', apiKey: 'k-987654' }, 'config');
    callLog.warn({ raw: `INVITE sip:+1@x SIP/2.0\r\nProxy-Authorization: ${digest}\r\nAuthorization: ${digest}\r\nCall-ID: c1\r\n\r\n` }, 'raw');
    callLog.error({ err: new Error(`cannot connect to redis://gw:${CARRIER_PASSWORD}@127.0.0.1:6379`) }, 'redis');
    callLog.info(`message with Authorization: ${digest}`);
    const text = out.join('');
    expect(text).not.toContain(CARRIER_PASSWORD);
    expect(text).not.toContain(ADMIN_SECRET);
    expect(text).not.toContain('0123456789abcdef0123456789abcdef');
    expect(text).not.toContain('tok-123456');
    expect(text).not.toContain('k-987654');
    const parsed = out.map((l) => JSON.parse(l) as Line);
    expect(parsed[0]!.req.headers).toEqual({ 'Proxy-Authorization': CENSOR, authorization: CENSOR, 'Call-ID': 'c1' });
    expect(parsed[1]!.carrier).toEqual({ name: 'carrier-a', auth: { username: 'ops-trunk', password: CENSOR } });
    expect(parsed[3]!.raw).toBe(`INVITE sip:+1@x SIP/2.0\r\nProxy-Authorization: ${CENSOR}\r\nAuthorization: ${CENSOR}\r\nCall-ID: c1\r\n\r\n`);
    expect(parsed[4]!.err.message).toBe(`cannot connect to redis://gw:${CENSOR}@127.0.0.1:6379`);
    expect(parsed[5]!.msg).toBe(`message with Authorization: ${CENSOR}`);
    // Non-secrets pass untouched.
    expect(parsed[0]!.callId).toBe('c1');
    expect(parsed[1]!.carrier.auth.username).toBe('ops-trunk');

    // Run-time level change reaches children created before it.
    setLogLevel(log, 'warn');
    out.length = 0;
    callLog.info('hidden');
    callLog.warn('shown');
    expect(out.map((l) => (JSON.parse(l) as Line).msg)).toEqual(['shown']);
  });
});
