import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMultipart, joinBody, parseMultipart, splitBody } from '../../../src/gateway/location.js';

const SDP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n';
const PIDF = '<?xml version="1.0"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"/>\r\n';

describe('multipart bodies (RFC 2046 §5.1, RFC 5621) for location conveyance (RFC 6442)', () => {
  it('takes a Teams-style INVITE body apart: SDP, and the PIDF-LO part with its headers', () => {
    const body = ['--b1', 'Content-Type: application/sdp', '', SDP, '--b1', 'Content-Type: application/pidf+xml', 'Content-ID: <x@y>', '', PIDF, '--b1--', ''].join('\r\n');
    const s = splitBody('multipart/mixed;boundary=b1', body);
    expect(s.sdp).toBe(SDP);
    expect(s.others).toEqual([{ headers: [['Content-Type', 'application/pidf+xml'], ['Content-ID', '<x@y>']], body: PIDF }]);
  });

  it('quoted boundaries, a preamble and an epilogue, bare LF line ends, folded part headers', () => {
    const body = ['preamble text', '--"a b:c"', 'Content-Type:', '  application/sdp', '', 'v=0', '--"a b:c"--', 'epilogue'].join('\n').replace(/"/g, '');
    const parts = parseMultipart('multipart/mixed; boundary="a b:c"', body)!;
    expect(parts).toEqual([{ headers: [['Content-Type', 'application/sdp']], body: 'v=0' }]);
  });

  it('a line that only starts with the delimiter text is content; transport padding after a delimiter is allowed', () => {
    const body = ['--b', 'Content-Type: text/plain', '', 'line one', '--bx is not a delimiter', '--b  ', 'Content-Type: text/plain', '', 'two', '--b--', ''].join('\r\n');
    expect(parseMultipart('multipart/mixed;boundary=b', body)).toEqual([
      { headers: [['Content-Type', 'text/plain']], body: 'line one\r\n--bx is not a delimiter' },
      { headers: [['Content-Type', 'text/plain']], body: 'two' },
    ]);
  });

  it('a part without headers, and a body that is not multipart', () => {
    expect(parseMultipart('multipart/mixed;boundary=q', '--q\r\n\r\nplain\r\n--q--')).toEqual([{ headers: [], body: 'plain' }]);
    expect(splitBody('application/sdp', SDP)).toEqual({ sdp: SDP, others: [] });
    expect(splitBody(undefined, SDP)).toEqual({ sdp: SDP, others: [] });
    expect(splitBody('application/pidf+xml', PIDF)).toEqual({ sdp: undefined, others: [] });
    expect(splitBody('multipart/mixed;boundary=q', undefined)).toEqual({ sdp: undefined, others: [] });
  });

  it('malformed multiparts are no multipart: no boundary, no delimiter, no close-delimiter', () => {
    expect(parseMultipart('multipart/mixed', '--x\r\n\r\na\r\n--x--')).toBeUndefined();
    expect(parseMultipart('multipart/mixed;boundary=x', 'no delimiters here')).toBeUndefined();
    expect(parseMultipart('multipart/mixed;boundary=x', '--x\r\nContent-Type: text/plain\r\n\r\nunterminated')).toBeUndefined();
    // A multipart that cannot be read has no SDP to anchor: the call is handled as offerless.
    expect(splitBody('multipart/mixed;boundary=x', 'garbage')).toEqual({ sdp: undefined, others: [] });
  });

  it('joinBody: plain SDP without other parts, multipart with them', () => {
    expect(joinBody(SDP, [])).toEqual({ contentType: 'application/sdp', body: SDP });
    expect(joinBody(undefined, [])).toBeUndefined();
    const j = joinBody(SDP, [{ headers: [['Content-Type', 'application/pidf+xml']], body: PIDF }])!;
    expect(j.contentType).toMatch(/^multipart\/mixed;boundary=teamsgw-[0-9a-f]{18}$/);
    expect(splitBody(j.contentType, j.body)).toEqual({ sdp: SDP, others: [{ headers: [['Content-Type', 'application/pidf+xml']], body: PIDF }] });
  });

  it('formatMultipart → parseMultipart gives the parts back (property)', () => {
    const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
    const value = fc.stringMatching(/^[!-~][ -~]{0,30}$/).map((v) => v.trim()).filter((v) => v.length > 0);
    const line = fc.stringMatching(/^[ -~]{0,40}$/).filter((l) => !l.startsWith('--'));
    const part = fc.record({
      headers: fc.array(fc.tuple(token, value), { minLength: 1, maxLength: 3 }),
      body: fc.array(line, { maxLength: 5 }).map((ls) => ls.join('\r\n')),
    });
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const m = formatMultipart(parts as never);
        expect(parseMultipart(m.contentType, m.body)).toEqual(parts);
      }),
      { numRuns: 300 },
    );
  });
});
