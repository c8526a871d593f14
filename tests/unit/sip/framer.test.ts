import { describe, expect, it } from 'vitest';
import { type FrameResult, StreamFramer } from '../../../src/sip/message/framer.js';

function msg(body = '', extra: string[] = [], clName = 'Content-Length'): string {
  return [
    'OPTIONS sip:sbc.test SIP/2.0',
    'Via: SIP/2.0/TCP 127.0.1.1:5060;branch=z9hG4bK1',
    'Call-ID: abc',
    'CSeq: 1 OPTIONS',
    ...extra,
    `${clName}: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

const messages = (rs: FrameResult[]): string[] => rs.flatMap((r) => (r.type === 'message' ? [r.data.toString('utf8')] : []));

describe('StreamFramer', () => {
  it('cuts coalesced messages at Content-Length, bodies included', () => {
    const f = new StreamFramer();
    const a = msg('hello\r\n\r\nworld');
    const b = msg('', [], 'l');
    const out = f.push(Buffer.from(a + b + a));
    expect(messages(out)).toEqual([a, b, a]);
    expect(f.buffered).toBe(0);
    expect(f.partial).toBe(false);
  });

  it('reassembles a message delivered byte by byte, counting body bytes not characters', () => {
    const f = new StreamFramer();
    const a = msg('Ä€ü');
    const bytes = Buffer.from(a);
    const out: FrameResult[] = [];
    for (let i = 0; i < bytes.length; i++) {
      out.push(...f.push(bytes.subarray(i, i + 1)));
      if (i < bytes.length - 1) expect(out).toHaveLength(0);
    }
    expect(messages(out)).toEqual([a]);
  });

  it('reports partial only for message bytes, not for buffered CRLFs', () => {
    const f = new StreamFramer();
    expect(f.push(Buffer.from('\r\n'))).toEqual([]);
    expect(f.partial).toBe(false);
    f.push(Buffer.from('OPTIONS sip:x SIP/2.0\r\n'));
    expect(f.partial).toBe(true);
  });

  it('answers a double-CRLF ping (callback + result) and skips lone CRLFs', () => {
    let pings = 0;
    const f = new StreamFramer({ onPing: () => pings++ });
    const a = msg();
    const out = f.push(Buffer.from(`\r\n\r\n${a}\r\n${a}\r\n\r\n`));
    expect(out.map((r) => r.type)).toEqual(['ping', 'message', 'message', 'ping']);
    expect(pings).toBe(2);
  });

  it('detects a ping split across two chunks', () => {
    const f = new StreamFramer();
    expect(f.push(Buffer.from('\r\n'))).toEqual([]);
    expect(f.push(Buffer.from('\r\n'))).toEqual([{ type: 'ping' }]);
  });

  it('rejects a missing Content-Length (mandatory on streams) and then ignores input', () => {
    const f = new StreamFramer();
    const out = f.push(Buffer.from('OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n'));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: 'error', code: 'SIP_ERR_CONTENT_LENGTH', statusCode: 400 });
    expect(f.failed).toBe(true);
    expect(f.push(Buffer.from(msg()))).toEqual([]);
  });

  it.each([['-1'], ['abc'], ['1234567890'], ['5 5']])('rejects Content-Length %s', (v) => {
    const f = new StreamFramer();
    const out = f.push(Buffer.from(`OPTIONS sip:x SIP/2.0\r\nContent-Length: ${v}\r\n\r\n`));
    expect(out[0]).toMatchObject({ type: 'error', code: 'SIP_ERR_CONTENT_LENGTH' });
  });

  it('rejects conflicting Content-Length headers but accepts repeated equal ones', () => {
    expect(new StreamFramer().push(Buffer.from('OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab'))[0]).toMatchObject({ type: 'error' });
    expect(new StreamFramer().push(Buffer.from('OPTIONS sip:x SIP/2.0\r\nl: 2\r\nContent-Length: 2\r\n\r\nab'))[0]).toMatchObject({ type: 'message' });
  });

  it('enforces the message size limit before the body arrives, keeping the head for a 513', () => {
    const f = new StreamFramer({ maxMessageBytes: 1000 });
    const head = 'INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 5000\r\n\r\n';
    const out = f.push(Buffer.from(head));
    expect(out).toHaveLength(1);
    const r = out[0]!;
    expect(r).toMatchObject({ type: 'error', code: 'SIP_ERR_TOO_LARGE', statusCode: 513 });
    if (r.type === 'error') expect(r.head.toString()).toBe(head);
  });

  it('enforces the header section limit without a blank line, keeping complete lines', () => {
    const f = new StreamFramer({ maxHeaderBytes: 200 });
    const out: FrameResult[] = [];
    out.push(...f.push(Buffer.from('INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n')));
    expect(out).toEqual([]);
    for (let i = 0; i < 20 && out.length === 0; i++) out.push(...f.push(Buffer.from(`X-Pad-${i}: ${'a'.repeat(30)}\r\n`)));
    const r = out[0]!;
    expect(r).toMatchObject({ type: 'error', code: 'SIP_ERR_TOO_LARGE' });
    if (r.type === 'error') {
      expect(r.head.length).toBeLessThanOrEqual(200);
      expect(r.head.toString()).toMatch(/^INVITE sip:x SIP\/2\.0\r\nVia: .*\r\n$/s);
    }
  });

  it('never throws on random garbage and ends in a message, a wait or an error', () => {
    for (let n = 0; n < 500; n++) {
      const f = new StreamFramer({ maxMessageBytes: 4096 });
      const len = Math.floor(Math.random() * 6000);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = Math.random() < 0.1 ? [13, 10][i % 2]! : Math.floor(Math.random() * 256);
      expect(() => f.push(buf)).not.toThrow();
      expect(f.buffered).toBeLessThanOrEqual(4096 + 3);
    }
  });

  it('accepts bare-LF line ends', () => {
    const m = 'OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h\nContent-Length: 2\n\nok';
    expect(messages(new StreamFramer().push(Buffer.from(m + m)))).toEqual([m, m]);
  });
});
