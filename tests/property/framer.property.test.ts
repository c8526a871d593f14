import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FrameResult, StreamFramer } from '../../src/sip/message/framer.js';

/** A SIP message with arbitrary header values and a binary body (may contain CRLFCRLF). */
const sipMessage = fc
  .record({
    method: fc.constantFrom('INVITE', 'OPTIONS', 'BYE', 'MESSAGE'),
    callId: fc.stringMatching(/^[a-z0-9]{1,20}$/),
    extra: fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z]{1,8}$/), fc.stringMatching(/^[ -~]{0,40}$/)), { maxLength: 5 }),
    body: fc.uint8Array({ maxLength: 300 }),
    compact: fc.boolean(),
  })
  .map(({ method, callId, extra, body, compact }) => {
    const head =
      `${method} sip:x@127.0.1.1 SIP/2.0\r\n` +
      `Via: SIP/2.0/TCP 127.0.1.2:5060;branch=z9hG4bK${callId}\r\n` +
      `Call-ID: ${callId}\r\nCSeq: 1 ${method}\r\n` +
      extra.map(([k, v]) => `${k}: ${v.trim()}\r\n`).join('') +
      `${compact ? 'l' : 'Content-Length'}: ${body.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head), Buffer.from(body)]);
  });

/** Between messages: nothing, a lone CRLF (pong), or a CRLFCRLF ping. */
const gap = fc.constantFrom('', '\r\n', '\r\n\r\n');

const stream = fc.array(fc.tuple(gap, sipMessage), { minLength: 1, maxLength: 8 });

function feed(chunks: Buffer[]): FrameResult[] {
  const f = new StreamFramer({ maxMessageBytes: 1 << 20 });
  return chunks.flatMap((c) => f.push(c));
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('StreamFramer (property)', () => {
  it('any split of a stream into chunks yields the same messages and pings', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 40 }), (items, cuts) => {
        const whole = Buffer.concat(items.flatMap(([g, m]) => [Buffer.from(g), m]));
        const expected = items.flatMap(([g, m]) => [...(g === '\r\n\r\n' ? [{ type: 'ping' }] : []), { type: 'message', data: m }]);
        const oneShot = feed([whole]);
        expect(oneShot).toEqual(expected);
        expect(feed(split(whole, cuts))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('byte-at-a-time delivery yields the same messages', () => {
    fc.assert(
      fc.property(stream, (items) => {
        const whole = Buffer.concat(items.flatMap(([g, m]) => [Buffer.from(g), m]));
        const bytes = [...whole].map((b) => Buffer.from([b]));
        expect(feed(bytes)).toEqual(feed([whole]));
      }),
      { numRuns: 50 },
    );
  });

  it('never throws and never buffers beyond the limit on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 10 }), (chunks) => {
        const f = new StreamFramer({ maxMessageBytes: 4096, maxHeaderBytes: 1024 });
        for (const c of chunks) {
          f.push(Buffer.from(c));
          expect(f.buffered).toBeLessThanOrEqual(4096 + 2000);
        }
      }),
    );
  });
});
