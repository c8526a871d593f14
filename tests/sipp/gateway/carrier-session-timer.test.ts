/**
 * RFC 4028 session timers on the carrier leg (src/gateway/carrier-session-timer.ts), run
 * independently of the Teams leg's: SIPp plays the carrier (a UAC for PSTN → Teams, a target
 * UAS for Teams → PSTN), the fake Teams the other side, with rtpengine and the real gateway.
 * `minSeconds` is lowered through `h.gw.ctx.features` so that timers fire within seconds. After
 * every test the harness asserts no live call, rtpengine session or dialog is left.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type InboundCall, step } from '../../helpers/fake-teams/index.js';
import { sleep, waitFor } from '../../helpers/net.js';
import type { SippProcess, SippResult } from '../../helpers/sipp.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { type CarrierCallOptions, carrierCall, carrierCallAsync, expectSippOk, header, received, startTarget } from './sipp-gateway.js';

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness();
});
afterEach(async (c) => {
  if (process.env.GW_DEBUG && c.task.result?.state === 'fail') console.log(h.logs.filter((l) => Number(l.time) > Date.now() - 8000).map((l) => JSON.stringify(l)).join('\n'));
  h.gw.ctx.features = undefined;
  await h.afterEach();
});
afterAll(async () => h.close());

const C = CARRIER_IPS[8];
const [T1] = TARGET_IPS;
const ACME = 'acme.customers.example.net';
const ALLOW_UPDATE = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE';
const ALLOW_NO_UPDATE = 'INVITE, ACK, CANCEL, BYE, OPTIONS';

/** Carrier-leg timers that fire within seconds (RFC 4028's own floor is 90 s; the schema keeps it). */
function fastCarrierTimers(o: { sessionExpires?: number; minSeconds?: number } = {}): void {
  h.gw.ctx.features = { carrierSessionTimer: { enabled: true, sessionExpires: o.sessionExpires ?? 1800, minSeconds: o.minSeconds ?? 2 } };
}

function carrierKeys(o: { supported?: string; sessionExpires: string; allow?: string; answer?: string }) {
  return { supported: o.supported ?? 'timer', session_expires: o.sessionExpires, allow: o.allow ?? ALLOW_UPDATE, session_expires_answer: o.answer ?? `${parseInt(o.sessionExpires, 10)};refresher=uac` };
}

interface TimedMessage {
  at: number;
  direction: 'sent' | 'received';
  firstLine: string;
  text: string;
}

/** SIPp's -trace_msg log with the time of each message (its separator lines carry it). */
function timeline(r: SippResult): TimedMessage[] {
  const out: TimedMessage[] = [];
  for (const part of r.messageLog.split(/^(?=-{20,} \d{4}-\d\d-\d\d )/m)) {
    const m = /^-{20,} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{3})\d*\s*\n\S+ message (received|sent) [^\n]*\n+([\s\S]*)$/.exec(part);
    if (!m) continue;
    const text = m[5]!.replace(/\n+$/, '\n');
    out.push({ at: new Date(`${m[1]}T${m[2]}.${m[3]}`).getTime(), direction: m[4] as 'sent' | 'received', firstLine: (text.split(/\r?\n/)[0] ?? '').trim(), text });
  }
  return out;
}

function find(t: TimedMessage[], direction: 'sent' | 'received', startLine: RegExp, cseq?: RegExp): TimedMessage[] {
  return t.filter((x) => x.direction === direction && startLine.test(x.firstLine) && (!cseq || cseq.test(header(x.text, 'CSeq') ?? '')));
}

/** A carrier → Teams call that Teams answers, with fast carrier timers: the running SIPp carrier and Teams' side of the call. */
async function answeredCarrierCall(o: CarrierCallOptions): Promise<{ sipp: SippProcess; call: InboundCall }> {
  fastCarrierTimers();
  h.ft.script([step.answer(20)]);
  const mark = h.ft.calls.length;
  const sipp = await carrierCallAsync(o);
  return { sipp, call: await h.nextCall(mark) };
}

/** Waits for SIPp to play its scenario through without error; its messages with their times. */
async function finishedTimeline(sipp: SippProcess): Promise<TimedMessage[]> {
  const r = await sipp.done;
  expectSippOk(r);
  return timeline(r);
}

const originLine = (text: string) => /^o=.*$/m.exec(text)?.[0]?.trim();
const audioPort = (text: string) => /^m=audio (\d+)/m.exec(text)?.[1];

describe('PSTN → Teams: the carrier INVITE asks for a session timer (RFC 4028 §9)', () => {
  it('refresher=uac: the 2xx keeps it with Require: timer; the carrier refreshes with a re-INVITE and an UPDATE past the interval, and Teams sees neither', async () => {
    const { sipp, call } = await answeredCarrierCall({ scenario: 'carrier-timer-refresh.xml', from: C, to: '+14255550160', pauseMs: 1500, keys: carrierKeys({ sessionExpires: '4;refresher=uac' }), timeoutMs: 20_000 });
    const t = await finishedTimeline(sipp);
    const ok1 = find(t, 'received', /^SIP\/2\.0 200/, /^1 INVITE/)[0]!;
    expect(header(ok1.text, 'Session-Expires')).toBe('4;refresher=uac');
    expect(header(ok1.text, 'Require')).toBe('timer');
    // The refresh re-INVITE carried the carrier's SDP unchanged: answered with the SDP it already had.
    const ok2 = find(t, 'received', /^SIP\/2\.0 200/, /^2 INVITE/)[0]!;
    expect(header(ok2.text, 'Session-Expires')).toBe('4;refresher=uac');
    expect(originLine(ok2.text)).toBe(originLine(ok1.text));
    expect(audioPort(ok2.text)).toBe(audioPort(ok1.text));
    const ok3 = find(t, 'received', /^SIP\/2\.0 200/, /^3 UPDATE/)[0]!;
    expect(header(ok3.text, 'Session-Expires')).toBe('4;refresher=uac');
    // The call outlived the interval (4 s) and the first expiry (about 2.7 s after the answer).
    const bye = find(t, 'sent', /^BYE /)[0]!;
    expect(bye.at - ok1.at).toBeGreaterThan(4000);
    expect(find(t, 'received', /^BYE /)).toHaveLength(0);
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    expect(call.endedBy).toBe('sbc');
    // Refreshes stay on their leg.
    expect(call.requests.items.filter((q) => q.method === 'INVITE' || q.method === 'UPDATE')).toHaveLength(0);
    expect(h.ft.violations).toEqual([]);
  });

  it('the carrier never refreshes: after interval - interval/3 both legs get a BYE and the rtpengine session is deleted', async () => {
    const carrierExpiries = async (): Promise<number> =>
      (await h.gw.ops.metrics.sessionTimerEnds.get()).values.filter((v) => v.labels.leg === 'carrier' && v.labels.outcome === 'session_expired').reduce((n, v) => n + v.value, 0);
    const expiriesBefore = await carrierExpiries();
    const logMark = h.logs.length;
    const { sipp, call } = await answeredCarrierCall({ scenario: 'carrier-timer-wait-bye.xml', from: C, to: '+14255550161', keys: carrierKeys({ sessionExpires: '3;refresher=uac' }) });
    await call.waitForAck();
    const t0 = Date.now();
    await waitFor(() => call.ended, { timeoutMs: 6000, what: 'BYE from the gateway to Teams' });
    expect(call.endedBy).toBe('sbc');
    const t = await finishedTimeline(sipp); // the carrier got its BYE
    const ok = find(t, 'received', /^SIP\/2\.0 200/, /^1 INVITE/)[0]!;
    expect(header(ok.text, 'Session-Expires')).toBe('3;refresher=uac');
    const bye = find(t, 'received', /^BYE /)[0]!;
    // RFC 3326: both BYEs say why.
    expect(header(bye.text, 'Reason')).toBe('SIP;cause=408;text="Session expired: no refresh from the carrier"');
    expect(call.requests.items.find((q) => q.method === 'BYE')?.get('reason')).toBe('SIP;cause=408;text="Session expired: no refresh from the carrier"');
    // RFC 4028 §10: the BYE goes min(32, 3/3) = 1 s before the 3 s expiry.
    expect(bye.at - ok.at).toBeGreaterThanOrEqual(1800);
    expect(bye.at - ok.at).toBeLessThan(3000);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await h.pool.activeSessions()).toBe(0);
    expect(h.gw.ctx.calls.size).toBe(0);
    const logs = h.logs.slice(logMark);
    expect(logs.find((l) => l.msg === 'call ended')).toMatchObject({ hangupBy: 'gateway', status: 408 });
    expect(logs.some((l) => l.msg === 'session timer expired: no refresh from the carrier; call ended on both legs')).toBe(true);
    // The NOC sees why: a counter per leg, outcome and carrier (and the CDR's endCause, tests/unit/ops).
    expect((await carrierExpiries()) - expiriesBefore).toBe(1);
  });

  it('no refresher parameter: the gateway refreshes (refresher=uas); the carrier gets an UPDATE without SDP at about half the interval, then another', async () => {
    const { sipp, call } = await answeredCarrierCall({ scenario: 'carrier-timer-update-refresh.xml', from: C, to: '+14255550162', keys: carrierKeys({ sessionExpires: '4' }), timeoutMs: 20_000 });
    const t = await finishedTimeline(sipp);
    const ok = find(t, 'received', /^SIP\/2\.0 200/, /^1 INVITE/)[0]!;
    expect(header(ok.text, 'Session-Expires')).toBe('4;refresher=uas');
    expect(header(ok.text, 'Require')).toBe('timer');
    const updates = find(t, 'received', /^UPDATE /);
    expect(updates).toHaveLength(2);
    for (const u of updates) {
      expect(header(u.text, 'Session-Expires')).toBe('4;refresher=uac');
      expect(header(u.text, 'Supported')).toContain('timer');
      expect(header(u.text, 'Content-Length')).toBe('0');
      expect(header(u.text, 'Contact')).toBeDefined();
    }
    const [u1, u2] = updates as [TimedMessage, TimedMessage];
    expect(u1.at - ok.at).toBeGreaterThanOrEqual(1700);
    expect(u1.at - ok.at).toBeLessThan(3000);
    expect(u2.at - u1.at).toBeGreaterThanOrEqual(1700);
    expect(u2.at - u1.at).toBeLessThan(3000);
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    expect(call.requests.items.filter((q) => q.method === 'INVITE' || q.method === 'UPDATE')).toHaveLength(0);
  });

  it("the carrier's Allow lacks UPDATE: the refresh is a re-INVITE offering the SDP it last got from us, unchanged", async () => {
    const { sipp, call } = await answeredCarrierCall({ scenario: 'carrier-timer-reinvite-refresh.xml', from: C, to: '+14255550163', keys: carrierKeys({ sessionExpires: '4', allow: ALLOW_NO_UPDATE }) });
    const t = await finishedTimeline(sipp);
    const ok = find(t, 'received', /^SIP\/2\.0 200/, /^1 INVITE/)[0]!;
    expect(header(ok.text, 'Session-Expires')).toBe('4;refresher=uas');
    const re = find(t, 'received', /^INVITE /)[0]!;
    expect(header(re.text, 'Session-Expires')).toBe('4;refresher=uac');
    expect(originLine(re.text)).toBe(originLine(ok.text));
    expect(audioPort(re.text)).toBe(audioPort(ok.text));
    expect(re.at - ok.at).toBeGreaterThanOrEqual(1700);
    expect(re.at - ok.at).toBeLessThan(3000);
    expect(find(t, 'received', /^UPDATE /)).toHaveLength(0);
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    expect(call.requests.items.filter((q) => q.method === 'INVITE')).toHaveLength(0);
  });

  it('a carrier without timer support (a proxy added Session-Expires): the gateway is the refresher, no Require: timer, the call is supervised all the same', async () => {
    const { sipp } = await answeredCarrierCall({
      scenario: 'carrier-timer-reinvite-refresh.xml',
      from: C,
      to: '+14255550164',
      keys: carrierKeys({ supported: 'replaces', sessionExpires: '3;refresher=uac', allow: ALLOW_NO_UPDATE }),
    });
    const t = await finishedTimeline(sipp);
    const ok = find(t, 'received', /^SIP\/2\.0 200/, /^1 INVITE/)[0]!;
    // §9: a UAC that does not support timers cannot refresh, and is never required to.
    expect(header(ok.text, 'Session-Expires')).toBe('3;refresher=uas');
    expect(header(ok.text, 'Require')).toBeUndefined();
    const re = find(t, 'received', /^INVITE /)[0]!;
    expect(re.at - ok.at).toBeGreaterThanOrEqual(1200);
    expect(re.at - ok.at).toBeLessThan(2500);
  });

  it('the carrier answers our refresh 481: the call is ended on both legs', async () => {
    const { sipp, call } = await answeredCarrierCall({ scenario: 'carrier-timer-refresh-481.xml', from: C, to: '+14255550165', keys: carrierKeys({ sessionExpires: '4' }) });
    await waitFor(() => call.ended, { timeoutMs: 6000, what: 'BYE from the gateway to Teams' });
    expect(call.endedBy).toBe('sbc');
    const t = await finishedTimeline(sipp);
    const update = find(t, 'received', /^UPDATE /)[0]!;
    const bye = find(t, 'received', /^BYE /)[0]!;
    expect(bye.at).toBeGreaterThanOrEqual(update.at);
    expect(bye.at - update.at).toBeLessThan(1000);
    expect(await h.pool.activeSessions()).toBe(0);
  });

  it('an interval below our minimum gets 422 with Min-SE, before Teams is called', async () => {
    h.gw.ctx.features = { carrierSessionTimer: { enabled: true, sessionExpires: 1800, minSeconds: 120 } };
    const mark = h.ft.calls.length;
    const r = await carrierCall({ scenario: 'carrier-timer-422.xml', from: C, to: '+14255550166', keys: carrierKeys({ sessionExpires: '90' }) });
    expectSippOk(r);
    const res = received(r, /^SIP\/2\.0 422/)[0]!;
    expect(header(res, 'Min-SE')).toBe('120');
    expect(h.ft.calls.length).toBe(mark);
  });

  it('a per-carrier override turns the carrier timer off: no Session-Expires in the 2xx, no timer', async () => {
    h.gw.ctx.features = { carrierSessionTimer: { enabled: true, sessionExpires: 4, minSeconds: 2, perCarrier: { 'carrier-a': { enabled: false } } } };
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const sipp = await carrierCallAsync({ scenario: 'carrier-call-wait-bye.xml', from: C, to: '+14255550167' });
    const call = await h.nextCall(mark);
    await call.waitForAck();
    expect(h.gw.ctx.calls.size).toBe(1);
    const s = [...h.gw.ctx.calls][0]!;
    expect(s.sessionTimers.carrier).toBeUndefined();
    await sleep(2500); // past the refresh time the global 4 s would give
    expect((await call.bye()).status).toBe(200);
    const r = await sipp.done;
    expectSippOk(r);
    const ok = received(r, /^SIP\/2\.0 200/).find((x) => /CSeq:\s*1 INVITE/i.test(x))!;
    expect(header(ok, 'Session-Expires')).toBeUndefined();
    expect(received(r, /^(UPDATE|INVITE) /)).toHaveLength(0);
  });
});

describe('Teams → PSTN: our INVITE to the carrier (RFC 4028 §7)', () => {
  it('offers Supported: timer, Session-Expires and Min-SE; the 2xx names us refresher (refresher=uac), so the carrier gets an UPDATE at half the interval', async () => {
    fastCarrierTimers({ sessionExpires: 4 });
    const target = await startTarget({ scenario: 'target-timer-answer.xml', ip: T1, keys: { session_expires_answer: '4;refresher=uac', allow: ALLOW_UPDATE } });
    const call = h.ft.originate({ to: '+442079460160', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    await sleep(3000);
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const t = timeline(r);
    const inv = find(t, 'received', /^INVITE /)[0]!;
    expect((header(inv.text, 'Supported') ?? '').split(',').map((x) => x.trim())).toEqual(expect.arrayContaining(['100rel', 'timer']));
    expect(header(inv.text, 'Session-Expires')).toBe('4');
    expect(header(inv.text, 'Min-SE')).toBe('2');
    const ok = find(t, 'sent', /^SIP\/2\.0 200/, /^\d+ INVITE/)[0]!;
    const update = find(t, 'received', /^UPDATE /)[0]!;
    expect(header(update.text, 'Session-Expires')).toBe('4;refresher=uac');
    expect(update.at - ok.at).toBeGreaterThanOrEqual(1700);
    expect(update.at - ok.at).toBeLessThan(3000);
    // Teams' leg keeps its own timer: nothing of this reached it.
    expect(call.requests.items.filter((q) => q.method === 'INVITE' || q.method === 'UPDATE')).toHaveLength(0);
  });

  it('a 422 from the carrier: the INVITE goes once more in the same call with its Min-SE, and the call is answered', async () => {
    fastCarrierTimers({ sessionExpires: 4 });
    const target = await startTarget({ scenario: 'target-timer-422.xml', ip: T1, keys: { min_se: 6, session_expires_answer: '6;refresher=uas', allow: ALLOW_NO_UPDATE } });
    const call = h.ft.originate({ to: '+442079460161', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    await sleep(500);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const invites = received(r, /^INVITE /);
    expect(invites).toHaveLength(2);
    const [first, second] = invites as [string, string];
    expect(header(first, 'Session-Expires')).toBe('4');
    expect(header(second, 'Session-Expires')).toBe('6');
    expect(header(second, 'Min-SE')).toBe('6');
    // RFC 3261 §8.1.3.5: the same call (Call-ID, From with its tag), the next CSeq.
    expect(header(second, 'Call-ID')).toBe(header(first, 'Call-ID'));
    expect(header(second, 'From')).toBe(header(first, 'From'));
    const seq = (x: string) => Number(/^(\d+)/.exec(header(x, 'CSeq') ?? '')?.[1]);
    expect(seq(second)).toBe(seq(first) + 1);
  });

  it('a second 422 is not retried again: Teams gets 503, never the 422 (it belongs to the carrier leg; a carrier-side failure Teams may re-route, §1.11)', async () => {
    fastCarrierTimers({ sessionExpires: 4 });
    const target = await startTarget({ scenario: 'target-timer-422-twice.xml', ip: T1, keys: { min_se: 6 } });
    const call = h.ft.originate({ to: '+442079460162', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(503);
    const r = await target.done;
    expectSippOk(r);
    expect(received(r, /^INVITE /)).toHaveLength(2);
  });

  it('a carrier 2xx without Session-Expires (no timer support): the gateway refreshes anyway, with a re-INVITE offering its last SDP', async () => {
    fastCarrierTimers({ sessionExpires: 4 });
    const logMark = h.logs.length;
    const target = await startTarget({ scenario: 'target-answer-reinvite.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460163', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    await sleep(3000);
    expect(call.ended).toBe(false);
    expect((await call.bye()).status).toBe(200);
    const r = await target.done;
    expectSippOk(r);
    const [inv, re] = find(timeline(r), 'received', /^INVITE /) as [TimedMessage, TimedMessage];
    expect(header(re.text, 'Session-Expires')).toBe('4;refresher=uac');
    expect(originLine(re.text)).toBe(originLine(inv.text));
    expect(audioPort(re.text)).toBe(audioPort(inv.text));
    expect(re.at - inv.at).toBeGreaterThanOrEqual(1700);
    expect(call.requests.items.filter((q) => q.method === 'INVITE')).toHaveLength(0);
    // The target answered with a new SDP version: rtpengine took it without complaint.
    expect(h.logs.slice(logMark).filter((l) => Number(l.level) >= 40)).toEqual([]);
  });
});
