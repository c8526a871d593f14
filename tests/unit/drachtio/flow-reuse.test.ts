import { describe, expect, it } from 'vitest';
import { peerAllowsReuse } from '../../../src/drachtio/flow-reuse.js';
import { type SipRequest, parseMessage } from '../../../src/sip/message/index.js';
import type { Flow } from '../../../src/sip/transport/types.js';

function invite(via: string, contact: string | undefined): SipRequest {
  const lines = [
    'INVITE sip:+15551230000@sbc.example.net:5061;transport=tls SIP/2.0',
    `Via: SIP/2.0/TLS ${via}`,
    'Max-Forwards: 70',
    'From: <sip:+15550001111@peer.example.com>;tag=a1',
    'To: <sip:+15551230000@sbc.example.net>',
    'Call-ID: reuse-1',
    'CSeq: 1 INVITE',
    ...(contact ? [`Contact: ${contact}`] : []),
    'Content-Length: 0',
    '',
    '',
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest;
}

const inbound: Flow = { protocol: 'tls', localAddress: '192.0.2.10', localPort: 5061, remoteAddress: '203.0.113.7', remotePort: 40112, reliable: true, connectionId: 3, direction: 'inbound' };

describe('peerAllowsReuse (RFC 5923 §5, RFC 5626, Teams §2.14)', () => {
  it('a connection the peer opened is not reused for our requests by default: they go to its Contact', () => {
    expect(peerAllowsReuse(invite('203.0.113.7:5061;branch=z9hG4bK1', '<sip:sip.pstnhub.microsoft.com:5061;transport=tls>'), inbound)).toBe(false);
    expect(peerAllowsReuse(invite('203.0.113.7:5061;branch=z9hG4bK1', '<sip:203.0.113.7:5061;transport=tls>'), inbound)).toBe(false);
  });

  it('the peer asks for reuse: alias on its Via (RFC 5923) or ob on its Contact (RFC 5626)', () => {
    expect(peerAllowsReuse(invite('203.0.113.7:5061;branch=z9hG4bK1;alias', '<sip:peer.example.com:5061;transport=tls>'), inbound)).toBe(true);
    expect(peerAllowsReuse(invite('203.0.113.7:5061;branch=z9hG4bK1', '<sip:peer.example.com:5061;transport=tls;ob>'), inbound)).toBe(true);
  });

  it('behind NAT (a private Contact other than the source address) the connection is the only way back', () => {
    expect(peerAllowsReuse(invite('10.1.2.3:5061;branch=z9hG4bK1', '<sip:10.1.2.3:5061;transport=tls>'), inbound)).toBe(true);
    expect(peerAllowsReuse(invite('[fd00::5]:5061;branch=z9hG4bK1', '<sip:[fd00::5]:5061;transport=tls>'), inbound)).toBe(true);
    // Same private address as the source: no NAT in between, the Contact is reachable.
    const lan: Flow = { ...inbound, remoteAddress: '10.1.2.3' };
    expect(peerAllowsReuse(invite('10.1.2.3:5061;branch=z9hG4bK1', '<sip:10.1.2.3:5061;transport=tls>'), lan)).toBe(false);
  });

  it('no usable Contact: the connection is kept', () => {
    expect(peerAllowsReuse(invite('203.0.113.7:5061;branch=z9hG4bK1', undefined), inbound)).toBe(true);
  });

  it('connections we opened, and UDP, are not concerned', () => {
    const req = invite('203.0.113.7:5061;branch=z9hG4bK1', '<sip:peer.example.com:5061;transport=tls>');
    expect(peerAllowsReuse(req, { ...inbound, direction: 'outbound' })).toBe(true);
    expect(peerAllowsReuse(req, { ...inbound, protocol: 'udp', reliable: false, direction: undefined })).toBe(true);
  });
});
