import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../../../../src/util/errors.js';
import { NonInviteServerTransaction } from '../../../../src/sip/transaction/non-invite-server.js';
import { SipResponse } from '../../../../src/sip/message/index.js';
import { createResponse } from '../../../../src/sip/transaction/response.js';
import { flowOf, makeRequest, rig } from './helpers.js';

function start(protocol: 'udp' | 'tcp' = 'udp', method = 'OPTIONS') {
  const r = rig();
  const req = makeRequest(method, { transport: protocol.toUpperCase() });
  r.layer.receive(req, flowOf(protocol));
  const txn = r.core.requests[0]!.txn!;
  return { ...r, req, txn };
}

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('Trying: no automatic 100; retransmissions discarded and not passed up', () => {
    const { clock, transport, core, req, txn, layer } = start();
    expect(txn.state).toBe('Trying');
    clock.advance(1000);
    layer.receive(req, flowOf());
    expect(transport.sent).toHaveLength(0);
    expect(core.requests).toHaveLength(1);
  });

  it('Proceeding re-sends the last provisional; Completed re-sends the final; J = 64*T1 over UDP', async () => {
    const { clock, transport, core, req, txn, layer } = start('udp', 'REGISTER');
    await txn.respond(createResponse(req, 100));
    expect(txn.state).toBe('Proceeding');
    clock.advance(500);
    layer.receive(req, flowOf());
    expect(transport.responseTimes(100)).toEqual([0, 500]);
    clock.advance(500); // t = 1000
    await txn.respond(createResponse(req, 200, undefined, 'uas'));
    expect(txn.state).toBe('Completed');
    clock.advance(10_000);
    expect(transport.responseTimes(200)).toEqual([1000]); // no timer-driven retransmission
    layer.receive(req, flowOf());
    layer.receive(req, flowOf());
    expect(transport.responseTimes(200)).toEqual([1000, 11_000, 11_000]);
    await expect(txn.respond(createResponse(req, 500))).rejects.toBeInstanceOf(InvalidStateError);
    expect(transport.responses(500)).toHaveLength(0);
    clock.advance(32_000 - 10_000 - 1);
    expect(txn.state).toBe('Completed');
    clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(core.terminated).toEqual([txn]);
    expect(core.requests).toHaveLength(1);
    expect(layer.stats().nist).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('Completed keeps the final response as its bytes only: retransmissions send exactly those bytes', async () => {
    const { clock, transport, req, txn, layer } = start('udp', 'BYE');
    const ok = createResponse(req, 200, undefined, 'uas');
    await txn.respond(ok);
    expect(txn.request).toBeUndefined();
    clock.advance(1000);
    layer.receive(req, flowOf());
    const sent = transport.sent.filter((x) => x.msg instanceof SipResponse);
    expect(sent.map((x) => x.at)).toEqual([0, 1000]);
    expect(sent[1]!.wire!.equals(ok.toBuffer())).toBe(true);
    expect((sent[1]!.msg as SipResponse).toTag).toBe('uas');
    expect(txn.lastResponse?.status).toBe(200);
  });

  it('TCP: J = 0, the transaction ends as soon as the final response is sent', async () => {
    const { clock, transport, req, txn, layer } = start('tcp');
    const p = txn.respond(createResponse(req, 200, undefined, 'uas'));
    expect(txn.state).toBe('Terminated');
    await p;
    expect(transport.responses(200)).toHaveLength(1);
    expect(layer.stats().server).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('edge table', () => {
    expect(NonInviteServerTransaction.edges).toMatchObject({
      Trying: ['Proceeding', 'Completed', 'Terminated'],
      Proceeding: ['Completed', 'Terminated'],
      Completed: ['Terminated'],
      Terminated: [],
      Confirmed: [],
    });
  });
});

describe('respond() promise', () => {
  it('an ignored rejection (illegal state) does not surface as an unhandled rejection', async () => {
    const { req, txn } = start('udp');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await txn.respond(createResponse(req, 200, undefined, 'u'));
      void txn.respond(createResponse(req, 404)); // illegal in Completed, result ignored
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
      await expect(txn.respond(createResponse(req, 404))).rejects.toBeInstanceOf(InvalidStateError);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
