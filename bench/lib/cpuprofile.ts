/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per
 * source file, as a share of all sampled time, plus the inclusive ("total") time of the top
 * functions, so the report can say where a server's CPU goes.
 */
import fs from 'node:fs';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  selfPct: number;
  totalPct?: number;
}

export interface ProfileSummary {
  sampledMs: number;
  idlePct: number;
  gcPct: number;
  topSelf: ProfileEntry[];
  topFiles: ProfileEntry[];
  topTotal: ProfileEntry[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const m = /\/(dist\/.*|node_modules\/[^/]+\/.*)$/.exec(url);
  if (m && m[1]) return m[1];
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuNode>();
  const parent = new Map<number, number>();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  });
  const label = (n: CpuNode): string => {
    const f = n.callFrame;
    return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  };
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  const incl = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName;
    if (name === '(idle)') idle += us;
    if (name === '(garbage collector)') gc += us;
    fn.set(label(n), (fn.get(label(n)) ?? 0) + us);
    const f = shortUrl(n.callFrame.url);
    if (name !== '(idle)') files.set(name.startsWith('(') ? name : f, (files.get(name.startsWith('(') ? name : f) ?? 0) + us);
    // inclusive: count each distinct function once per stack
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur);
      if (!cn) break;
      const l = label(cn);
      if (seen.has(l)) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + us);
    }
  }
  const busy = total - idle || 1;
  const pct = (us: number): number => Math.round((us / busy) * 1000) / 10;
  const toEntries = (m: Map<string, number>, skip: (k: string) => boolean): ProfileEntry[] =>
    [...m.entries()]
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), selfPct: pct(us) }));
  return {
    sampledMs: Math.round(total / 1000),
    idlePct: Math.round((idle / (total || 1)) * 1000) / 10,
    gcPct: pct(gc),
    topSelf: toEntries(fn, (k) => k.startsWith('(idle)')),
    topFiles: toEntries(files, () => false),
    topTotal: [...incl.entries()]
      .filter(([k]) => !/^\((root|idle|program)\)/.test(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), selfPct: pct(us) })),
  };
}
