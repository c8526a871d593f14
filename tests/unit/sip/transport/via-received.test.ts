import { describe, expect, it } from 'vitest';
import { SipRequest, field, parseMessage, parseVia } from '../../../../src/sip/message/index.js';
import { errorResponse, reasonPhrase, recoverRequest } from '../../../../src/sip/transport/malformed.js';
import { applyReceived, normalizeIp, responseTarget } from '../../../../src/sip/transport/via-received.js';

const req = (...vias: string[]): SipRequest => new SipRequest('OPTIONS', 'sip:x', vias.map((v) => field('v', v)));

describe('applyReceived (RFC 3261 §18.2.1, RFC 3581 §4)', () => {
  it('edits only the first value of a comma-separated, compact Via line', () => {
    const m = new SipRequest('OPTIONS', 'sip:x', [field('v', 'SIP/2.0/UDP a.example;rport;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0')]);
    expect(applyReceived(m, '192.0.2.9', 4242)).toBe(true);
    expect(m.headers[0]!.name).toBe('v');
    expect(m.get('via')).toBe('SIP/2.0/UDP a.example;rport=4242;branch=z9hG4bK1;received=192.0.2.9, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0');
    expect(m.vias[1]!.params.has('received')).toBe(false);
  });

  it('adds received with rport even when the sent-by host equals the source', () => {
    const m = req('SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1;rport');
    applyReceived(m, '192.0.2.9', 5060);
    expect(m.topVia.params.get('received')).toBe('192.0.2.9');
    expect(m.topVia.params.get('rport')).toBe('5060');
  });

  it('leaves a Via alone when the host matches and there is no rport', () => {
    const m = req('SIP/2.0/TCP 192.0.2.9:5070;branch=z9hG4bK1');
    expect(applyReceived(m, '::ffff:192.0.2.9', 40000)).toBe(false);
  });

  it('handles IPv6 sources and bracketed sent-by', () => {
    const m = req('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1');
    expect(applyReceived(m, '2001:DB8::1', 5060)).toBe(false);
    const n = req('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport');
    applyReceived(n, '2001:db8::2', 6000);
    expect(n.get('via')).toBe('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport=6000;received=2001:db8::2');
  });

  it('normalizes IPv4-mapped addresses', () => {
    expect(normalizeIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeIp('[::1]')).toBe('::1');
  });
});

describe('responseTarget (RFC 3261 §18.2.2, RFC 3581 §4)', () => {
  it.each([
    ['SIP/2.0/UDP h.example:5070;received=192.0.2.1;rport=6000', { host: '192.0.2.1', port: 6000 }],
    ['SIP/2.0/UDP h.example:5070;received=192.0.2.1;rport', { host: '192.0.2.1', port: 5070 }],
    ['SIP/2.0/UDP 192.0.2.7', { host: '192.0.2.7', port: 5060 }],
    ['SIP/2.0/UDP h.example', { host: '198.51.100.1', port: 5060 }],
    ['SIP/2.0/UDP h.example:5080;maddr=239.1.1.1;received=192.0.2.1;rport=6000', { host: '239.1.1.1', port: 5080 }],
  ])('%s', (via, expected) => {
    expect(responseTarget(parseVia(via), '198.51.100.1')).toEqual(expected);
  });
});

describe('malformed-request replies', () => {
  it('recovers a request with broken header lines and builds a §8.2.6.2 response', () => {
    const raw = Buffer.from('\r\nINVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nbroken line\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: q\r\nCSeq: 9 INVITE\r\nContent-Length: 99\r\n\r\nbody');
    const r = recoverRequest(raw)!;
    expect(r.method).toBe('INVITE');
    expect(r.has('content-length')).toBe(false);
    const res = errorResponse(r, 400, 'malformed header line:\r\nbroken');
    expect(res.reason).toBe('Bad Request (malformed header line:??broken)');
    const wire = parseMessage(res.toBuffer());
    expect(wire.callId).toBe('q');
    expect(wire.cseq).toEqual({ seq: 9, method: 'INVITE' });
    expect(wire.toTag).toMatch(/^[0-9a-f]+$/);
    expect(wire.fromTag).toBe('1');
  });

  it('does not recover responses or junk', () => {
    expect(recoverRequest(Buffer.from('SIP/2.0 200 OK\r\n\r\n'))).toBeUndefined();
    expect(recoverRequest(Buffer.from([0, 1, 2, 255]))).toBeUndefined();
  });

  it('keeps an existing To tag and uses standard reason texts', () => {
    const r = new SipRequest('BYE', 'sip:x', [field('To', '<sip:c@d>;tag=zz')]);
    expect(errorResponse(r, 513).get('to')).toBe('<sip:c@d>;tag=zz');
    expect(reasonPhrase(513)).toBe('Message Too Large');
    expect(reasonPhrase(416, 'x')).toBe('Unsupported URI Scheme (x)');
  });
});
