/**
 * Teams closes idle connections (teams-direct-routing.md §2.14, harness section I): a connection
 * with nothing from the SBC for 2 minutes gets a FIN; the proxy's CRLF keep-alives, and the SBC's
 * pongs to them, do not count. Here the fake Teams does the same after 1.5 s, with a keep-alive
 * every 300 ms. Calls outlive the connections they were set up on: whatever comes next in the
 * dialog goes over a new connection, and nothing is lost.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RecordedMessage, step } from '../../helpers/fake-teams/index.js';
import { SipRequest } from '../../../src/sip/message/index.js';
import { waitFor } from '../../helpers/net.js';
import { CARRIER_IPS, type GatewayHarness, TARGET_IPS, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCallAsync, expectSippOk, received, startTarget } from './sipp-gateway.js';

const IDLE_MS = 1500;
const KEEPALIVE_MS = 300;

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness({ fakeTeams: { idle: { timeoutMs: IDLE_MS, keepaliveMs: KEEPALIVE_MS } } });
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const ACME = 'acme.customers.example.net';
const C1 = CARRIER_IPS[0];
const T1 = TARGET_IPS[0];

const conn = (id: number | undefined) => h.ft.connections().find((c) => c.id === id);
const requestOf = (method: string, callId: string, dir: 'in' | 'out'): RecordedMessage | undefined =>
  h.ft.messages.find((m) => m.dir === dir && m.msg instanceof SipRequest && m.msg.method === method && m.msg.callId === callId);

describe('§2.14: Teams closes connections idle for its timeout; calls go on over new ones', () => {
  it('PSTN → Teams: the connection the INVITE went on idles out mid-call; the carrier\'s BYE reaches Teams over a new connection', async () => {
    h.ft.script([step.answer(20)]);
    const mark = h.ft.calls.length;
    const carrier = await carrierCallAsync({ scenario: 'carrier-call-bye.xml', from: C1, to: '+14255550101', pauseMs: IDLE_MS + 2000 });
    const call = await h.nextCall(mark);
    await call.waitForAck();
    const inviteConn = requestOf('INVITE', call.callId, 'in')!.connectionId;
    // Keep-alives do not keep it up: it is closed with a FIN after the idle time, and the
    // gateway answered every keep-alive it got in time with a pong (RFC 5626 §4.4.1).
    await waitFor(() => conn(inviteConn)?.closedAt !== undefined, { timeoutMs: IDLE_MS + 2000, what: 'idle close of the INVITE connection' });
    const closed = conn(inviteConn)!;
    expect(closed.closeReason).toBe('idle timeout (FIN)');
    expect(closed.keepalives).toBeGreaterThanOrEqual(3);
    expect(closed.pongs).toBeGreaterThanOrEqual(closed.keepalives - 1);
    expectSippOk(await carrier.done);
    await waitFor(() => call.ended, { what: 'BYE at Teams' });
    expect(call.endedBy).toBe('sbc');
    const bye = requestOf('BYE', call.callId, 'in')!;
    expect(bye.connectionId).not.toBe(inviteConn);
    expect(conn(bye.connectionId)?.direction).toBe('inbound'); // a connection the gateway opened
    expect(h.ft.violations).toEqual([]);
  });

  it('Teams → PSTN: Teams\' connection idles out; Teams\' BYE on a new connection reaches the carrier, the carrier\'s 200 reaches Teams', async () => {
    const target = await startTarget({ scenario: 'target-answer.xml', ip: T1 });
    const call = h.ft.originate({ to: '+442079460123', tenant: ACME });
    expect((await call.waitForFinal()).status).toBe(200);
    const inviteConn = requestOf('INVITE', call.callId, 'out')!.connectionId;
    // Teams' own connection carries only Teams' requests and the gateway's answers: after the
    // ACK nothing comes from the gateway on it, so it idles out.
    await waitFor(() => conn(inviteConn)?.closedAt !== undefined, { timeoutMs: IDLE_MS + 2000, what: 'idle close of Teams\' connection' });
    expect(conn(inviteConn)!.closeReason).toBe('idle timeout (FIN)');
    const ok = await call.bye();
    expect(ok.status).toBe(200);
    expect(requestOf('BYE', call.callId, 'out')!.connectionId).not.toBe(inviteConn);
    const r = await target.done;
    expectSippOk(r);
    expect(received(r, /^BYE /)).toHaveLength(1);
    expect(h.ft.violations).toEqual([]);
  });

  it('the gateway\'s OPTIONS keep its own connection to each proxy up: one connection per proxy, never idled out', async () => {
    await h.restartGateway({ ops: { optionsIntervalSec: 0.5 } });
    try {
      const start = Date.now();
      await waitFor(() => (['sip', 'sip2', 'sip3'] as const).every((e) => h.ft.options.filter((o) => o.endpoint === e && o.at >= start).length >= 8), {
        timeoutMs: 10_000,
        what: 'OPTIONS for 3 idle periods',
      });
      const opened = h.ft.connections().filter((c) => c.direction === 'inbound' && c.openedAt >= start);
      // Each proxy's OPTIONS rode one connection the whole time, which is still up.
      for (const e of ['sip', 'sip2', 'sip3']) {
        const used = new Set(h.ft.messages.filter((m) => m.dir === 'in' && m.endpoint === e && m.at >= start && m.msg instanceof SipRequest && m.msg.method === 'OPTIONS').map((m) => m.connectionId));
        expect(used.size, e).toBe(1);
        expect(conn([...used][0])?.closedAt, e).toBeUndefined();
      }
      expect(opened.filter((c) => c.closeReason === 'idle timeout (FIN)')).toEqual([]);
    } finally {
      await h.restartGateway({ ops: { optionsIntervalSec: 60 } });
    }
  });
});
