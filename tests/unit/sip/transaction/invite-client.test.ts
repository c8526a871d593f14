import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../../../../src/util/errors.js';
import { InviteClientTransaction } from '../../../../src/sip/transaction/invite-client.js';
import { resolveTimerSettings } from '../../../../src/sip/transaction/timers.js';
import type { TransactionEnv } from '../../../../src/sip/transaction/transaction.js';
import type { TransactionState } from '../../../../src/sip/transaction/types.js';
import { FakeClock } from '../../../../src/util/clock.js';
import { RecordingTransport, RecordingTu, TCP_DEST, UDP_DEST, cumulative, flowOf, flush, makeRequest, reply, rig } from './helpers.js';

describe('INVITE client transaction (RFC 3261 §17.1.1 + RFC 6026)', () => {
  it('UDP: retransmits on timer A at 0, 500, 1500, 3500, 7500, 15500, 31500 and times out on B at 32000', async () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    const txn = layer.request(inv, UDP_DEST, tu);
    expect(txn.state).toBe('Calling');
    await flush();
    expect(txn.flow?.protocol).toBe('udp');
    clock.advance(31_999);
    expect(transport.requestTimes('INVITE')).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(tu.timeouts).toEqual([]);
    clock.advance(1);
    expect(tu.timeouts).toEqual([32000]);
    expect(tu.terminated).toEqual([32000]);
    expect(txn.state).toBe('Terminated');
    expect(transport.requests('ACK')).toHaveLength(0); // "MUST NOT generate an ACK"
    expect(transport.sent.every((s) => s.dest === UDP_DEST)).toBe(true);
    expect(layer.stats()).toMatchObject({ ict: 0, client: 0 });
    expect(clock.pending).toBe(0);
  });

  it('UDP with T1=100: intervals double from T1 without a T2 cap; B = 64*T1', () => {
    const { clock, transport, layer } = rig({ timers: { T1: 100, T2: 400 } });
    const tu = new RecordingTu(clock);
    layer.request(makeRequest('INVITE'), UDP_DEST, tu);
    clock.advance(10_000);
    expect(transport.requestTimes('INVITE')).toEqual(cumulative(0, [100, 200, 400, 800, 1600, 3200]));
    expect(tu.timeouts).toEqual([6400]);
  });

  it('TCP: sends once, no timer A, timer B at 64*T1', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    layer.request(makeRequest('INVITE', { transport: 'TCP' }), TCP_DEST, tu);
    clock.advance(31_999);
    expect(transport.requestTimes('INVITE')).toEqual([0]);
    expect(tu.timeouts).toEqual([]);
    clock.advance(1);
    expect(tu.timeouts).toEqual([32000]);
    expect(layer.stats().ict).toBe(0);
  });

  it('a provisional response moves to Proceeding, stops A and B, and every 1xx is passed up', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    const txn = layer.request(inv, UDP_DEST, tu);
    clock.advance(600);
    layer.receive(reply(inv, 100), flowOf());
    expect(txn.state).toBe('Proceeding');
    expect(txn.provisionalReceived).toBe(true);
    layer.receive(reply(inv, 180, 'tt1'), flowOf());
    layer.receive(reply(inv, 180, 'tt1'), flowOf());
    clock.advance(120_000);
    expect(transport.requestTimes('INVITE')).toEqual([0, 500]);
    expect(tu.statuses()).toEqual([100, 180, 180]);
    expect(tu.timeouts).toEqual([]);
    expect(txn.state).toBe('Proceeding');
    txn.close();
    txn.close();
    expect(tu.terminated).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('UDP 3xx–6xx: builds the §17.1.1.3 ACK, re-sends it for retransmissions without passing them up, timer D at 32 s', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE', {
      routes: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'],
      extraVia: 'SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKlower',
      cseq: 42,
    });
    const txn = layer.request(inv, UDP_DEST, tu);
    clock.advance(100);
    layer.receive(reply(inv, 180, 'rt'), flowOf());
    clock.advance(900); // t=1000
    const busy = reply(inv, 486, 'rt');
    layer.receive(busy, flowOf());
    expect(txn.state).toBe('Completed');
    expect(tu.statuses()).toEqual([180, 486]);
    const acks = transport.requests('ACK');
    expect(acks).toHaveLength(1);
    const ack = acks[0]!;
    expect(ack.uri).toBe(inv.uri);
    expect(ack.callId).toBe(inv.callId);
    expect(ack.get('from')).toBe(inv.get('from'));
    expect(ack.get('to')).toBe(busy.get('to'));
    expect(ack.toTag).toBe('rt');
    expect(ack.cseq).toEqual({ seq: 42, method: 'ACK' });
    expect(ack.getAll('via')).toEqual([inv.getAll('via')[0]]);
    expect(ack.getAll('route')).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    expect(ack.get('max-forwards')).toBe('70');
    expect(transport.sent.find((s) => s.msg === ack)?.dest).toBe(UDP_DEST);

    clock.advance(2000);
    layer.receive(reply(inv, 486, 'rt'), flowOf());
    layer.receive(reply(inv, 486, 'rt'), flowOf());
    expect(transport.requestTimes('ACK')).toEqual([1000, 3000, 3000]);
    expect(tu.statuses()).toEqual([180, 486]);

    clock.advance(32_000 - 2000 - 1); // t=32999
    expect(txn.state).toBe('Completed');
    clock.advance(1); // D fires 32 s after entering Completed at t=1000
    expect(txn.state).toBe('Terminated');
    expect(tu.terminated).toEqual([33000]);
    expect(transport.requestTimes('INVITE')).toEqual([0]);
    expect(layer.stats().client).toBe(0);
  });

  it('a final response straight from Calling stops retransmissions (UDP)', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    layer.request(inv, UDP_DEST, tu);
    clock.advance(700);
    layer.receive(reply(inv, 503), flowOf());
    clock.advance(40_000);
    expect(transport.requestTimes('INVITE')).toEqual([0, 500]);
    expect(transport.requestTimes('ACK')).toEqual([700]);
    expect(tu.timeouts).toEqual([]);
    expect(tu.terminated).toEqual([32700]);
  });

  it('TCP 3xx–6xx: ACK sent, timer D = 0 terminates at once', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE', { transport: 'TCP' });
    const txn = layer.request(inv, TCP_DEST, tu);
    layer.receive(reply(inv, 404), flowOf('tcp'));
    expect(transport.requests('ACK')).toHaveLength(1);
    expect(tu.statuses()).toEqual([404]);
    expect(txn.state).toBe('Terminated');
    expect(tu.terminated).toEqual([0]);
    expect(clock.pending).toBe(0);
  });

  it('RFC 6026: 2xx → Accepted, no ACK generated, later 2xx (retransmits and other forks) passed up, Timer M ends it', () => {
    const { clock, transport, core, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    const txn = layer.request(inv, UDP_DEST, tu);
    clock.advance(1000);
    layer.receive(reply(inv, 200, 'fork-a'), flowOf());
    expect(txn.state).toBe('Accepted');
    layer.receive(reply(inv, 200, 'fork-a'), flowOf());
    layer.receive(reply(inv, 200, 'fork-b'), flowOf());
    layer.receive(reply(inv, 180, 'fork-c'), flowOf()); // not a 2xx: ignored in Accepted
    layer.receive(reply(inv, 486, 'fork-c'), flowOf()); // not a 2xx: ignored in Accepted
    expect(tu.responses.map((r) => `${r.status}/${r.res.toTag}`)).toEqual(['200/fork-a', '200/fork-a', '200/fork-b']);
    expect(transport.requests('ACK')).toHaveLength(0);
    expect(transport.requestTimes('INVITE')).toEqual([0, 500]);
    clock.advance(31_999);
    expect(txn.state).toBe('Accepted');
    clock.advance(1); // Timer M = 64*T1 after entering Accepted
    expect(txn.state).toBe('Terminated');
    expect(tu.terminated).toEqual([33000]);
    // After M, a 2xx retransmission matches no transaction: it goes to the core to be re-ACKed.
    layer.receive(reply(inv, 200, 'fork-a'), flowOf());
    expect(core.stray.map((r) => r.toTag)).toEqual(['fork-a']);
    expect(tu.responses).toHaveLength(3);
  });

  it('TCP 2xx: Accepted still lasts Timer M (64*T1)', () => {
    const { clock, layer } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE', { transport: 'TCP' });
    const txn = layer.request(inv, TCP_DEST, tu);
    layer.receive(reply(inv, 200, 'x'), flowOf('tcp'));
    clock.advance(31_999);
    expect(txn.state).toBe('Accepted');
    clock.advance(1);
    expect(txn.state).toBe('Terminated');
  });

  it('§17.1.4: a rejected send reports onTransportError, terminates, and stops retransmissions', async () => {
    const { clock, transport, layer } = rig();
    transport.failSend = () => true;
    const tu = new RecordingTu(clock);
    const txn = layer.request(makeRequest('INVITE'), UDP_DEST, tu);
    await flush();
    expect(tu.errors.map((e) => e.message)).toEqual(['connect ECONNREFUSED']);
    expect(txn.state).toBe('Terminated');
    expect(tu.terminated).toHaveLength(1);
    clock.advance(60_000);
    expect(transport.requestTimes('INVITE')).toEqual([0]);
    expect(tu.timeouts).toEqual([]);
    expect(layer.stats().client).toBe(0);
  });

  it('close() stops everything without onTimeout; onTerminated exactly once', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const txn = layer.request(makeRequest('INVITE'), UDP_DEST, tu);
    clock.advance(600);
    txn.close();
    txn.close();
    clock.advance(60_000);
    expect(transport.requestTimes('INVITE')).toEqual([0, 500]);
    expect(tu.timeouts).toEqual([]);
    expect(tu.terminated).toEqual([600]);
    expect(clock.pending).toBe(0);
  });

  it('a TU callback that throws is reported and does not corrupt the transaction', () => {
    const { clock, layer, errors, transport } = rig();
    const tu = new RecordingTu(clock);
    tu.onResponse = () => {
      throw new Error('app bug');
    };
    const inv = makeRequest('INVITE');
    const txn = layer.request(inv, UDP_DEST, tu);
    layer.receive(reply(inv, 480, 'z'), flowOf());
    expect(errors).toHaveLength(1);
    expect(txn.state).toBe('Completed');
    expect(transport.requests('ACK')).toHaveLength(1);
  });

  it('has a static edge table and throws InvalidStateError on an illegal transition', () => {
    expect(InviteClientTransaction.edges.Calling).toEqual(['Proceeding', 'Completed', 'Accepted', 'Terminated']);
    expect(InviteClientTransaction.edges.Completed).toEqual(['Terminated']);
    expect(InviteClientTransaction.edges.Accepted).toEqual(['Terminated']);
    class Probe extends InviteClientTransaction {
      force(s: TransactionState): void {
        this.transition(s);
      }
    }
    const clock = new FakeClock();
    const env: TransactionEnv = { transport: new RecordingTransport(clock), clock, settings: resolveTimerSettings(), onCallbackError: () => {} };
    const p = new Probe(env, 'p', makeRequest('INVITE'), UDP_DEST, new RecordingTu(clock), false, () => {});
    expect(() => p.force('Confirmed')).toThrow(InvalidStateError);
    p.force('Completed');
    expect(() => p.force('Proceeding')).toThrow(/illegal transition Completed -> Proceeding/);
    p.force('Terminated');
    expect(() => p.force('Terminated')).toThrow(InvalidStateError);
    p.dispose(); // idempotent, does not throw
  });
});
