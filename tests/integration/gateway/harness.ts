/**
 * Boots the whole gateway for tests: rtpengine (127.0.6.50), the fake Teams (127.0.5.1-3,
 * mutual TLS) and `startGateway()` with a test config (SIP on 127.0.6.1: udp/tcp 5060 for
 * carriers, tls 5061 for Teams), in-process with the embedded SIP server, or (mode
 * 'external') against our SIP server started as a separate process (`node dist/cli.js
 * sip-server`). `assertIdle()` is what every test ends with: no live call, no rtpengine
 * session, no dialog (drachtio-srf's and the SIP server's), admission counters at zero, no
 * fake-Teams violation.
 *
 *   const h = await startGatewayHarness();
 *   afterEach(() => h.afterEach());
 *   afterAll(() => h.close());
 *
 * Tenants come from tests/fixtures/gateway/tenants: loaded by the embedded MemoryTenantStore, or
 * (`tenantStore: 'redis'`) applied with the real `teams-gw tenants apply` to a throwaway
 * redis-server and served by a RedisTenantStore; `h.tenantsCli()` then runs further CLI commands
 * (apply, rollback, show …) against that Redis while the gateway runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { type Gateway, startGateway } from '../../../src/main.js';
import type { RtpenginePool } from '../../../src/media/index.js';
import { runTenantsCli } from '../../../src/tenants/cli.js';
import { MemoryTenantStore, RedisTenantStore, type TenantStore } from '../../../src/tenants/index.js';
import { FakeTeams, type FakeTeamsOptions, type InboundCall } from '../../helpers/fake-teams/index.js';
import { freePort, waitFor } from '../../helpers/net.js';
import { type RedisServerHandle, startRedisServer } from '../../helpers/redis-server.js';
import { type RtpengineHandle, startRtpengine } from '../../helpers/rtpengine.js';
import { type CliServer, startSipServerCli } from '../../helpers/sip-server.js';
import { stopAllSipp } from '../../helpers/sipp.js';

export const GW_IP = '127.0.6.1';
export const GW_UDP = `${GW_IP}:5060`;
export const GW_TLS_PORT = 5061;
export const RTPENGINE_IP = '127.0.6.50';
export const RTPENGINE_IP_2 = '127.0.6.51';
/** Allowed carrier sources (tests/fixtures/gateway/tenants/carriers.yaml). */
export const CARRIER_IPS = ['127.0.6.10', '127.0.6.11', '127.0.6.12', '127.0.6.13', '127.0.6.14', '127.0.6.15', '127.0.6.16', '127.0.6.17', '127.0.6.18', '127.0.6.19'] as const;
export const NOT_ALLOWED_IP = '127.0.6.20';
/** Carrier targets by priority (udp .30, udp .31, tcp .32), all port 5060. */
export const TARGET_IPS = ['127.0.6.30', '127.0.6.31', '127.0.6.32'] as const;
export const TENANTS_DIR = resolve(import.meta.dirname, '../../fixtures/gateway/tenants');
export const TENANT_FQDNS = ['acme', 'plain', 'transcoder', 'strict', 'tiny', 'bursty', 'gone'].map((t) => `${t}.customers.example.net`);
export const CARRIER_PASSWORD_ENV = 'GW_TEST_CARRIER_PASSWORD';
export const CARRIER_PASSWORD = 'trunk-s3cret';

export interface LogLine {
  level: number;
  msg?: string;
  [k: string]: unknown;
}

export interface HarnessOptions {
  mode?: 'embedded' | 'external';
  /** Deep-merged over the test config (see testConfig()). */
  config?: Record<string, unknown>;
  fakeTeams?: Partial<FakeTeamsOptions>;
  /** Where the gateway's tenants come from (default 'memory'; see the module comment). */
  tenantStore?: 'memory' | 'redis';
  /** tenantStore 'redis': preload exact numbers only up to this many (0: every exact-number lookup asks Redis). */
  preloadExactLimit?: number;
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export interface GatewayHarness {
  readonly mode: 'embedded' | 'external';
  gw: Gateway;
  readonly ft: FakeTeams;
  readonly rtpengine: RtpengineHandle;
  config: Config;
  /** Everything call control logged (info and above) since the gateway started. */
  readonly logs: LogLine[];
  readonly pool: RtpenginePool;
  /** Waits for a call the SBC sends to Teams with index >= `after` (take `ft.calls.length` before dialling). */
  nextCall(after: number, timeoutMs?: number): Promise<InboundCall>;
  /** Tenant ids of the fixture. */
  readonly tenantIds: string[];
  /** Admission counters per tenant. */
  counters(): Promise<Record<string, number>>;
  /** Waits for the gateway to go idle, then asserts it (and fake Teams) is clean. */
  assertIdle(timeoutMs?: number): Promise<void>;
  /** afterEach: stop SIPp, assert idle, reset fake Teams scripts/violations. */
  afterEach(): Promise<void>;
  /** The harness' redis-server (tenantStore 'redis' only). */
  readonly redis: RedisServerHandle | undefined;
  /** `teams-gw tenants <args> --redis-url <the harness Redis>` (tenantStore 'redis' only). */
  tenantsCli(args: string[]): Promise<CliRun>;
  /** Stops the gateway and starts a new one with the same (or a modified) config. */
  restartGateway(config?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

function deepMerge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' && !Array.isArray(a[k]) ? deepMerge(a[k], v) : v;
  }
  return out;
}

class MemoryLog extends Writable {
  constructor(readonly lines: LogLine[]) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) {
      if (!l) continue;
      try {
        this.lines.push(JSON.parse(l) as LogLine);
      } catch {
        // not JSON: ignore
      }
    }
    if (this.lines.length > 20_000) this.lines.splice(0, 10_000);
    cb();
  }
}

export async function startGatewayHarness(opts: HarnessOptions = {}): Promise<GatewayHarness> {
  const mode = opts.mode ?? 'embedded';
  process.env[CARRIER_PASSWORD_ENV] = CARRIER_PASSWORD;
  const dir = await mkdtemp(join(tmpdir(), 'gw-harness-'));
  const cleanups: Array<() => Promise<unknown>> = [async () => rm(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const [ft, rtpengine] = await Promise.all([
      FakeTeams.start({ tenants: TENANT_FQDNS, sbc: { host: GW_IP, port: GW_TLS_PORT }, ackTimeoutMs: 3000, ...opts.fakeTeams }),
      startRtpengine({ ip: RTPENGINE_IP, timeoutSec: 30 }),
    ]);
    cleanups.push(() => ft.close(), () => rtpengine.stop());

    let external: CliServer | undefined;
    let sipServer: Record<string, unknown>;
    const contacts = [`sip:${GW_IP}:5060;transport=udp,tcp`, `sips:${GW_IP}:${GW_TLS_PORT};transport=tls`];
    if (mode === 'external') {
      const adminPort = await freePort(GW_IP, ['tcp']);
      const secret = 'gw-external-secret';
      external = await startSipServerCli({
        args: [...contacts.flatMap((c) => ['--contact', c]), '--address', GW_IP, '--port', String(adminPort), '--secret', secret, '--key-file', ft.pki.sbc.server.keyPath, '--cert-file', ft.pki.sbc.server.certPath, '--loglevel', 'warn'],
        ready: { tcp: [[GW_IP, adminPort], [GW_IP, GW_TLS_PORT], [GW_IP, 5060]], udp: [[GW_IP, 5060]] },
        logFile: join(dir, 'sip-server.log'),
      });
      cleanups.push(() => external!.stop());
      sipServer = { mode: 'external', admin: { host: GW_IP, port: adminPort, secret } };
    } else {
      sipServer = {
        mode: 'embedded',
        contacts,
        admin: { port: 0 },
        // As docs/operations.md recommends for a Teams-facing listener: Teams' certificate is
        // verified on the connections it opens too (§2.11).
        tls: { keyFile: ft.pki.sbc.server.keyPath, certFile: ft.pki.sbc.server.certPath, caFile: ft.pki.teams.ca.certPath, verifyPeer: true, verifyClients: true },
      };
    }
    const base = {
      log: { level: 'warn' },
      sipServer,
      teams: {
        proxies: ft.proxies,
        hosts: ft.hosts,
        signalingPort: GW_TLS_PORT,
        sbcHeader: 'TestVendor/teams-dr-gateway/0.0.0-test',
        sourceCidrs: ['127.0.5.0/24'],
        inviteTimeoutMs: 1500,
      },
      carriers: { unknownSource: 'reject', earlyMedia: 'pass' },
      media: { rtpengines: [rtpengine.ngAddress], commandTimeoutMs: 500, healthIntervalMs: 300, failuresBeforeDown: 1 },
      ops: { httpHost: GW_IP, httpPort: 0 },
      shutdown: { drainSeconds: 10 },
    };
    let redis: RedisServerHandle | undefined;
    const tenantsCli = async (args: string[]): Promise<CliRun> => {
      if (!redis) throw new Error("tenantsCli needs startGatewayHarness({ tenantStore: 'redis' })");
      const out: string[] = [];
      const err: string[] = [];
      const code = await runTenantsCli([...args, '--redis-url', redis.url], { out: (x) => out.push(x), err: (x) => err.push(x), env: {}, cwd: process.cwd() });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    if (opts.tenantStore === 'redis') {
      redis = await startRedisServer();
      cleanups.push(() => redis!.stop());
      const applied = await tenantsCli(['apply', '--config-dir', TENANTS_DIR]);
      if (applied.code !== 0) throw new Error(`tenants apply of the fixture failed: ${applied.err}`);
    }
    const tenantStore = (): TenantStore =>
      redis
        ? new RedisTenantStore({ redis: { url: redis.url }, pollIntervalMs: 1000, ...(opts.preloadExactLimit !== undefined ? { preloadExactLimit: opts.preloadExactLimit } : {}) })
        : new MemoryTenantStore({ configDir: TENANTS_DIR });
    const logs: LogLine[] = [];
    let current: Record<string, any> = deepMerge(base, opts.config ?? {});
    let gw: Gateway | undefined;
    let config: Config | undefined;

    const boot = async (cfg: Record<string, any>) => {
      const file = join(dir, 'gateway.yaml');
      await writeFile(file, JSON.stringify(cfg, null, 2));
      config = loadConfig(file, {});
      gw = await startGateway(config, { tenants: tenantStore(), env: {} });
      // Call control logs into memory (tests assert on log lines); the composition root's own
      // logger stays at config.log.level on stdout.
      gw.ctx.log = pino({ level: 'info', base: null }, new MemoryLog(logs));
    };
    await boot(current);
    cleanups.push(async () => gw?.close());

    const tenantIds = ['acme', 'plain', 'transcoder', 'strict', 'tiny', 'bursty', 'gone'];
    const h: GatewayHarness = {
      mode,
      get gw() {
        return gw!;
      },
      set gw(v) {
        gw = v;
      },
      ft,
      rtpengine,
      get redis() {
        return redis;
      },
      get config() {
        return config!;
      },
      set config(v) {
        config = v;
      },
      logs,
      get pool() {
        return gw!.ctx.media as unknown as RtpenginePool;
      },
      tenantIds,
      nextCall(after: number, timeoutMs = 5000) {
        return ft.waitForCall((c) => ft.calls.indexOf(c) >= after, timeoutMs);
      },
      async counters() {
        const out: Record<string, number> = {};
        for (const t of tenantIds) out[t] = await gw!.ctx.admission.active(t);
        return out;
      },
      async assertIdle(timeoutMs = 6000) {
        const zero = Object.fromEntries(tenantIds.map((t) => [t, 0]));
        // Dialogs: drachtio-srf's own table (both modes) and, embedded, the SIP server's.
        const snapshot = async () => ({
          calls: gw!.ctx.calls.size,
          sessions: await h.pool.activeSessions(),
          counters: await h.counters(),
          appDialogs: (gw!.srf as { _dialogs: Map<string, unknown> })._dialogs.size,
          serverDialogs: gw!.server ? gw!.server.stats().dialogs : 0,
        });
        let last: Awaited<ReturnType<typeof snapshot>> | undefined;
        try {
          await waitFor(
            async () => {
              last = await snapshot();
              return last.calls === 0 && last.sessions === 0 && last.appDialogs === 0 && last.serverDialogs === 0 && JSON.stringify(last.counters) === JSON.stringify(zero);
            },
            { timeoutMs, intervalMs: 100, what: 'gateway idle' },
          );
        } catch {
          // fall through to the assertions, which say what is left
        }
        last = await snapshot();
        expect(last.calls, 'live calls').toBe(0);
        expect(last.sessions, 'rtpengine sessions').toBe(0);
        expect(last.counters, 'admission counters').toEqual(zero);
        expect(last.appDialogs, 'drachtio-srf dialogs').toBe(0);
        expect(last.serverDialogs, 'SIP server dialogs').toBe(0);
        expect(ft.violations, 'fake Teams violations').toEqual([]);
      },
      async afterEach() {
        await stopAllSipp();
        try {
          await h.assertIdle();
        } finally {
          ft.clearScripts();
          ft.violations.splice(0);
        }
      },
      tenantsCli,
      async restartGateway(cfg?: Record<string, unknown>) {
        await gw?.close();
        gw = undefined;
        current = cfg ? deepMerge(current, cfg) : current;
        await boot(current);
      },
      close: cleanup,
    };
    return h;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Log lines whose msg matches. */
export function logged(h: GatewayHarness, msg: string | RegExp): LogLine[] {
  return h.logs.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg ?? ''))));
}
