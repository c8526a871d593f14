import { describe, expect, it } from 'vitest';
import { parseMessage, type SipRequest } from '../../../src/sip/message/index.js';
import {
  RequestHandlerTable,
  normalizeRequestHandlers,
  parseAppAddress,
  parseInstruction,
  webhookUrl,
} from '../../../src/drachtio/request-handlers.js';

describe('request handlers (wire protocol §15)', () => {
  it('a method’s own handler wins over *; the first of a method wins', () => {
    const t = new RequestHandlerTable(
      normalizeRequestHandlers([
        { url: 'http://a/' },
        { sipMethod: 'invite', url: 'tcp://10.0.0.1:3000' },
        { sipMethod: 'INVITE', url: 'http://b/' },
      ]),
    );
    expect(t.find('INVITE')).toMatchObject({ kind: 'direct', app: '10.0.0.1:3000;transport=tcp' });
    expect(t.find('OPTIONS')).toMatchObject({ kind: 'webhook', url: 'http://a/', httpMethod: 'GET', verifyPeer: false });
    expect(new RequestHandlerTable(normalizeRequestHandlers([{ sipMethod: 'INVITE', url: 'http://a/' }])).find('MESSAGE')).toBeUndefined();
  });

  it('keeps credentials in a handler URL out of config errors', () => {
    expect(() => normalizeRequestHandlers([{ url: 'ftp://user:secret@host/' }])).toThrow('request handler "ftp://***@host/"');
  });

  it('parses route uris as drachtio does (default tcp, IPv6 in brackets)', () => {
    expect(parseAppAddress('10.0.0.1:3000')).toEqual({ host: '10.0.0.1', port: 3000, transport: 'tcp' });
    expect(parseAppAddress('app.example:3001;transport=TLS')).toEqual({ host: 'app.example', port: 3001, transport: 'tls' });
    expect(parseAppAddress('[::1]:3002;transport=tcp')).toEqual({ host: '::1', port: 3002, transport: 'tcp' });
    for (const bad of ['10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', 'host:3000;transport=udp', '']) expect(parseAppAddress(bad), bad).toBeUndefined();
  });

  it('fills proxy defaults (recordRoute false, followRedirects true, serial, 5s / 60s)', () => {
    expect(parseInstruction('{"action":"proxy","data":{"destination":"sip:10.0.0.9"}}')).toEqual({
      action: 'proxy',
      destinations: ['sip:10.0.0.9'],
      recordRoute: false,
      followRedirects: true,
      simultaneous: false,
      provisionalTimeout: '5s',
      finalTimeout: '60s',
    });
    expect(parseInstruction('{"action":"redirect","data":{"contact":"<sip:a@b>"}}')).toEqual({ action: 'redirect', contacts: ['<sip:a@b>'] });
    expect(() => parseInstruction('{"action":"redirect","data":{"contact":"<sip:a@b>\\r\\nX-Evil: 1"}}')).toThrow(expect.objectContaining({ code: 'WIRE_ERR_ROUTING_INSTRUCTION', statusCode: 500 }));
    expect(() => parseInstruction('{"action":"reject","data":{"status":200}}')).toThrow(/300 to 699/);
    expect(() => parseInstruction('{"action":"route","data":{}}')).toThrow(/'uri' or 'tag'/);
  });

  it('builds the GET query from the request and keeps the handler URL’s own query', () => {
    const req = parseMessage(
      Buffer.from(
        [
          'OPTIONS sip:%2B15551234@example.com;user=phone SIP/2.0',
          'Via: SIP/2.0/TCP 192.0.2.7:5062;branch=z9hG4bK1',
          'From: <sip:alice@192.0.2.7>;tag=1',
          'To: <tel:+15551234>',
          'Call-ID: c1',
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      ),
    ) as SipRequest;
    const [h] = normalizeRequestHandlers([{ url: 'https://router.example/r?k=v' }]);
    const u = webhookUrl(h!, req, { protocol: 'tcp', localAddress: '10.0.0.5', localPort: 5060, remoteAddress: '192.0.2.7', remotePort: 5062, reliable: true });
    expect(u.origin + u.pathname).toBe('https://router.example/r/');
    expect([...u.searchParams]).toEqual([
      ['k', 'v'],
      ['method', 'OPTIONS'],
      ['domain', 'example.com'],
      ['protocol', 'tcp'],
      ['source_address', '192.0.2.7'],
      ['fromUser', 'alice'],
      ['toUser', '+15551234'],
      ['uriUser', '%2B15551234'],
      ['contentType', ''],
      ['uri', 'sip:%2B15551234@example.com;user=phone'],
      ['user', 'phone'],
    ]);
  });
});
