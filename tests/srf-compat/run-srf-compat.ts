/**
 * Runs drachtio-srf 5.0.29's own test suite (mocha unit tests + tape integration tests, from the
 * installed `node_modules/drachtio-srf/test/`) against our SIP server, without docker.
 *
 * Layout (fixed, like the upstream docker testbed mapped onto loopback):
 *   server #1 "drachtio-sut": SIP udp 127.0.0.10:5060, admin 127.0.0.1:9061, secret cymru (all tests)
 *   server #2 "drachtio-uas": SIP udp 127.0.0.19:5060, admin 127.0.0.1:9062, secret cymru (REFER test)
 *   17 long-running SIPp UASes on 127.0.0.12–29:5060, one-call UASes on 127.0.0.30,
 *   SIPp UACs from 127.0.0.40–49:5060.
 * Both servers are started as processes: `node dist/cli.js sip-server --contact ... --address
 * 127.0.0.1 --port 906x --secret cymru` (run `npm run build` first).
 *
 * Usage: npx tsx tests/srf-compat/run-srf-compat.ts   (prints the per-group table and, last,
 * "N passed, M failed"; exit code 0 iff M = 0). Programmatic: runSrfCompat().
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isListening, sleep } from '../helpers/net.js';
import { startSippUas, type SippProcess } from '../helpers/sipp.js';
import { CLI_PATH, REPO_ROOT, startSipServerCli, type CliServer } from '../helpers/sip-server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRF_VERSION = '5.0.29';
const SECRET = 'cymru';

/** Docker names of the upstream testbed → loopback address and the UAS scenario it runs. */
export const TESTBED: Array<{ name: string; ip: string; scenario?: string }> = [
  { name: 'drachtio-sut', ip: '127.0.0.10' },
  { name: 'sipp-uas-cancel', ip: '127.0.0.12', scenario: 'uas-cancel.xml' },
  { name: 'sipp-uas', ip: '127.0.0.13', scenario: 'uas.xml' },
  { name: 'sipp-uas-404', ip: '127.0.0.14', scenario: 'uas-404.xml' },
  { name: 'sipp-uas-auth', ip: '127.0.0.15', scenario: 'uas-auth.xml' },
  { name: 'sipp-uas-auth-register', ip: '127.0.0.16', scenario: 'uas-auth-register.xml' },
  { name: 'sipp-uas-auth-register-no-realm', ip: '127.0.0.17', scenario: 'uas-auth-register-no-realm.xml' },
  { name: 'sipp-uas-refer', ip: '127.0.0.18', scenario: 'uas-refer.xml' },
  { name: 'drachtio-uas', ip: '127.0.0.19' },
  { name: 'sipp-uas-fast-reinvite', ip: '127.0.0.20', scenario: 'uas-reinvite.xml' },
  { name: 'sipp-uas-reinvite-overlap', ip: '127.0.0.21', scenario: 'uas-reinvite-overlap.xml' },
  { name: 'sipp-uas-302', ip: '127.0.0.22', scenario: 'uas-302.xml' },
  { name: 'sipp-uas-prack', ip: '127.0.0.23', scenario: 'uas-prack.xml' },
  { name: 'sipp-uas-bye-with-auth', ip: '127.0.0.24', scenario: 'uas-bye-with-auth.xml' },
  { name: 'sipp-uas-reinvite-with-auth', ip: '127.0.0.25', scenario: 'uas-reinvite-with-auth.xml' },
  { name: 'sipp-uas-options', ip: '127.0.0.26', scenario: 'uas-options-expect-200.xml' },
  { name: 'sipp-uas-407-no-auth-header', ip: '127.0.0.27', scenario: 'uas-407-no-auth-header.xml' },
  { name: 'sipp-uas-200-ok-no-contact-cancel', ip: '127.0.0.28', scenario: 'uas-200-ok-no-contact-cancel.xml' },
  { name: 'sipp-uas-fast-update', ip: '127.0.0.29', scenario: 'uas-update-with-sdp.xml' },
  { name: 'sipp-uas-b-teardown', ip: '127.0.0.30' },
];

/** Expected assertions per tape group (baseline: a real drachtio-server v0.9.10), plus 52 mocha tests. */
export const EXPECTED_MOCHA = 52;
export const EXPECTED_GROUPS: Array<[string, number]> = [
  ['docker_start (local testbed, no docker)', 1],
  ['B2B', 19],
  ['reinvite tests', 1],
  ['UAC', 19],
  ['UAS', 8],
  ['proxy', 2],
  ['utils', 27],
  ['REFER tests', 1],
  ['docker_stop (local testbed, no docker)', 1],
];
export const EXPECTED_TOTAL = EXPECTED_MOCHA + EXPECTED_GROUPS.reduce((a, [, n]) => a + n, 0);

export interface GroupRow {
  group: string;
  passed: number;
  failed: number;
  notReached: number;
  expected: number;
}

export interface CompatResult {
  passed: number;
  failed: number;
  rows: GroupRow[];
  failures: string[];
  /** The printable report; its last line is "N passed, M failed". */
  report: string;
  runDir: string;
  suiteLog: string;
  timedOut: boolean;
  durationMs: number;
}

export interface CompatOptions {
  /** Overall limit for the suite itself (default 600 s). */
  timeoutMs?: number;
  /** Where runs go (default <repo>/.tmp/srf-compat). */
  workDir?: string;
  /** Extra arguments for both sip-server processes. */
  serverArgs?: string[];
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// 1. a docker-free copy of the suite

function srfPackageDir(): string {
  const req = createRequire(path.join(REPO_ROOT, 'package.json'));
  const pkgJson = req.resolve('drachtio-srf/package.json');
  const version = JSON.parse(fs.readFileSync(pkgJson, 'utf8')).version as string;
  if (version !== SRF_VERSION) throw new Error(`drachtio-srf ${version} installed, the compat suite expects ${SRF_VERSION}`);
  return path.dirname(pkgJson);
}

function walk(dir: string, depth: number, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && depth > 0) walk(p, depth - 1, out);
    else if (e.isFile() && /\.(js|xml)$/.test(e.name)) out.push(p);
  }
  return out;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Rewrites docker host names and 172.29.0.x to the loopback layout (config keys drachtio-* stay). */
export function remapText(text: string): string {
  let out = text.replace(/172\.29\.0\./g, '127.0.0.');
  const names = TESTBED.filter((h) => !h.name.startsWith('drachtio-')).sort((a, b) => b.name.length - a.name.length);
  for (const h of names) out = out.replace(new RegExp(`\\b${escapeRe(h.name)}(?![-a-z0-9])`, 'g'), h.ip);
  return out;
}

/** SIPp 3.6.1 refuses a raw '<' inside an XML attribute; the upstream image tolerated it. */
export function escapeXmlRegexps(xml: string): string {
  return xml.replace(/regexp="<([^"]*)>"/g, 'regexp="&lt;$1&gt;"');
}

function prepareSuite(runDir: string): string {
  const src = srfPackageDir();
  const dst = path.join(runDir, 'srf');
  fs.mkdirSync(dst, { recursive: true });
  for (const p of ['lib', 'config', 'test']) fs.cpSync(path.join(src, p), path.join(dst, p), { recursive: true });
  fs.copyFileSync(path.join(src, 'package.json'), path.join(dst, 'package.json'));
  // `npm run unittests` runs ./node_modules/.bin/mocha; test deps are devDependencies of this repo
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dst, 'node_modules'), 'dir');
  fs.copyFileSync(path.join(HERE, 'local-sipp.cjs'), path.join(dst, 'test', 'sipp.js'));
  for (const f of ['docker_start', 'docker_stop']) {
    fs.writeFileSync(
      path.join(dst, 'test', `${f}.js`),
      `const test = require('tape');\ntest('${f} (local testbed, no docker)', (t) => { t.pass('noop'); t.end(); });\n`,
    );
  }
  for (const file of walk(path.join(dst, 'test'), 2)) {
    if (path.basename(file) === 'sipp.js') continue;
    let text = fs.readFileSync(file, 'utf8');
    const next = file.endsWith('.xml') ? escapeXmlRegexps(remapText(text)) : remapText(text);
    if (next !== text) {
      text = next;
      fs.writeFileSync(file, text);
    }
  }
  return dst;
}

// ---------------------------------------------------------------------------------------------
// 2. summary

export function summarize(log: string): Omit<CompatResult, 'report' | 'runDir' | 'suiteLog' | 'timedOut' | 'durationMs'> & { table: string } {
  const lines = log.split(/\r?\n/);
  let mochaPassed = 0;
  let mochaFailed = 0;
  let mochaRan = false;
  for (const l of lines) {
    let m = /^\s*(\d+) passing/.exec(l);
    if (m) {
      mochaPassed += Number(m[1]);
      mochaRan = true;
    }
    m = /^\s*(\d+) failing/.exec(l);
    if (m) mochaFailed += Number(m[1]);
  }
  if (!mochaRan) mochaFailed = Math.max(mochaFailed, EXPECTED_MOCHA);
  const ok = new Map<string, number>();
  const nok = new Map<string, number>();
  const failures: string[] = [];
  let group = '';
  lines.forEach((l, i) => {
    if (l.startsWith('# ') && !/^# (tests|pass|fail|ok)\b/.test(l)) group = l.slice(2);
    const m = /^(not ok|ok) \d+ ?(.*)$/.exec(l);
    if (!m) return;
    if (m[1] === 'ok') ok.set(group, (ok.get(group) ?? 0) + 1);
    else {
      nok.set(group, (nok.get(group) ?? 0) + 1);
      const ctx = lines.slice(Math.max(0, i - 40), i).filter((x) => x.startsWith('error received') || x.includes('exited with non-zero'));
      const last = ctx[ctx.length - 1];
      failures.push(`FAIL [${group}] ${m[2] ?? ''}${last ? `   (${last.trim()})` : ''}`);
    }
  });
  const rows: GroupRow[] = [{ group: 'mocha unit tests (no server)', passed: mochaPassed, failed: mochaFailed, notReached: 0, expected: EXPECTED_MOCHA }];
  const expected = new Map(EXPECTED_GROUPS);
  const groups = [...expected.keys(), ...[...ok.keys(), ...nok.keys()].filter((g, i, a) => !expected.has(g) && a.indexOf(g) === i)];
  for (const g of groups) {
    const e = expected.get(g) ?? 0;
    const o = ok.get(g) ?? 0;
    const n = nok.get(g) ?? 0;
    rows.push({ group: g, passed: o, failed: n, notReached: Math.max(0, e - o - n), expected: e });
  }
  let passed = 0;
  let failed = 0;
  for (const r of rows) {
    passed += r.passed;
    failed += r.failed + r.notReached;
  }
  const fmt = (r: { group: string; passed: number | string; failed: number | string; notReached: number | string; expected: number | string }): string =>
    `${r.group.slice(0, 45).padEnd(45)} ${String(r.passed).padStart(6)} ${String(r.failed).padStart(6)} ${String(r.notReached).padStart(11)} ${String(r.expected).padStart(8)}`;
  const table = [fmt({ group: 'group', passed: 'passed', failed: 'failed', notReached: 'not reached', expected: 'expected' }), ...rows.map((r) => fmt({ ...r, notReached: r.group.startsWith('mocha') ? '' : r.notReached }))].join('\n');
  return { passed, failed, rows, failures, table };
}

// ---------------------------------------------------------------------------------------------
// 3. the run

export async function runSrfCompat(opts: CompatOptions = {}): Promise<CompatResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const workDir = opts.workDir ?? path.join(REPO_ROOT, '.tmp', 'srf-compat');
  fs.mkdirSync(workDir, { recursive: true });
  // keep only the last few runs
  const old = fs.readdirSync(workDir).filter((d) => d.startsWith('run-')).sort();
  for (const d of old.slice(0, Math.max(0, old.length - 3))) fs.rmSync(path.join(workDir, d), { recursive: true, force: true });
  const runDir = fs.mkdtempSync(path.join(workDir, `run-${new Date().toISOString().replace(/[:.]/g, '-')}-`));

  const suiteDir = prepareSuite(runDir);
  const scenarios = path.join(suiteDir, 'test', 'scenarios');

  // pre-flight: the fixed layout must be free
  const busy: string[] = [];
  for (const p of [9061, 9062]) if (isListening('tcp', '127.0.0.1', p)) busy.push(`tcp 127.0.0.1:${p}`);
  for (const h of TESTBED) if (isListening('udp', h.ip, 5060)) busy.push(`udp ${h.ip}:5060`);
  for (let i = 40; i < 50; i++) if (isListening('udp', `127.0.0.${i}`, 5060)) busy.push(`udp 127.0.0.${i}:5060`);
  if (busy.length) throw new Error(`srf-compat: already in use: ${busy.join(', ')}`);

  const uases: SippProcess[] = [];
  const servers: CliServer[] = [];
  let suitePid: number | undefined;
  let timedOut = false;
  const started = Date.now();
  let suiteLog = '';
  try {
    for (const h of TESTBED) {
      if (!h.scenario) continue;
      uases.push(
        await startSippUas({
          scenario: path.join(scenarios, h.scenario),
          localIp: h.ip,
          localPort: 5060,
          transport: 'u1',
          calls: 0,
          traceMessages: false,
          timeoutMs: timeoutMs + 60_000,
          label: `srf-${h.name}`,
          baseDir: path.join(runDir, 'sipp'),
        }),
      );
    }
    for (const [n, ip, adminPort] of [
      [1, '127.0.0.10', 9061],
      [2, '127.0.0.19', 9062],
    ] as const) {
      servers.push(
        await startSipServerCli({
          // --trying-delay-ms 0: drachtio-server answers every new INVITE with 100 Trying at once,
          // and the suite's SIPp scenarios require that 100 (our default defers it, §17.2.1).
          args: ['--contact', `sip:${ip}:5060;transport=udp`, '--address', '127.0.0.1', '--port', String(adminPort), '--secret', SECRET, '--trying-delay-ms', '0', ...(opts.serverArgs ?? [])],
          ready: { tcp: [['127.0.0.1', adminPort]], udp: [[ip, 5060]] },
          logFile: path.join(runDir, `sut-${n}.out`),
        }),
      );
    }
    await sleep(500);

    // the suite: exactly what `npm test` in drachtio-srf does
    const logPath = path.join(runDir, 'suite.log');
    const out = fs.createWriteStream(logPath);
    const child = spawn(process.execPath, ['test/'], {
      cwd: suiteDir,
      env: { ...process.env, NODE_ENV: 'test', SUT_SIP: '127.0.0.10:5060', UAC_IP_BASE: '40', UAS_IPS: JSON.stringify({ 'sipp-uas-b-teardown': '127.0.0.30' }) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    suitePid = child.pid;
    child.stdout?.on('data', (d: Buffer) => {
      suiteLog += d.toString();
      out.write(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      suiteLog += d.toString();
      out.write(d);
    });
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    // tape prints its summary when the last test ends; node may then stay up on open sockets
    let summaryAt: number | undefined;
    while (child.exitCode === null && child.signalCode === null) {
      const done = await Promise.race([exited.then(() => true), sleep(500).then(() => false)]);
      if (done) break;
      const now = Date.now();
      if (summaryAt === undefined && /^# (ok|fail +\d+)$/m.test(suiteLog)) summaryAt = now;
      if (summaryAt !== undefined && now - summaryAt > 10_000) break;
      if (now - started > timeoutMs) {
        timedOut = true;
        suiteLog += `\nTIMEOUT after ${timeoutMs} ms\n`;
        break;
      }
    }
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      await Promise.race([exited, sleep(3000)]);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    suitePid = undefined;
    out.end();
  } finally {
    if (suitePid) {
      try {
        process.kill(-suitePid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await Promise.all(uases.map((u) => u.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  }
  const durationMs = Date.now() - started;
  const s = summarize(suiteLog);
  const report = [
    `drachtio-srf ${SRF_VERSION} test suite against ${path.relative(REPO_ROOT, CLI_PATH)} sip-server (run dir ${path.relative(REPO_ROOT, runDir)}, ${Math.round(durationMs / 1000)} s)`,
    s.table,
    ...s.failures,
    ...(timedOut ? ['suite hit the overall timeout'] : []),
    `${s.passed} passed, ${s.failed} failed`,
  ].join('\n');
  log(report);
  return { passed: s.passed, failed: s.failed, rows: s.rows, failures: s.failures, report, runDir, suiteLog, timedOut, durationMs };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  runSrfCompat().then(
    (r) => {
      process.exitCode = r.failed === 0 ? 0 : 1;
    },
    (err: unknown) => {
      process.stderr.write(`srf-compat: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
