import { describe, expect, it } from 'vitest';
import { audioOf, certCovers, checkSdp, newSrtpKey, parseSdp, teamsAnswer, teamsOffer } from '../../helpers/fake-teams/index.js';

describe('fake Teams checks and SDP helpers', () => {
  it('certCovers: a wildcard covers exactly one label (RFC 2818), not the apex', () => {
    const san = 'DNS:*.customers.example.net, DNS:customers.example.net';
    expect(certCovers('acme.customers.example.net', san, undefined)).toBe(true);
    expect(certCovers('customers.example.net', san, undefined)).toBe(true);
    expect(certCovers('x.acme.customers.example.net', san, undefined)).toBe(false);
    expect(certCovers('acme.customers.example.net', 'DNS:*.example.net', undefined)).toBe(false);
    expect(certCovers('acme.customers.example.net', undefined, '*.customers.example.net')).toBe(true);
  });

  it('a Teams offer has two crypto lines, SILK/G722/PCMU/PCMA/CN/telephone-event, rtcp-mux and ICE', () => {
    const key = newSrtpKey();
    const a = audioOf(parseSdp(teamsOffer({ address: '127.0.5.1', port: 49152, key80: key })))!;
    expect(a.proto).toBe('RTP/SAVP');
    expect(a.crypto.map((c) => [c.suite, c.tag])).toEqual([
      ['AES_CM_128_HMAC_SHA1_32', 1],
      ['AES_CM_128_HMAC_SHA1_80', 2],
    ]);
    expect(a.crypto[1]!.key).toBe(key);
    expect(a.codecs.map((c) => `${c.pt} ${c.name}/${c.rate}`)).toEqual(['104 SILK/16000', '9 G722/8000', '103 SILK/8000', '0 PCMU/8000', '8 PCMA/8000', '101 telephone-event/8000', '13 CN/8000', '118 CN/16000']);
    expect(a.rtcpMux).toBe(true);
    expect(a.iceUfrag).toBeTruthy();
    expect(a.candidates).toHaveLength(2);
    // An offer like this is not what an SBC may send to Teams: the _32 line is flagged.
    expect(checkSdp(parseSdp(teamsOffer({ address: '127.0.5.1', port: 49152 })), 'offer').map((v) => v.rule)).toEqual(['sdp-crypto']);
  });

  it('teamsAnswer picks the _80 line with its own key, the first Teams codec, telephone-event and rtcp-mux', () => {
    const offer = parseSdp(teamsOffer({ address: '127.0.5.20', port: 40000 }).replace('104 9 103 0 8 101 13 118', '0 8 101 13'));
    const key = newSrtpKey();
    const ans = teamsAnswer(offer, { address: '127.0.5.1', port: 49152, key, version: 1, sessionId: '7' });
    const a = audioOf(parseSdp(ans.sdp))!;
    expect(a.crypto).toEqual([{ tag: 2, suite: 'AES_CM_128_HMAC_SHA1_80', keyParams: `inline:${key}|2^31`, key }]);
    expect(a.codecs.map((c) => c.name)).toEqual(['PCMU', 'telephone-event', 'CN']);
    expect(a).toMatchObject({ address: '127.0.5.1', port: 49152, rtcpMux: true, direction: 'sendrecv' });
    expect(checkSdp(parseSdp(ans.sdp), 'answer')).toEqual([]);
  });

  it('checkSdp flags c=0.0.0.0 hold, AMR and missing telephone-event', () => {
    const sdp = ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 4000 RTP/SAVP 96', 'a=rtpmap:96 AMR/8000', `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${newSrtpKey()}`, 'a=rtcp-mux', ''].join('\r\n');
    expect(checkSdp(parseSdp(sdp), 'offer').map((v) => v.rule).sort()).toEqual(['sdp-codecs', 'sdp-codecs', 'sdp-hold', 'sdp-telephone-event']);
  });
});
