/**
 * Carrier health (issue 6): optional OPTIONS to carrier targets; a target failing them is marked
 * down (metric, status) and skipped in Teams → PSTN routing; it comes back when it answers again.
 * Slot 5 addresses (127.0.8.201…).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrierTargets } from '../../../src/gateway/outbound.js';
import { SipRequest, parseMessage } from '../../../src/sip/message/index.js';
import { createResponse } from '../../../src/sip/transaction/response.js';
import { UdpPeer, waitFor } from '../../helpers/net.js';
import { type OpsHarness, startOpsHarness } from './harness.js';

let h: OpsHarness;
beforeAll(async () => {
  h = await startOpsHarness({
    slot: 5,
    media: false,
    config: { ops: { carrierOptionsIntervalSec: 0.3, optionsFailuresBeforeDown: 2, optionsTimeoutMs: 400 } },
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

describe('carrier target health checks', () => {
  it('mark a silent target down (metric, skipped in routing) and bring it back when it answers', async () => {
    const name = `${h.addr.target}:5060`;
    const acme = h.gw.ctx.tenants.get('acme')!;
    // Nothing listens at the target: two failed OPTIONS → down.
    await waitFor(() => h.gw.ctx.carrierDown.has(name) || undefined, { timeoutMs: 5000, what: 'target marked down' });
    let m = await h.scrape();
    expect(m.value('teamsgw_options_up', { target: name, kind: 'carrier' })).toBe(0);
    expect(m.sum('teamsgw_options_responses_total', { target: name, kind: 'carrier', class: 'timeout' })).toBeGreaterThanOrEqual(2);

    // Routing skips a down target, unless no other target is left (then it is still tried).
    const fakeCtx = { ...h.gw.ctx, carrierDown: new Set([name, 'other:5060']) };
    const withSpare = { ...acme, trunks: [...acme.trunks] };
    expect(carrierTargets(fakeCtx, withSpare).map((t) => `${t.target.host}:${t.target.port}`)).toEqual([name]);
    const twoTargets = { ...h.gw.ctx, tenants: { ...h.gw.ctx.tenants, carrier: () => ({ ...h.gw.ctx.tenants.carrier('carrier-a')!, targets: [{ host: 'other', port: 5060, transport: 'udp' as const, priority: 5 }, { host: h.addr.target, port: 5060, transport: 'udp' as const, priority: 10 }] }) } };
    const ordered = carrierTargets({ ...twoTargets, carrierDown: new Set(['other:5060']) } as typeof h.gw.ctx, acme);
    expect(ordered.map((t) => t.target.host)).toEqual([h.addr.target]);

    // The target starts answering OPTIONS (a minimal UDP responder): up again at the first success.
    const target = await UdpPeer.bind(h.addr.target, 5060);
    target.socket.on('message', (data, rinfo) => {
      const req = parseMessage(data);
      if (!(req instanceof SipRequest) || req.method !== 'OPTIONS') return;
      void target.send(createResponse(req, 200, 'OK', 'tgt').toBuffer(), rinfo.address, rinfo.port);
    });
    try {
      await waitFor(() => (!h.gw.ctx.carrierDown.has(name) ? true : undefined), { timeoutMs: 5000, what: 'target up again' });
      m = await h.scrape();
      expect(m.value('teamsgw_options_up', { target: name, kind: 'carrier' })).toBe(1);
      expect(m.sum('teamsgw_options_responses_total', { target: name, kind: 'carrier', class: '2xx' })).toBeGreaterThanOrEqual(1);
    } finally {
      await target.close();
    }
  }, 30_000);
});
