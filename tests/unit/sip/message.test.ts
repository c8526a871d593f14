import { describe, expect, it } from 'vitest';
import {
  SipError,
  SipRequest,
  SipResponse,
  formatNameAddr,
  headerKey,
  parseMessage,
  parseNameAddr,
  validateMandatory,
} from '../../../src/sip/message/index.js';

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

  it('keeps every header name as written, with its key, whether or not it is a common spelling', () => {
    const names = ['Via', 'v', 'VIA', 'via', 'From', 'f', 'To', 't', 'TO', 'Call-ID', 'Call-Id', 'i', 'CSeq', 'Cseq', 'Contact', 'm',
      'Content-Type', 'Content-Typ', 'Content-Types', 'c', 'Max-Forwards', 'X-MS-SBC', 'X-Ms-Sbc', 'Supported', 'k', 'Subject', 's', 'X', 'x', 'Session-Expires'];
    const lines = names.map((n, i) => `${n}: value-${i}`);
    const text = ['OPTIONS sip:a@b SIP/2.0', ...lines, 'Content-Length: 0', '', ''].join('\r\n');
    const m = parseMessage(Buffer.from(text));
    expect(m.headers.slice(0, names.length).map((h) => h.name)).toEqual(names);
    expect(m.headers.slice(0, names.length).map((h) => h.key)).toEqual(names.map((n) => headerKey(n)));
    expect(m.headers.slice(0, names.length).map((h) => h.value)).toEqual(names.map((_n, i) => `value-${i}`));
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

const BYE = [
  'BYE sip:bob@192.0.2.4 SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds10',
  'Max-Forwards: 70',
  'From: "Alice \\"The Great\\"" <sip:alice@example.com>;tag=1928301774',
  'To: <sip:bob@example.com>;tag=a6c85cf',
  'Call-ID: a84b4c76e66710',
  'CSeq: 231 BYE',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

function err(fn: () => unknown): SipError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SipError);
    return e as SipError;
  }
  throw new Error('expected a SipError');
}

describe('parseMessage framing', () => {
  it('keeps raw and takes the body as a view of the input (no copy)', () => {
    const buf = Buffer.from(INVITE, 'utf8');
    const m = parseMessage(buf);
    expect(m.raw).toBe(buf);
    expect(m.body.buffer).toBe(buf.buffer);
    expect(m.body.byteOffset - buf.byteOffset).toBe(buf.length - 7);
  });

  it('skips leading CRLFs (§7.5) and accepts bare LF line ends', () => {
    const m = parseMessage(Buffer.from('\r\n\r\n' + BYE.replace(/\r\n/g, '\n')));
    expect(m.callId).toBe('a84b4c76e66710');
    expect(m.raw!.toString().startsWith('BYE ')).toBe(true);
  });

  it('rejects a header section without its empty line, and garbage lines', () => {
    expect(err(() => parseMessage(Buffer.from(BYE.slice(0, -2)))).message).toMatch(/no empty line/);
    expect(err(() => parseMessage(Buffer.from(BYE.replace('Max-Forwards: 70', 'Max-Forwards 70')))).statusCode).toBe(400);
    expect(err(() => parseMessage(Buffer.from(BYE.replace('Max-Forwards:', 'Max Forwards:')))).message).toMatch(/invalid header name/);
    expect(err(() => parseMessage(Buffer.from(BYE.replace('\r\nVia', '\r\n Via')))).message).toMatch(/continuation line before/);
    expect(err(() => parseMessage(Buffer.from('\r\n\r\n'))).message).toMatch(/empty message/);
  });

  it('unfolds continuation lines (SP or HTAB) into one SP', () => {
    const m = parseMessage(Buffer.from(BYE.replace('Call-ID: a84b4c76e66710', 'Subject: one\r\n\ttwo\r\n   three\r\nCall-ID:\r\n a84b4c76e66710')));
    expect(m.get('subject')).toBe('one two three');
    expect(m.callId).toBe('a84b4c76e66710');
  });

  it('validates Content-Length: digits only, in range, not conflicting', () => {
    const withCl = (v: string): Buffer => Buffer.from(BYE.replace('Content-Length: 0', v));
    expect(err(() => parseMessage(withCl('Content-Length: 99999999999'))).code).toBe('SIP_ERR_CONTENT_LENGTH');
    expect(err(() => parseMessage(withCl('Content-Length: 4294967296'))).message).toMatch(/out of range/);
    expect(err(() => parseMessage(withCl('Content-Length: 0x0'))).statusCode).toBe(400);
    expect(err(() => parseMessage(withCl('Content-Length: +0'))).statusCode).toBe(400);
    expect(err(() => parseMessage(withCl('Content-Length: 0\r\nl: 1'))).message).toMatch(/conflicting/);
    expect(parseMessage(withCl('Content-Length: 0\r\nl: 000')).body.length).toBe(0);
    expect(parseMessage(withCl('Content-Length:    0   ')).body.length).toBe(0);
  });

  it('enforces maxSize with SIP_ERR_TOO_LARGE (513), counting only the message in a datagram', () => {
    const buf = Buffer.from(BYE);
    expect(parseMessage(buf, { maxSize: buf.length }).callId).toBe('a84b4c76e66710');
    const e = err(() => parseMessage(buf, { maxSize: buf.length - 1 }));
    expect({ code: e.code, status: e.statusCode }).toEqual({ code: 'SIP_ERR_TOO_LARGE', status: 513 });
    expect(err(() => parseMessage(buf, { maxSize: 100, datagram: true })).statusCode).toBe(513);
    expect(err(() => parseMessage(buf.subarray(0, 200), { maxSize: 100 })).statusCode).toBe(513);
    const trailing = Buffer.concat([buf, Buffer.alloc(500, 0x41)]);
    expect(parseMessage(trailing, { maxSize: buf.length, datagram: true }).raw!.length).toBe(buf.length);
  });

  it('answers 505 for another SIP version, 400 for malformed start lines', () => {
    expect(err(() => parseMessage(Buffer.from(BYE.replace('SIP/2.0\r\n', 'SIP/3.0\r\n')))).statusCode).toBe(505);
    expect(err(() => parseMessage(Buffer.from('SIP/1.0 200 OK\r\n\r\n'))).code).toBe('SIP_ERR_VERSION');
    expect(parseMessage(Buffer.from(BYE.replace('SIP/2.0\r\n', 'sip/2.0\r\n'))).isRequest).toBe(true);
    for (const line of ['SIP/2.0 099 Low', 'SIP/2.0 700 High', 'SIP/2.0 20 OK', 'BYE sip:bob@h SIP/2.0 x', 'BYE sip:bob@h', 'B Y E sip:bob@h SIP/2.0', 'BYE sip:bob@h HTTP/1.1']) {
      expect(err(() => parseMessage(Buffer.from(`${line}\r\nContent-Length: 0\r\n\r\n`))).code).toBe('SIP_ERR_PARSE');
    }
  });

  it('keeps header values byte-exact apart from SP/HTAB trimming (U+FEFF, NUL survive)', () => {
    const m = parseMessage(Buffer.from(BYE.replace('CSeq: 231 BYE', 'CSeq: 231 BYE\r\nX-Odd:\t\uFEFFa\u0000b \t')));
    expect(m.get('x-odd')).toBe('\uFEFFa\u0000b');
  });
});

describe('SipMessage typed views', () => {
  it('are lazy, cached, and invalidated by set/add/remove', () => {
    const m = parseMessage(Buffer.from(BYE));
    // Not parsed yet: an edit of the raw header list before first use is seen.
    m.headers.find((h) => h.key === 'to')!.value = '<sip:carol@example.com>;tag=zz';
    expect(m.toTag).toBe('zz');
    expect(m.to).toBe(m.to);
    m.set('To', '<sip:dave@example.com>;tag=yy');
    expect(m.toTag).toBe('yy');
    expect(m.vias).toHaveLength(1);
    m.prepend('Via', 'SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKtop');
    expect(m.topVia).toMatchObject({ transport: 'TCP', host: '2001:db8::9', port: 5070 });
    m.removeFirst('Via');
    expect(m.topVia.host).toBe('192.0.2.1');
  });

  it('setTopVia rewrites the first Via element in text and view and keeps the other views cached', () => {
    const m = parseMessage(Buffer.from(INVITE));
    validateMandatory(m);
    const from = m.from;
    const [, second, third] = m.vias;
    const top = m.topVia;
    m.setTopVia({ ...top, params: new Map([...top.params, ['received', '192.0.2.99']]) });
    expect(m.get('via')).toBe('SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK776asdhds;rport;received=192.0.2.99');
    expect(m.headers.find((h) => h.key === 'via')!.name).toBe('v');
    expect(m.topVia.params.get('received')).toBe('192.0.2.99');
    expect(top.params.has('received')).toBe(false); // the old view object is not changed
    expect(m.vias.slice(1)).toEqual([second, third]);
    expect(m.from).toBe(from); // still the cached object
    // The view and the text agree: parsing the text again gives the same Vias.
    const again = parseMessage(m.toBuffer());
    expect(again.vias).toEqual(m.vias);
  });

  it('invalidate(name) drops one view only; shareView reuses a parsed view for copied lines', () => {
    const m = parseMessage(Buffer.from(INVITE));
    const from = m.from;
    const to = m.to;
    m.headers[m.headers.findIndex((h) => h.key === 'to')] = { name: 'To', key: 'to', value: '<sip:x@example.com>;tag=t2' };
    m.invalidate('To');
    expect(m.toTag).toBe('t2');
    expect(m.to).not.toBe(to);
    expect(m.from).toBe(from);
    const res = new SipResponse(200, 'OK');
    for (const v of m.getAll('via')) res.add('Via', v);
    res.shareView(m, 'via'); // nothing parsed yet: nothing shared, res parses its own
    expect(res.vias).not.toBe(m.vias);
    const res2 = new SipResponse(200, 'OK');
    for (const v of m.getAll('via')) res2.add('Via', v);
    res2.shareView(m, 'via');
    expect(res2.vias).toBe(m.vias);
    expect(res2.vias).toEqual(res.vias);
  });

  it('reads quoted display names with escaped quotes and formats them back', () => {
    const m = parseMessage(Buffer.from(BYE));
    expect(m.from.displayName).toBe('Alice "The Great"');
    expect(formatNameAddr(m.from)).toBe('"Alice \\"The Great\\"" <sip:alice@example.com>;tag=1928301774');
    expect(parseNameAddr(formatNameAddr(m.from)).displayName).toBe('Alice "The Great"');
  });

  it('splits list headers outside quotes and brackets, strictly for typed views', () => {
    const m = parseMessage(Buffer.from(BYE.replace('CSeq: 231 BYE', 'CSeq: 231 BYE\r\nContact: "Bell, A." <sip:a@h1>;q=0.5, <sip:b@h2>\r\nm: *')));
    expect(m.contacts.map((c) => [c.displayName ?? null, c.uri, c.params.get('q') ?? null])).toEqual([
      ['Bell, A.', 'sip:a@h1', '0.5'],
      [null, 'sip:b@h2', null],
    ]);
    m.set('Contact', '<sip:a@h1>,,<sip:b@h2>');
    expect(err(() => m.contacts).message).toMatch(/empty element in Contact/);
    expect(m.getAll('Contact')).toEqual(['<sip:a@h1>', '<sip:b@h2>']);
  });

  it('checks CSeq and Max-Forwards ranges', () => {
    const m = parseMessage(Buffer.from(BYE));
    m.set('CSeq', `${2 ** 31 - 1} BYE`);
    expect(m.cseq.seq).toBe(2 ** 31 - 1);
    for (const bad of [`${2 ** 31} BYE`, 'BYE', '1', '-1 BYE', '1 B Y E', '00000000001 BYE']) {
      m.set('CSeq', bad);
      expect(err(() => m.cseq).statusCode).toBe(400);
    }
    m.set('Max-Forwards', '255');
    expect(m.maxForwards).toBe(255);
    for (const bad of ['256', '-1', '', '7 0', 'ten']) {
      m.set('Max-Forwards', bad);
      expect(err(() => m.maxForwards).message).toMatch(/Max-Forwards/);
    }
    m.remove('Max-Forwards');
    expect(m.maxForwards).toBeUndefined();
  });

  it('parses Expires and a GMT Date', () => {
    const m = parseMessage(Buffer.from(BYE));
    expect(m.expires).toBeUndefined();
    m.set('Expires', '4294967295');
    expect(m.expires).toBe(4294967295);
    m.set('Expires', '4294967296');
    expect(err(() => m.expires).statusCode).toBe(400);
    m.set('Date', 'Sat, 13 Nov 2010 23:29:00 GMT');
    expect(m.date!.toISOString()).toBe('2010-11-13T23:29:00.000Z');
    m.set('Date', 'Sat, 31 Feb 2010 23:29:00 GMT');
    expect(err(() => m.date).message).toMatch(/invalid Date/);
  });

  it('validateMandatory names the problem and uses 400/416', () => {
    const v = (text: string): SipError => err(() => validateMandatory(parseMessage(Buffer.from(text))));
    expect(v(BYE.replace(/Via: [^\r]*\r\n/, '')).message).toMatch(/missing Via/);
    expect(v(BYE.replace(/From: [^\r]*\r\n/, '')).message).toMatch(/missing From/);
    expect(v(BYE.replace('Call-ID: a84b4c76e66710', 'Call-ID: a b')).message).toMatch(/malformed Call-ID/);
    expect(v(BYE.replace('BYE sip:bob@192.0.2.4', 'BYE mailto:bob@example.com')).statusCode).toBe(416);
    expect(v(BYE.replace('Max-Forwards: 70', 'Max-Forwards: 70\r\nMax-Forwards: 69')).message).toMatch(/Max-Forwards/);
    expect(() => validateMandatory(parseMessage(Buffer.from(BYE)))).not.toThrow();
  });

  it('serializes with the Content-Length recomputed in bytes, once', () => {
    const m = parseMessage(Buffer.from(BYE.replace('Content-Length: 0', 'l: 0')));
    m.body = Buffer.from('€', 'utf8');
    const text = m.toString();
    expect(text.match(/Content-Length/gi)).toHaveLength(1);
    expect(text.endsWith('Content-Length: 3\r\n\r\n€')).toBe(true);
  });
});

describe('canonical header names', () => {
  it('spells known names as their RFCs do and others Word-Capitalized, whatever the input case', async () => {
    const { canonicalName } = await import('../../../src/sip/message/header-names.js');
    expect(canonicalName('min-se')).toBe('Min-SE'); // RFC 4028
    expect(canonicalName('MIN-SE')).toBe('Min-SE');
    expect(canonicalName('call-id')).toBe('Call-ID');
    expect(canonicalName('i')).toBe('Call-ID');
    expect(canonicalName('x')).toBe('Session-Expires');
    expect(canonicalName('cseq')).toBe('CSeq');
    expect(canonicalName('x-ms-teams-foo')).toBe('X-Ms-Teams-Foo');
  });
});
