import { describe, expect, it } from 'vitest';
import {
  SipError,
  formatUri,
  formatVia,
  parseParams,
  parseParamsStrict,
  parseUri,
  parseVia,
  splitList,
  splitListStrict,
  unescapeUri,
} from '../../../src/sip/message/index.js';

function err(fn: () => unknown): SipError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SipError);
    return e as SipError;
  }
  throw new Error('expected a SipError');
}

describe('parseUri', () => {
  it('parses sip/sips URIs with userinfo, port, params and headers', () => {
    expect(parseUri('SIPS:Alice:secret@Example.COM:5061;transport=TLS;lr?Subject=hi&Priority=urgent')).toEqual({
      scheme: 'sips',
      user: 'Alice',
      password: 'secret',
      host: 'Example.COM',
      port: 5061,
      params: new Map([
        ['transport', 'TLS'],
        ['lr', null],
      ]),
      headers: 'Subject=hi&Priority=urgent',
    });
  });

  it('parses IPv6 references (RFC 5118) and rejects broken ones', () => {
    expect(parseUri('sip:[2001:db8::10]:5070;maddr=[2001:db8::1]')).toMatchObject({ host: '2001:db8::10', port: 5070 });
    expect(parseUri('sip:alice@[::ffff:192.0.2.1]')).toMatchObject({ user: 'alice', host: '::ffff:192.0.2.1' });
    for (const bad of ['sip:[2001:db8::10', 'sip:[2001:zz::1]', 'sip:[]', 'sip:[2001:db8::1]x', 'sip:2001:db8::1']) {
      expect(err(() => parseUri(bad)).statusCode).toBe(416);
    }
  });

  it('lets the user part carry ; and ? (RFC 4475 §3.1.1.2, §3.1.1.9)', () => {
    expect(parseUri('sip:user;par=u%40example.net@example.com')).toMatchObject({ user: 'user;par=u%40example.net', host: 'example.com' });
    const u = parseUri('sip:a?b;c@example.com;p=1?h=v');
    expect(u).toMatchObject({ user: 'a?b;c', host: 'example.com', headers: 'h=v' });
    expect(u.params.get('p')).toBe('1');
  });

  it('parses tel URIs (RFC 3966)', () => {
    expect(parseUri('tel:+1-201-555-0123;phone-context=example.com')).toEqual({
      scheme: 'tel',
      user: '+1-201-555-0123',
      host: '',
      params: new Map([['phone-context', 'example.com']]),
    });
    expect(parseUri('TEL:7042;phone-context=+1-201').user).toBe('7042');
    expect(err(() => parseUri('tel:')).statusCode).toBe(416);
    expect(err(() => parseUri('tel:12 34')).statusCode).toBe(416);
  });

  it('rejects unknown schemes, bad ports, empty hosts and forbidden characters with 416', () => {
    for (const bad of ['http://example.com', 'urn:x', 'sip:', 'sip:@host', 'sip:host:65536', 'sip:host:5x', 'sip:a b@host', 'sip:<a>@host', 'sip:host\u0000']) {
      expect(err(() => parseUri(bad)).code).toBe('SIP_ERR_BAD_URI');
    }
  });

  it('round-trips through formatUri', () => {
    for (const s of ['sip:alice@example.com', 'sips:bob:pw@[2001:db8::1]:5061;transport=tls', 'sip:example.com;lr', 'sip:u@h?Subject=x', 'tel:+14255550100;ext=12']) {
      expect(formatUri(parseUri(s))).toBe(s);
    }
  });

  it('finds %-escaped parameter names by their plain name (RFC 3261 §19.1.4)', () => {
    const u = parseUri('sip:host;%6C%72;n%61me=v%61lue');
    expect(u.params.has('lr')).toBe(true);
    expect(u.params.get('name')).toBe('v%61lue');
  });
});

describe('unescapeUri', () => {
  it('decodes escapes as UTF-8 and keeps a % that is not an escape', () => {
    expect(unescapeUri('%75se%72')).toBe('user');
    expect(unescapeUri('%E2%82%AC%20x')).toBe('€ x');
    expect(unescapeUri('null-%00-null')).toBe('null-\0-null');
    expect(unescapeUri('%Z%45%')).toBe('%ZE%');
    expect(unescapeUri('100%')).toBe('100%');
    expect(unescapeUri('plain')).toBe('plain');
  });
});

describe('header parameters', () => {
  it('strict: SWS around ; and =, quoted values may hold ; and escaped quotes', () => {
    expect([...parseParamsStrict(' ;  tag = 1918181833n ; q=0.3;x="a;b \\"c\\"";lr')]).toEqual([
      ['tag', '1918181833n'],
      ['q', '0.3'],
      ['x', '"a;b \\"c\\""'],
      ['lr', null],
    ]);
    expect(parseParamsStrict('').size).toBe(0);
  });

  it('strict: rejects empty parameters, empty values, junk and unterminated quotes (RFC 4475 §3.1.2.1)', () => {
    for (const bad of [';;', ';a;;b', ';a;', ';a=', ';a="x', 'junk;a=1', ';a=b c', ';(=1']) {
      expect(err(() => parseParamsStrict(bad)).statusCode).toBe(400);
    }
  });

  it('lenient parseParams keeps its tolerant behaviour', () => {
    expect([...parseParams(';a=1;;b')]).toEqual([
      ['a', '1'],
      ['b', null],
    ]);
    expect(parseParams(';;').size).toBe(0);
    expect(err(() => parseParams(';;', ';', true)).message).toMatch(/empty or invalid parameter name/);
  });
});

describe('Via', () => {
  it('parses LWS around slashes and colons, IPv6 sent-by and unknown transports', () => {
    expect(parseVia('SIP / 2.0 / udp  [2001:db8::1] : 5062 ; branch = z9hG4bK1 ;received=2001:db8::9;rport')).toEqual({
      protocol: 'SIP/2.0',
      transport: 'UDP',
      host: '2001:db8::1',
      port: 5062,
      params: new Map<string, string | null>([
        ['branch', 'z9hG4bK1'],
        ['received', '2001:db8::9'],
        ['rport', null],
      ]),
    });
    expect(parseVia('SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en').transport).toBe('UNKNOWN');
  });

  it('rejects malformed values with 400', () => {
    for (const bad of ['SIP/2.0/UDP', 'SIP/2.0 UDP host', 'SIP/2.0/UDP host junk', 'SIP/2.0/UDP host:70000', 'SIP/2.0/UDP 192.0.2.15;;', 'SIP/2.0/UDP h;branch=']) {
      expect(err(() => parseVia(bad)).code).toBe('SIP_ERR_BAD_HEADER');
    }
  });

  it('round-trips through formatVia', () => {
    const s = 'SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx;rport=5061;received=192.0.2.1';
    expect(formatVia(parseVia(s))).toBe(s);
  });
});

describe('list splitting', () => {
  it('splits on top-level commas only', () => {
    const v = '"Bell, A." <sip:a@h;x=1,2>;q=0.1 , <sip:b@h>';
    expect(splitList(v)).toEqual(['"Bell, A." <sip:a@h;x=1,2>;q=0.1', '<sip:b@h>']);
    expect(splitListStrict(v, 'Contact')).toEqual(splitList(v));
  });

  it('strict splitting rejects empty elements and unbalanced quotes or brackets', () => {
    for (const bad of ['a,,b', 'a,', ',a', '', '"a, b', '<sip:a@h, b']) {
      expect(err(() => splitListStrict(bad, 'Via')).statusCode).toBe(400);
    }
  });
});
