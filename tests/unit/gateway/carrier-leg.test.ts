/**
 * Pure parts of the carrier-leg interworking: which 100rel mode a carrier INVITE asks for
 * (RFC 3262 §3), the stand-in offer of a late-offer call, and when an UPDATE must reach the
 * other leg (sdp-rules). The SIP flows themselves are tested end to end in
 * tests/sipp/gateway/carrier-robustness.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { rel100Of } from '../../../src/gateway/carrier-leg.js';
import { audioCodecs, audioEndpoint, directionOf, lateOfferStandIn, legMustBeReoffered, teamsAnswerStandIn } from '../../../src/gateway/sdp-rules.js';

/** The part of a drachtio-srf request rel100Of reads. */
function req(headers: Record<string, string | string[]>) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { has: (n: string) => n.toLowerCase() in h, get: (n: string) => h[n.toLowerCase()] };
}

const sdp = (o: { port?: number; pts?: string; rtpmap?: string[]; dir?: string } = {}) =>
  [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.9',
    's=-',
    'c=IN IP4 127.0.0.9',
    't=0 0',
    `m=audio ${o.port ?? 4000} RTP/AVP ${o.pts ?? '0 8 101'}`,
    ...(o.rtpmap ?? ['a=rtpmap:101 telephone-event/8000']),
    `a=${o.dir ?? 'sendrecv'}`,
    '',
  ].join('\r\n');

describe('rel100Of (RFC 3262 §3)', () => {
  it('Require: 100rel is always honoured; Supported only when the carrier policy allows it', () => {
    expect(rel100Of(req({ Require: '100rel' }), 'off')).toBe('required');
    expect(rel100Of(req({ Require: 'timer, 100rel' }), 'supported')).toBe('required');
    expect(rel100Of(req({ Supported: 'timer, 100rel' }), 'supported')).toBe('supported');
    expect(rel100Of(req({ Supported: ['timer', '100rel'] }), 'supported')).toBe('supported');
    expect(rel100Of(req({ Supported: '100rel' }), 'off')).toBe('off');
    expect(rel100Of(req({ Supported: 'timer, 100relx' }), 'supported')).toBe('off');
    expect(rel100Of(req({}), 'supported')).toBe('off');
  });
});

describe('lateOfferStandIn', () => {
  it('lists the tenant codecs that are static payload types, telephone-event, on the discard port', () => {
    const s = lateOfferStandIn('127.0.6.10', ['PCMA', 'opus', 'G722']);
    expect(audioCodecs(s)).toEqual(['PCMA', 'G722', 'TELEPHONE-EVENT']);
    expect(audioEndpoint(s)).toMatchObject({ address: '127.0.6.10', port: 9 });
    expect(directionOf(s)).toBe('sendrecv');
    expect(s).toMatch(/^m=audio 9 RTP\/AVP 8 9 101\r$/m);
  });

  it('falls back to G.711 µ-law and A-law, and uses IP6 for an IPv6 source', () => {
    expect(audioCodecs(lateOfferStandIn('127.0.6.10'))).toEqual(['PCMU', 'PCMA', 'TELEPHONE-EVENT']);
    expect(audioCodecs(lateOfferStandIn('127.0.6.10', ['AMR-WB']))).toEqual(['PCMU', 'PCMA', 'TELEPHONE-EVENT']);
    expect(lateOfferStandIn('2001:db8::1')).toMatch(/^c=IN IP6 2001:db8::1\r$/m);
  });

  it('single: the first of those codecs only, with telephone-event', () => {
    expect(audioCodecs(lateOfferStandIn('127.0.6.10', ['opus', 'PCMA', 'G722'], { single: true }))).toEqual(['PCMA', 'TELEPHONE-EVENT']);
    expect(audioCodecs(lateOfferStandIn('127.0.6.10', [], { single: true }))).toEqual(['PCMU', 'TELEPHONE-EVENT']);
  });
});

describe('teamsAnswerStandIn', () => {
  const teamsOffer = [
    'v=0',
    'o=- 5 1 IN IP4 127.0.6.50',
    's=-',
    'c=IN IP4 127.0.6.50',
    't=0 0',
    'm=audio 25000 RTP/SAVP 8 0 13 101',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:13 CN/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:nOkfXBbZA7ckD4Au0H3czZUXKfJPokggO5hcu/EA',
    'a=sendrecv',
    '',
  ].join('\r\n');

  it("answers the offer's first codec and telephone-event, sendrecv, on the discard port of the offer's own address, with a fresh key of the offered suite", () => {
    const a = teamsAnswerStandIn(teamsOffer);
    expect(audioCodecs(a)).toEqual(['PCMA', 'TELEPHONE-EVENT']);
    expect(audioEndpoint(a)).toMatchObject({ address: '127.0.6.50', port: 9 });
    expect(a).toMatch(/^m=audio 9 RTP\/SAVP 8 101\r$/m);
    expect(directionOf(a)).toBe('sendrecv');
    const key = /^a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:(\S+)\r$/m.exec(a)?.[1];
    expect(Buffer.from(key!, 'base64')).toHaveLength(30);
    expect(key).not.toBe('nOkfXBbZA7ckD4Au0H3czZUXKfJPokggO5hcu/EA');
    expect(teamsAnswerStandIn(teamsOffer)).not.toBe(a); // a new key each time
  });

  it('a plain RTP offer gets no crypto line; an offer without audio is an error', () => {
    expect(teamsAnswerStandIn(sdp())).not.toMatch(/a=crypto/);
    expect(audioCodecs(teamsAnswerStandIn(sdp()))).toEqual(['PCMU', 'TELEPHONE-EVENT']);
    expect(() => teamsAnswerStandIn('v=0\r\ns=-\r\n')).toThrow(/no audio stream/);
  });
});

describe('legMustBeReoffered (UPDATE answered locally or relayed as a re-INVITE)', () => {
  it('a new port or address alone, or a narrower codec list that still shares a codec: no', () => {
    expect(legMustBeReoffered(sdp(), sdp({ port: 5000 }))).toBe(false);
    expect(legMustBeReoffered(sdp(), sdp({ pts: '8 101' }))).toBe(false);
  });

  it('a direction change (hold / resume) or no codec in common: yes', () => {
    expect(legMustBeReoffered(sdp(), sdp({ dir: 'inactive' }))).toBe(true);
    expect(legMustBeReoffered(sdp({ dir: 'inactive' }), sdp())).toBe(true);
    expect(legMustBeReoffered(sdp({ pts: '0 101' }), sdp({ pts: '18 101' }))).toBe(true);
    expect(legMustBeReoffered(undefined, sdp())).toBe(true);
  });

  it('names codecs from a=rtpmap, else from the static payload table (RFC 3551)', () => {
    expect(audioCodecs(sdp({ pts: '96 0 101', rtpmap: ['a=rtpmap:96 opus/48000/2', 'a=rtpmap:101 telephone-event/8000'] }))).toEqual(['OPUS', 'PCMU', 'TELEPHONE-EVENT']);
  });
});
