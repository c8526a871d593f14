/**
 * Operations test harness: the whole gateway (`startGateway`, embedded SIP server) with a real
 * rtpengine, the fake Teams (mutual TLS) and an optional real redis-server, on loopback
 * addresses of its own so several ops test files run in parallel with each other and with the
 * gateway suite:
 *
 *   slot s (0..5), b = 40·s:  gateway 127.0.8.(b+1) (udp/tcp 5060, tls 5061, ops HTTP: ephemeral)
 *                             carrier sources 127.0.8.(b+10..b+14), carrier target 127.0.8.(b+20):5060
 *                             rtpengine 127.0.8.(b+30), fake Teams sip/sip2/sip3/alt 127.0.9.(b+1..b+4)
 *
 * Tenant config is generated per slot (the carrier addresses depend on it) into a temp dir:
 * the embedded MemoryTenantStore reads it, or it is applied to Redis with TenantAdmin when the
 * harness runs with Redis (TEAMS_GW_REDIS_URL, as production does).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { type Gateway, startGateway } from '../../../src/main.js';
import { MemoryTenantStore, loadConfigDir } from '../../../src/tenants/index.js';
import { TenantAdmin } from '../../../src/tenants/redis-admin.js';
import { FakeTeams, type FakeTeamsOptions } from '../../helpers/fake-teams/index.js';
import { freePort, waitFor } from '../../helpers/net.js';
import { type RedisServerHandle, startRedisServer } from '../../helpers/redis-server.js';
import { type RtpengineHandle, startRtpengine } from '../../helpers/rtpengine.js';
import { type SippProcess, type SippResult, runSipp, spawnSipp, startSippUas, stopAllSipp } from '../../helpers/sipp.js';

export const OPS_SCENARIOS = resolve(import.meta.dirname, 'scenarios');
export const BASE_DOMAIN = 'customers.example.net';
export const CARRIER_PASSWORD_ENV = 'OPS_TEST_CARRIER_PASSWORD';
export const CARRIER_PASSWORD = 'ops-trunk-Pa55w0rd-x9';

export interface SlotAddresses {
  gw: string;
  carriers: string[];
  target: string;
  rtpengine: string;
  teams: { sip: string; sip2: string; sip3: string; alt: string };
}

export function slotAddresses(slot: number): SlotAddresses {
  if (!Number.isInteger(slot) || slot < 0 || slot > 5) throw new Error(`slot ${slot}: 0..5`);
  const b = slot * 40;
  const a = (n: number, net = 8) => `127.0.${net}.${b + n}`;
  return {
    gw: a(1),
    carriers: [a(10), a(11), a(12), a(13), a(14)],
    target: a(20),
    rtpengine: a(30),
    teams: { sip: a(1, 9), sip2: a(2, 9), sip3: a(3, 9), alt: a(4, 9) },
  };
}

export interface TenantSpec {
  id: string;
  dids: string[];
  maxConcurrentCalls?: number;
  enabled?: boolean;
}

/** acme: normal tenant; tiny: one concurrent call (admission); both on carrier-a. */
export const DEFAULT_TENANTS: TenantSpec[] = [
  { id: 'acme', dids: ['+14255550100-+14255550199'] },
  { id: 'tiny', dids: ['+14255550500-+14255550599'], maxConcurrentCalls: 1 },
];

export function tenantYaml(addr: SlotAddresses, tenants: TenantSpec[]): Record<string, string> {
  const carriers = `carriers:
  - name: carrier-a
    sources: [${addr.carriers.join(', ')}]
    targets:
      - { host: ${addr.target}, port: 5060, transport: udp, priority: 10 }
    auth:
      username: ops-trunk
      password: env:${CARRIER_PASSWORD_ENV}
    normalization:
      outbound:
        - { match: '^\\+', replace: '', description: carrier wants no plus }
`;
  const settings = `settings:\n  carrierBaseDomain: ${BASE_DOMAIN}\n`;
  const t = tenants
    .map(
      (x) => `  - id: ${x.id}
    name: ${x.id} test tenant
    fqdn: ${x.id}.${BASE_DOMAIN}
${x.enabled === false ? '    enabled: false\n' : ''}    dids: [${x.dids.map((d) => JSON.stringify(d)).join(', ')}]
    trunks: [{ carrier: carrier-a, priority: 10 }]
    limits: { maxConcurrentCalls: ${x.maxConcurrentCalls ?? 20}, cps: 50 }
    media: { codecs: [PCMU, PCMA], transcoding: false }
    teams: { advertiseRefer: true, forwardPai: true, historyInfoToDiversion: false }
`,
    )
    .join('\n');
  return { 'settings.yaml': settings, 'carriers.yaml': carriers, 'tenants.yaml': `tenants:\n${t}` };
}

export async function writeTenantDir(dir: string, addr: SlotAddresses, tenants: TenantSpec[]): Promise<void> {
  for (const [name, text] of Object.entries(tenantYaml(addr, tenants))) await writeFile(join(dir, name), text);
}

function deepMerge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' && !Array.isArray(a[k]) ? deepMerge(a[k], v) : v;
  }
  return out;
}

export interface OpsHarnessOptions {
  slot: number;
  /** Run with a real redis-server: RedisTenantStore, Redis admission and the CDR stream. */
  redis?: boolean;
  /** Start rtpengine (default true); false: no media anchoring (media.rtpengines = []). */
  media?: boolean;
  tenants?: TenantSpec[];
  /** Deep-merged over the test config. */
  config?: Record<string, unknown>;
  fakeTeams?: Partial<FakeTeamsOptions>;
}

export interface OpsHarness {
  readonly addr: SlotAddresses;
  readonly gw: Gateway;
  readonly config: Config;
  readonly ft: FakeTeams;
  readonly rtpengine: RtpengineHandle | undefined;
  readonly redis: RedisServerHandle | undefined;
  /** Redis client of the test (admin, stream reads); undefined without Redis. */
  readonly redisClient: Redis | undefined;
  readonly tenantDir: string;
  readonly dir: string;
  /** http://host:port of the ops endpoint. */
  readonly opsUrl: string;
  scrape(): Promise<Metrics>;
  /** Rewrites the tenant config (and applies it to Redis in Redis mode; memory mode: reload()). */
  setTenants(tenants: TenantSpec[]): Promise<number>;
  /** Stops and starts the gateway with the config merged with `overrides`. */
  restart(overrides?: Record<string, unknown>): Promise<void>;
  carrierCall(o: CarrierCallOptions): Promise<SippResult>;
  carrierCallAsync(o: CarrierCallOptions): Promise<SippProcess>;
  startTarget(scenario: string, keys?: Record<string, string | number>): Promise<SippProcess>;
  close(): Promise<void>;
}

export interface CarrierCallOptions {
  scenario: string;
  to: string;
  fromUser?: string;
  /** index into addr.carriers (default 0). */
  source?: number;
  pauseMs?: number;
  timeoutMs?: number;
}

export async function startOpsHarness(opts: OpsHarnessOptions): Promise<OpsHarness> {
  const addr = slotAddresses(opts.slot);
  process.env[CARRIER_PASSWORD_ENV] = CARRIER_PASSWORD;
  const dir = await mkdtemp(join(tmpdir(), `ops-harness-${opts.slot}-`));
  const tenantDir = join(dir, 'tenants');
  await import('node:fs/promises').then((f) => f.mkdir(tenantDir));
  const cleanups: Array<() => Promise<unknown>> = [async () => rm(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    await stopAllSipp();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    await writeTenantDir(tenantDir, addr, opts.tenants ?? DEFAULT_TENANTS);
    const [ft, rtpengine, redis] = await Promise.all([
      FakeTeams.start({
        tenants: (opts.tenants ?? DEFAULT_TENANTS).map((t) => `${t.id}.${BASE_DOMAIN}`),
        addresses: addr.teams,
        sbc: { host: addr.gw, port: 5061 },
        ackTimeoutMs: 3000,
        ...opts.fakeTeams,
      }),
      opts.media === false ? Promise.resolve(undefined) : startRtpengine({ ip: addr.rtpengine, timeoutSec: 30 }),
      // Persistent (AOF, fsync always): a restarted Redis comes back with its dataset, as in production.
      opts.redis ? startRedisServer({ host: addr.gw, args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] }) : Promise.resolve(undefined),
    ]);
    cleanups.push(() => ft.close());
    if (rtpengine) cleanups.push(() => rtpengine.stop());
    if (redis) cleanups.push(() => redis.stop());
    let redisClient: Redis | undefined;
    let admin: TenantAdmin | undefined;
    if (redis) {
      redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(50 * n, 300) });
      redisClient.on('error', () => undefined);
      cleanups.push(async () => redisClient!.disconnect());
      admin = new TenantAdmin(redisClient);
    }
    const apply = async (): Promise<number> => {
      const r = loadConfigDir(tenantDir);
      if (!r.config) throw new Error(`fixture invalid: ${JSON.stringify(r.problems)}`);
      const res = await admin!.apply(r.config, { force: true });
      return (res as { version: number }).version;
    };
    if (admin) await apply();

    const base = {
      log: { level: 'warn' },
      sipServer: {
        mode: 'embedded',
        contacts: [`sip:${addr.gw}:5060;transport=udp,tcp`, `sips:${addr.gw}:5061;transport=tls`],
        admin: { port: 0 },
        tls: { keyFile: ft.pki.sbc.server.keyPath, certFile: ft.pki.sbc.server.certPath, caFile: ft.pki.teams.ca.certPath, verifyPeer: true },
      },
      teams: {
        proxies: ft.proxies,
        hosts: ft.hosts,
        signalingPort: 5061,
        sbcHeader: 'TestVendor/teams-dr-gateway/0.0.0-ops',
        sourceCidrs: [`${addr.teams.sip.split('.').slice(0, 3).join('.')}.0/24`],
        inviteTimeoutMs: 1500,
      },
      carriers: { unknownSource: 'reject', earlyMedia: 'pass' },
      media: { rtpengines: rtpengine ? [rtpengine.ngAddress] : [], commandTimeoutMs: 300, healthIntervalMs: 200, failuresBeforeDown: 1 },
      ops: { httpHost: addr.gw, httpPort: 0, optionsIntervalSec: 0.3, optionsFailuresBeforeDown: 2, optionsTimeoutMs: 600 },
      shutdown: { drainSeconds: 5 },
    };
    let current: Record<string, any> = deepMerge(base, opts.config ?? {});
    let gw: Gateway | undefined;
    let config: Config | undefined;
    const env: NodeJS.ProcessEnv = redis ? { TEAMS_GW_REDIS_URL: redis.url } : {};
    const boot = async () => {
      const file = join(dir, 'gateway.json');
      await writeFile(file, JSON.stringify(current, null, 2));
      config = loadConfig(file, {});
      gw = await startGateway(config, redis ? { env } : { tenants: new MemoryTenantStore({ configDir: tenantDir }), env });
    };
    await boot();
    cleanups.push(async () => gw?.close());

    const carrierArgs = async (o: CarrierCallOptions) => {
      const from = addr.carriers[o.source ?? 0]!;
      return {
        scenario: join(OPS_SCENARIOS, o.scenario.endsWith('.xml') ? o.scenario : `${o.scenario}.xml`),
        localIp: from,
        localPort: await freePort(from, ['udp']),
        remote: `${addr.gw}:5060`,
        transport: 'u1' as const,
        service: o.to,
        calls: 1,
        pauseMs: o.pauseMs ?? 200,
        keys: { from_user: o.fromUser ?? '+14155550123', rtp_ip: from, rtp_port: 6000 },
        timeoutMs: o.timeoutMs ?? 15_000,
        label: `ops-${o.scenario}`,
      };
    };
    const h: OpsHarness = {
      addr,
      get gw() {
        return gw!;
      },
      get config() {
        return config!;
      },
      ft,
      rtpengine,
      redis,
      redisClient,
      tenantDir,
      dir,
      get opsUrl() {
        return `http://${addr.gw}:${gw!.ops.http.port}`;
      },
      async scrape() {
        const r = await fetch(`${h.opsUrl}/metrics`);
        if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
        return new Metrics(await r.text());
      },
      async setTenants(tenants) {
        await writeTenantDir(tenantDir, addr, tenants);
        if (admin) return apply();
        const r = await (gw!.ctx.tenants as MemoryTenantStore).reload();
        if (!r.ok) throw new Error(`tenant reload failed: ${JSON.stringify(r.problems)}`);
        return r.version;
      },
      async restart(overrides) {
        await gw?.close();
        gw = undefined;
        if (overrides) current = deepMerge(current, overrides);
        await boot();
      },
      async carrierCall(o) {
        return runSipp(await carrierArgs(o));
      },
      async carrierCallAsync(o) {
        return spawnSipp(await carrierArgs(o));
      },
      startTarget(scenario, keys = {}) {
        return startSippUas({
          scenario: join(OPS_SCENARIOS, scenario.endsWith('.xml') ? scenario : `${scenario}.xml`),
          localIp: addr.target,
          localPort: 5060,
          transport: 'u1',
          calls: 1,
          keys: { rtp_ip: addr.target, rtp_port: 6000, ...keys },
          timeoutMs: 20_000,
          label: `ops-${scenario}`,
        });
      },
      close: cleanup,
    };
    return h;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---------------------------------------------------------------------------- Prometheus text

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parsed Prometheus text exposition: families (from # TYPE) and samples. */
export class Metrics {
  readonly families = new Map<string, string>();
  readonly samples: Sample[] = [];

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      const t = /^# TYPE (\S+) (\S+)/.exec(line);
      if (t) {
        this.families.set(t[1]!, t[2]!);
        continue;
      }
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      this.samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
  }

  /** Every metric name a PromQL expression may use (histograms/summaries with their suffixes). */
  names(): Set<string> {
    const out = new Set<string>();
    for (const [name, type] of this.families) {
      out.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
      if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
    }
    for (const s of this.samples) out.add(s.name);
    return out;
  }

  /** Samples of `name` whose labels include `match`. */
  find(name: string, match: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  }

  /** Sum of the matching samples (0 when none). */
  sum(name: string, match: Record<string, string> = {}): number {
    return this.find(name, match).reduce((n, s) => n + s.value, 0);
  }

  /** Exactly one sample's value (throws when absent or ambiguous). */
  value(name: string, match: Record<string, string> = {}): number {
    const f = this.find(name, match);
    if (f.length !== 1) throw new Error(`${name}${JSON.stringify(match)}: ${f.length} samples\n${this.find(name).map((s) => JSON.stringify(s)).join('\n')}`);
    return f[0]!.value;
  }
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  const text = await r.text();
  try {
    return { status: r.status, body: JSON.parse(text) };
  } catch {
    return { status: r.status, body: text };
  }
}

export async function waitReady(h: OpsHarness, want: boolean, timeoutMs = 8000): Promise<{ status: number; body: any }> {
  let last: { status: number; body: any } | undefined;
  await waitFor(
    async () => {
      last = await getJson(`${h.opsUrl}/ready`);
      return (last.status === 200) === want;
    },
    { timeoutMs, intervalMs: 100, what: `/ready ${want ? '200' : '503'}` },
  );
  return last!;
}
