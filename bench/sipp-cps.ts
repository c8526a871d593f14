/**
 * SIPp calls-per-second benchmark (issue 2, `bench/`): max sustained CPS and CPU per call of
 * every process, for three shapes measured in the same run:
 *
 *   floor  SIPp UAC (127.0.7.2) → SIPp UAS (127.0.7.3)                              directly
 *   uas    SIPp UAC → our sip-server (127.0.7.1) → drachtio-srf app (createUAS, SDP echoed)
 *   b2b    SIPp UAC → our sip-server (127.0.7.5) → drachtio-srf app (createB2BUA) → SIPp UAS (127.0.7.4)
 *   iofloor SIPp UAC → bench/lib/io-floor.mjs (127.0.7.6) → drachtio-srf app (createUAS), the uas
 *          shape with our server replaced by the least a Node process can do to relay that
 *          traffic (no parser, no transactions): uas server − iofloor server, per rate, is what
 *          our SIP logic costs; iofloor server / app is the best ratio a Node server could get.
 *
 * Each call: INVITE (SDP) → 100 → 200 (SDP) → ACK → hold (--hold-ms) → BYE → 200, over UDP.
 * A step first runs --warm-s seconds of calls at its rate, unmeasured (benchmarking.md §3: JIT
 * tier-up, and 64*T1 = 32 s for the lingering transactions of the first calls to start expiring at
 * the rate they are created), then `-m rate*seconds` measured calls at `-r rate`; it passes with 0 failed calls, every call
 * successful and 0 INVITE retransmissions. A failed step is repeated once (steal time on this
 * box is real). floor and uas are interleaved per rate (F B, then B F) and each shape stops at
 * its first failed rate (iofloor joins the interleaving when selected). The best uas rate is then confirmed with a longer step next to a floor
 * step at the same rate. Optionally one extra step runs the server under `node --cpu-prof`
 * (excluded from the CPU figures) and its hottest functions are listed.
 *
 * CPU per call = Δ(utime+stime) / successful calls, from /proc/<pid>/stat over the step (SIPp
 * UAC: its exact total from the waiting shell's cutime). Also recorded per step: the server's
 * own UDP socket drops and granted buffer sizes (ss -uam), /proc/net/snmp Udp RcvbufErrors
 * (system-wide), steal and CPU used by everything else on the box.
 *
 *   npx tsx bench/sipp-cps.ts [--rates 100,300,500,...] [--step-s 20] [--warm-s 30] [--confirm-s 60]
 *       [--b2b-rates 100,200,...] [--shapes floor,uas,iofloor,b2b] [--profile-rate 400] [--profile-s 10]
 *       [--hold-ms 1000] [--out bench/results]
 * The last line printed is one JSON object with the summary.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.js';
import {
  machineFacts, readProcCpu, readSystemCpu, readUdpSnmp, readUdpSocket, round1, round3, snmpDelta, systemCpuDelta,
  type SystemCpuDelta, type UdpSnmp, type UdpSocketMem,
} from './lib/proc.js';
import { runUac, startUas, type UasHandle } from './lib/sipp.js';
import { REPO_ROOT, scrapeGauges, startApp, startIoFloor, startServer, type Proc } from './lib/sut.js';

const { values: argv } = parseArgs({
  options: {
    rates: { type: 'string', default: '100,300,500,600,700,800,1000,1200' },
    'b2b-rates': { type: 'string', default: '100,200,300,400,500' },
    shapes: { type: 'string', default: 'floor,uas,iofloor,b2b' },
    'step-s': { type: 'string', default: '20' },
    'warm-s': { type: 'string', default: '30' },
    'confirm-s': { type: 'string', default: '60' },
    'hold-ms': { type: 'string', default: '1000' },
    'profile-rate': { type: 'string', default: '400' },
    'profile-s': { type: 'string', default: '10' },
    retries: { type: 'string', default: '1' },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results') },
  },
});
const RATES = argv.rates.split(',').map(Number).filter((n) => n > 0);
const B2B_RATES = argv['b2b-rates'].split(',').map(Number).filter((n) => n > 0);
const SHAPES = new Set(argv.shapes.split(','));
const STEP_S = Number(argv['step-s']);
const WARM_S = Number(argv['warm-s']);
const CONFIRM_S = Number(argv['confirm-s']);
const HOLD_MS = Number(argv['hold-ms']);
const PROFILE_RATE = Number(argv['profile-rate']);
const PROFILE_S = Number(argv['profile-s']);
const RETRIES = Number(argv.retries);

const SECRET = 'cymru';
const NPROC = machineFacts().nproc as number;
const IP = { server: '127.0.7.1', uac: '127.0.7.2', floorUas: '127.0.7.3', b2bUas: '127.0.7.4', b2bServer: '127.0.7.5', ioFloor: '127.0.7.6' };
const SCEN = path.join(REPO_ROOT, 'bench', 'scenarios');
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const RUN_DIR = path.join(argv.out, `sipp-cps-${stamp}`);
fs.mkdirSync(RUN_DIR, { recursive: true });

type Shape = 'floor' | 'uas' | 'b2b' | 'iofloor';
type Role = 'sippUac' | 'sippUas' | 'server' | 'app';

interface Sut {
  shape: Shape;
  remote: string;
  procs: Partial<Record<Exclude<Role, 'sippUac'>, number>>;
  serverSocket?: string;
  metrics?: { host: string; port: number };
  stop(): Promise<void>;
}

interface StepResult {
  shape: Shape;
  rate: number;
  seconds: number;
  attempt: number;
  kind: 'ramp' | 'confirm' | 'profile';
  pass: boolean;
  why: string[];
  calls: number;
  successful: number;
  failed: number;
  failedDetail: Record<string, number>;
  inviteRetrans: number;
  retransAll: number;
  achievedCps: number;
  wallMs: number;
  cpuMs: Partial<Record<Role, number>>;
  cpuPerCallMs: Partial<Record<Role, number>>;
  /** % of one core over the step. */
  corePct: Partial<Record<Role, number>>;
  sys: SystemCpuDelta & { otherPct: number };
  snmp: UdpSnmp;
  serverSocket?: UdpSocketMem & { dropsDelta: number };
  latencyMs: Record<string, { n: number; p50: number; p95: number; p99: number }>;
  gaugesAfter?: Record<string, number>;
  generatorBound: boolean;
  errors?: string;
}

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runStep(sut: Sut, rate: number, seconds: number, kind: StepResult['kind'], attempt: number): Promise<StepResult> {
  const calls = rate * seconds;
  const dir = path.join(RUN_DIR, `${sut.shape}-${rate}-${kind}-${attempt}`);
  // The step's calls at `rate` for `s` seconds (the warm-up, then the measured run).
  const uac = (s: number, where: string) => runUac({
    scenario: path.join(SCEN, 'uac.xml'), localIp: IP.uac, localPort: 5060, remote: sut.remote,
    rate, calls: rate * s, holdMs: HOLD_MS, dir: where, timeoutMs: (s + HOLD_MS / 1000 + 40) * 1000,
  });
  const warmWhy: string[] = [];
  if (WARM_S > 0) {
    const w = await uac(WARM_S, path.join(dir, 'warm-up'));
    if (w.exitCode !== 0 || (w.stats?.failed ?? 1) > 0) warmWhy.push(`warm-up: sipp exit ${w.exitCode}, ${w.stats?.failed ?? '?'} failed`);
  }
  const pids = sut.procs;
  const cpu0: Partial<Record<Role, number>> = {};
  for (const [role, pid] of Object.entries(pids)) cpu0[role as Role] = readProcCpu(pid)?.selfMs ?? NaN;
  const sock0 = sut.serverSocket ? readUdpSocket(sut.serverSocket) : undefined;
  const snmp0 = readUdpSnmp();
  const sys0 = readSystemCpu();
  const r = await uac(seconds, dir);
  await sleep(1000); // let the last BYE/200 and ACK handling finish in the SUT
  const sys1 = readSystemCpu();
  const snmp1 = readUdpSnmp();
  const sock1 = sut.serverSocket ? readUdpSocket(sut.serverSocket) : undefined;
  const cpuMs: Partial<Record<Role, number>> = {};
  for (const [role, pid] of Object.entries(pids)) cpuMs[role as Role] = (readProcCpu(pid)?.selfMs ?? NaN) - (cpu0[role as Role] ?? 0);
  if (r.cpuMs !== undefined) cpuMs.sippUac = r.cpuMs;
  const st = r.stats;
  const successful = st?.successful ?? 0;
  const why: string[] = [...warmWhy];
  if (r.exitCode !== 0) why.push(`sipp exit ${r.exitCode}`);
  if ((st?.failed ?? 1) > 0) why.push(`${st?.failed ?? '?'} failed`);
  if (successful < calls) why.push(`${successful}/${calls} successful`);
  if (r.inviteRetrans !== 0) why.push(`${r.inviteRetrans} INVITE retrans`);
  const windowMs = Math.max(1, sys1.total - sys0.total) / NPROC; // wall ms of the window
  const cpuPerCallMs: Partial<Record<Role, number>> = {};
  const corePct: Partial<Record<Role, number>> = {};
  let ours = 0;
  for (const [role, ms] of Object.entries(cpuMs)) {
    cpuPerCallMs[role as Role] = successful > 0 ? round3(ms / successful) : NaN;
    corePct[role as Role] = round1((ms / windowMs) * 100);
    ours += ms;
  }
  const sys = systemCpuDelta(sys0, sys1);
  const busyMs = ((sys.busyPct - sys.stealPct) / 100) * (sys1.total - sys0.total);
  const res: StepResult = {
    shape: sut.shape, rate, seconds, attempt, kind, pass: why.length === 0, why, calls, successful,
    failed: st?.failed ?? -1, failedDetail: st?.failedDetail ?? {}, inviteRetrans: r.inviteRetrans,
    retransAll: st?.retransmissions ?? -1, achievedCps: round1(successful / Math.max(1, (r.wallMs - HOLD_MS) / 1000)),
    wallMs: r.wallMs, cpuMs, cpuPerCallMs, corePct,
    sys: { ...sys, otherPct: round1(((busyMs - ours) / (sys1.total - sys0.total)) * 100) },
    snmp: snmpDelta(snmp0, snmp1),
    latencyMs: r.rtt,
    generatorBound: (corePct.sippUac ?? 0) > 90,
  };
  if (sock1) res.serverSocket = { ...sock1, dropsDelta: sock1.drops - (sock0?.drops ?? 0) };
  if (!res.pass) res.errors = r.errors.slice(-800);
  if (sut.metrics) res.gaugesAfter = await scrapeGauges(sut.metrics.host, sut.metrics.port);
  const pc = Object.entries(cpuPerCallMs).map(([k, v]) => `${k} ${v}`).join(', ');
  log(
    `  ${sut.shape.padEnd(7)} ${String(rate).padStart(5)} cps ×${seconds}s ${kind}#${attempt}: ${res.pass ? 'PASS' : `FAIL (${why.join('; ')})`}` +
      ` | ms/call: ${pc} | steal ${sys.stealPct}% other ${res.sys.otherPct}% | RcvbufErr ${res.snmp.RcvbufErrors}` +
      (res.serverSocket ? ` srvDrops ${res.serverSocket.dropsDelta}` : '') +
      ` | inv200 p50 ${r.rtt.inv200?.p50 ?? '?'} ms`,
  );
  return res;
}

async function stepWithRetry(sut: Sut, rate: number, seconds: number, kind: StepResult['kind'], all: StepResult[]): Promise<StepResult> {
  let res = await runStep(sut, rate, seconds, kind, 1);
  all.push(res);
  for (let a = 2; !res.pass && a <= RETRIES + 1; a++) {
    await sleep(3000);
    res = await runStep(sut, rate, seconds, kind, a);
    all.push(res);
  }
  return res;
}

async function floorSut(): Promise<Sut> {
  const uas = await startUas({ scenario: path.join(SCEN, 'uas.xml'), localIp: IP.floorUas, localPort: 5060, dir: path.join(RUN_DIR, 'floor-uas') });
  await bigBuffersCheck(uas, `${IP.floorUas}:5060`);
  return { shape: 'floor', remote: `${IP.floorUas}:5060`, procs: { sippUas: uas.pid }, stop: () => uas.stop() };
}

async function bigBuffersCheck(_uas: UasHandle, local: string): Promise<void> {
  const s = readUdpSocket(local);
  if (s) log(`  UDP socket ${local}: rcvbuf ${s.rcvbuf} sndbuf ${s.sndbuf}`);
}

async function serverSut(shape: 'uas' | 'b2b', opts: { cpuProf?: string } = {}): Promise<Sut & { server: Proc; app: Proc }> {
  const ip = shape === 'uas' ? IP.server : IP.b2bServer;
  const adminPort = shape === 'uas' ? 9022 : 9023;
  const metricsPort = shape === 'uas' ? 9092 : 9093;
  const dir = path.join(RUN_DIR, `${shape}-sut${opts.cpuProf ? '-prof' : ''}`);
  fs.mkdirSync(dir, { recursive: true });
  const server = await startServer({ sipIp: ip, sipPort: 5060, adminPort, metricsPort, secret: SECRET, cwd: dir, ...(opts.cpuProf ? { cpuProfDir: opts.cpuProf } : {}) });
  let uas: UasHandle | undefined;
  if (shape === 'b2b') uas = await startUas({ scenario: path.join(SCEN, 'uas.xml'), localIp: IP.b2bUas, localPort: 5060, dir: path.join(dir, 'b2b-uas') });
  const app = await startApp({ host: ip, port: adminPort, secret: SECRET, mode: shape, cwd: dir, ...(shape === 'b2b' ? { target: `sip:bench@${IP.b2bUas}:5060` } : {}) });
  const procs: Sut['procs'] = { server: server.pid, app: app.pid };
  if (uas) procs.sippUas = uas.pid;
  return {
    shape, remote: `${ip}:5060`, procs, server, app, serverSocket: `${ip}:5060`, metrics: { host: ip, port: metricsPort },
    async stop() {
      await app.stop();
      await server.stop();
      await uas?.stop();
    },
  };
}

async function ioFloorSut(): Promise<Sut> {
  const dir = path.join(RUN_DIR, 'iofloor-sut');
  fs.mkdirSync(dir, { recursive: true });
  const relay = await startIoFloor({ sipIp: IP.ioFloor, sipPort: 5060, adminPort: 9024, secret: SECRET, cwd: dir });
  const app = await startApp({ host: IP.ioFloor, port: 9024, secret: SECRET, mode: 'uas', cwd: dir });
  return {
    shape: 'iofloor', remote: `${IP.ioFloor}:5060`, procs: { server: relay.pid, app: app.pid }, serverSocket: `${IP.ioFloor}:5060`,
    async stop() {
      await app.stop();
      await relay.stop();
    },
  };
}

function maxPassing(steps: StepResult[], shape: Shape): number {
  // highest rate below the first rate whose final attempt failed
  const byRate = new Map<number, boolean>();
  for (const s of steps) if (s.shape === shape && s.kind === 'ramp') byRate.set(s.rate, s.pass);
  let best = 0;
  for (const rate of [...byRate.keys()].sort((a, b) => a - b)) {
    if (!byRate.get(rate)) break;
    best = rate;
  }
  return best;
}

const lastPass = (steps: StepResult[], shape: Shape, rate: number, kind: StepResult['kind'] = 'ramp'): StepResult | undefined =>
  [...steps].reverse().find((s) => s.shape === shape && s.rate === rate && s.kind === kind && s.pass);

async function main(): Promise<void> {
  const facts = machineFacts();
  log(`sipp-cps: ${JSON.stringify(facts)}`);
  log(`results: ${RUN_DIR}`);
  const t0 = Date.now();
  const sys0 = readSystemCpu();
  const steps: StepResult[] = [];
  const buffers: Record<string, UdpSocketMem | undefined> = {};
  const started: Sut[] = [];
  let profile: (ProfileSummary & { rate: number; seconds: number; file: string }) | undefined;
  try {
    // ---- phase 1: floor and uas, interleaved ramp ----
    const floor = SHAPES.has('floor') ? await floorSut() : undefined;
    if (floor) started.push(floor);
    const uas = SHAPES.has('uas') ? await serverSut('uas') : undefined;
    if (uas) {
      started.push(uas);
      buffers.server = readUdpSocket(uas.serverSocket!);
      log(`  our server UDP ${uas.serverSocket}: rcvbuf ${buffers.server?.rcvbuf} sndbuf ${buffers.server?.sndbuf} (bytes granted, as ss -uam reports)`);
    }
    if (floor) buffers.floorUas = readUdpSocket(floor.remote);
    const ioFloor = SHAPES.has('iofloor') ? await ioFloorSut() : undefined;
    if (ioFloor) started.push(ioFloor);
    log(`phase 1: ramp ${RATES.join(', ')} cps, ${WARM_S} s warm-up + ${STEP_S} s measured per step, ${[floor, uas, ioFloor].filter(Boolean).map((x) => x!.shape).join('/')} interleaved`);
    const alive = new Map<Shape, Sut>();
    if (floor) alive.set('floor', floor);
    if (uas) alive.set('uas', uas);
    if (ioFloor) alive.set('iofloor', ioFloor);
    let flip = false;
    for (const rate of RATES) {
      const order = [...alive.values()];
      if (flip) order.reverse();
      flip = !flip;
      for (const sut of order) {
        const r = await stepWithRetry(sut, rate, STEP_S, 'ramp', steps);
        if (!r.pass) alive.delete(sut.shape);
        await sleep(1500);
      }
      if (alive.size === 0) break;
    }
    // ---- phase 2: confirm the uas max with a longer step, next to the floor at the same rate ----
    // If the best ramp rate does not hold for the longer step, the next lower passing ramp rate
    // is confirmed instead (one attempt at the top rate, then one retry at the lower one).
    const uasMax = maxPassing(steps, 'uas');
    if (uas && floor && uasMax > 0 && CONFIRM_S > 0) {
      const lower = [...new Set(steps.filter((s) => s.shape === 'uas' && s.kind === 'ramp' && s.pass && s.rate < uasMax).map((s) => s.rate))].sort((a, b) => b - a)[0];
      log(`phase 2: confirm ${uasMax} cps for ${CONFIRM_S} s (uas, then floor)${lower ? `; ${lower} cps if that fails` : ''}`);
      let confirmed = uasMax;
      let r = lower ? await runStep(uas, uasMax, CONFIRM_S, 'confirm', 1).then((x) => (steps.push(x), x)) : await stepWithRetry(uas, uasMax, CONFIRM_S, 'confirm', steps);
      if (!r.pass && lower) {
        await sleep(3000);
        confirmed = lower;
        r = await stepWithRetry(uas, lower, CONFIRM_S, 'confirm', steps);
      }
      await sleep(1500);
      await stepWithRetry(floor, confirmed, CONFIRM_S, 'confirm', steps);
    }
    if (uas) {
      await sleep(1000);
      log(`  uas server gauges after phase 2: ${JSON.stringify(await scrapeGauges(uas.metrics!.host, uas.metrics!.port))}`);
    }
    for (const s of started.splice(0)) await s.stop();

    // ---- phase 3: b2b ramp ----
    if (SHAPES.has('b2b')) {
      const b2b = await serverSut('b2b');
      started.push(b2b);
      buffers.b2bServer = readUdpSocket(b2b.serverSocket!);
      log(`phase 3: b2b ramp ${B2B_RATES.join(', ')} cps, ${STEP_S} s per step`);
      for (const rate of B2B_RATES) {
        const r = await stepWithRetry(b2b, rate, STEP_S, 'ramp', steps);
        await sleep(1500);
        if (!r.pass) break;
      }
      await sleep(1000);
      log(`  b2b server gauges after phase 3: ${JSON.stringify(await scrapeGauges(b2b.metrics!.host, b2b.metrics!.port))}`);
      for (const s of started.splice(0)) await s.stop();
    }

    // ---- phase 4: one profiled step (not part of the CPU figures) ----
    if (SHAPES.has('uas') && PROFILE_RATE > 0 && PROFILE_S > 0) {
      const profDir = path.join(RUN_DIR, 'cpuprof');
      fs.mkdirSync(profDir, { recursive: true });
      log(`phase 4: uas step at ${PROFILE_RATE} cps for ${PROFILE_S} s with the server under node --cpu-prof`);
      const p = await serverSut('uas', { cpuProf: profDir });
      started.push(p);
      await runStep(p, PROFILE_RATE, PROFILE_S, 'profile', 1).then((r) => steps.push(r));
      for (const s of started.splice(0)) await s.stop();
      const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) {
        profile = { ...summarizeProfile(path.join(profDir, file), 25), rate: PROFILE_RATE, seconds: PROFILE_S, file: path.join(profDir, file) };
      } else log('  no .cpuprofile written');
    }
  } finally {
    for (const s of started.splice(0)) await s.stop().catch(() => undefined);
  }

  // ---- summary ----
  const sysAll = systemCpuDelta(sys0, readSystemCpu());
  const stealSteps = steps.map((s) => s.sys.stealPct).sort((a, b) => a - b);
  const summaryOf = (shape: Shape) => {
    const max = maxPassing(steps, shape);
    const at = max ? lastPass(steps, shape, max) : undefined;
    return { maxCps: max, atMax: at ? { cpuPerCallMs: at.cpuPerCallMs, corePct: at.corePct, latencyMs: at.latencyMs, stealPct: at.sys.stealPct } : undefined };
  };
  const floorS = summaryOf('floor');
  const uasS = summaryOf('uas');
  const b2bS = summaryOf('b2b');
  const confirms = (shape: Shape): StepResult[] => steps.filter((s) => s.kind === 'confirm' && s.shape === shape);
  const bestConfirm = (shape: Shape): StepResult | undefined =>
    confirms(shape).filter((s) => s.pass).sort((a, b) => b.rate - a.rate)[0] ?? confirms(shape).at(-1);
  const confirmUas = bestConfirm('uas');
  const confirmFloor = bestConfirm('floor');
  // goal 1: server CPU/call ≤ app CPU/call, at every passing uas step
  const uasPassing = steps.filter((s) => s.shape === 'uas' && s.pass && s.kind !== 'profile');
  const serverVsApp = uasPassing.map((s) => ({ rate: s.rate, kind: s.kind, server: s.cpuPerCallMs.server, app: s.cpuPerCallMs.app, ratio: round3((s.cpuPerCallMs.server ?? 0) / (s.cpuPerCallMs.app || 1)) }));
  // What our SIP logic costs: the uas server minus the I/O floor at the same rate (ramp steps).
  const ioFloorByRate = new Map(steps.filter((s) => s.shape === 'iofloor' && s.kind === 'ramp' && s.pass).map((s) => [s.rate, s]));
  const logicCost = uasPassing.filter((s) => s.kind === 'ramp' && ioFloorByRate.has(s.rate)).map((s) => {
    const io = ioFloorByRate.get(s.rate)!;
    const uasServer = s.cpuPerCallMs.server ?? NaN;
    const ioServer = io.cpuPerCallMs.server ?? NaN;
    return { rate: s.rate, uasServer, ioFloorServer: ioServer, logic: round3(uasServer - ioServer), ioFloorVsApp: round3(ioServer / (io.cpuPerCallMs.app || 1)) };
  });
  const goals = {
    serverCpuLeApp: { met: serverVsApp.length > 0 && serverVsApp.every((x) => (x.server ?? Infinity) <= (x.app ?? 0)), perStep: serverVsApp, logicCost },
    // met only if a long (confirm) step at ≥ 500 cps passed, or no confirm ran and the ramp reached 500
    cps500: {
      met: confirmUas ? confirmUas.pass && confirmUas.rate >= 500 : uasS.maxCps >= 500,
      maxCps: uasS.maxCps,
      sustainedCps: confirmUas?.pass ? confirmUas.rate : undefined,
      confirm: confirms('uas').map((c) => ({ rate: c.rate, seconds: c.seconds, pass: c.pass, why: c.why })),
    },
  };
  const summary = {
    bench: 'sipp-cps',
    when: new Date().toISOString(),
    durationS: Math.round((Date.now() - t0) / 1000),
    machine: { ...facts, stealPctWholeRun: sysAll.stealPct, stealPctStepP50: stealSteps[Math.floor(stealSteps.length / 2)] ?? 0, stealPctStepMax: stealSteps[stealSteps.length - 1] ?? 0 },
    method: { stepS: STEP_S, warmS: WARM_S, confirmS: CONFIRM_S, holdMs: HOLD_MS, rates: RATES, b2bRates: B2B_RATES, retries: RETRIES },
    buffers,
    floor: floorS,
    uas: { ...uasS, ratioVsFloorCps: floorS.maxCps ? round3(uasS.maxCps / floorS.maxCps) : undefined },
    b2b: { ...b2bS, ratioVsFloorCps: floorS.maxCps ? round3(b2bS.maxCps / floorS.maxCps) : undefined },
    confirm: { uas: confirmUas && pick(confirmUas), floor: confirmFloor && pick(confirmFloor) },
    goals,
    profile,
    steps: steps.map(pick),
  };
  const outFile = path.join(RUN_DIR, 'summary.json');
  fs.writeFileSync(outFile, JSON.stringify(summary, null, 2));
  fs.writeFileSync(path.join(argv.out, 'sipp-cps-latest.json'), JSON.stringify(summary, null, 2));
  log(markdown(summary));
  log(JSON.stringify({ bench: 'sipp-cps', file: outFile, floorMaxCps: floorS.maxCps, uasMaxCps: uasS.maxCps, uasSustainedCps: goals.cps500.sustainedCps, b2bMaxCps: b2bS.maxCps, goals: { serverCpuLeApp: goals.serverCpuLeApp.met, cps500: goals.cps500.met }, uasAtMax: uasS.atMax?.cpuPerCallMs, floorAtMax: floorS.atMax?.cpuPerCallMs, b2bAtMax: b2bS.atMax?.cpuPerCallMs }));
}

function pick(s: StepResult) {
  return {
    shape: s.shape, rate: s.rate, seconds: s.seconds, kind: s.kind, attempt: s.attempt, pass: s.pass, why: s.why,
    successful: s.successful, failed: s.failed, failedDetail: s.failedDetail, inviteRetrans: s.inviteRetrans, retransAll: s.retransAll,
    achievedCps: s.achievedCps, cpuPerCallMs: s.cpuPerCallMs, corePct: s.corePct, sys: s.sys, snmp: s.snmp,
    serverSocket: s.serverSocket, latencyMs: s.latencyMs, gaugesAfter: s.gaugesAfter, generatorBound: s.generatorBound,
    ...(s.errors ? { errors: s.errors } : {}),
  };
}

function markdown(s: any): string {
  const roles: Role[] = ['sippUac', 'sippUas', 'server', 'app'];
  const f = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(3));
  const lines: string[] = [];
  lines.push('', '| Shape | Rate (cps) | Kind | Result | SIPp UAC ms/call | SIPp UAS ms/call | server ms/call | app ms/call | server %core | app %core | INVITE retrans | srv drops | RcvbufErr (sys) | steal % | other % | INVITE→200 p50 ms |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const st of s.steps as ReturnType<typeof pick>[]) {
    lines.push(
      `| ${st.shape} | ${st.rate} | ${st.kind}#${st.attempt} | ${st.pass ? 'pass' : `FAIL: ${st.why.join('; ')}`} | ` +
        roles.map((r) => f(st.cpuPerCallMs[r])).join(' | ') +
        ` | ${st.corePct.server ?? '–'} | ${st.corePct.app ?? '–'} | ${st.inviteRetrans} | ${st.serverSocket?.dropsDelta ?? '–'} | ${st.snmp.RcvbufErrors} | ${st.sys.stealPct} | ${st.sys.otherPct} | ${st.latencyMs.inv200?.p50 ?? '–'} |`,
    );
  }
  lines.push('');
  lines.push(`floor max ${s.floor.maxCps} cps; uas ramp max ${s.uas.maxCps} cps, sustained ${CONFIRM_S} s: ${s.goals.cps500.sustainedCps ?? 'none confirmed'} cps; uas (${s.uas.ratioVsFloorCps ?? '–'} × floor); b2b max ${s.b2b.maxCps} cps (${s.b2b.ratioVsFloorCps ?? '–'} × floor)`);
  lines.push(`goal server CPU/call ≤ app CPU/call: ${s.goals.serverCpuLeApp.met ? 'MET' : 'MISSED'}; goal ≥ 500 cps with 0 failed: ${s.goals.cps500.met ? 'MET' : 'MISSED'}`);
  const lc = s.goals.serverCpuLeApp.logicCost as Array<{ rate: number; uasServer: number; ioFloorServer: number; logic: number; ioFloorVsApp: number }>;
  if (lc.length) {
    lines.push('', '| Rate (cps) | uas server ms/call | iofloor server ms/call | SIP logic ms/call (difference) | iofloor / its app |', '|---|---|---|---|---|');
    for (const x of lc) lines.push(`| ${x.rate} | ${f(x.uasServer)} | ${f(x.ioFloorServer)} | ${f(x.logic)} | ${x.ioFloorVsApp.toFixed(3)} |`);
  }
  if (s.profile) {
    lines.push('', `server profile at ${s.profile.rate} cps (${s.profile.sampledMs} ms sampled, idle ${s.profile.idlePct} %, GC ${s.profile.gcPct} % of busy):`);
    for (const e of s.profile.topSelf.slice(0, 15)) lines.push(`  self ${String(e.selfPct).padStart(5)} %  ${e.name}`);
    for (const e of s.profile.topFiles.slice(0, 12)) lines.push(`  file ${String(e.selfPct).padStart(5)} %  ${e.name}`);
  }
  return lines.join('\n');
}

main().catch((err) => {
  process.stderr.write(`sipp-cps: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
