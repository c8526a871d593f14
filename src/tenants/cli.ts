/**
 * `teams-gw tenants validate | plan | apply | list | show <id> | export <dir> | rollback`
 *
 * Exit codes: 0 success · 1 invalid config, not found, nothing to roll back, conflict ·
 * 2 usage error · 3 Redis unreachable. `--json` prints one JSON object on stdout instead of text.
 * Connection flags, environment variables and examples: docs/tenants.md "CLI".
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { isAppError } from '../util/errors.js';
import { diffConfigs, formatPlan } from './diff.js';
import { exportConfig } from './export.js';
import { formatProblem, loadConfigDir, type LoadResult } from './load.js';
import { TenantAdmin } from './redis-admin.js';
import {
  createRedisClient,
  describeRedis,
  parseHostList,
  redisOptionsFromEnv,
  type RedisClient,
  type RedisConnectionOptions,
} from './redis-connection.js';
import type { TenantConfigSet } from './types.js';

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

const USAGE = `usage: teams-gw tenants <command> [options]

commands:
  validate              check the config directory; list every problem
  plan                  show what apply would change against the live config
  apply [--force]       validate, then write a new version and switch to it atomically
  list                  list live tenants
  show <id>             print one live tenant (YAML, or JSON with --json)
  export <dir> [--force] write the live config as files that validate
  rollback              switch back to the previous version

options:
  --config-dir <dir>            config directory (env TEAMS_GW_TENANTS_DIR, default config/tenants)
  --redis-url <url>             redis://host:port[/db] or rediss:// (env TEAMS_GW_REDIS_URL)
  --redis-sentinels <h:p,...>   Sentinel addresses (env TEAMS_GW_REDIS_SENTINELS)
  --redis-sentinel-name <name>  Sentinel master name (env TEAMS_GW_REDIS_SENTINEL_NAME, default mymaster)
  --redis-cluster <h:p,...>     Cluster seed nodes (env TEAMS_GW_REDIS_CLUSTER)
  --namespace <ns>              key prefix (env TEAMS_GW_TENANTS_NAMESPACE, default tg)
  --json                        machine-readable output
passwords only from the environment: TEAMS_GW_REDIS_PASSWORD, TEAMS_GW_REDIS_USERNAME, TEAMS_GW_REDIS_SENTINEL_PASSWORD
without a Redis option, list/show/export read the config directory (the embedded store)`;

class UsageError extends Error {}

interface Ctx {
  io: CliIo;
  json: boolean;
  force: boolean;
  configDir: string;
  redis: RedisConnectionOptions | undefined;
  namespace: string;
  positionals: string[];
}

function emit(ctx: Ctx, json: Record<string, unknown>, text: string): void {
  if (ctx.json) ctx.io.out(JSON.stringify(json));
  else if (text) ctx.io.out(text);
}

function fail(ctx: Ctx, code: number, errCode: string, message: string): number {
  if (ctx.json) ctx.io.out(JSON.stringify({ ok: false, error: { code: errCode, message } }));
  else ctx.io.err(`teams-gw tenants: ${message}`);
  return code;
}

function loadAndReport(ctx: Ctx): LoadResult {
  const r = loadConfigDir(ctx.configDir);
  if (!r.config && !ctx.json) {
    for (const p of r.problems) ctx.io.err(formatProblem(p));
    ctx.io.err(`${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${ctx.configDir}`);
  }
  return r;
}

function invalid(ctx: Ctx, r: LoadResult): number {
  if (ctx.json) ctx.io.out(JSON.stringify({ ok: false, problems: r.problems }));
  return EXIT.failed;
}

async function withRedis<T>(ctx: Ctx, fn: (admin: TenantAdmin) => Promise<T>): Promise<T | number> {
  if (!ctx.redis) {
    return fail(ctx, EXIT.usage, 'ERR_NO_REDIS', 'this command needs Redis: pass --redis-url (or Sentinel/Cluster options) or set TEAMS_GW_REDIS_URL');
  }
  let client: RedisClient;
  try {
    client = createRedisClient(ctx.redis, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  } catch (e) {
    return fail(ctx, EXIT.usage, 'ERR_USAGE', (e as Error).message);
  }
  client.on('error', () => undefined); // surfaced through connect()/commands
  try {
    try {
      await client.connect();
    } catch (e) {
      return fail(ctx, EXIT.unreachable, 'ERR_REDIS_UNREACHABLE', `cannot reach ${describeRedis(ctx.redis)}: ${(e as Error).message}`);
    }
    return await fn(new TenantAdmin(client, ctx.namespace));
  } finally {
    client.disconnect();
  }
}

/** The live config: from Redis when configured, else the config directory (embedded mode). */
async function live(ctx: Ctx): Promise<{ version: number | undefined; config: TenantConfigSet } | number> {
  if (!ctx.redis) {
    const r = loadAndReport(ctx);
    if (!r.config) return invalid(ctx, r);
    return { version: undefined, config: r.config };
  }
  return withRedis(ctx, async (admin) => {
    const l = await admin.live();
    if (!l) return { version: undefined, config: { settings: { carrierBaseDomain: '' }, carriers: [], tenants: [] } };
    return { version: l.version, config: l.config };
  });
}

const commands: Record<string, (ctx: Ctx) => Promise<number>> = {
  async validate(ctx) {
    const r = loadAndReport(ctx);
    if (!r.config) return invalid(ctx, r);
    const c = r.config;
    const summary = { files: r.files, tenants: c.tenants.length, carriers: c.carriers.length, didEntries: c.tenants.reduce((n, t) => n + t.dids.length, 0) };
    emit(ctx, { ok: true, problems: [], summary }, `OK: ${summary.tenants} tenants, ${summary.carriers} carriers, ${summary.didEntries} DID entries in ${summary.files} files`);
    return EXIT.ok;
  },

  async plan(ctx) {
    const r = loadAndReport(ctx);
    if (!r.config) return invalid(ctx, r);
    const next = r.config;
    return withRedis(ctx, async (admin) => {
      const l = await admin.live();
      const plan = diffConfigs(l?.config, next);
      emit(ctx, { ok: true, live: l ? { version: l.version } : null, ...plan }, formatPlan(plan, l?.version));
      return EXIT.ok;
    });
  },

  async apply(ctx) {
    // Validate first: an invalid config never opens a Redis connection, so nothing is written.
    const r = loadAndReport(ctx);
    if (!r.config) return invalid(ctx, r);
    const config = r.config;
    return withRedis(ctx, async (admin) => {
      const res = await admin.apply(config, { force: ctx.force });
      const text = res.changed
        ? `applied version ${res.version}${res.previous !== undefined ? ` (previous ${res.previous}, kept for rollback)` : ''}: ${res.tenants} tenants in ${Math.round(res.durationMs)} ms`
        : `no changes: live version ${res.version} already matches ${ctx.configDir}`;
      emit(ctx, { ok: true, ...res, previous: res.previous ?? null }, text);
      return EXIT.ok;
    });
  },

  async list(ctx) {
    const l = await live(ctx);
    if (typeof l === 'number') return l;
    const rows = l.config.tenants.map((t) => ({
      id: t.id,
      name: t.name,
      fqdn: t.fqdn,
      enabled: t.enabled,
      didEntries: t.dids.length,
      trunks: t.trunks.map((x) => x.carrier),
    }));
    const w = Math.max(2, ...rows.map((x) => x.id.length));
    const f = Math.max(4, ...rows.map((x) => x.fqdn.length));
    const text = [
      `${'ID'.padEnd(w)}  ${'FQDN'.padEnd(f)}  ENABLED  DIDS  NAME`,
      ...rows.map((x) => `${x.id.padEnd(w)}  ${x.fqdn.padEnd(f)}  ${String(x.enabled).padEnd(7)}  ${String(x.didEntries).padStart(4)}  ${x.name}`),
    ].join('\n');
    emit(ctx, { ok: true, version: l.version ?? null, tenants: rows }, text);
    return EXIT.ok;
  },

  async show(ctx) {
    const id = ctx.positionals[0];
    if (!id) throw new UsageError('show needs a tenant id');
    const l = await live(ctx);
    if (typeof l === 'number') return l;
    const t = l.config.tenants.find((x) => x.id === id);
    if (!t) return fail(ctx, EXIT.failed, 'ERR_TENANT_NOT_FOUND', `no tenant "${id}"${l.version !== undefined ? ` in live version ${l.version}` : ''}`);
    emit(ctx, { ok: true, version: l.version ?? null, tenant: t }, stringify(t, { lineWidth: 0 }).trimEnd());
    return EXIT.ok;
  },

  async export(ctx) {
    const dir = ctx.positionals[0];
    if (!dir) throw new UsageError('export needs a target directory');
    const l = await live(ctx);
    if (typeof l === 'number') return l;
    if (l.version === undefined && ctx.redis) return fail(ctx, EXIT.failed, 'ERR_NOTHING_LIVE', 'nothing has been applied yet: nothing to export');
    const note = l.version !== undefined ? `exported from live config version ${l.version}` : `exported from ${ctx.configDir}`;
    let files: string[];
    try {
      files = exportConfig(l.config, resolve(ctx.io.cwd, dir), { note, force: ctx.force });
    } catch (e) {
      return fail(ctx, EXIT.failed, 'ERR_EXPORT', (e as Error).message);
    }
    emit(ctx, { ok: true, version: l.version ?? null, dir, files }, `wrote ${files.length} files to ${dir}`);
    return EXIT.ok;
  },

  async rollback(ctx) {
    return withRedis(ctx, async (admin) => {
      const res = await admin.rollback();
      emit(ctx, { ok: true, ...res }, `rolled back to version ${res.version} (version ${res.previous} kept: rollback again to return to it)`);
      return EXIT.ok;
    });
  },
};

export async function runTenantsCli(argv: string[], io: CliIo): Promise<number> {
  let ctx: Ctx | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        'config-dir': { type: 'string' },
        'redis-url': { type: 'string' },
        'redis-sentinels': { type: 'string' },
        'redis-sentinel-name': { type: 'string' },
        'redis-cluster': { type: 'string' },
        namespace: { type: 'string' },
      },
    });
    const [cmd, ...rest] = positionals;
    if (values.help || !cmd) {
      (values.help ? io.out : io.err)(USAGE);
      return values.help ? EXIT.ok : EXIT.usage;
    }
    const run = commands[cmd];
    if (!run) throw new UsageError(`unknown command "${cmd}"`);
    let redis = redisOptionsFromEnv(io.env);
    if (values['redis-url'] || values['redis-sentinels'] || values['redis-cluster']) {
      const base: RedisConnectionOptions = {
        ...(redis?.username ? { username: redis.username } : {}),
        ...(redis?.password ? { password: redis.password } : {}),
        ...(redis?.sentinelPassword ? { sentinelPassword: redis.sentinelPassword } : {}),
        ...(redis?.tls ? { tls: true } : {}),
      };
      if (values['redis-url']) base.url = values['redis-url'];
      if (values['redis-sentinels']) base.sentinels = parseHostList(values['redis-sentinels']);
      if (values['redis-cluster']) base.cluster = parseHostList(values['redis-cluster']);
      redis = base;
    }
    if (redis && values['redis-sentinel-name']) redis.sentinelName = values['redis-sentinel-name'];
    ctx = {
      io,
      json: values.json ?? false,
      force: values.force ?? false,
      configDir: resolve(io.cwd, values['config-dir'] ?? io.env.TEAMS_GW_TENANTS_DIR ?? 'config/tenants'),
      redis,
      namespace: values.namespace ?? io.env.TEAMS_GW_TENANTS_NAMESPACE ?? 'tg',
      positionals: rest,
    };
    return await run(ctx);
  } catch (e) {
    const c: Ctx = ctx ?? { io, json: argv.includes('--json'), force: false, configDir: '', redis: undefined, namespace: 'tg', positionals: [] };
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      if (!c.json) io.err(USAGE);
      return fail(c, EXIT.usage, 'ERR_USAGE', (e as Error).message);
    }
    if (isAppError(e)) return fail(c, EXIT.failed, e.code, e.message);
    return fail(c, EXIT.failed, 'ERR_INTERNAL', (e as Error).message);
  }
}

/** Entry used by src/cli.ts: `teams-gw tenants ...`. */
export default async function tenantsCli(argv: string[]): Promise<number> {
  return runTenantsCli(argv, {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
    env: process.env,
    cwd: process.cwd(),
  });
}
