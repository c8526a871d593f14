/**
 * RFC 4475 (SIP torture tests) §3.1.1 valid and §3.1.2 invalid messages, plus the §3.3 ones
 * that concern the message layer. Each fixture carries a verdict:
 *   - valid: parses (as a UDP datagram), passes validateMandatory, and exposes the right fields;
 *   - rejected: parseMessage throws SipError with the status the RFC asks for;
 *   - semantic: parses, and the error surfaces where the message is used: validateMandatory
 *     (the transport runs it on every message) or the typed view named by `probe`.
 */
import { describe, expect, it } from 'vitest';
import {
  type SipErrorCode,
  SipError,
  type SipMessage,
  SipRequest,
  SipResponse,
  parseMessage,
  parseUri,
  unescapeUri,
  validateMandatory,
} from '../../../src/sip/message/index.js';
import { loadFixture } from '../../fixtures/rfc4475/load.js';

type Verdict =
  | { kind: 'valid'; check: (m: SipMessage) => void }
  | { kind: 'rejected'; status: number; code: SipErrorCode; match: RegExp }
  | { kind: 'semantic'; status: number; code: SipErrorCode; match: RegExp; probe?: (m: SipMessage) => unknown; check?: (m: SipMessage) => void };

interface Case {
  name: string;
  section: string;
  title: string;
  verdict: Verdict;
}

const req = (m: SipMessage): SipRequest => {
  expect(m).toBeInstanceOf(SipRequest);
  return m as SipRequest;
};
const res = (m: SipMessage): SipResponse => {
  expect(m).toBeInstanceOf(SipResponse);
  return m as SipResponse;
};
const valid = (check: (m: SipMessage) => void): Verdict => ({ kind: 'valid', check });
const rejected = (status: number, code: SipErrorCode, match: RegExp): Verdict => ({ kind: 'rejected', status, code, match });
const semantic = (status: number, code: SipErrorCode, match: RegExp, more: { probe?: (m: SipMessage) => unknown; check?: (m: SipMessage) => void } = {}): Verdict => ({
  kind: 'semantic',
  status,
  code,
  match,
  ...more,
});

const CASES: Case[] = [
  // ---------------------------------------------------------------- §3.1.1 valid messages
  {
    name: 'wsinv',
    section: '3.1.1.1',
    title: 'A Short Tortuous INVITE',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.method).toBe('INVITE');
      expect(r.uri).toBe('sip:vivekg@chair-dnrc.example.com;unknownparam');
      expect(r.parsedUri).toMatchObject({ scheme: 'sip', user: 'vivekg', host: 'chair-dnrc.example.com' });
      expect(r.parsedUri.params.has('unknownparam')).toBe(true);
      expect(r.to).toMatchObject({ uri: 'sip:vivekg@chair-dnrc.example.com', bracketed: false });
      expect(r.toTag).toBe('1918181833n');
      // "J Rosenberg \\\"" : quoted-pairs \\ and \" resolve to a backslash and a quote.
      expect(r.from.displayName).toBe('J Rosenberg \\"');
      expect(r.from.uri).toBe('sip:jdrosen@example.com');
      expect(r.fromTag).toBe('98asjd8');
      expect(r.maxForwards).toBe(68);
      expect(r.callId).toBe('wsinv.ndaksdj@192.0.2.1');
      expect(r.cseq).toEqual({ seq: 9, method: 'INVITE' });
      expect(r.vias.map((v) => [v.protocol, v.transport, v.host, v.params.get('branch')])).toEqual([
        ['SIP/2.0', 'UDP', '192.0.2.2', '390skdjuw'],
        ['SIP/2.0', 'TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
        ['SIP/2.0', 'UDP', '192.168.255.111', 'z9hG4bK30239'],
      ]);
      expect(r.get('Subject')).toBe('');
      expect(r.get('newfangledheader')).toBe('newfangled value continued newfangled value');
      expect(r.get('UnknownHeaderWithUnusualValue')).toBe(';;,,;;,;');
      expect(r.routes.map((x) => x.uri)).toEqual(['sip:services.example.com;lr;unknownwith=value;unknown-no-value']);
      const route = parseUri(r.routes[0]!.uri);
      expect([...route.params]).toEqual([['lr', null], ['unknownwith', 'value'], ['unknown-no-value', null]]);
      expect(r.contacts).toHaveLength(1);
      expect(r.contacts[0]).toMatchObject({ displayName: 'Quoted string ""', uri: 'sip:jdrosen@example.com' });
      expect([...r.contacts[0]!.params]).toEqual([['newparam', 'newvalue'], ['secondparam', null], ['q', '0.33']]);
      expect(r.contentType).toBe('application/sdp');
      expect(r.body.length).toBe(150);
      expect(r.body.toString('latin1')).toMatch(/^v=0\r\n[^]*a=rtpmap:31 LPC\r\n$/);
    }),
  },
  {
    name: 'intmeth',
    section: '3.1.1.2',
    title: 'Wide Range of Valid Characters',
    verdict: valid((m) => {
      const r = req(m);
      const method = "!interesting-Method0123456789_*+`.%indeed'~";
      expect(r.method).toBe(method);
      expect(r.parsedUri).toMatchObject({
        scheme: 'sip',
        user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
        password: "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)",
        host: 'example.com',
      });
      expect(r.parsedUri.headers).toBeUndefined();
      expect(r.topVia.params.get('branch')).toBe("z9hG4bK-.!%66*_+`'~");
      expect(r.to.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
      expect(r.to.uri).toBe("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com");
      expect(r.from.displayName).toBe("token1~` token2'+_ token3*%!.-");
      expect(r.from.params.get("fromparam''~+*_!.-%")).toBe('"работающий"');
      expect(r.fromTag).toBe("_token~1'+`*%!-.");
      expect(r.callId).toBe('intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
      expect(r.cseq).toEqual({ seq: 139122385, method });
      expect(r.maxForwards).toBe(255);
      // The value starts with U+FEFF, which must survive header trimming.
      expect(r.get("extensionHeader-!.%*+_`'~")).toBe('\uFEFF大停電');
      expect(r.body.length).toBe(0);
    }),
  },
  {
    name: 'esc01',
    section: '3.1.1.3',
    title: 'Valid Use of the % Escaping Mechanism',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.parsedUri.host).toBe('example.net');
      expect(unescapeUri(r.parsedUri.user!)).toBe('sips:user@example.com');
      expect(unescapeUri(parseUri(r.to.uri).user!)).toBe('user');
      expect(unescapeUri(parseUri(r.from.uri).user!)).toBe('I have spaces');
      expect(r.callId).toBe('esc01.239409asdfakjkn23onasd0-3234');
      expect(r.contentType).toBe('application/sdp');
      const c = parseUri(r.contacts[0]!.uri);
      expect(unescapeUri(c.user!)).toBe('caller');
      expect(c.params.has('lr')).toBe(true);
      expect(unescapeUri(c.params.get('name')!)).toBe('value%41');
      expect(r.body.length).toBe(150);
    }),
  },
  {
    name: 'escnull',
    section: '3.1.1.4',
    title: 'Escaped Nulls in URIs',
    verdict: valid((m) => {
      const r = req(m);
      expect(unescapeUri(parseUri(r.to.uri).user!)).toBe('null-\0-null');
      expect(unescapeUri(parseUri(r.from.uri).user!)).toBe('null-\0-null');
      expect(r.contacts.map((c) => unescapeUri(parseUri(c.uri).user!))).toEqual(['\0', '\0\0']);
      expect(r.cseq).toEqual({ seq: 14398234, method: 'REGISTER' });
    }),
  },
  {
    name: 'esc02',
    section: '3.1.1.5',
    title: 'Use of % When It Is Not an Escape',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.method).toBe('RE%47IST%45R');
      expect(r.cseq.method).toBe('RE%47IST%45R');
      expect(r.to.displayName).toBe('%Z%45');
      expect(r.topVia.params.get('branch')).toBe('z9hG4bK209%fzsnel234');
      // C%6Fntact is an unknown header, not Contact.
      expect(r.contacts.map((c) => c.uri)).toEqual(['sip:alias1@host1.example.com', 'sip:alias3@host3.example.com']);
      expect(r.get('C%6Fntact')).toBe('<sip:alias2@host2.example.com>');
    }),
  },
  {
    name: 'lwsdisp',
    section: '3.1.1.6',
    title: 'Message with No LWS between Display Name and <',
    verdict: valid((m) => {
      expect(m.from).toMatchObject({ displayName: 'caller', uri: 'sip:caller@example.com' });
      expect(m.fromTag).toBe('323');
    }),
  },
  {
    name: 'longreq',
    section: '3.1.1.7',
    title: 'Long Values in Header Fields',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.to.displayName).toBe(`I have a user name of ${'extreme'.repeat(10)} proportion`);
      const to = parseUri(r.to.uri);
      expect(to.port).toBe(6000);
      expect(to.params.get('unknownparam1')).toBe(`very${'long'.repeat(20)}value`);
      expect(to.params.get(`longparam${'name'.repeat(25)}`)).toBe('shortvalue');
      expect(to.params.get(`very${'long'.repeat(25)}parameternamewithnovalue`)).toBeNull();
      expect(r.from.uri).toBe(`sip:${'amazinglylongcallername'.repeat(5)}@example.net`);
      expect(r.fromTag).toBe(`12${'982'.repeat(50)}424`);
      expect(r.from.params.get(`unknownheaderparam${'name'.repeat(20)}`)).toBe(`unknowheaderparam${'value'.repeat(15)}`);
      expect(r.callId).toBe(`longreq.one${'really'.repeat(20)}longcallid`);
      expect(r.get(`Unknown-${'Long'.repeat(20)}-Name`)).toMatch(/^unknown-(long){20}-value;/);
      expect(r.vias).toHaveLength(34);
      expect(r.vias.slice(0, 33).map((v) => v.host)).toEqual(Array.from({ length: 33 }, (_x, i) => `sip${33 - i}.example.com`));
      expect(r.vias[33]!.params.get('branch')).toBe(`very${'long'.repeat(50)}branchvalue`);
      expect(r.contacts[0]!.uri).toBe(`sip:${'amazinglylongcallername'.repeat(5)}@host5.example.net`);
      expect(r.body.length).toBe(150);
    }),
  },
  {
    name: 'dblreq',
    section: '3.1.1.8',
    title: 'Extra Trailing Octets in a UDP Datagram',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.method).toBe('REGISTER');
      expect(r.callId).toBe('dblreq.0ha0isndaksdj99sdfafnl3lk233412');
      expect(r.body.length).toBe(0);
      // raw is this message only; the trailing INVITE is discarded.
      expect(r.raw!.toString('latin1')).toMatch(/^REGISTER [^]*Content-Length: 0\r\n\r\n$/);
    }),
  },
  {
    name: 'semiuri',
    section: '3.1.1.9',
    title: 'Semicolon-Separated Parameters in URI User Part',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.parsedUri).toMatchObject({ user: 'user;par=u%40example.net', host: 'example.com' });
      expect(r.parsedUri.params.size).toBe(0);
      expect(r.getAll('Accept')).toEqual(['application/sdp', 'application/pkcs7-mime', 'multipart/mixed', 'multipart/signed', 'message/sip', 'message/sipfrag']);
    }),
  },
  {
    name: 'transports',
    section: '3.1.1.10',
    title: 'Varied and Unknown Transport Types',
    verdict: valid((m) => {
      expect(m.vias.map((v) => v.transport)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
      expect(m.callId).toBe('transports.kijh4akdnaqjkwendsasfdj');
    }),
  },
  {
    name: 'mpart01',
    section: '3.1.1.11',
    title: 'Multipart MIME Message',
    verdict: valid((m) => {
      const r = req(m);
      expect(r.method).toBe('MESSAGE');
      expect(r.topVia).toMatchObject({ host: '127.0.0.1', port: 5070 });
      expect(r.topVia.params.get('rport')).toBeNull();
      expect(r.routes[0]!.uri).toBe('sip:127.0.0.1:5080');
      expect(r.get('Identity')).toMatch(/^r5mwreLuyDRYBi\/0TiPwEsY3rEVsk\/G2WxhgTV1PF7hHuLIK0YWVKZ[^ ]*=$/);
      expect(r.contentType).toBe('multipart/mixed;boundary=7a9cbec02ceef655');
      expect(r.date!.toISOString()).toBe('2005-10-15T04:44:56.000Z');
      expect(r.body.length).toBe(553);
      expect(r.body.includes(0)).toBe(true);
      expect(r.body.subarray(-22).toString('latin1')).toBe('--7a9cbec02ceef655--\r\n');
    }),
  },
  {
    name: 'unreason',
    section: '3.1.1.12',
    title: 'Unusual Reason Phrase',
    verdict: valid((m) => {
      const r = res(m);
      expect(r.status).toBe(200);
      expect(r.reason).toBe('= 2**3 * 5**2 но сто девяносто девять - простое');
      expect(r.body.length).toBe(154);
    }),
  },
  {
    name: 'noreason',
    section: '3.1.1.13',
    title: 'Empty Reason Phrase',
    verdict: valid((m) => {
      const r = res(m);
      expect(r.status).toBe(100);
      expect(r.reason).toBe('');
    }),
  },
  // -------------------------------------------------------------- §3.1.2 invalid messages
  {
    name: 'badinv01',
    section: '3.1.2.1',
    title: 'Extraneous Header Field Separators',
    verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /Via/, {
      check: (m) => expect(() => m.contacts).toThrow(expect.objectContaining({ statusCode: 400 })),
    }),
  },
  { name: 'clerr', section: '3.1.2.2', title: 'Content Length Larger Than Message', verdict: rejected(400, 'SIP_ERR_CONTENT_LENGTH', /exceeds/) },
  { name: 'ncl', section: '3.1.2.3', title: 'Negative Content-Length', verdict: rejected(400, 'SIP_ERR_CONTENT_LENGTH', /malformed Content-Length: -999/) },
  {
    name: 'scalar02',
    section: '3.1.2.4',
    title: 'Request Scalar Fields with Overlarge Values',
    verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /CSeq/, {
      check: (m) => {
        expect(() => m.maxForwards).toThrow(/Max-Forwards out of range/);
        expect(() => m.expires).toThrow(/Expires out of range/);
        expect(m.contacts[0]!.params.get('expires')).toBe('280297596632815');
      },
    }),
  },
  { name: 'scalarlg', section: '3.1.2.5', title: 'Response Scalar Fields with Overlarge Values', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /CSeq/) },
  { name: 'quotbal', section: '3.1.2.6', title: 'Unterminated Quoted String in Display Name', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /unterminated quoted/) },
  { name: 'ltgtruri', section: '3.1.2.7', title: '<> Enclosing Request-URI', verdict: rejected(400, 'SIP_ERR_PARSE', /start line/) },
  { name: 'lwsruri', section: '3.1.2.8', title: 'Malformed SIP Request-URI (embedded LWS)', verdict: rejected(400, 'SIP_ERR_PARSE', /start line/) },
  { name: 'lwsstart', section: '3.1.2.9', title: 'Multiple SP Separating Request-Line Elements', verdict: rejected(400, 'SIP_ERR_PARSE', /start line/) },
  { name: 'trws', section: '3.1.2.10', title: 'SP Characters at End of Request-Line', verdict: rejected(400, 'SIP_ERR_PARSE', /start line/) },
  {
    name: 'escruri',
    section: '3.1.2.11',
    title: 'Escaped Headers in SIP Request-URI',
    verdict: semantic(400, 'SIP_ERR_PARSE', /Request-URI must not contain headers/, {
      check: (m) => expect(req(m).parsedUri.headers).toBe('Route=%3Csip:example.com%3E'),
    }),
  },
  {
    name: 'baddate',
    section: '3.1.2.12',
    title: 'Invalid Time Zone in Date Header Field',
    // The RFC lets an element ignore the Date; reading it is what fails.
    verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /malformed Date/, { probe: (m) => m.date, check: (m) => validateMandatory(m) }),
  },
  {
    name: 'regbadct',
    section: '3.1.2.13',
    title: 'Failure to Enclose name-addr URI in <>',
    verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /must be enclosed in <>/, { probe: (m) => m.contacts, check: (m) => validateMandatory(m) }),
  },
  { name: 'badaspec', section: '3.1.2.14', title: 'Spaces within addr-spec', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /whitespace or nothing inside <>/) },
  { name: 'baddn', section: '3.1.2.15', title: 'Non-token Characters in Display Name', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /display name has non-token/) },
  { name: 'badvers', section: '3.1.2.16', title: 'Unknown Protocol Version', verdict: rejected(505, 'SIP_ERR_VERSION', /unsupported SIP version 7\.0/) },
  { name: 'mismatch01', section: '3.1.2.17', title: 'Start Line and CSeq Method Mismatch', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /CSeq method INVITE does not match OPTIONS/) },
  { name: 'mismatch02', section: '3.1.2.18', title: 'Unknown Method with CSeq Method Mismatch', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /CSeq method INVITE does not match NEWMETHOD/) },
  { name: 'bigcode', section: '3.1.2.19', title: 'Overlarge Response Code', verdict: rejected(400, 'SIP_ERR_PARSE', /start line/) },
  // ------------------------------------------------- §3.3 (application layer) selection
  { name: 'insuf', section: '3.3.1', title: 'Missing Required Header Fields', verdict: semantic(400, 'SIP_ERR_MISSING_HEADER', /missing Call-ID/) },
  {
    name: 'unksm2',
    section: '3.3.4',
    title: 'Unknown URI Schemes in Header Fields',
    verdict: valid((m) => {
      expect(m.to.uri).toBe('isbn:2983792873');
      expect(m.from.uri).toBe('http://www.example.com');
      expect(m.contacts[0]!.uri).toBe('name:John_Smith');
      expect(() => parseUri(m.to.uri)).toThrow(expect.objectContaining({ statusCode: 416 }));
    }),
  },
  { name: 'multi01', section: '3.3.8', title: 'Multiple Values in Single Value Required Fields', verdict: semantic(400, 'SIP_ERR_BAD_HEADER', /2 Call-ID headers/) },
  { name: 'mcl01', section: '3.3.9', title: 'Multiple Content-Length Values', verdict: rejected(400, 'SIP_ERR_CONTENT_LENGTH', /conflicting Content-Length/) },
  { name: 'zeromf', section: '3.3.11', title: 'Max-Forwards of Zero', verdict: valid((m) => expect(m.maxForwards).toBe(0)) },
];

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectSipError(e: unknown, status: number, code: SipErrorCode, match: RegExp): void {
  expect(e).toBeInstanceOf(SipError);
  const err = e as SipError;
  expect({ status: err.statusCode, code: err.code }).toEqual({ status, code });
  expect(err.message).toMatch(match);
}

describe('RFC 4475 torture tests: verdict table', () => {
  it('covers every message of §3.1.1 (13) and §3.1.2 (19)', () => {
    expect(CASES.filter((c) => c.section.startsWith('3.1.1.'))).toHaveLength(13);
    expect(CASES.filter((c) => c.section.startsWith('3.1.2.'))).toHaveLength(19);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of CASES) {
    it(`${c.section} ${c.name}: ${c.title} → ${c.verdict.kind}`, () => {
      const buf = loadFixture(c.name);
      const v = c.verdict;
      if (v.kind === 'rejected') {
        expectSipError(thrown(() => parseMessage(buf, { datagram: true })), v.status, v.code, v.match);
        return;
      }
      const m = parseMessage(buf, { datagram: true });
      if (v.kind === 'valid') {
        validateMandatory(m);
        v.check(m);
        // Serializing and parsing again keeps what the check looked at.
        const again = parseMessage(m.toBuffer());
        v.check(again);
        expect(again.toBuffer().equals(m.toBuffer())).toBe(true);
        return;
      }
      expectSipError(thrown(() => (v.probe ?? validateMandatory)(m)), v.status, v.code, v.match);
      v.check?.(m);
    });
  }
});

describe('RFC 4475 fixtures: notation decoding', () => {
  it('keeps the octets the RFC spells out in hex, repeats and joined lines', () => {
    expect(loadFixture('noreason').subarray(0, 14).toString('latin1')).toBe('SIP/2.0 100 \r\n');
    expect(loadFixture('trws').toString('latin1').split('\r\n')[0]).toBe('OPTIONS sip:remote-target@example.com SIP/2.0  ');
    const intmeth = loadFixture('intmeth');
    expect(intmeth.includes(Buffer.from('NUL:\\\x00 DEL:\\\x7f', 'latin1'))).toBe(true);
    expect(intmeth.toString('latin1').split('\r\n')[0]).toMatch(/^!interesting-Method\S+ sip:\S+@example\.com SIP\/2\.0$/);
    const scalar = loadFixture('scalar02').toString('latin1');
    expect(scalar).toContain(`Expires: 1${'0'.repeat(100)}\r\n`);
    const wsinv = loadFixture('wsinv');
    expect(wsinv.toString('latin1')).toContain('Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n');
    expect(wsinv.toString('latin1').endsWith('a=rtpmap:31 LPC\r\n')).toBe(true);
  });
});

describe('RFC 4475 messages on a stream transport', () => {
  it('clerr is rejected there too: the framer hands over whole messages only', () => {
    expectSipError(thrown(() => parseMessage(loadFixture('clerr'))), 400, 'SIP_ERR_CONTENT_LENGTH', /exceeds/);
  });

  it('dblreq: Content-Length 0 ends the message; the bytes after it are not part of it', () => {
    const m = parseMessage(loadFixture('dblreq'));
    expect(m.callId).toBe('dblreq.0ha0isndaksdj99sdfafnl3lk233412');
    expect(m.body.length).toBe(0);
  });

  it('a datagram without Content-Length takes the rest of the datagram as body; a stream refuses it', () => {
    const noCl = Buffer.from(loadFixture('wsinv').toString('latin1').replace('Content-Length   : 150\r\n', ''), 'latin1');
    expect(parseMessage(noCl, { datagram: true }).body.length).toBe(150);
    expectSipError(thrown(() => parseMessage(noCl)), 400, 'SIP_ERR_CONTENT_LENGTH', /missing Content-Length/);
  });
});
