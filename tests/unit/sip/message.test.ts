import { describe, expect, it } from 'vitest';
import { parseMessage, SipRequest, SipResponse } from '../../../src/sip/message/index.js';

const INVITE = [
  'INVITE sip:+14255550100@10.0.0.5;user=phone SIP/2.0',
  'v: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK776asdhds;rport',
  'Via: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKabc, SIP/2.0/UDP 10.1.1.1',
  'Max-Forwards: 70',
  'f: "Alice Ä" <sip:alice@example.com>;tag=1928301774',
  'To: <sip:+14255550100@10.0.0.5;user=phone>',
  'i: a84b4c76e66710@pc33',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@192.0.2.7:5062>',
  'Content-Type: application/sdp',
  'Content-Length: 7',
  '',
  'v=0\r\nÄ',
].join('\r\n');

describe('SIP message parser', () => {
  it('parses a request with compact forms, list headers and a multibyte body', () => {
    const m = parseMessage(Buffer.from(INVITE, 'utf8'));
    expect(m).toBeInstanceOf(SipRequest);
    const r = m as SipRequest;
    expect(r.method).toBe('INVITE');
    expect(r.parsedUri.user).toBe('+14255550100');
    expect(r.parsedUri.params.get('user')).toBe('phone');
    expect(r.vias.map((v) => [v.transport, v.host, v.port ?? null])).toEqual([
      ['UDP', '192.0.2.7', 5062],
      ['TCP', '2001:db8::1', 5070],
      ['UDP', '10.1.1.1', null],
    ]);
    expect(r.topVia.params.get('rport')).toBeNull();
    expect(r.from.displayName).toBe('Alice Ä');
    expect(r.fromTag).toBe('1928301774');
    expect(r.callId).toBe('a84b4c76e66710@pc33');
    expect(r.cseq).toEqual({ seq: 314159, method: 'INVITE' });
    expect(r.body.toString('utf8')).toBe('v=0\r\nÄ');
  });

  it('recomputes Content-Length in bytes when serializing', () => {
    const r = parseMessage(Buffer.from(INVITE, 'utf8')) as SipRequest;
    r.body = Buffer.from('v=0\r\nÄÄ', 'utf8');
    const out = r.toString();
    expect(out).toContain('Content-Length: 9\r\n');
    const again = parseMessage(r.toBuffer());
    expect(again.body.toString('utf8')).toBe('v=0\r\nÄÄ');
  });

  it('parses a response and rejects a bad start line with 400', () => {
    const m = parseMessage(Buffer.from('SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n'));
    expect(m).toBeInstanceOf(SipResponse);
    expect((m as SipResponse).status).toBe(180);
    expect(() => parseMessage(Buffer.from('HELLO\r\n\r\n'))).toThrow(expect.objectContaining({ statusCode: 400 }));
  });
});
