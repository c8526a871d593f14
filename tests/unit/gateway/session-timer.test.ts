/**
 * The per-leg RFC 4028 session timer (src/gateway/session-timer.ts) on a FakeClock, and the
 * pure negotiation rules of the carrier leg (src/gateway/carrier-session-timer.ts). The SIP flows
 * themselves are tested end to end in tests/sipp/gateway/carrier-session-timer.test.ts.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { carrierInviteHeaders, headersAfter422, negotiateCarrierUac, negotiateCarrierUas, sameSdp, sameSession } from '../../../src/gateway/carrier-session-timer.js';
import { SessionTimer, expiryDelayMs, refreshDelayMs } from '../../../src/gateway/session-timer.js';
import { FakeClock } from '../../../src/util/clock.js';

const log = pino({ level: 'silent' });

function timer() {
  const clock = new FakeClock();
  const fired = { refresh: 0, expired: 0 };
  const st = new SessionTimer({ leg: 'carrier', log, peerIsUac: true, clock, onRefreshDue: () => fired.refresh++, onExpired: () => fired.expired++ });
  return { clock, fired, st };
}

/** The part of a drachtio-srf message the negotiation reads. */
function msg(headers: Record<string, string>) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { has: (n: string) => n.toLowerCase() in h, get: (n: string) => h[n.toLowerCase()] };
}

const policy = { enabled: true, sessionExpires: 1800, minSeconds: 90 };

describe('SessionTimer (RFC 4028 §10)', () => {
  it('the refresher fires at half the interval; the other side expires at interval - min(32, interval/3)', () => {
    expect(refreshDelayMs(1800)).toBe(900_000);
    expect(expiryDelayMs(1800)).toBe(1_768_000);
    expect(expiryDelayMs(90)).toBe(60_000);
    const { clock, fired, st } = timer();
    st.start(90, true);
    expect(st.state).toBe('refresher');
    clock.advance(44_999);
    expect(fired.refresh).toBe(0);
    clock.advance(1);
    expect([fired.refresh, st.state]).toEqual([1, 'refreshing']);
    st.start(90, false);
    clock.advance(59_999);
    expect(fired.expired).toBe(0);
    clock.advance(1);
    expect([fired.expired, st.state]).toEqual([1, 'expired']);
  });

  it('a refresh restarts the running timer; retry() fires the refresh again soon, with a new interval if given', () => {
    const { clock, fired, st } = timer();
    st.start(90, false);
    clock.advance(50_000);
    st.start(90, false); // the peer refreshed
    clock.advance(50_000);
    expect(fired.expired).toBe(0);
    st.start(120, true);
    clock.advance(60_000);
    expect(fired.refresh).toBe(1);
    st.retry(500, 240);
    expect([st.state, st.interval]).toEqual(['refresher', 240]);
    clock.advance(500);
    expect(fired.refresh).toBe(2);
  });

  it('close() is idempotent and stops everything; nothing starts again after close or expiry', () => {
    const { clock, fired, st } = timer();
    st.start(90, true);
    st.close();
    st.close();
    expect(st.closed).toBe(true);
    st.start(90, false);
    st.retry(0);
    clock.advance(200_000);
    expect(fired).toEqual({ refresh: 0, expired: 0 });
    expect(clock.pending).toBe(0);
    const t = timer();
    t.st.start(3, false);
    t.clock.advance(3000);
    t.st.start(3, false); // a late refresh cannot revive an expired session
    expect(t.st.state).toBe('expired');
    t.st.close();
    expect(t.st.state).toBe('closed');
  });

  it('the transition table: only the waiting side expires, and nothing leaves closed', () => {
    const states = Object.keys(SessionTimer.edges) as (keyof typeof SessionTimer.edges)[];
    for (const from of states) for (const to of SessionTimer.edges[from]) expect(states).toContain(to);
    expect(states.filter((s) => (SessionTimer.edges[s] as readonly string[]).includes('expired'))).toEqual(['watching']);
    expect(SessionTimer.edges.closed).toEqual([]);
    // The refresher's own timer firing never ends the call: it asks for a refresh.
    const { st, clock, fired } = timer();
    st.start(4, true);
    clock.advance(10_000);
    expect([st.state, fired.expired]).toEqual(['refreshing', 0]);
  });
});

describe('carrier INVITE (RFC 4028 §9)', () => {
  it('an interval below our minimum is refused with 422 and our Min-SE, only from a carrier that supports timers', () => {
    expect(negotiateCarrierUas(msg({ Supported: 'timer', 'Session-Expires': '60' }), policy)).toEqual({ kind: 'reject', headers: { 'Min-SE': '90' } });
    // A proxy's value, the carrier without timer support: raised to our minimum instead.
    const v = negotiateCarrierUas(msg({ 'Session-Expires': '60;refresher=uac' }), policy);
    expect(v).toMatchObject({ kind: 'accept', headers: { 'Session-Expires': '90;refresher=uas' }, plan: { interval: 90, weRefresh: true, peerSupportsTimer: false } });
    expect(v.kind === 'accept' && 'Require' in v.headers).toBe(false);
  });

  it("the carrier's refresher choice stands; without one the gateway refreshes; Require: timer toward a carrier that supports it", () => {
    expect(negotiateCarrierUas(msg({ Supported: '100rel, timer', 'Session-Expires': '600;refresher=uac', Allow: 'INVITE, UPDATE' }), policy)).toEqual({
      kind: 'accept',
      headers: { 'Session-Expires': '600;refresher=uac', Require: 'timer' },
      plan: { interval: 600, weRefresh: false, peerSupportsTimer: true, useUpdate: true, peerIsUac: true },
    });
    expect(negotiateCarrierUas(msg({ Supported: 'timer', 'Session-Expires': '600' }), policy)).toMatchObject({ headers: { 'Session-Expires': '600;refresher=uas', Require: 'timer' }, plan: { weRefresh: true, useUpdate: false } });
    // Supported: timer without Session-Expires: the UAS may ask for one (ours).
    expect(negotiateCarrierUas(msg({ Supported: 'timer' }), policy)).toMatchObject({ headers: { 'Session-Expires': '1800;refresher=uas' } });
    // Compact form of Session-Expires (drachtio-srf expands only the RFC 3261 compact forms).
    expect(negotiateCarrierUas(msg({ Supported: 'timer', x: '300;refresher=uac' }), policy)).toMatchObject({ plan: { interval: 300, weRefresh: false } });
  });

  it('a longer interval is reduced to ours, never below the Min-SE of the request; off means no timer', () => {
    expect(negotiateCarrierUas(msg({ Supported: 'timer', 'Session-Expires': '7200' }), policy)).toMatchObject({ plan: { interval: 1800 } });
    expect(negotiateCarrierUas(msg({ Supported: 'timer', 'Session-Expires': '7200', 'Min-SE': '3600' }), policy)).toMatchObject({ plan: { interval: 3600 } });
    expect(negotiateCarrierUas(msg({ Supported: 'timer', 'Session-Expires': '60' }), { ...policy, enabled: false })).toEqual({ kind: 'off' });
  });
});

describe('INVITE to a carrier (RFC 4028 §7)', () => {
  it('offers Session-Expires without refresher and Min-SE; a 422 with a larger Min-SE is retried with it', () => {
    expect(carrierInviteHeaders(policy)).toEqual({ 'Session-Expires': '1800', 'Min-SE': '90' });
    expect(carrierInviteHeaders({ ...policy, enabled: false })).toBeUndefined();
    expect(headersAfter422(msg({ 'Min-SE': '3600' }), policy, 1800)).toEqual({ 'Session-Expires': '3600', 'Min-SE': '3600' });
    // No Min-SE, or one we already met: nothing to retry with.
    expect(headersAfter422(msg({}), policy, 1800)).toBeUndefined();
    expect(headersAfter422(msg({ 'Min-SE': '900' }), policy, 1800)).toBeUndefined();
  });

  it("the carrier's 2xx sets interval and refresher; without Session-Expires the gateway refreshes at what it offered", () => {
    expect(negotiateCarrierUac(msg({ 'Session-Expires': '600;refresher=uac', Require: 'timer', Allow: 'INVITE,UPDATE' }), policy, 1800)).toEqual({
      interval: 600,
      weRefresh: true,
      peerSupportsTimer: true,
      useUpdate: true,
      peerIsUac: false,
    });
    expect(negotiateCarrierUac(msg({ 'Session-Expires': '600;refresher=uas' }), policy, 1800)).toMatchObject({ weRefresh: false });
    expect(negotiateCarrierUac(msg({}), policy, 1800)).toEqual({ interval: 1800, weRefresh: true, peerSupportsTimer: false, useUpdate: false, peerIsUac: false });
  });
});

describe('sameSdp', () => {
  it('ignores line endings and blank lines only', () => {
    expect(sameSdp('v=0\r\no=a 1 1 IN IP4 x\r\n', 'v=0\no=a 1 1 IN IP4 x\n\n')).toBe(true);
    expect(sameSdp('v=0\r\no=a 1 1 IN IP4 x\r\n', 'v=0\r\no=a 1 2 IN IP4 x\r\n')).toBe(false);
    expect(sameSdp(undefined, 'v=0')).toBe(false);
  });
});

describe('sameSession', () => {
  const sdp = (version: string, port = 4000, origin = 'o=- 77 VER IN IP4 192.0.2.1') =>
    ['v=0', origin.replace('VER', version), 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=sendrecv', ''].join('\r\n');
  it('ignores the o= <sess-version> (and line endings), nothing else', () => {
    expect(sameSession(sdp('1'), sdp('1'))).toBe(true);
    expect(sameSession(sdp('1'), sdp('2').replace(/\r\n/g, '\n'))).toBe(true);
    expect(sameSdp(sdp('1'), sdp('2'))).toBe(false);
    expect(sameSession(sdp('1'), sdp('2', 4002))).toBe(false); // media moved
    expect(sameSession(sdp('1'), sdp('1', 4000, 'o=- 78 VER IN IP4 192.0.2.1'))).toBe(false); // another session id
    expect(sameSession(sdp('1'), sdp('1', 4000, 'o=- 77 VER IN IP4 192.0.2.9'))).toBe(false); // another origin address
    expect(sameSession(sdp('1'), sdp('1').replace('a=sendrecv', 'a=inactive'))).toBe(false); // hold
    expect(sameSession(undefined, sdp('1'))).toBe(false);
  });
});
