import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { type CheckLine, formatCheck } from './check.js';

function baseUrl(url: string | undefined, configFile: string | undefined): string {
  if (url) return url.replace(/\/$/, '');
  const c = loadConfig(configFile ?? process.env.TEAMS_GW_CONFIG);
  return `http://${c.ops.httpHost}:${c.ops.httpPort}`;
}

/** `teams-gw status [--url http://127.0.0.1:9090] [--json]`: readiness and state of a running gateway. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { url: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } });
  const url = baseUrl(values.url, values.config);
  let body: Record<string, any>;
  try {
    const r = await fetch(`${url}/status`);
    body = (await r.json()) as Record<string, any>;
  } catch (err) {
    process.stderr.write(`teams-gw status: gateway not reachable at ${url} (${(err as Error).message})\n`);
    return 3;
  }
  if (values.json) process.stdout.write(JSON.stringify(body, null, 2) + '\n');
  else {
    process.stdout.write(`ready: ${body.ready ? 'yes' : 'NO'}\n`);
    for (const [k, v] of Object.entries(body.checks ?? {})) process.stdout.write(`  ${v ? 'ok  ' : 'FAIL'} ${k}\n`);
    process.stdout.write(`calls: ${body.calls}  draining: ${body.draining}  tenant config version: ${body.tenantsVersion} (${body.tenantStore})\n`);
    for (const p of body.teamsProxies ?? []) process.stdout.write(`  teams proxy ${p.host}: ${p.up ? 'up' : 'DOWN'}\n`);
    for (const r of body.rtpengines ?? []) process.stdout.write(`  rtpengine ${r.address}: ${r.up ? 'up' : 'DOWN'} (${r.sessions} sessions)\n`);
    if (body.tls) {
      const last = body.tls.lastReload;
      process.stdout.write(`tls certificate ${body.tls.subject}, valid until ${body.tls.notAfter}${last ? `; last reload ${last.at} (${last.trigger}): ${last.outcome}${last.error ? ` — ${last.error}` : ''}` : ''}\n`);
    }
  }
  return body.ready ? 0 : 1;
}

/** `teams-gw check <tenant> [--url …] [--json]`: onboarding self-test run by the gateway. */
export async function checkCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { url: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } });
  const tenant = positionals[0];
  if (!tenant) {
    process.stderr.write('usage: teams-gw check <tenant id or FQDN> [--url http://host:port] [--json]\n');
    return 2;
  }
  const url = baseUrl(values.url, values.config);
  let body: { ok: boolean; lines: CheckLine[] };
  try {
    const r = await fetch(`${url}/check/${encodeURIComponent(tenant)}`);
    body = (await r.json()) as { ok: boolean; lines: CheckLine[] };
  } catch (err) {
    process.stderr.write(`teams-gw check: gateway not reachable at ${url} (${(err as Error).message})\n`);
    return 3;
  }
  process.stdout.write(values.json ? JSON.stringify(body, null, 2) + '\n' : formatCheck(body.lines));
  return body.ok ? 0 : 1;
}
