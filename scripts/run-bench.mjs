#!/usr/bin/env node
/**
 * `npm run bench`: runs every benchmark in bench/ one after another (never in parallel: they
 * would measure each other) and prints a summary.
 *
 *   node scripts/run-bench.mjs                      # all: parser, tenants, sipp-cps
 *   BENCH_ONLY=parser,tenants node scripts/run-bench.mjs
 *   node scripts/run-bench.mjs -- --rates 100,300 --step-s 10   # extra args go to sipp-cps
 *
 * Each bench prints one JSON object as its last line; those objects and the exit codes are
 * written to bench/results/run-<time>.json (bench/results is git-ignored). Exit code 1 if a
 * bench crashed or timed out; missed goals are reported, not turned into a failure.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dashdash = process.argv.indexOf('--');
const sippArgs = dashdash >= 0 ? process.argv.slice(dashdash + 1) : [];

const BENCHES = [
  { name: 'parser', file: 'bench/parser.bench.ts', args: [], timeoutS: 180 },
  { name: 'tenants', file: 'bench/tenants.bench.ts', args: [], timeoutS: 300 },
  { name: 'sipp-cps', file: 'bench/sipp-cps.ts', args: sippArgs, timeoutS: 45 * 60 },
];
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;

function run(b) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
    const cp = spawn(tsx, [b.file, ...b.args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    let out = '';
    cp.stdout.on('data', (d) => {
      process.stdout.write(d);
      out += d.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-cp.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }, b.timeoutS * 1000);
    cp.on('exit', (code) => {
      clearTimeout(timer);
      const lastJson = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      let result;
      try {
        result = lastJson ? JSON.parse(lastJson) : undefined;
      } catch {
        result = undefined;
      }
      resolve({ name: b.name, code, timedOut, seconds: Math.round((Date.now() - t0) / 1000), result });
    });
  });
}

const results = [];
for (const b of BENCHES) {
  if (only && !only.has(b.name)) continue;
  process.stdout.write(`\n===== ${b.name}: npx tsx ${b.file} ${b.args.join(' ')} =====\n`);
  results.push(await run(b));
}

const line = (s) => process.stdout.write(`${s}\n`);
line('\n===== summary =====');
for (const r of results) {
  const status = r.timedOut ? 'TIMED OUT' : r.code === 0 ? 'ok' : `exit ${r.code}`;
  line(`${r.name.padEnd(9)} ${status.padEnd(9)} ${String(r.seconds).padStart(4)} s`);
  const j = r.result;
  if (!j) continue;
  if (r.name === 'parser' && j.msgPerSec) {
    for (const [k, v] of Object.entries(j.msgPerSec)) line(`    ${k.padEnd(22)} ${v.toLocaleString('en-US')} msg/s`);
  } else if (r.name === 'tenants') {
    line(`    apply ${j.tenants} tenants / ${j.dids} DIDs: ${j.apply?.totalMs} ms (goal ${j.apply?.goalMs} ms: ${j.apply?.met ? 'met' : 'MISSED'})`);
    line(`    cache-hit lookup p50 ${j.lookupHitUs?.p50} µs p99 ${j.lookupHitUs?.p99} µs (goal ${j.lookupHitUs?.goalUs} µs: ${j.lookupHitUs?.met ? 'met' : 'MISSED'}); miss p50 ${j.lookupMissUs?.p50} µs`);
  } else if (r.name === 'sipp-cps') {
    line(`    max CPS (ramp): floor ${j.floorMaxCps}, uas (our server + srf createUAS) ${j.uasMaxCps} (sustained in the long step: ${j.uasSustainedCps ?? 'none'}), b2b ${j.b2bMaxCps}`);
    line(`    ms/call at max: uas ${JSON.stringify(j.uasAtMax)}; floor ${JSON.stringify(j.floorAtMax)}; b2b ${JSON.stringify(j.b2bAtMax)}`);
    line(`    goal server CPU/call <= app CPU/call: ${j.goals?.serverCpuLeApp ? 'met' : 'MISSED'}; goal >= 500 CPS, 0 failed: ${j.goals?.cps500 ? 'met' : 'MISSED'}`);
    line(`    details: ${j.file}`);
  }
}
const outDir = path.join(root, 'bench', 'results');
fs.mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `run-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify(results, null, 2));
line(`results: ${file}`);
process.exitCode = results.some((r) => r.timedOut || r.code !== 0) ? 1 : 0;
