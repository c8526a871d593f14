/**
 * OPTIONS toward Teams (issue 6; teams-direct-routing.md §3): cadence and Contact as the fake
 * Teams records them, per-tenant OPTIONS following live tenant changes, and health verdicts
 * that reorder the proxies for the next PSTN → Teams call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { step } from '../../helpers/fake-teams/index.js';
import { waitFor } from '../../helpers/net.js';
import { sippReport } from '../../helpers/sipp.js';
import { BASE_DOMAIN, DEFAULT_TENANTS, type OpsHarness, getJson, startOpsHarness } from './harness.js';

const INTERVAL = 0.3;
let h: OpsHarness;

beforeAll(async () => {
  h = await startOpsHarness({ slot: 0 });
}, 60_000);
afterAll(async () => h?.close(), 30_000);

const contactOf = (fqdn: string) => `<sip:${fqdn}:5061;transport=tls>`;

describe('OPTIONS to the Teams proxies', () => {
  it('go to sip, sip2 and sip3 every optionsIntervalSec over TLS with the carrier trunk FQDN as Contact', async () => {
    await waitFor(() => (['sip', 'sip2', 'sip3'] as const).every((e) => h.ft.options.filter((o) => o.endpoint === e).length >= 7), {
      timeoutMs: 6000,
      what: '7 OPTIONS per proxy',
    });
    for (const e of ['sip', 'sip2', 'sip3'] as const) {
      const recs = h.ft.options.filter((o) => o.endpoint === e);
      const fqdn = h.ft.endpoints[e].fqdn;
      for (const o of recs) {
        expect(o.contact).toBe(contactOf(BASE_DOMAIN));
        expect(o.requestUri).toBe(`sip:${fqdn}:5061;transport=tls`);
        expect(o.from).toMatch(new RegExp(`^<sip:${BASE_DOMAIN.replace(/\./g, '\\.')}:5061>;tag=`));
        expect(o.to).toMatch(new RegExp(`^<sip:${fqdn.replace(/\./g, '\\.')}:5061>`));
        expect(o.status).toBe(200);
      }
      // Cadence: every interval close to the configured 0.3 s (timer jitter only), none skipped.
      // The first one is shorter: the first OPTIONS waited for the TLS connection.
      const iv = h.ft.optionsIntervals(e).slice(1);
      expect(iv.length).toBeGreaterThanOrEqual(5);
      for (const x of iv) {
        expect(x).toBeGreaterThan(INTERVAL - 0.1);
        expect(x).toBeLessThan(INTERVAL + 0.15);
      }
      const mean = iv.reduce((a, b) => a + b, 0) / iv.length;
      expect(Math.abs(mean - INTERVAL)).toBeLessThan(0.05);
    }
    // X-MS-SBC on every OPTIONS (§3.2 / §4), and no MUST violation on any of them.
    const opts = h.ft.requests('OPTIONS');
    expect(opts.every((r) => r.get('x-ms-sbc') === 'TestVendor/teams-dr-gateway/0.0.0-ops')).toBe(true);
    expect(h.ft.violations.filter((v) => v.method === 'OPTIONS')).toEqual([]);
    // They arrive over mutual TLS: the connections carry the gateway's client certificate.
    const conns = h.ft.connections().filter((c) => c.direction === 'inbound');
    expect(conns.length).toBeGreaterThanOrEqual(3);
    const m = await h.scrape();
    for (const e of ['sip', 'sip2', 'sip3'] as const) {
      const target = h.ft.endpoints[e].fqdn;
      expect(m.value('teamsgw_options_up', { target, kind: 'teams' })).toBe(1);
      expect(m.value('teamsgw_options_responses_total', { target, kind: 'teams', class: '2xx' })).toBeGreaterThanOrEqual(7);
      expect(m.value('teamsgw_options_rtt_seconds_count', { target, kind: 'teams' })).toBeGreaterThanOrEqual(7);
      expect(m.value('teamsgw_options_rtt_seconds_sum', { target, kind: 'teams' })).toBeGreaterThan(0);
    }
  }, 20_000);

  it('add per-tenant OPTIONS (Contact = tenant FQDN) with optionsPerTenant, and follow tenant changes live', async () => {
    await h.restart({ ops: { optionsPerTenant: true } });
    const contactsSince = (at: number, e: 'sip' | 'sip2' | 'sip3') => new Set(h.ft.options.filter((o) => o.at >= at && o.endpoint === e).map((o) => o.contact));
    let t0 = Date.now();
    const want1 = new Set([contactOf(BASE_DOMAIN), contactOf(`acme.${BASE_DOMAIN}`), contactOf(`tiny.${BASE_DOMAIN}`)]);
    await waitFor(() => (['sip', 'sip2', 'sip3'] as const).every((e) => contactsSince(t0, e).size === 3), { timeoutMs: 4000, what: 'per-tenant OPTIONS' });
    for (const e of ['sip', 'sip2', 'sip3'] as const) expect(contactsSince(t0, e)).toEqual(want1);
    // Per tenant FQDN, the cadence holds as well.
    const acme = h.ft.options.filter((o) => o.at >= t0 && o.endpoint === 'sip' && o.contact === contactOf(`acme.${BASE_DOMAIN}`));
    await waitFor(() => h.ft.options.filter((o) => o.at >= t0 && o.endpoint === 'sip' && o.contact === contactOf(`acme.${BASE_DOMAIN}`)).length >= 4, { timeoutMs: 3000 });
    void acme;
    const at = h.ft.options.filter((o) => o.at >= t0 && o.endpoint === 'sip' && o.contact === contactOf(`acme.${BASE_DOMAIN}`)).map((o) => o.at);
    for (let i = 1; i < at.length; i++) expect((at[i]! - at[i - 1]!) / 1000).toBeLessThan(INTERVAL + 0.15);

    // Live change: tenant "newco" added, "tiny" removed, "acme" disabled (a disabled tenant gets no OPTIONS).
    const before = await h.scrape();
    const version = await h.setTenants([{ ...DEFAULT_TENANTS[0]!, enabled: false }, { id: 'newco', dids: ['+14255550700-+14255550799'] }]);
    t0 = Date.now() + 50; // a round already under way may still use the old list
    const want2 = new Set([contactOf(BASE_DOMAIN), contactOf(`newco.${BASE_DOMAIN}`)]);
    await waitFor(() => contactsSince(t0, 'sip').size >= 2 && h.ft.options.filter((o) => o.at >= t0).length >= 12, { timeoutMs: 4000, what: 'OPTIONS after reload' });
    for (const e of ['sip', 'sip2', 'sip3'] as const) expect(contactsSince(t0, e)).toEqual(want2);
    const after = await h.scrape();
    expect(after.value('teamsgw_tenant_config_version')).toBe(version);
    expect(after.value('teamsgw_tenant_config_version')).toBeGreaterThan(before.value('teamsgw_tenant_config_version'));
    expect(after.value('teamsgw_tenant_config_reloads_total')).toBe(before.value('teamsgw_tenant_config_reloads_total') + 1);
    // Restore the fixture for the next test.
    await h.setTenants(DEFAULT_TENANTS);
    await h.restart({ ops: { optionsPerTenant: false } });
  }, 30_000);
});

describe('OPTIONS from Teams', () => {
  it('Teams\' own OPTIONS to the carrier trunk and a tenant FQDN (new TLS connection, §3.1) get 200 with Allow and Contact = that FQDN', async () => {
    for (const fqdn of [BASE_DOMAIN, `acme.${BASE_DOMAIN}`]) {
      const res = await h.ft.sendOptions({ to: fqdn, port: 5061, from: 'sip2' });
      expect(res.status).toBe(200);
      expect(res.get('allow')).toMatch(/INVITE/);
      expect(res.get('allow')).toMatch(/OPTIONS/);
      expect(res.getAll('contact')[0]).toBe(`<sip:${fqdn}:5061;transport=tls>`);
    }
  });
});

describe('health verdicts drive routing', () => {
  const proxyUp = async (host: string) => ((await getJson(`${h.opsUrl}/status`)).body.teamsProxies as { host: string; up: boolean }[]).find((p) => p.host === host)?.up;

  async function callOnce(): Promise<string> {
    const n = h.ft.calls.length;
    h.ft.clearScripts();
    h.ft.script([step.ringing(0), step.answer(50)], { times: 1 });
    const r = await h.carrierCall({ scenario: 'carrier-call-bye', to: '+14255550111', pauseMs: 100 });
    expect(r.exitCode, sippReport(r)).toBe(0);
    expect(h.ft.calls.length).toBe(n + 1);
    await waitFor(() => h.gw.ctx.calls.size === 0, { timeoutMs: 3000, what: 'call gone' });
    return h.ft.calls.at(-1)!.endpoint;
  }

  it('sip stops answering OPTIONS → marked down → the next call goes to sip2 first; sip answers again → back to sip', async () => {
    const sip = h.ft.endpoints.sip.fqdn;
    expect(await callOnce()).toBe('sip');

    h.ft.setOptionsReply(null, 'sip');
    const silentSince = Date.now();
    await waitFor(async () => (await proxyUp(sip)) === false, { timeoutMs: 5000, what: 'sip marked down' });
    // Two silent rounds (optionsFailuresBeforeDown = 2, timeout 0.6 s) before the verdict.
    expect(Date.now() - silentSince).toBeGreaterThanOrEqual(600);
    let m = await h.scrape();
    expect(m.value('teamsgw_options_up', { target: sip, kind: 'teams' })).toBe(0);
    expect(m.value('teamsgw_options_responses_total', { target: sip, kind: 'teams', class: 'timeout' })).toBeGreaterThanOrEqual(2);
    expect(m.value('teamsgw_options_up', { target: h.ft.endpoints.sip2.fqdn, kind: 'teams' })).toBe(1);

    const invitesToSip = h.ft.requests('INVITE', 'sip').length;
    expect(await callOnce()).toBe('sip2');
    expect(h.ft.requests('INVITE', 'sip').length).toBe(invitesToSip); // sip was not even tried

    h.ft.setOptionsReply(200, 'sip');
    await waitFor(async () => (await proxyUp(sip)) === true, { timeoutMs: 5000, what: 'sip up again' });
    m = await h.scrape();
    expect(m.value('teamsgw_options_up', { target: sip, kind: 'teams' })).toBe(1);
    expect(await callOnce()).toBe('sip');
    expect(h.ft.violations).toEqual([]);
  }, 40_000);

  it('per-tenant OPTIONS that Teams refuses (403: a tenant FQDN it has no trunk for yet) are no proxy failure: every proxy stays up and calls keep going to sip', async () => {
    await h.restart({ ops: { optionsPerTenant: true } });
    const refused = [`acme.${BASE_DOMAIN}`, `tiny.${BASE_DOMAIN}`];
    for (const f of refused) h.ft.setOptionsReplyFor(f, 403);
    try {
      const t0 = Date.now();
      // Several rounds: each refuses two FQDNs per proxy (optionsFailuresBeforeDown = 2).
      await waitFor(() => h.ft.options.filter((o) => o.at >= t0 && o.status === 403).length >= 2 * 3 * 4, { timeoutMs: 5000, what: '4 rounds of refused per-tenant OPTIONS' });
      expect(h.ft.options.filter((o) => o.at >= t0 && o.status === 200 && o.contact === contactOf(BASE_DOMAIN)).length).toBeGreaterThanOrEqual(3 * 4);
      const m = await h.scrape();
      for (const e of ['sip', 'sip2', 'sip3'] as const) {
        const target = h.ft.endpoints[e].fqdn;
        expect(await proxyUp(target)).toBe(true);
        expect(m.value('teamsgw_options_up', { target, kind: 'teams' })).toBe(1);
        expect(m.value('teamsgw_options_responses_total', { target, kind: 'teams', class: '4xx' })).toBeGreaterThanOrEqual(8);
      }
      expect(await callOnce()).toBe('sip');
    } finally {
      for (const f of refused) h.ft.setOptionsReplyFor(f, undefined);
      await h.restart({ ops: { optionsPerTenant: false } });
    }
  }, 30_000);

  it('a refused TLS connection (sip3 down) is a failure too, and recovery follows the listener', async () => {
    const sip3 = h.ft.endpoints.sip3.fqdn;
    // Closing the listener waits for open connections: reset them so the refusal is immediate.
    const down = h.ft.setMode('sip3', 'down');
    h.ft.dropConnections({ endpoint: 'sip3' });
    await down;
    await waitFor(async () => (await proxyUp(sip3)) === false, { timeoutMs: 5000, what: 'sip3 marked down' });
    expect((await h.scrape()).value('teamsgw_options_up', { target: sip3, kind: 'teams' })).toBe(0);
    await h.ft.setMode('sip3', 'up');
    await waitFor(async () => (await proxyUp(sip3)) === true, { timeoutMs: 8000, what: 'sip3 up again' });
    expect((await h.scrape()).value('teamsgw_options_up', { target: sip3, kind: 'teams' })).toBe(1);
  }, 20_000);
});
