/**
 * Prometheus metrics, CDRs and readiness after REAL calls (issue 6 acceptance): SIPp carriers →
 * gateway (embedded SIP server, rtpengine, Redis tenant store + admission + CDR stream) → fake
 * Teams, and back (Teams → gateway → SIPp carrier target). Every metric family the issue lists
 * is scraped from /metrics and asserted; then rtpengine and Redis go away and come back.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { step } from '../../helpers/fake-teams/index.js';
import { UdpPeer, waitFor } from '../../helpers/net.js';
import { type SippResult, headerValue, parseMessageLog, sippReport } from '../../helpers/sipp.js';
import { type Metrics, type OpsHarness, getJson, startOpsHarness, waitReady } from './harness.js';

let h: OpsHarness;
let tenantVersion = 0;
const ids: Record<'answered' | 'failed' | 'cancelled' | 'rejected' | 'outbound', string> = { answered: '', failed: '', cancelled: '', rejected: '', outbound: '' };
let afterCalls: Metrics;
let midCall: Metrics;
const monitored: string[][] = [];
let monitor: Redis | undefined;

function callIdOf(r: SippResult): string {
  const first = parseMessageLog(r.messageLog).find((m) => m.direction === 'sent');
  return headerValue(first?.text ?? '', 'Call-ID') ?? '';
}
function finalStatus(r: SippResult): number {
  const fin = parseMessageLog(r.messageLog).filter((m) => m.direction === 'received' && /^SIP\/2\.0 [2-6]\d\d/.test(m.firstLine) && /CSeq:\s*1 INVITE/i.test(m.text));
  return Number(fin.at(-1)?.firstLine.split(' ')[1] ?? 0);
}

beforeAll(async () => {
  h = await startOpsHarness({ slot: 1, redis: true });
  tenantVersion = h.gw.ctx.tenants.version();
  monitor = await h.redisClient!.monitor();
  monitor.on('error', () => undefined);
  monitor.on('monitor', (_t: string, args: string[]) => {
    if (String(args[0]).toLowerCase() === 'xadd') monitored.push(args.map(String));
  });

  // 1. PSTN → Teams, answered after 180; the carrier hangs up.
  h.ft.script([step.ringing(0), step.answer(150)], { times: 1 });
  const answered = await h.carrierCall({ scenario: 'carrier-call-bye', to: '+14255550111', pauseMs: 400 });
  expect(answered.exitCode, sippReport(answered)).toBe(0);
  ids.answered = callIdOf(answered);

  // 2. PSTN → Teams, Teams answers 486 (failed, 4xx).
  h.ft.script([step.reject(486)], { times: 1 });
  const failed = await h.carrierCall({ scenario: 'carrier-call-reject', to: '+14255550112' });
  expect(failed.exitCode, sippReport(failed)).toBe(0);
  expect(finalStatus(failed)).toBe(486);
  ids.failed = callIdOf(failed);

  // 3. Tenant "tiny" (one concurrent call): a ringing call holds the slot, a second one is
  //    refused by admission (503), then the first caller cancels (487).
  h.ft.script([step.ringing(0)], { times: 1 });
  const n = h.ft.calls.length;
  const cancelled = await h.carrierCallAsync({ scenario: 'carrier-call-cancel', to: '+14255550501', pauseMs: 1500, source: 1 });
  await waitFor(() => h.ft.calls.length > n && h.gw.ctx.calls.size === 1, { timeoutMs: 5000, what: 'tiny call in progress' });
  midCall = await h.scrape();
  const rejected = await h.carrierCall({ scenario: 'carrier-call-reject', to: '+14255550502', source: 2 });
  expect(rejected.exitCode, sippReport(rejected)).toBe(0);
  expect(finalStatus(rejected)).toBe(503);
  ids.rejected = callIdOf(rejected);
  const c = await cancelled.done;
  expect(c.exitCode, sippReport(c)).toBe(0);
  ids.cancelled = callIdOf(c);

  // 4. Teams → PSTN, answered by the carrier target; Teams hangs up.
  const target = await h.startTarget('target-answer');
  const out = h.ft.originate({ to: '+14255550122', tenant: 'acme.customers.example.net', from: '+14255550100' });
  const fin = await out.waitForFinal(8000);
  expect(fin.status).toBe(200);
  ids.outbound = out.callId;
  await new Promise((r) => setTimeout(r, 200));
  expect((await out.bye()).status).toBe(200);
  const t = await target.done;
  expect(t.exitCode, sippReport(t)).toBe(0);

  // 5. Refused before they became calls (no attempt, no CDR): an unallocated number, a Teams
  //    INVITE to an FQDN that is no trunk, and an INVITE from an address that is no carrier.
  const unallocated = await h.carrierCall({ scenario: 'carrier-call-reject', to: '+19995550100' });
  expect(finalStatus(unallocated)).toBe(404);
  expect((await h.ft.originate({ to: '+14255550122', tenant: 'nobody.customers.example.net' }).waitForFinal()).status).toBe(403);
  const stranger = await UdpPeer.bind(h.addr.gw.replace(/\.(\d+)$/, (_m, n: string) => `.${Number(n) + 24}`));
  try {
    const [gwHost, gwPort] = [h.addr.gw, 5060];
    await stranger.send(
      [`INVITE sip:+14255550111@${gwHost} SIP/2.0`, `Via: SIP/2.0/UDP ${stranger.host}:${stranger.port};branch=z9hG4bK-stranger;rport`, 'Max-Forwards: 70', `From: <sip:+15550001111@${stranger.host}>;tag=s1`, `To: <sip:+14255550111@${gwHost}>`, `Call-ID: stranger-1@${stranger.host}`, 'CSeq: 1 INVITE', `Contact: <sip:${stranger.host}:${stranger.port}>`, 'Content-Length: 0', '', ''].join('\r\n'),
      gwHost,
      gwPort,
    );
    await stranger.waitFor((d) => d.text.startsWith('SIP/2.0 403'), 5000);
  } finally {
    await stranger.close();
  }

  await waitFor(() => h.gw.ctx.calls.size === 0, { timeoutMs: 5000, what: 'all calls ended' });
  await waitFor(async () => (await h.gw.ctx.media!.activeSessions()) === 0, { timeoutMs: 5000, what: 'rtpengine sessions deleted' });
  await waitFor(() => monitored.length >= 4, { timeoutMs: 3000, what: '4 CDR XADDs' });
  afterCalls = await h.scrape();
}, 90_000);

afterAll(async () => {
  monitor?.disconnect();
  await h?.close();
}, 30_000);

describe('/metrics after real calls', () => {
  it('calls attempted, answered and failed by SIP class, per tenant and direction; active calls back to 0', () => {
    const m = afterCalls;
    expect(m.sum('teamsgw_calls_attempted_total', { tenant: 'acme', direction: 'inbound' })).toBe(2);
    expect(m.sum('teamsgw_calls_attempted_total', { tenant: 'tiny', direction: 'inbound' })).toBe(1);
    expect(m.sum('teamsgw_calls_attempted_total', { tenant: 'acme', direction: 'outbound' })).toBe(1);
    expect(m.sum('teamsgw_calls_answered_total', { tenant: 'acme', direction: 'inbound' })).toBe(1);
    expect(m.sum('teamsgw_calls_answered_total', { tenant: 'acme', direction: 'outbound' })).toBe(1);
    expect(m.sum('teamsgw_calls_answered_total', { tenant: 'tiny' })).toBe(0);
    expect(m.sum('teamsgw_calls_failed_total', { tenant: 'acme', direction: 'inbound', class: '4xx' })).toBe(1);
    expect(m.sum('teamsgw_calls_failed_total', { tenant: 'tiny', direction: 'inbound', class: '4xx' })).toBe(1); // 487
    expect(m.sum('teamsgw_calls_failed_total', { class: '5xx' })).toBe(0);
    // During the ringing "tiny" call: one active call and one anchored media session.
    expect(midCall.value('teamsgw_active_calls', { tenant: 'tiny', direction: 'inbound' })).toBe(1);
    expect(midCall.value('teamsgw_media_sessions')).toBeGreaterThanOrEqual(1);
    for (const s of m.find('teamsgw_active_calls')) expect(s.value, JSON.stringify(s.labels)).toBe(0);
    expect(m.find('teamsgw_active_calls').length).toBeGreaterThanOrEqual(3);
    expect(m.value('teamsgw_media_sessions')).toBe(0);
  });

  it('setup latency histograms: INVITE→200 per direction', () => {
    const m = afterCalls;
    expect(m.value('teamsgw_setup_answer_seconds_count', { direction: 'inbound' })).toBe(1);
    expect(m.value('teamsgw_setup_answer_seconds_count', { direction: 'outbound' })).toBe(1);
    // Teams answered 150 ms after the 180: at least that, and well below the first bucket above 1 s.
    const sum = m.value('teamsgw_setup_answer_seconds_sum', { direction: 'inbound' });
    expect(sum).toBeGreaterThanOrEqual(0.15);
    expect(sum).toBeLessThan(2);
    expect(m.value('teamsgw_setup_answer_seconds_bucket', { direction: 'inbound', le: '+Inf' })).toBe(1);
    expect(m.value('teamsgw_setup_answer_seconds_bucket', { direction: 'inbound', le: '0.1' })).toBe(0);
  });

  it('admission rejections per tenant and reason', () => {
    expect(afterCalls.value('teamsgw_admission_rejections_total', { tenant: 'tiny', reason: 'concurrency' })).toBe(1);
    expect(afterCalls.sum('teamsgw_admission_rejections_total', { tenant: 'acme' })).toBe(0);
  });

  it('INVITEs refused before they became calls, by direction, carrier and reason (not counted as attempts)', () => {
    const m = afterCalls;
    expect(m.value('teamsgw_calls_rejected_total', { direction: 'inbound', carrier: 'carrier-a', reason: 'unallocated' })).toBe(1);
    expect(m.value('teamsgw_calls_rejected_total', { direction: 'outbound', carrier: '', reason: 'unknown-trunk' })).toBe(1);
    expect(m.value('teamsgw_calls_rejected_total', { direction: 'inbound', carrier: '', reason: 'unknown-source' })).toBe(1);
    expect(m.value('teamsgw_calls_rejected_total', { direction: 'inbound', carrier: 'carrier-a', reason: 'limit' })).toBe(1);
    expect(m.sum('teamsgw_calls_rejected_total')).toBe(4);
  });

  it('OPTIONS status and round-trip time per Teams proxy', () => {
    for (const p of h.ft.proxies) {
      expect(afterCalls.value('teamsgw_options_up', { target: p.host, kind: 'teams' })).toBe(1);
      expect(afterCalls.value('teamsgw_options_responses_total', { target: p.host, kind: 'teams', class: '2xx' })).toBeGreaterThanOrEqual(3);
      const count = afterCalls.value('teamsgw_options_rtt_seconds_count', { target: p.host, kind: 'teams' });
      expect(count).toBeGreaterThanOrEqual(3);
      const mean = afterCalls.value('teamsgw_options_rtt_seconds_sum', { target: p.host, kind: 'teams' }) / count;
      expect(mean).toBeGreaterThan(0);
      expect(mean).toBeLessThan(0.6); // the timeout
    }
  });

  it('rtpengine: up, command latency per instance and command, active media sessions', () => {
    const inst = h.rtpengine!.ngAddress;
    expect(afterCalls.value('teamsgw_rtpengine_up', { rtpengine: inst })).toBe(1);
    // 4 calls anchored: 4 offers; answers for the answered calls (and the early 18x none here).
    expect(afterCalls.value('teamsgw_rtpengine_command_seconds_count', { rtpengine: inst, command: 'offer' })).toBe(4);
    expect(afterCalls.value('teamsgw_rtpengine_command_seconds_count', { rtpengine: inst, command: 'answer' })).toBeGreaterThanOrEqual(2);
    expect(afterCalls.value('teamsgw_rtpengine_command_seconds_count', { rtpengine: inst, command: 'delete' })).toBe(4);
    expect(afterCalls.value('teamsgw_rtpengine_command_seconds_count', { rtpengine: inst, command: 'ping' })).toBeGreaterThan(0);
    expect(afterCalls.value('teamsgw_rtpengine_command_seconds_sum', { rtpengine: inst, command: 'offer' })).toBeGreaterThan(0);
    expect(afterCalls.sum('teamsgw_rtpengine_command_errors_total')).toBe(0);
  });

  it('Redis: command latency (admission) and health; tenant config version and reloads', () => {
    const m = afterCalls;
    // 4 admitted calls + 1 refused: 5 admits; 4 releases.
    expect(m.value('teamsgw_redis_command_seconds_count', { op: 'admit' })).toBe(5);
    expect(m.value('teamsgw_redis_command_seconds_count', { op: 'release' })).toBe(4);
    expect(m.value('teamsgw_redis_command_seconds_sum', { op: 'admit' })).toBeGreaterThan(0);
    expect(m.sum('teamsgw_redis_errors_total')).toBe(0);
    expect(m.value('teamsgw_redis_up')).toBe(1);
    expect(m.value('teamsgw_tenant_config_version')).toBe(tenantVersion);
    expect(tenantVersion).toBeGreaterThan(0);
    expect(m.value('teamsgw_tenant_config_reloads_total')).toBeGreaterThanOrEqual(0);
  });

  it("the SIP server's own drachtio_* metrics", () => {
    const m = afterCalls;
    // 4 carrier INVITEs + 1 Teams INVITE in; 3 INVITEs to Teams + 1 to the carrier target out.
    expect(m.value('drachtio_sip_requests_in_total', { method: 'INVITE' })).toBeGreaterThanOrEqual(5);
    expect(m.value('drachtio_sip_requests_out_total', { method: 'INVITE' })).toBeGreaterThanOrEqual(4);
    expect(m.value('drachtio_sip_requests_out_total', { method: 'OPTIONS' })).toBeGreaterThanOrEqual(9);
    expect(m.value('drachtio_sip_responses_out_total', { method: 'INVITE', code: '486' })).toBe(1);
    expect(m.value('drachtio_sip_responses_out_total', { method: 'INVITE', code: '503' })).toBe(1);
    expect(m.value('drachtio_sip_responses_out_total', { method: 'INVITE', code: '487' })).toBe(1);
    expect(m.value('drachtio_sip_responses_in_total', { method: 'INVITE', code: '200' })).toBe(2);
    expect(m.value('drachtio_build_info')).toBe(1);
    expect(m.value('drachtio_app_connections')).toBe(1);
    expect(m.value('drachtio_stable_dialogs')).toBe(0);
    expect(m.value('drachtio_time_started')).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(m.families.get('sofia_server_txns_total')).toBe('gauge');
    expect(m.families.get('drachtio_proxy_cores')).toBe('gauge');
  });

  it('Node process metrics and certificate expiry', () => {
    const m = afterCalls;
    expect(m.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(m.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(1_000_000);
    expect(m.families.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    const cert = new X509Certificate(readFileSync(h.ft.pki.sbc.server.certPath));
    const [s] = m.find('teamsgw_tls_certificate_expiry_timestamp_seconds');
    expect(s?.value).toBe(new Date(cert.validTo).getTime() / 1000);
    expect(s?.labels.subject).toContain('customers.example.net');
  });

  it('CDRs written: 4 to the log and 4 to the Redis stream', () => {
    expect(afterCalls.value('teamsgw_cdrs_written_total', { sink: 'log' })).toBe(4);
    expect(afterCalls.value('teamsgw_cdrs_written_total', { sink: 'redis' })).toBe(4);
  });
});

describe('CDRs in the Redis stream', () => {
  async function cdrs(): Promise<Map<string, Record<string, string>>> {
    const entries = (await h.redisClient!.xrange('tg:cdrs', '-', '+')) as [string, string[]][];
    const out = new Map<string, Record<string, string>>();
    for (const [, kv] of entries) {
      const o: Record<string, string> = {};
      for (let i = 0; i < kv.length; i += 2) o[kv[i]!] = kv[i + 1]!;
      out.set(o.callId!, o);
    }
    return out;
  }

  it('one entry per call attempt (answered, failed, cancelled) with times, tenant, status, who hung up and media stats', async () => {
    const all = await cdrs();
    expect(all.size).toBe(4);
    const a = all.get(ids.answered)!;
    expect(a).toBeDefined();
    expect(a).toMatchObject({ direction: 'inbound', tenant: 'acme', finalStatus: '200', hangupBy: 'caller' });
    expect(Date.parse(a.answerTime!)).toBeGreaterThanOrEqual(Date.parse(a.startTime!) + 150);
    expect(Date.parse(a.endTime!)).toBeGreaterThanOrEqual(Date.parse(a.answerTime!) + 300);
    expect(Number(a.durationSec)).toBeGreaterThanOrEqual(0.3);
    const media = JSON.parse(a.media!) as Record<string, number>;
    expect(Object.keys(media).length).toBeGreaterThan(0);

    const f = all.get(ids.failed)!;
    expect(f).toMatchObject({ direction: 'inbound', tenant: 'acme', finalStatus: '486', answerTime: '', durationSec: '0' });
    const c = all.get(ids.cancelled)!;
    expect(c).toMatchObject({ direction: 'inbound', tenant: 'tiny', finalStatus: '487', hangupBy: 'caller', answerTime: '' });
    const o = [...all.values()].find((x) => x.direction === 'outbound')!;
    expect(o).toMatchObject({ tenant: 'acme', finalStatus: '200', hangupBy: 'caller' });
    // The admission-refused call never became a call: no CDR for it.
    expect(all.has(ids.rejected)).toBe(false);
    for (const x of all.values()) {
      for (const k of ['callId', 'direction', 'tenant', 'carrier', 'from', 'to', 'startTime', 'answerTime', 'endTime', 'durationSec', 'finalStatus', 'hangupBy', 'teamsProxy', 'media']) expect(x, k).toHaveProperty(k);
      expect(Date.parse(x.endTime!)).toBeGreaterThanOrEqual(Date.parse(x.startTime!));
    }
  });

  it('the stream is length-bounded (XADD … MAXLEN ~ cdrStreamMaxLen)', () => {
    expect(monitored.length).toBe(4);
    for (const args of monitored) expect(args.slice(0, 5).map((x) => x.toLowerCase())).toEqual(['xadd', 'tg:cdrs', 'maxlen', '~', '100000']);
  });

  it('call flows record carrier, numbers, Teams proxy and first 18x (fields src/gateway sets on CallSession)', async () => {
    const all = await cdrs();
    const a = all.get(ids.answered)!;
    expect(a.carrier).toBe('carrier-a');
    expect(a.from).toBe('+14155550123');
    expect(a.to).toBe('+14255550111');
    expect(a.teamsProxy).toBe(h.ft.proxies[0]!.host);
    expect(all.get(ids.failed)!.teamsProxy).toBe(h.ft.proxies[0]!.host);
    const o = [...all.values()].find((x) => x.direction === 'outbound')!;
    expect(o.carrier).toBe('carrier-a');
    expect(o.from).toBe('+14255550100');
    expect(o.to).toBe('+14255550122');
    // The carrier label is taken when the call is counted as attempted (ctx.calls.add): outbound
    // must know its (first) carrier by then.
    expect(afterCalls.sum('teamsgw_calls_attempted_total', { carrier: 'carrier-a' })).toBe(4);
    expect(afterCalls.sum('teamsgw_calls_answered_total', { carrier: 'carrier-a' })).toBe(2);
    // 18x seen on the answered and the cancelled PSTN → Teams calls, and on the Teams → PSTN call.
    expect(afterCalls.value('teamsgw_setup_first_provisional_seconds_count', { direction: 'inbound' })).toBe(2);
    expect(afterCalls.value('teamsgw_setup_first_provisional_seconds_count', { direction: 'outbound' })).toBe(1);
  });
});

describe('/ready follows its dependencies', () => {
  it('is ready with SIP server, Redis tenant store and rtpengine available; /health always answers', async () => {
    const r = await getJson(`${h.opsUrl}/ready`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ready: true, checks: { sip: true, tenants: true, media: true, accepting: true } });
    expect((await fetch(`${h.opsUrl}/health`)).status).toBe(200);
  });

  it('flips when rtpengine goes away and comes back (rtpengine_up, command errors, calls refused with 503)', async () => {
    const inst = h.rtpengine!.ngAddress;
    await h.rtpengine!.kill();
    const down = await waitReady(h, false);
    expect(down.body.checks).toEqual({ sip: true, tenants: true, media: false, accepting: true });
    expect((await fetch(`${h.opsUrl}/health`)).status).toBe(200);
    const rej = await h.carrierCall({ scenario: 'carrier-call-reject', to: '+14255550113' });
    expect(finalStatus(rej)).toBe(503);
    let m = await h.scrape();
    expect(m.value('teamsgw_rtpengine_up', { rtpengine: inst })).toBe(0);
    expect(m.sum('teamsgw_rtpengine_command_errors_total', { rtpengine: inst, command: 'ping', outcome: 'timeout' })).toBeGreaterThanOrEqual(1);
    expect(m.value('teamsgw_media_unavailable_total')).toBe(1);
    expect(m.sum('teamsgw_calls_failed_total', { tenant: 'acme', class: '5xx' })).toBe(1);

    await h.rtpengine!.restart();
    const up = await waitReady(h, true);
    expect(up.body.checks).toEqual({ sip: true, tenants: true, media: true, accepting: true });
    m = await h.scrape();
    expect(m.value('teamsgw_rtpengine_up', { rtpengine: inst })).toBe(1);
  }, 30_000);

  it('flips when Redis goes away and comes back (redis_up, redis errors)', async () => {
    monitor?.disconnect();
    monitor = undefined;
    await h.redis!.kill();
    const down = await waitReady(h, false);
    expect(down.body.checks).toEqual({ sip: true, tenants: false, media: true, accepting: true });
    let m = await h.scrape();
    expect(m.value('teamsgw_redis_up')).toBe(0);
    expect(m.sum('teamsgw_redis_errors_total')).toBeGreaterThanOrEqual(1);
    const status = await getJson(`${h.opsUrl}/status`);
    expect(status.body.tenantStore).toBe('degraded');

    // Redis back (persisted dataset): the store reconnects and serves the same version.
    await h.redis!.restart();
    await waitReady(h, true, 10_000);
    m = await h.scrape();
    expect(m.value('teamsgw_redis_up')).toBe(1);
    expect(m.value('teamsgw_tenant_config_version')).toBe(tenantVersion);
  }, 30_000);
});
