import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAppSip, wireHeaderName } from '../../../src/drachtio/app-sip.js';
import { optionsFromArgs } from '../../../src/drachtio/cli.js';
import { ConfigError } from '../../../src/drachtio/conf-xml.js';
import { chooseListenPoint, hostport, isOwnAddress, parseContact, transportUri } from '../../../src/drachtio/contacts.js';
import { decode, safeField, wireTime } from '../../../src/drachtio/wire/codec.js';
import { WireFramer, WireProtocolError } from '../../../src/drachtio/wire/framer.js';
import { headerKey } from '../../../src/sip/message/index.js';
import type { ListenPoint } from '../../../src/sip/transport/types.js';

describe('wire framing (drachtio-wire-protocol.md §2)', () => {
  it('counts UTF-8 bytes, not characters', () => {
    const payload = 'id|sip||\r\nINFO sip:x SIP/2.0\r\nX-Name: Zoë 🎧\r\n\r\n';
    const frame = WireFramer.encode(payload);
    expect(frame.toString('latin1', 0, frame.indexOf(0x23))).toBe(String(Buffer.byteLength(payload)));
    expect(new WireFramer().push(frame)).toEqual([payload]);
  });

  it('yields the same payloads for any split of the stream (partial and coalesced reads)', () => {
    const text = fc.string({ unit: 'binary', maxLength: 200 });
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map((p) => WireFramer.encode(p)));
        const f = new WireFramer();
        const out: string[] = [];
        let off = 0;
        let i = 0;
        while (off < stream.length) {
          const n = cuts[i++ % cuts.length]!;
          out.push(...f.push(stream.subarray(off, off + n)));
          off += n;
        }
        expect(out).toEqual(payloads.map((p) => Buffer.from(p, 'utf8').toString('utf8')));
      }),
      { numRuns: 300 },
    );
  });

  it('treats a non-numeric or absurd length prefix as fatal', () => {
    expect(() => new WireFramer().push(Buffer.from('12a#hello'))).toThrow(WireProtocolError);
    expect(() => new WireFramer().push(Buffer.from('#hello'))).toThrow(WireProtocolError);
    expect(() => new WireFramer().push(Buffer.from('1234567890123'))).toThrow(WireProtocolError);
    expect(() => new WireFramer(100).push(Buffer.from('101#'))).toThrow(/exceeds the limit/);
    // an incomplete but valid prefix waits for more bytes
    expect(new WireFramer().push(Buffer.from('12'))).toEqual([]);
  });
});

describe('wire codec', () => {
  it('splits only the leader (text before the first CR) on |', () => {
    expect(decode('m1|sip|T1||\r\nMESSAGE sip:a SIP/2.0\r\nX: a|b\r\n\r\nbody|with|pipes')).toEqual({
      msgId: 'm1',
      type: 'sip',
      args: ['T1', '', ''],
      body: 'MESSAGE sip:a SIP/2.0\r\nX: a|b\r\n\r\nbody|with|pipes',
    });
    expect(decode('m2|ping')).toEqual({ msgId: 'm2', type: 'ping', args: [], body: '' });
    expect(decode('garbage')).toBeUndefined();
  });

  it('formats time as HH:MM:SS.uuuuuu (UTC) and keeps separators out of fields', () => {
    expect(wireTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 67)))).toBe('03:04:05.067000');
    expect(wireTime(new Date(Date.UTC(2026, 0, 2, 23, 59, 59, 999)))).toBe('23:59:59.999000');
    expect(wireTime(new Date(Date.UTC(2026, 0, 2, 0, 0, 0, 0)))).toBe('00:00:00.000000');
    // Now (cached per millisecond): the same form, and the time of day of Date.now().
    let t: number;
    let now: string;
    do {
      t = Date.now();
      now = wireTime();
    } while (Date.now() !== t);
    expect(now).toBe(wireTime(new Date(t)));
    expect(safeField('a|b\r\nc')).toBe('a b  c');
  });

  it('sip-server --trying-delay-ms sets when the server sends its own 100 Trying (0..200 ms)', () => {
    const base = ['--contact', 'sip:127.0.0.1:5060;transport=udp'];
    expect(optionsFromArgs(base).opts.tryingDelayMs).toBeUndefined();
    expect(optionsFromArgs([...base, '--trying-delay-ms', '0']).opts.tryingDelayMs).toBe(0);
    expect(optionsFromArgs([...base, '--trying-delay-ms', '150']).opts.tryingDelayMs).toBe(150);
    expect(() => optionsFromArgs([...base, '--trying-delay-ms', '201'])).toThrow(ConfigError);
    expect(() => optionsFromArgs([...base, '--trying-delay-ms', 'soon'])).toThrow(ConfigError);
  });
});

describe('app SIP text (§5)', () => {
  it('drops the headers the server computes and invalid header lines, keeps the body bytes', () => {
    const s = parseAppSip('INVITE sip:bob@example.com SIP/2.0\r\nvia: SIP/2.0/UDP x\r\nRoute: <sip:r>\r\nContent-Length: 3\r\nbad header: x\r\nX-Ok: 1\r\nfrom: sip:1@localhost\r\n\r\nv=0 ä')!;
    expect(s.method).toBe('INVITE');
    expect(s.headers.map((h) => h.key)).toEqual(['x-ok', 'from']);
    expect(s.dropped).toEqual(['bad header: x']);
    expect(s.body.toString('utf8')).toBe('v=0 ä');
    const r = parseAppSip('SIP/2.0 486 Busy Here\r\nX-Foo: bar\r\n\r\n')!;
    expect([r.isResponse, r.status, r.reason]).toEqual([true, 486, 'Busy Here']);
    expect(parseAppSip('this is not SIP')).toBeUndefined();
  });

  it('reads any text line by line exactly as a split on CRLF would (one-pass parser vs the obvious one)', () => {
    // Oracle: split the header section into lines, `name: value` per line, invalid names dropped.
    const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
    const IGNORED = ['via', 'route', 'record-route', 'rseq', 'content-length'];
    const oracle = (text: string): { headers: string[]; dropped: string[]; body: string } => {
      const sep = text.indexOf('\r\n\r\n');
      const head = sep < 0 ? text : text.slice(0, sep);
      const headers: string[] = [];
      const dropped: string[] = [];
      for (const line of head.split('\r\n').slice(1)) {
        if (!line) continue;
        const colon = line.indexOf(':');
        const name = colon > 0 ? line.slice(0, colon).trim() : '';
        if (!name || !TOKEN.test(name)) dropped.push(line.slice(0, 80));
        else if (!IGNORED.includes(headerKey(name))) headers.push(`${name}=${line.slice(colon + 1).trim()}`);
      }
      return { headers, dropped, body: sep < 0 ? '' : text.slice(sep + 4) };
    };
    const piece = fc.constantFrom('\r\n', '\r', '\n', ':', ' ', '\t', 'Via', 'X-A', 'to', 'a b', 'é', ';tag=1', 'v=0');
    const lines = fc.array(fc.array(piece, { maxLength: 6 }).map((p) => p.join('')), { maxLength: 8 });
    fc.assert(
      fc.property(lines, (ls) => {
        const text = ['SIP/2.0 200 OK', ...ls].join('\r\n');
        const got = parseAppSip(text)!;
        const want = oracle(text);
        expect(got.headers.map((h) => `${h.name}=${h.value}`)).toEqual(want.headers);
        expect(got.dropped).toEqual(want.dropped);
        expect(got.body.toString('utf8')).toBe(want.body);
      }),
      { numRuns: 3000 },
    );
  });

  it('capitalises custom header names but keeps X- names as given', () => {
    expect(wireHeaderName('subject')).toBe('Subject');
    expect(wireHeaderName('p-charging-vector')).toBe('P-Charging-Vector');
    expect(wireHeaderName('x-custom-thing')).toBe('x-custom-thing');
    expect(wireHeaderName('call-id')).toBe('Call-ID');
  });
});

describe('contacts and transport choice (§14)', () => {
  const lp = (protocol: 'udp' | 'tcp' | 'tls', host: string, port: number, externalIp?: string): ListenPoint => ({ protocol, host, port, ...(externalIp ? { externalIp } : {}) });

  it('expands drachtio contacts into one listen point per protocol', () => {
    expect(parseContact('sip:10.0.0.5:5060;transport=udp,tcp')).toEqual([
      { protocol: 'udp', host: '10.0.0.5', port: 5060 },
      { protocol: 'tcp', host: '10.0.0.5', port: 5060 },
    ]);
    expect(parseContact('sips:10.0.0.5;transport=tls', '203.0.113.9')).toEqual([{ protocol: 'tls', host: '10.0.0.5', port: 5061, externalIp: '203.0.113.9' }]);
    expect(parseContact('sip:*;transport=udp')).toEqual([{ protocol: 'udp', host: '0.0.0.0', port: 5060 }]);
    expect(() => parseContact('sip:10.0.0.5;transport=sctp')).toThrow(/unsupported transport sctp/);
  });

  it('advertises external addresses and builds transport Contacts', () => {
    const tls = lp('tls', '10.0.0.5', 5061, '203.0.113.9');
    expect(hostport(tls)).toBe('tls/203.0.113.9:5061');
    expect(hostport(tls, true)).toBe('tls/10.0.0.5:5061');
    expect(transportUri(tls)).toBe('sips:203.0.113.9:5061');
    expect(transportUri(lp('tcp', '10.0.0.5', 5060), 'alice')).toBe('sip:alice@10.0.0.5:5060;transport=tcp');
  });

  it('chooses by explicit protocol, then address family and closeness', () => {
    const lps = [lp('udp', '10.0.0.5', 5060), lp('tcp', '10.0.0.5', 5060), lp('udp', '127.0.0.1', 5060), lp('udp', '2001:db8::5', 5060)];
    expect(chooseListenPoint(lps, '10.0.0.99', undefined)).toEqual(lps[0]);
    expect(chooseListenPoint(lps, '127.0.0.7', undefined)).toEqual(lps[2]);
    expect(chooseListenPoint(lps, '10.0.0.99', 'tcp')).toEqual(lps[1]);
    expect(chooseListenPoint(lps, '2001:db8::9', undefined)).toEqual(lps[3]);
    expect(chooseListenPoint(lps, '10.0.0.99', 'tls')).toBeUndefined();
    expect(isOwnAddress(lps, '10.0.0.5', 5060)).toBe(true);
    expect(isOwnAddress(lps, '10.0.0.5', 5070)).toBe(false);
    expect(isOwnAddress(lps, 'localhost', undefined)).toBe(true);
  });
});
