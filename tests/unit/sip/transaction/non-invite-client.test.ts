import { describe, expect, it } from 'vitest';
import { NonInviteClientTransaction } from '../../../../src/sip/transaction/non-invite-client.js';
import { RecordingTu, TCP_DEST, UDP_DEST, flowOf, flush, makeRequest, reply, rig } from './helpers.js';

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('UDP: timer E doubles up to the T2 cap (0, 500, 1500, 3500, 7500, 11500 …) and F fires at 32 s', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const txn = layer.request(makeRequest('OPTIONS'), UDP_DEST, tu);
    expect(txn.state).toBe('Trying');
    clock.advance(31_999);
    expect(transport.requestTimes('OPTIONS')).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(tu.timeouts).toEqual([]);
    clock.advance(1);
    expect(tu.timeouts).toEqual([32000]);
    expect(tu.terminated).toEqual([32000]);
    expect(txn.state).toBe('Terminated');
    clock.advance(10_000);
    expect(transport.requestTimes('OPTIONS')).toHaveLength(11);
    expect(layer.stats().nict).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('UDP with T1=200, T2=1000: E = 200, 400, 800, 1000, 1000 …; F = 64*T1', () => {
    const { clock, transport, layer } = rig({ timers: { T1: 200, T2: 1000 } });
    const tu = new RecordingTu(clock);
    layer.request(makeRequest('OPTIONS'), UDP_DEST, tu);
    clock.advance(5000);
    expect(transport.requestTimes('OPTIONS')).toEqual([0, 200, 600, 1400, 2400, 3400, 4400]);
    clock.advance(20_000);
    expect(tu.timeouts).toEqual([12800]);
  });

  it('in Proceeding, timer E is reset with T2 each time it fires', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const req = makeRequest('REGISTER');
    const txn = layer.request(req, UDP_DEST, tu);
    clock.advance(200);
    layer.receive(reply(req, 100), flowOf());
    expect(txn.state).toBe('Proceeding');
    clock.advance(31_799); // t = 31999
    // E armed at 0 for T1 fires at 500 (now in Proceeding) and is then reset to T2 each time.
    expect(transport.requestTimes('REGISTER')).toEqual([0, 500, 4500, 8500, 12500, 16500, 20500, 24500, 28500]);
    expect(tu.timeouts).toEqual([]);
    clock.advance(1);
    expect(tu.timeouts).toEqual([32000]); // "If timer F fires while in the Proceeding state, the TU MUST be informed"
    expect(txn.state).toBe('Terminated');
  });

  it('passes each provisional and the final response up once; K = T4 over UDP; retransmitted finals absorbed', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const req = makeRequest('MESSAGE');
    const txn = layer.request(req, UDP_DEST, tu);
    clock.advance(100);
    layer.receive(reply(req, 100), flowOf());
    layer.receive(reply(req, 180, 't'), flowOf());
    clock.advance(900); // t = 1000
    layer.receive(reply(req, 202, 't'), flowOf());
    expect(txn.state).toBe('Completed');
    layer.receive(reply(req, 202, 't'), flowOf());
    layer.receive(reply(req, 500, 't'), flowOf());
    expect(tu.statuses()).toEqual([100, 180, 202]);
    clock.advance(4999);
    expect(txn.state).toBe('Completed');
    clock.advance(1); // K = T4 after entering Completed
    expect(txn.state).toBe('Terminated');
    expect(tu.terminated).toEqual([6000]);
    expect(transport.requestTimes('MESSAGE')).toEqual([0, 500]);
    expect(tu.timeouts).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('TCP: no retransmissions, K = 0 terminates on the final response', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const req = makeRequest('OPTIONS', { transport: 'TCP' });
    const txn = layer.request(req, TCP_DEST, tu);
    clock.advance(10_000);
    expect(transport.requestTimes('OPTIONS')).toEqual([0]);
    layer.receive(reply(req, 200, 't'), flowOf('tcp'));
    expect(tu.statuses()).toEqual([200]);
    expect(txn.state).toBe('Terminated');
    expect(tu.terminated).toEqual([10_000]);
    expect(clock.pending).toBe(0);
  });

  it('TCP: timer F still fires at 64*T1 without a response', () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    layer.request(makeRequest('OPTIONS', { transport: 'TCP' }), TCP_DEST, tu);
    clock.advance(31_999);
    expect(tu.timeouts).toEqual([]);
    clock.advance(1);
    expect(tu.timeouts).toEqual([32000]);
    expect(transport.requestTimes('OPTIONS')).toEqual([0]);
  });

  it('a transport failure on a retransmission reports onTransportError and terminates', async () => {
    const { clock, transport, layer } = rig();
    const tu = new RecordingTu(clock);
    const txn = layer.request(makeRequest('OPTIONS'), UDP_DEST, tu);
    await flush();
    transport.failSend = () => true;
    clock.advance(500);
    await flush();
    expect(tu.errors).toHaveLength(1);
    expect(txn.state).toBe('Terminated');
    clock.advance(60_000);
    expect(transport.requestTimes('OPTIONS')).toEqual([0, 500]);
    expect(tu.timeouts).toEqual([]);
  });

  it('edge table: Trying → Proceeding/Completed/Terminated only', () => {
    expect(NonInviteClientTransaction.edges.Trying).toEqual(['Proceeding', 'Completed', 'Terminated']);
    expect(NonInviteClientTransaction.edges.Proceeding).toEqual(['Completed', 'Terminated']);
    expect(NonInviteClientTransaction.edges.Completed).toEqual(['Terminated']);
    expect(NonInviteClientTransaction.edges.Accepted).toEqual([]);
  });
});
