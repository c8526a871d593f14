import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../../../../src/util/errors.js';
import { SipRequest, field, parseMessage } from '../../../../src/sip/message/index.js';
import { buildCancel } from '../../../../src/sip/transaction/requests.js';
import { createResponse } from '../../../../src/sip/transaction/response.js';
import { RecordingTu, TCP_DEST, UDP_DEST, flowOf, flush, makeRequest, reply, rig } from './helpers.js';

function cancelFor(invite: SipRequest): SipRequest {
  return buildCancel(invite);
}

describe('TransactionLayer: client matching (§17.1.3)', () => {
  it('routes responses by branch + CSeq method, so INVITE and CANCEL with one branch stay apart', () => {
    const { clock, layer, transport } = rig();
    const itu = new RecordingTu(clock);
    const ctu = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    const ict = layer.request(inv, UDP_DEST, itu);
    layer.receive(reply(inv, 180, 'a'), flowOf());
    const cancel = layer.sendCancel(ict, undefined, ctu);
    expect(transport.requests('CANCEL')).toEqual([cancel]);
    layer.receive(reply(cancel, 200, 'a'), flowOf());
    layer.receive(reply(inv, 487, 'a'), flowOf());
    expect(ctu.statuses()).toEqual([200]);
    expect(itu.statuses()).toEqual([180, 487]);
    expect(layer.stats()).toMatchObject({ ict: 1, nict: 1 });
  });

  it('drops responses that match nothing, except 2xx to INVITE which go to core.onStray2xx', () => {
    const { core, layer, errors } = rig();
    const inv = makeRequest('INVITE');
    layer.receive(reply(inv, 180, 'x'), flowOf());
    layer.receive(reply(inv, 486, 'x'), flowOf());
    layer.receive(reply(makeRequest('OPTIONS'), 200, 'x'), flowOf());
    expect(core.stray).toEqual([]);
    const ok = reply(inv, 200, 'x');
    layer.receive(ok, flowOf());
    expect(core.stray).toEqual([ok]);
    expect(errors).toEqual([]);
  });

  it('rejects bad client requests', () => {
    const { clock, layer } = rig();
    const tu = new RecordingTu(clock);
    expect(() => layer.request(makeRequest('ACK'), UDP_DEST, tu)).toThrow(TypeError);
    expect(() => layer.request(makeRequest('OPTIONS', { branch: '' }), UDP_DEST, tu)).toThrow(/branch/);
    const r = makeRequest('OPTIONS');
    layer.request(r, UDP_DEST, tu);
    expect(() => layer.request(r, UDP_DEST, tu)).toThrow(InvalidStateError);
  });
});

describe('TransactionLayer: server matching (§17.2.3)', () => {
  it('a request with the same branch but another sent-by is a new transaction', () => {
    const { core, layer } = rig();
    const a = makeRequest('OPTIONS', { branch: 'z9hG4bKsame', sentBy: '127.0.0.2:5062' });
    const b = makeRequest('OPTIONS', { branch: 'z9hG4bKsame', sentBy: '127.0.0.3:5062' });
    layer.receive(a, flowOf());
    layer.receive(b, flowOf());
    layer.receive(a, flowOf());
    expect(core.requests.map((r) => r.req)).toEqual([a, b]);
    expect(layer.stats().nist).toBe(2);
  });

  it('RFC 2543 fallback (no magic cookie): retransmission, ACK (To tag of our response) and CANCEL all match', () => {
    const { clock, core, layer, transport } = rig();
    const inv = makeRequest('INVITE', { branch: '' });
    layer.receive(inv, flowOf());
    const copy = parseMessage(inv.toBuffer()) as SipRequest;
    layer.receive(copy, flowOf()); // retransmission, matched by R-URI/tags/Call-ID/CSeq/top Via
    expect(core.requests).toHaveLength(1);
    expect(transport.responses(100)).toHaveLength(2);

    const txn = core.requests[0]!.txn!;
    void txn.respond(createResponse(inv, 486, undefined, 'srv'));
    const wrongTag = makeRequest('ACK', { branch: '', callId: inv.callId, fromTag: inv.fromTag!, toTag: 'other', uri: inv.uri });
    layer.receive(wrongTag, flowOf());
    expect(txn.state).toBe('Completed');
    expect(core.requests.map((r) => r.req.method)).toEqual(['INVITE', 'ACK']); // unmatched ACK → core
    const ack = makeRequest('ACK', { branch: '', callId: inv.callId, fromTag: inv.fromTag!, toTag: 'srv', uri: inv.uri });
    layer.receive(ack, flowOf());
    expect(txn.state).toBe('Confirmed');
    clock.advance(5000);
    expect(layer.stats().server).toBe(0);

    // CANCEL for a pending 2543 INVITE
    const inv2 = makeRequest('INVITE', { branch: '' });
    layer.receive(inv2, flowOf());
    const c = cancelFor(inv2);
    layer.receive(c, flowOf());
    expect(core.cancels).toHaveLength(1);
    expect(core.cancels[0]!.answered487).toBe(true);
    expect(transport.responses(487)).toHaveLength(1);
  });
});

describe('TransactionLayer: CANCEL (§9.2)', () => {
  it('pending INVITE: 200 to the CANCEL, 487 to the INVITE (same To tag), then core.onCancel', () => {
    const { core, layer, transport } = rig();
    const inv = makeRequest('INVITE');
    layer.receive(inv, flowOf());
    const ist = core.requests[0]!.txn!;
    void ist.respond(createResponse(inv, 180, undefined, 'early'));
    const cancel = cancelFor(inv);
    layer.receive(cancel, flowOf());
    const ok = transport.responses(200)[0]!;
    expect(ok.cseq.method).toBe('CANCEL');
    const r487 = transport.responses(487)[0]!;
    expect(r487.cseq.method).toBe('INVITE');
    expect(ok.toTag).toBe('early');
    expect(r487.toTag).toBe('early');
    expect(transport.sent.map((s) => ('status' in s.msg ? (s.msg as { status: number }).status : 0))).toEqual([100, 180, 200, 487]);
    expect(core.cancels).toEqual([{ cancel, invite: ist, answered487: true }]);
    expect(ist.state).toBe('Completed');
    expect(core.requests).toHaveLength(1); // the CANCEL itself is not an onRequest

    // CANCEL retransmission: 200 re-sent by its NIST, the core is not told twice
    layer.receive(cancel, flowOf());
    expect(transport.responses(200)).toHaveLength(2);
    expect(core.cancels).toHaveLength(1);
  });

  it('no To tag yet (only 100 sent): 200 and 487 get the same fresh tag', () => {
    const { layer, transport } = rig();
    const inv = makeRequest('INVITE');
    layer.receive(inv, flowOf());
    layer.receive(cancelFor(inv), flowOf());
    const tag = transport.responses(200)[0]!.toTag;
    expect(tag).toMatch(/^[0-9a-f]{16}$/);
    expect(transport.responses(487)[0]!.toTag).toBe(tag);
  });

  it('INVITE already answered: 200 to the CANCEL, no 487, answered487 = false', () => {
    const { core, layer, transport } = rig();
    const inv = makeRequest('INVITE');
    layer.receive(inv, flowOf());
    const ist = core.requests[0]!.txn!;
    void ist.respond(createResponse(inv, 200, undefined, 'ans'));
    layer.receive(cancelFor(inv), flowOf());
    expect(transport.responses(200).map((r) => r.cseq.method)).toEqual(['INVITE', 'CANCEL']);
    expect(transport.responses(487)).toHaveLength(0);
    expect(core.cancels[0]!.answered487).toBe(false);
  });

  it('unknown transaction: 481 Call/Transaction Does Not Exist, core not told', () => {
    const { core, layer, transport } = rig();
    layer.receive(cancelFor(makeRequest('INVITE')), flowOf());
    const r = transport.responses(481);
    expect(r).toHaveLength(1);
    expect(r[0]!.reason).toBe('Call/Transaction Does Not Exist');
    expect(core.cancels).toEqual([]);
    expect(core.requests).toEqual([]);
  });
});

describe('TransactionLayer: sendCancel / buildCancel (§9.1)', () => {
  it('buildCancel copies R-URI, Call-ID, To, From, CSeq number, top Via and Route; Max-Forwards 70', () => {
    const inv = makeRequest('INVITE', { cseq: 7, routes: ['<sip:edge.example.com;lr>'], extraVia: 'SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdeep' });
    const c = buildCancel(inv);
    expect(c.method).toBe('CANCEL');
    expect(c.uri).toBe(inv.uri);
    expect(c.callId).toBe(inv.callId);
    expect(c.get('to')).toBe(inv.get('to'));
    expect(c.get('from')).toBe(inv.get('from'));
    expect(c.cseq).toEqual({ seq: 7, method: 'CANCEL' });
    expect(c.getAll('via')).toEqual([inv.getAll('via')[0]]);
    expect(c.getAll('route')).toEqual(['<sip:edge.example.com;lr>']);
    expect(c.get('max-forwards')).toBe('70');
  });

  it('holds the CANCEL back until a provisional arrives, then sends it to the same destination', async () => {
    const { clock, layer, transport } = rig();
    const tu = new RecordingTu(clock);
    const inv = makeRequest('INVITE', { transport: 'TCP' });
    const ict = layer.request(inv, TCP_DEST, tu);
    const cancel = layer.sendCancel(ict, [field('Reason', 'SIP;cause=487;text="canceled"')]);
    expect(cancel.get('reason')).toBe('SIP;cause=487;text="canceled"');
    clock.advance(1000);
    expect(transport.requests('CANCEL')).toHaveLength(0);
    layer.receive(reply(inv, 100), flowOf('tcp'));
    expect(transport.requests('CANCEL')).toEqual([cancel]);
    expect(transport.sent.find((s) => s.msg === cancel)!.dest).toBe(TCP_DEST);
    await flush();
    expect(layer.stats().nict).toBe(1);
  });

  it('does not send the CANCEL when the INVITE gets a final response first, and tells the TU it ended', () => {
    const { clock, layer, transport } = rig();
    const itu = new RecordingTu(clock);
    const ctu = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    const ict = layer.request(inv, UDP_DEST, itu);
    layer.sendCancel(ict, { Reason: 'SIP;cause=200' }, ctu);
    layer.receive(reply(inv, 200, 'win'), flowOf());
    clock.advance(60_000);
    expect(transport.requests('CANCEL')).toHaveLength(0);
    expect(ctu.terminated).toHaveLength(1);
    expect(layer.stats().client).toBe(0);
  });

  it('a CANCEL sent in Proceeding is an independent NICT with its own retransmissions (UDP)', () => {
    const { clock, layer, transport } = rig();
    const inv = makeRequest('INVITE');
    const ict = layer.request(inv, UDP_DEST, new RecordingTu(clock));
    clock.advance(100);
    layer.receive(reply(inv, 180, 'x'), flowOf());
    layer.sendCancel(ict);
    layer.sendCancel(ict); // a second call does not create a second CANCEL transaction
    clock.advance(2000);
    expect(transport.requestTimes('CANCEL')).toEqual([100, 600, 1600]);
  });
});

describe('TransactionLayer: merged requests (§8.2.2.2)', () => {
  it('answers 482 to a request without To tag matching an ongoing transaction by From tag, Call-ID, CSeq', () => {
    const { core, layer, transport } = rig();
    const a = makeRequest('INVITE', { fromTag: 'f1', callId: 'c1', cseq: 5 });
    const forked = makeRequest('INVITE', { fromTag: 'f1', callId: 'c1', cseq: 5, sentBy: '127.0.0.5:5060' });
    layer.receive(a, flowOf());
    layer.receive(forked, flowOf());
    expect(core.requests.map((r) => r.req)).toEqual([a]);
    const loop = transport.responses(482);
    expect(loop).toHaveLength(1);
    expect(loop[0]!.getAll('via')).toEqual(forked.getAll('via'));
    // the 482 went through an IST: its retransmission is absorbed and the 482 re-sent
    layer.receive(forked, flowOf());
    expect(transport.responses(482)).toHaveLength(2);
    // a different CSeq is not merged
    layer.receive(makeRequest('INVITE', { fromTag: 'f1', callId: 'c1', cseq: 6 }), flowOf());
    expect(core.requests).toHaveLength(2);
  });

  it('a core that takes a merged INVITE as a retry (adoptsRetry) gets it in a transaction of its own with its 100, and no 482 goes out', () => {
    const { core, layer, transport } = rig({ tryingDelayMs: 0 });
    core.adoptRetries = true;
    const a = makeRequest('INVITE', { fromTag: 'f1', callId: 'c1', cseq: 5 });
    const retry = makeRequest('INVITE', { fromTag: 'f1', callId: 'c1', cseq: 5, sentBy: '127.0.0.6:5061' });
    layer.receive(a, flowOf());
    const first = core.requests[0]!.txn!;
    layer.receive(retry, flowOf());
    expect(core.requests.map((r) => r.req)).toEqual([a]);
    expect(core.asked.map((x) => [x.req, x.ongoing])).toEqual([[retry, first]]);
    expect(core.adopted).toHaveLength(1);
    const { txn, ongoing } = core.adopted[0]!;
    expect(ongoing).toBe(first);
    expect(txn).not.toBe(first);
    expect(txn.request).toBe(retry);
    expect(transport.responses(482)).toHaveLength(0);
    expect(transport.responses(100).map((r) => r.getAll('via'))).toEqual([a.getAll('via'), retry.getAll('via')]);
    // The retry's retransmission is absorbed by its own transaction; a third copy is weighed against the retry.
    layer.receive(retry, flowOf());
    expect(core.adopted).toHaveLength(1);
    core.adoptRetries = false;
    const third = makeRequest('INVITE', { fromTag: 'f1', callId: 'c1', cseq: 5, sentBy: '127.0.0.7:5061' });
    layer.receive(third, flowOf());
    expect(core.asked.at(-1)!.ongoing).toBe(txn);
    expect(transport.responses(482).map((r) => r.getAll('via'))).toEqual([third.getAll('via')]);
  });

  it('does not apply to requests with a To tag', () => {
    const { core, layer, transport } = rig();
    layer.receive(makeRequest('INFO', { fromTag: 'f', callId: 'c', cseq: 3, toTag: 't' }), flowOf());
    layer.receive(makeRequest('INFO', { fromTag: 'f', callId: 'c', cseq: 3, toTag: 't' }), flowOf());
    expect(core.requests).toHaveLength(2);
    expect(transport.responses(482)).toHaveLength(0);
  });
});

describe('createResponse (§8.2.6.2)', () => {
  it('copies Vias in order, From, To, Call-ID, CSeq; adds a To tag except for 100; copies Timestamp into 100', () => {
    const req = makeRequest('INVITE', { extraVia: 'SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK2' });
    req.add('Timestamp', '54');
    const t = createResponse(req, 100);
    expect(t.reason).toBe('Trying');
    expect(t.toTag).toBeUndefined();
    expect(t.get('timestamp')).toBe('54');
    const r = createResponse(req, 486, 'Busy', 'abc');
    expect(r.getAll('via')).toEqual(req.getAll('via'));
    expect(r.get('from')).toBe(req.get('from'));
    expect(r.callId).toBe(req.callId);
    expect(r.get('cseq')).toBe(req.get('cseq'));
    expect(r.toTag).toBe('abc');
    expect(r.reason).toBe('Busy');
    expect(r.get('timestamp')).toBeUndefined();
    expect(r.get('content-length')).toBe('0');
    expect(r.toString()).toMatch(/^SIP\/2\.0 486 Busy\r\n/);
    const inDialog = makeRequest('BYE', { toTag: 'keep' });
    expect(createResponse(inDialog, 200, undefined, 'ignored').toTag).toBe('keep');
    expect(createResponse(req, 404).toTag).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('TransactionLayer: lifecycle', () => {
  it('stats return to 0 after a mixed load run (UDP and TCP, client and server)', async () => {
    const { clock, core, layer } = rig();
    core.onNew = (req, txn) => {
      if (!txn) return;
      if (req.method === 'INVITE') void txn.respond(createResponse(req, Number(req.get('x-status') ?? '200'), undefined, 'u'));
      else void txn.respond(createResponse(req, 200, undefined, 'u'));
    };
    const tus: RecordingTu[] = [];
    for (let i = 0; i < 200; i++) {
      const proto = i % 2 === 0 ? 'udp' : 'tcp';
      // server side
      const sreq = makeRequest(i % 3 === 0 ? 'OPTIONS' : 'INVITE', { transport: proto.toUpperCase() });
      if (i % 4 === 1) sreq.set('X-Status', '486');
      layer.receive(sreq, flowOf(proto));
      if (i % 8 === 1) {
        layer.receive(
          makeRequest('ACK', { branch: /branch=([^;]+)/.exec(sreq.getAll('via')[0]!)![1]!, callId: sreq.callId, fromTag: sreq.fromTag!, toTag: 'u', cseq: 1, transport: proto.toUpperCase() }),
          flowOf(proto),
        );
      }
      // client side
      const tu = new RecordingTu(clock);
      tus.push(tu);
      const creq = makeRequest(i % 3 === 0 ? 'INVITE' : 'MESSAGE', { transport: proto.toUpperCase() });
      layer.request(creq, proto === 'udp' ? UDP_DEST : TCP_DEST, tu);
      if (i % 5 === 0) layer.receive(reply(creq, i % 10 === 0 ? 200 : 404, 'r'), flowOf(proto));
      clock.advance(10);
    }
    await flush();
    const mid = layer.stats();
    expect(mid.client + mid.server).toBeGreaterThan(0);
    clock.advance(120_000);
    await flush();
    expect(layer.stats()).toEqual({ ict: 0, nict: 0, ist: 0, nist: 0, client: 0, server: 0 });
    expect(clock.pending).toBe(0);
    expect(tus.every((t) => t.terminated.length === 1)).toBe(true);
  });

  it('close() is idempotent, disposes every transaction and timer, and refuses new work', () => {
    const { clock, core, layer, transport } = rig();
    const tu = new RecordingTu(clock);
    layer.request(makeRequest('INVITE'), UDP_DEST, tu);
    layer.request(makeRequest('OPTIONS'), UDP_DEST, tu);
    layer.receive(makeRequest('INVITE'), flowOf());
    layer.receive(makeRequest('OPTIONS'), flowOf());
    expect(layer.stats()).toMatchObject({ client: 2, server: 2 });
    layer.close();
    layer.close();
    expect(layer.closed).toBe(true);
    expect(layer.stats()).toMatchObject({ client: 0, server: 0 });
    expect(clock.pending).toBe(0);
    expect(tu.terminated).toHaveLength(2);
    expect(tu.timeouts).toEqual([]);
    expect(core.terminated).toHaveLength(2);
    const before = transport.sent.length;
    layer.receive(makeRequest('OPTIONS'), flowOf());
    expect(transport.sent.length).toBe(before);
    expect(core.requests).toHaveLength(2);
    expect(() => layer.request(makeRequest('OPTIONS'), UDP_DEST, tu)).toThrow(InvalidStateError);
  });

  it('a throwing core callback is reported and the transaction keeps working', () => {
    const { core, layer, transport, errors } = rig();
    core.onNew = () => {
      throw new Error('core bug');
    };
    const inv = makeRequest('INVITE');
    layer.receive(inv, flowOf());
    expect(errors).toHaveLength(1);
    layer.receive(inv, flowOf());
    expect(transport.responses(100)).toHaveLength(2);
    expect(layer.stats().ist).toBe(1);
  });

  it('drops messages whose headers cannot be parsed', () => {
    const { core, layer } = rig();
    const bad = new SipRequest('OPTIONS', 'sip:x@127.0.0.1');
    bad.add('Via', 'garbage');
    bad.add('CSeq', '1 OPTIONS');
    layer.receive(bad, flowOf());
    expect(core.requests).toEqual([]);
  });
});

describe('TransactionLayer: connection loss (§17.1.4)', () => {
  it('fails client transactions still waiting on a closed TCP/TLS connection, not finished ones', async () => {
    const { clock, layer } = rig();
    const waiting = new RecordingTu(clock);
    const done = new RecordingTu(clock);
    const other = new RecordingTu(clock);
    const inv = makeRequest('INVITE');
    layer.request(inv, TCP_DEST, waiting);
    const opt = makeRequest('OPTIONS');
    layer.request(opt, TCP_DEST, done);
    const udp = makeRequest('INVITE');
    layer.request(udp, UDP_DEST, other);
    await flush();
    layer.receive(reply(inv, 100, 'a'), flowOf());
    layer.receive(reply(opt, 200, 'b'), flowOf());
    layer.connectionClosed(8, 'another connection');
    expect(waiting.errors).toEqual([]);
    layer.connectionClosed(7, 'reset by peer');
    expect(waiting.errors.map((e) => e.message)).toEqual(['connection closed before a final response: reset by peer']);
    expect(done.errors).toEqual([]);
    expect(other.errors).toEqual([]);
    expect(layer.stats()).toMatchObject({ ict: 1 });
  });
});
