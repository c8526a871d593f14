/**
 * Deployment artifacts (issue 6): the Grafana dashboard and the Prometheus alert rules use only
 * metric names a running gateway exports (scraped from /metrics), docker-compose.yml passes
 * `docker-compose config`, and the example config and systemd unit are sound.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../src/config/load.js';
import { type OpsHarness, startOpsHarness } from './harness.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const read = (p: string) => readFileSync(resolve(ROOT, p), 'utf8');

/** Series Prometheus records itself for every target (not exported by the gateway). */
const PROMETHEUS_SYNTHETIC = new Set(['up']);
const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Metric names referenced by a PromQL expression. */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values, strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\$\{?\w+\}?/g, ''); // Grafana variables
  const out = new Set<string>();
  for (const m of s.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || PROMQL_WORDS.has(name!.toLowerCase())) continue; // a function, or a keyword
    if (/^\d/.test(name!)) continue;
    out.add(name!);
  }
  return [...out];
}

let h: OpsHarness;
let exported: Set<string>;

beforeAll(async () => {
  // A running gateway with the embedded SIP server, rtpengine and Redis: every family registered.
  h = await startOpsHarness({ slot: 4, redis: true });
  exported = (await h.scrape()).names();
}, 60_000);
afterAll(async () => h?.close(), 30_000);

describe('metric name extraction', () => {
  it('finds metric names and skips functions, keywords, labels and variables', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, direction) (rate(teamsgw_setup_answer_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
      'teamsgw_setup_answer_seconds_bucket',
    ]);
    expect(metricNames('sum by (tenant) (rate(a_total{class=~"5xx|6xx"}[10m])) / sum by (tenant) (rate(b_total[10m])) > 0.2 and c > 0.01')).toEqual(['a_total', 'b_total', 'c']);
    expect(metricNames('teamsgw_tls_certificate_expiry_timestamp_seconds - time() < 30 * 86400')).toEqual(['teamsgw_tls_certificate_expiry_timestamp_seconds']);
  });
});

describe('Grafana dashboard deploy/grafana/teams-gw-dashboard.json', () => {
  const dash = JSON.parse(read('deploy/grafana/teams-gw-dashboard.json')) as {
    uid: string;
    title: string;
    panels: { id: number; type: string; title: string; targets?: { expr: string; refId: string }[]; panels?: unknown[]; datasource?: { uid: string } }[];
    templating: { list: { name: string; query?: unknown; definition?: string }[] };
    annotations: { list: { expr?: string }[] };
  };
  const panels = dash.panels.filter((p) => p.type !== 'row');
  const exprs = [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dash.templating.list.flatMap((v) => (v.definition ? [v.definition.replace(/^label_values\(([^,]+),.*$/, '$1')] : [])),
    ...dash.annotations.list.flatMap((a) => (a.expr ? [a.expr] : [])),
  ];

  it('is valid dashboard JSON with unique panel ids and targets everywhere', () => {
    expect(dash.uid).toBe('teams-gw');
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    expect(panels.length).toBeGreaterThanOrEqual(20);
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      for (const t of p.targets!) expect(t.expr.length, p.title).toBeGreaterThan(5);
    }
  });

  it('uses only metric names the gateway exports', () => {
    const used = new Set(exprs.flatMap(metricNames));
    expect(used.size).toBeGreaterThanOrEqual(25);
    const unknown = [...used].filter((n) => !exported.has(n));
    expect(unknown).toEqual([]);
  });

  it('has panels for calls, failures per tenant, active calls, setup latency, Teams OPTIONS, rtpengine, Redis, tenant config and certificate expiry', () => {
    const byMetric = (m: string) => panels.filter((p) => (p.targets ?? []).some((t) => metricNames(t.expr).includes(m))).map((p) => p.title);
    expect(byMetric('teamsgw_calls_attempted_total').length).toBeGreaterThanOrEqual(2);
    expect(panels.some((p) => (p.targets ?? []).some((t) => t.expr.includes('teamsgw_calls_failed_total') && /by \([^)]*tenant/.test(t.expr)))).toBe(true);
    for (const m of [
      'teamsgw_active_calls',
      'teamsgw_setup_answer_seconds_bucket',
      'teamsgw_setup_first_provisional_seconds_bucket',
      'teamsgw_options_up',
      'teamsgw_options_rtt_seconds_bucket',
      'teamsgw_rtpengine_up',
      'teamsgw_rtpengine_command_seconds_bucket',
      'teamsgw_rtpengine_command_errors_total',
      'teamsgw_media_sessions',
      'teamsgw_redis_up',
      'teamsgw_redis_command_seconds_bucket',
      'teamsgw_redis_errors_total',
      'teamsgw_tenant_config_version',
      'teamsgw_tenant_config_reloads_total',
      'teamsgw_tls_certificate_expiry_timestamp_seconds',
      'teamsgw_admission_rejections_total',
      'drachtio_sip_requests_in_total',
      'process_resident_memory_bytes',
    ]) expect(byMetric(m), m).not.toEqual([]);
  });
});

describe('Prometheus alert rules deploy/prometheus/alerts.yml', () => {
  const doc = parseYaml(read('deploy/prometheus/alerts.yml')) as { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string } }[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);
  const rule = (name: string) => {
    const r = rules.find((x) => x.alert === name);
    if (!r) throw new Error(`no alert ${name}`);
    return r;
  };

  it('pages on Teams proxies down, tenant failure ratio, rtpengine down, Redis down and certificate expiry within 30 days', () => {
    expect(rule('TeamsProxiesDown').expr).toMatch(/teamsgw_options_up\{kind="teams"\}/);
    expect(rule('TeamsProxiesDown').labels.severity).toBe('critical');
    expect(rule('TenantFailureRatioHigh').expr).toMatch(/sum by \(tenant\) \(rate\(teamsgw_calls_failed_total/);
    expect(rule('TenantFailureRatioHigh').expr).toMatch(/teamsgw_calls_attempted_total/);
    expect(rule('RtpengineDown').expr).toBe('teamsgw_rtpengine_up == 0');
    expect(rule('AllRtpenginesDown').labels.severity).toBe('critical');
    expect(rule('RedisDown').expr).toBe('teamsgw_redis_up == 0');
    expect(rule('CertificateExpiresSoon').expr).toBe('teamsgw_tls_certificate_expiry_timestamp_seconds - time() < 30 * 86400');
    for (const r of rules) {
      expect(r.labels.severity, r.alert).toMatch(/^(critical|warning|info)$/);
      expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10);
      if (r.for) expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
    }
  });

  it('uses only metric names the gateway exports (plus Prometheus\' own `up`)', () => {
    const unknown = rules.flatMap((r) => metricNames(r.expr)).filter((n) => !exported.has(n) && !PROMETHEUS_SYNTHETIC.has(n));
    expect(unknown).toEqual([]);
  });

  it('prometheus.yml loads the rules and scrapes the gateway on its ops port', () => {
    const p = parseYaml(read('deploy/prometheus/prometheus.yml')) as { rule_files: string[]; scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    expect(p.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const gw = p.scrape_configs.find((s) => s.job_name === 'teams-gw');
    const example = loadConfig(resolve(ROOT, 'deploy/gateway.example.yaml'), {});
    expect(gw?.static_configs[0]?.targets).toEqual([`${example.ops.httpHost}:${example.ops.httpPort}`]);
    // the `up{job="teams-gw"}` alert names this job
    expect(rule('TeamsGatewayDown').expr).toBe('up{job="teams-gw"} == 0');
  });
});

describe('docker-compose.yml', () => {
  it('passes `docker-compose config` (Debian docker-compose, no engine needed) with the six services', async () => {
    const r = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 30_000 });
    const cfg = parseYaml(r.stdout) as { services: Record<string, { image?: string; volumes?: (string | { source: string; target: string })[]; profiles?: string[]; environment?: Record<string, string>; network_mode?: string }> };
    expect(Object.keys(cfg.services).sort()).toEqual(['drachtio', 'grafana', 'prometheus', 'redis', 'rtpengine', 'teams-gw']);
    expect(cfg.services.drachtio?.image).toMatch(/^drachtio\/drachtio-server:/);
    expect(cfg.services.drachtio?.profiles).toEqual(['drachtio']);
    const gw = cfg.services['teams-gw']!;
    const vol = (gw.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    expect(vol.some((v) => v.startsWith(`${resolve(ROOT, 'config')}:/etc/teams-gw`))).toBe(true);
    expect(gw.environment?.TEAMS_GW_CONFIG).toBe('/etc/teams-gw/gateway.yaml');
    expect(gw.network_mode).toBe('host');
    expect(r.stderr).not.toMatch(/variable is not set/);
  }, 40_000);

  it('the example gateway config referenced by the compose file is valid', () => {
    const c = loadConfig(resolve(ROOT, 'deploy/gateway.example.yaml'), {});
    expect(c.sipServer.tls.certFile).toBe('/etc/teams-gw/tls/sbc.crt');
    expect(c.ops.optionsIntervalSec).toBe(60);
    expect(c.sipServer.contacts.some((x) => x.includes('transport=tls'))).toBe(true);
  });
});

describe('systemd unit deploy/systemd/teams-gw.service', () => {
  const unit = read('deploy/systemd/teams-gw.service');
  const key = (k: string) => [...unit.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1]!);

  it('runs `teams-gw run` as an unprivileged user, drains on SIGTERM within TimeoutStopSec, restarts on failure', () => {
    expect(unit).toMatch(/^\[Unit\]$/m);
    expect(unit).toMatch(/^\[Service\]$/m);
    expect(unit).toMatch(/^\[Install\]$/m);
    expect(key('ExecStart')[0]).toMatch(/dist\/cli\.js run$/);
    expect(key('User')).toEqual(['teams-gw']);
    expect(key('KillSignal')).toEqual(['SIGTERM']);
    expect(Number(key('TimeoutStopSec')[0])).toBeGreaterThan(30); // > default shutdown.drainSeconds
    expect(key('Restart')).toEqual(['on-failure']);
    expect(key('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(key('Environment')).toContain('TEAMS_GW_CONFIG=/etc/teams-gw/gateway.yaml');
  });

  it('passes systemd-analyze verify (when the node binary is where the unit expects it)', async () => {
    // systemd-analyze checks the unit syntax; ExecStart must exist, so verify a copy that
    // points at this machine's node.
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(resolve(tmpdir(), 'unit-'));
    try {
      const f = resolve(dir, 'teams-gw.service');
      await writeFile(f, unit.replace('/usr/bin/node /opt/teams-gw/dist/cli.js run', `${process.execPath} ${resolve(ROOT, 'dist/cli.js')} run`));
      const r = await run('systemd-analyze', ['verify', f], { timeout: 20_000 }).then(
        (x) => ({ code: 0, err: x.stderr }),
        (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, err: e.stderr ?? '' }),
      );
      // Unknown users/paths on this machine are reported but are not syntax errors.
      const problems = r.err.split('\n').filter((l) => l.trim() && /teams-gw\.service/.test(l) && !/(User|Group|WorkingDirectory|EnvironmentFile|ReadOnlyPaths|Documentation|not found|No such file|Failed to resolve)/i.test(l));
      expect(problems).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
