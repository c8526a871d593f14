import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../../../../src/util/errors.js';
import { InviteServerTransaction } from '../../../../src/sip/transaction/invite-server.js';
import { createResponse } from '../../../../src/sip/transaction/response.js';
import type { ServerTransactionHandle } from '../../../../src/sip/transaction/types.js';
import { type SipRequest, SipResponse } from '../../../../src/sip/message/index.js';
import { flowOf, flush, makeRequest, rig } from './helpers.js';

/** The non-2xx ACK a UAC sends for `invite` (same branch, §17.1.1.3). */
function ackFor(invite: SipRequest, toTag: string): SipRequest {
  const via = invite.getAll('via')[0]!;
  const branch = /branch=([^;]+)/.exec(via)![1]!;
  return makeRequest('ACK', { branch, callId: invite.callId, fromTag: invite.fromTag!, toTag, cseq: invite.cseq.seq, uri: invite.uri });
}

function start(opts: Parameters<typeof rig>[0] = {}, protocol: 'udp' | 'tcp' = 'udp') {
  const r = rig(opts);
  const inv = makeRequest('INVITE', { transport: protocol.toUpperCase() });
  r.layer.receive(inv, flowOf(protocol));
  const txn = r.core.requests[0]!.txn!;
  return { ...r, inv, txn };
}

describe('INVITE server transaction (RFC 3261 §17.2.1 + RFC 6026)', () => {
  it('sends 100 Trying at once, passes the INVITE up once, re-sends the last provisional for retransmissions only', () => {
    const { clock, transport, core, inv, txn, layer } = start();
    expect(txn.state).toBe('Proceeding');
    expect(transport.responseTimes(100)).toEqual([0]);
    const trying = transport.responses(100)[0]!;
    expect(trying.toTag).toBeUndefined();
    expect(core.requests.map((r) => r.req)).toEqual([inv]);
    clock.advance(10_000);
    expect(transport.responseTimes(100)).toEqual([0]); // 100 is not retransmitted by timers
    layer.receive(inv, flowOf());
    expect(transport.responseTimes(100)).toEqual([0, 10_000]);
    void txn.respond(createResponse(inv, 180, undefined, 'uas'));
    clock.advance(1000);
    layer.receive(inv, flowOf());
    expect(transport.responseTimes(180)).toEqual([10_000, 11_000]);
    expect(core.requests).toHaveLength(1);
    expect(layer.stats().ist).toBe(1);
  });

  it('autoTrying: false leaves the 100 to the TU', () => {
    const { transport, txn } = start({ autoTrying: false });
    expect(transport.sent).toHaveLength(0);
    expect(txn.lastResponse).toBeUndefined();
  });

  it('UDP non-2xx: G at T1 doubling to T2 (0, 500, 1500, 3500, 7500, 11500 … 31500), H at 64*T1 tells the core', async () => {
    const { clock, transport, core, inv, txn, layer } = start();
    clock.advance(1000);
    await txn.respond(createResponse(inv, 486, undefined, 'uas'));
    expect(txn.state).toBe('Completed');
    expect(txn.finalSent).toBe(true);
    clock.advance(31_999);
    expect(transport.responseTimes(486)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500].map((t) => t + 1000));
    expect(core.timeouts).toEqual([]);
    clock.advance(1);
    expect(core.timeouts.map((t) => t.at)).toEqual([33_000]);
    expect(txn.state).toBe('Terminated');
    expect(core.terminated).toEqual([txn]);
    clock.advance(60_000);
    expect(transport.responses(486)).toHaveLength(11);
    expect(layer.stats()).toMatchObject({ ist: 0, server: 0 });
    expect(clock.pending).toBe(0);
  });

  it('UDP: ACK → Confirmed stops G; ACK retransmissions absorbed; timer I = T4 ends it', () => {
    const { clock, transport, core, inv, txn, layer } = start();
    void txn.respond(createResponse(inv, 603, undefined, 'uas'));
    clock.advance(2000);
    layer.receive(inv, flowOf()); // INVITE retransmission in Completed → final re-sent
    expect(transport.responseTimes(603)).toEqual([0, 500, 1500, 2000]);
    layer.receive(ackFor(inv, 'uas'), flowOf());
    expect(txn.state).toBe('Confirmed');
    layer.receive(ackFor(inv, 'uas'), flowOf());
    layer.receive(inv, flowOf()); // absorbed in Confirmed
    expect(core.requests).toHaveLength(1); // ACKs for non-2xx never reach the core
    clock.advance(4999);
    expect(txn.state).toBe('Confirmed');
    expect(transport.responseTimes(603)).toEqual([0, 500, 1500, 2000]);
    clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(core.timeouts).toEqual([]);
    expect(layer.stats().server).toBe(0);
  });

  it('TCP non-2xx: no G retransmissions; ACK → Confirmed → I = 0 terminates at once', () => {
    const { clock, transport, inv, txn, layer } = start({}, 'tcp');
    void txn.respond(createResponse(inv, 480, undefined, 'uas'));
    clock.advance(20_000);
    expect(transport.responseTimes(480)).toEqual([0]);
    const ack = ackFor(inv, 'uas');
    layer.receive(ack, flowOf('tcp'));
    expect(txn.state).toBe('Terminated');
    expect(clock.pending).toBe(0);
  });

  it('TCP non-2xx without ACK: H still fires at 64*T1', () => {
    const { clock, core, inv, txn } = start({}, 'tcp');
    void txn.respond(createResponse(inv, 480, undefined, 'uas'));
    clock.advance(31_999);
    expect(txn.state).toBe('Completed');
    clock.advance(1);
    expect(core.timeouts).toHaveLength(1);
    expect(txn.state).toBe('Terminated');
  });

  it('RFC 6026: 2xx → Accepted; INVITE retransmissions absorbed; matching ACK passed to the core; TU 2xx retransmits sent; Timer L', async () => {
    const { clock, transport, core, inv, txn, layer } = start();
    clock.advance(500);
    const ok = createResponse(inv, 200, undefined, 'uas');
    await txn.respond(ok);
    expect(txn.state).toBe('Accepted');
    clock.advance(4000);
    expect(transport.responses(200)).toHaveLength(1); // the IST never retransmits a 2xx itself
    layer.receive(inv, flowOf());
    expect(transport.sent).toHaveLength(2); // 100 + 200 only: INVITE retransmission absorbed
    await txn.respond(ok); // TU-driven retransmission (§13.3.1.4) goes out
    expect(transport.responseTimes(200)).toEqual([500, 4500]);
    const ack = ackFor(inv, 'uas'); // same branch (RFC 2543-style UAC or a misbehaving one)
    layer.receive(ack, flowOf());
    expect(core.requests.map((r) => [r.req.method, r.txn])).toEqual([
      ['INVITE', txn],
      ['ACK', null],
    ]);
    await expect(txn.respond(createResponse(inv, 486, undefined, 'uas'))).rejects.toBeInstanceOf(InvalidStateError);
    expect(transport.responses(486)).toHaveLength(0);
    clock.advance(32_000 - 4000 - 1); // t = 32499
    expect(txn.state).toBe('Accepted');
    clock.advance(1); // L = 64*T1 after entering Accepted at t=500
    expect(txn.state).toBe('Terminated');
    expect(core.timeouts).toEqual([]);
    await expect(txn.respond(ok)).rejects.toBeInstanceOf(InvalidStateError);
  });

  it('an ACK for a 2xx (new branch) matches no transaction and goes to the core with txn = null', () => {
    const { core, inv, txn, layer } = start();
    void txn.respond(createResponse(inv, 200, undefined, 'uas'));
    const ack = makeRequest('ACK', { callId: inv.callId, fromTag: inv.fromTag!, toTag: 'uas', cseq: 1 });
    layer.receive(ack, flowOf());
    expect(core.requests[1]).toMatchObject({ req: ack, txn: null });
    expect(txn.state).toBe('Accepted');
  });

  it('§17.2.4: a response the transport cannot send terminates the transaction and tells the core', async () => {
    const { transport, core, inv, txn, layer } = start();
    transport.failResponse = (r) => r.status === 500;
    await expect(txn.respond(createResponse(inv, 500))).rejects.toThrow('connection reset');
    expect(core.transportErrors.map((e) => [e.txn, e.err.message])).toEqual([[txn, 'connection reset']]);
    expect(txn.state).toBe('Terminated');
    expect(layer.stats().ist).toBe(0);
  });

  it('close() ends a pending transaction silently; a later retransmission starts a new one', async () => {
    const { transport, core, inv, txn, layer } = start();
    (txn as ServerTransactionHandle).close?.();
    (txn as ServerTransactionHandle).close?.();
    expect(txn.state).toBe('Terminated');
    expect(core.terminated).toEqual([txn]);
    await flush();
    layer.receive(inv, flowOf());
    expect(core.requests).toHaveLength(2);
    expect(core.requests[1]!.txn).not.toBe(txn);
    expect(transport.responses(100)).toHaveLength(2);
  });

  it('lingering in Accepted keeps neither the request nor the 2xx, only its To tag: a late CANCEL gets 200 with that tag, no 487', async () => {
    const { clock, transport, core, inv, txn, layer } = start();
    await txn.respond(createResponse(inv, 200, undefined, 'uas-tag'));
    expect(txn.state).toBe('Accepted');
    expect(txn.request).toBeUndefined();
    expect(txn.lastResponse).toBeUndefined();
    const branch = /branch=([^;]+)/.exec(inv.getAll('via')[0]!)![1]!;
    const cancel = makeRequest('CANCEL', { branch, callId: inv.callId, fromTag: inv.fromTag!, cseq: inv.cseq.seq, uri: inv.uri });
    clock.advance(100);
    layer.receive(cancel, flowOf());
    const ok = transport.responses(200).filter((r) => r.cseq.method === 'CANCEL');
    expect(ok.map((r) => r.toTag)).toEqual(['uas-tag']);
    expect(transport.responses(487)).toHaveLength(0);
    expect(core.cancels.map((c) => [c.invite, c.answered487])).toEqual([[txn, false]]);
  });

  it('Completed (non-2xx) keeps the response bytes for timer G: every retransmission is the same bytes; the request is released', async () => {
    const { clock, transport, inv, txn } = start();
    await txn.respond(createResponse(inv, 486, undefined, 'uas'));
    expect(txn.request).toBeUndefined();
    clock.advance(1500);
    const sent = transport.sent.filter((x) => x.msg instanceof SipResponse && x.msg.status === 486);
    expect(sent.map((x) => x.at)).toEqual([0, 500, 1500]);
    expect(sent.every((x) => x.wire !== undefined && x.wire.equals(sent[0]!.wire!))).toBe(true);
    expect(sent[0]!.wire!.equals(createResponse(inv, 486, undefined, 'uas').toBuffer())).toBe(true);
  });

  it('edge table (RFC 3261 Fig. 7 + RFC 6026 Fig. 5)', () => {
    expect(InviteServerTransaction.edges).toMatchObject({
      Proceeding: ['Accepted', 'Completed', 'Terminated'],
      Completed: ['Confirmed', 'Terminated'],
      Confirmed: ['Terminated'],
      Accepted: ['Terminated'],
      Terminated: [],
    });
  });
});

describe('deferred 100 Trying (tryingDelayMs, RFC 3261 §17.2.1)', () => {
  function startDeferred(delay = 200) {
    const r = rig({ tryingDelayMs: delay });
    const inv = makeRequest('INVITE');
    r.layer.receive(inv, flowOf());
    return { ...r, inv, txn: r.core.requests[0]!.txn! };
  }

  it('sends the 100 only when the TU has said nothing for the delay', () => {
    const { clock, transport, core } = startDeferred();
    expect(core.requests).toHaveLength(1);
    expect(transport.sent).toHaveLength(0);
    clock.advance(199);
    expect(transport.sent).toHaveLength(0);
    clock.advance(1);
    expect(transport.responseTimes(100)).toEqual([200]);
    expect(transport.responses(100)[0]!.toTag).toBeUndefined();
    clock.advance(10_000);
    expect(transport.responseTimes(100)).toEqual([200]);
  });

  it('sends no 100 when the TU responds first, and leaves no timer behind', async () => {
    const { clock, transport, inv, txn } = startDeferred();
    clock.advance(50);
    await txn.respond(createResponse(inv, 180, undefined, 'uas'));
    clock.advance(10_000);
    expect(transport.responses(100)).toHaveLength(0);
    expect(transport.responseTimes(180)).toEqual([50]);
    expect((txn as InviteServerTransaction).armedTimers).toBe(0);
  });

  it('answers a retransmitted INVITE with the 100 at once, and only once', () => {
    const { clock, transport, inv, layer } = startDeferred();
    clock.advance(120);
    layer.receive(inv, flowOf());
    expect(transport.responseTimes(100)).toEqual([120]);
    clock.advance(200);
    expect(transport.responseTimes(100)).toEqual([120]);
    layer.receive(inv, flowOf()); // Proceeding: the last provisional again (§17.2.1)
    expect(transport.responseTimes(100)).toEqual([120, 320]);
  });

  it('refuses a delay beyond the RFC\'s 200 ms', () => {
    expect(() => rig({ tryingDelayMs: 201 })).toThrow(TypeError);
    expect(() => rig({ tryingDelayMs: -1 })).toThrow(TypeError);
  });
});
