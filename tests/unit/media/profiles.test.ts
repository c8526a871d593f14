import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MEDIA_PROFILES,
  KNOWN_SDES_SUITES,
  buildAnswerParams,
  buildOfferParams,
  mergeMediaProfiles,
  offeredAudioCodecs,
} from '../../../src/media/index.js';

const defaults = mergeMediaProfiles(DEFAULT_MEDIA_PROFILES);
const otherSuites = KNOWN_SDES_SUITES.filter((s) => s !== 'AES_CM_128_HMAC_SHA1_80').map((s) => `no-${s}`);

describe('media flag profiles (data → ng dictionaries)', () => {
  it('carrier offer → toward Teams: RTP/SAVP, only _80, rtcp-mux required, ICE removed, no DTLS', () => {
    const p = buildOfferParams(defaults, 'carrier');
    expect(p['transport-protocol']).toBe('RTP/SAVP');
    expect(p.ICE).toBe('remove');
    expect(p['rtcp-mux']).toEqual(['require', 'reject']);
    expect(p.SDES).toEqual(otherSuites);
    expect(p.SDES).not.toContain('no-AES_CM_128_HMAC_SHA1_80');
    expect(p.DTLS).toBe('off');
    // Only the codecs Teams takes (§7.6/§7.8) go toward Teams, telephone-event always.
    expect(p.codec).toEqual({ strip: ['all'], except: ['SILK', 'PCMU', 'PCMA', 'G722', 'G729', 'CN', 'telephone-event'] });
    expect(p.replace).toEqual(['origin', 'session-connection']);
    expect(p['ICE-lite']).toBeUndefined();
  });

  it('Teams offer → toward carrier: RTP/AVP, ICE removed, SILK stripped, rtcp-mux demuxed, _80 accepted only', () => {
    const p = buildOfferParams(defaults, 'teams');
    expect(p['transport-protocol']).toBe('RTP/AVP');
    expect(p.ICE).toBe('remove');
    expect(p['rtcp-mux']).toEqual(['demux']);
    expect(p.codec).toEqual({ strip: ['SILK'] });
    expect(p.SDES).toEqual(otherSuites);
  });

  it('answers repeat the offerer-side ICE policy and carry no transport/rtcp-mux override', () => {
    const fromTeams = buildAnswerParams(defaults, 'teams');
    expect(fromTeams).toMatchObject({ ICE: 'remove', DTLS: 'off' });
    expect(fromTeams['transport-protocol']).toBeUndefined();
    expect(fromTeams['rtcp-mux']).toBeUndefined();
    const fromCarrier = buildAnswerParams(defaults, 'carrier');
    expect(fromCarrier.ICE).toBe('remove');
    expect(fromCarrier.SDES).toEqual(otherSuites);
  });

  it('a per-tenant allow-list becomes strip all + except, telephone-event and comfort noise always kept, stripped codecs never re-allowed', () => {
    const p = buildOfferParams(defaults, 'teams', { codecs: { carrier: ['PCMA', 'SILK', 'G729'] } });
    expect(p.codec).toEqual({ strip: ['all'], except: ['PCMA', 'G729', 'telephone-event', 'CN'] });
    // Toward Teams a tenant list is intersected with the Teams codec set: it narrows, never widens.
    const q = buildOfferParams(defaults, 'carrier', { codecs: { teams: ['AMR', 'PCMU', 'telephone-event'] } });
    expect(q.codec).toEqual({ strip: ['all'], except: ['PCMU', 'telephone-event', 'CN'] });
    // A profile that strips CN keeps it out.
    const noCn = mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { carrier: { codecs: { strip: ['SILK', 'CN'] } } });
    expect(buildOfferParams(noCn, 'teams', { codecs: { carrier: ['PCMA'] } }).codec).toEqual({ strip: ['all'], except: ['PCMA', 'telephone-event'] });
  });

  it('a call that may transcode (§7.10): an offer with none of the target codecs has its own masked (decoded, not passed on) and the targets added by transcoding; one with a target codec is stripped as usual', () => {
    const gsm = buildOfferParams(defaults, 'carrier', { codecs: { carrier: ['PCMU', 'PCMA'], teams: ['PCMU', 'PCMA'] }, transcode: { offered: ['GSM', 'telephone-event'] } });
    expect(gsm.codec).toEqual({ mask: ['GSM'], transcode: ['PCMU', 'PCMA'] });
    const pcma = buildOfferParams(defaults, 'carrier', { codecs: { teams: ['PCMU', 'PCMA'] }, transcode: { offered: ['G729', 'PCMA', 'telephone-event'] } });
    expect(pcma.codec).toEqual({ strip: ['all'], except: ['PCMU', 'PCMA', 'telephone-event', 'CN'] });
    // A re-offer from Teams toward a carrier that has used only GSM: GSM again, by transcoding;
    // rtpengine may decode only what the tenant allows on Teams' leg, so its answer to Teams is G.711.
    const tenant = { carrier: ['PCMU', 'PCMA'], teams: ['PCMU', 'PCMA'] };
    const hold = buildOfferParams(defaults, 'teams', { codecs: tenant, transcode: { offered: ['SILK', 'G722', 'PCMU', 'PCMA', 'CN', 'telephone-event'], answererUses: ['GSM', 'telephone-event'] } });
    expect(hold.codec).toEqual({ strip: ['SILK', 'G722'], transcode: ['GSM'] });
    // A carrier re-offering GSM toward Teams, whose last SDP (its offer) listed SILK, G722 and
    // G.711: only the allowed ones it used are added.
    const reoffer = buildOfferParams(defaults, 'carrier', { codecs: tenant, transcode: { offered: ['GSM', 'telephone-event'], answererUses: ['SILK', 'G722', 'PCMU', 'PCMA', 'CN', 'telephone-event'] } });
    expect(reoffer.codec).toEqual({ mask: ['GSM'], transcode: ['PCMU', 'PCMA'] });
    // The same toward a carrier that used PCMU: nothing transcoded.
    const plain = buildOfferParams(defaults, 'teams', { codecs: tenant, transcode: { offered: ['SILK', 'PCMU', 'telephone-event'], answererUses: ['PCMU'] } });
    expect(plain.codec).toEqual({ strip: ['all'], except: ['PCMU', 'PCMA', 'telephone-event', 'CN'] });
  });

  it('offeredAudioCodecs: the first audio stream\'s encodings in m= order as written, static payload types named', () => {
    const sdp = ['v=0', 'm=audio 4000 RTP/AVP 3 96 101 8', 'a=rtpmap:96 opus/48000/2', 'a=rtpmap:101 telephone-event/8000', 'm=video 4002 RTP/AVP 97', 'a=rtpmap:97 H264/90000', ''].join('\r\n');
    expect(offeredAudioCodecs(sdp)).toEqual(['GSM', 'opus', 'telephone-event', 'PCMA']);
    expect(offeredAudioCodecs('v=0\r\nm=video 4002 RTP/AVP 97\r\n')).toEqual([]);
  });

  it('the same flags are produced for a re-offer as for the initial offer (rtcp-mux/ICE stable)', () => {
    expect(buildOfferParams(defaults, 'carrier')).toEqual(buildOfferParams(defaults, 'carrier'));
    expect(buildOfferParams(defaults, 'teams')).toEqual(buildOfferParams(defaults, 'teams'));
  });

  it('config overrides merge over the defaults (media-bypass style Teams profile)', () => {
    const bypass = mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, {
      teams: { ice: 'force', iceLite: true, srtp: { pad: true } },
      carrier: { rtcpMux: 'offer', codecs: { strip: ['SILK', 'opus'] }, interface: 'pub' },
      common: { flags: ['strict source'] },
    });
    expect(bypass.teams.srtp).toEqual({ suites: ['AES_CM_128_HMAC_SHA1_80'], dtls: false, pad: true });
    const p = buildOfferParams(bypass, 'carrier');
    expect(p.ICE).toBe('force');
    expect(p['ICE-lite']).toBe('forward');
    expect(p['rtcp-mux']).toEqual(['require', 'accept']);
    expect(p.SDES).toContain('pad');
    expect(p.flags).toEqual(['strict source']);
    const q = buildOfferParams(bypass, 'teams');
    expect(q['ICE-lite']).toBe('backward');
    expect(q['rtcp-mux']).toEqual(['offer', 'accept']);
    expect(q.codec).toEqual({ strip: ['SILK', 'opus'] });
    expect(q.direction).toBeUndefined(); // only one side names an interface
    const open = mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { teams: { codecs: { allow: null } } });
    expect(buildOfferParams(open, 'carrier').codec).toBeUndefined();
    // The defaults object is frozen and untouched.
    expect(DEFAULT_MEDIA_PROFILES.teams.ice).toBe('remove');
    expect(Object.isFrozen(DEFAULT_MEDIA_PROFILES.carrier.codecs.strip)).toBe(true);
  });

  it('rejects profiles rtpengine would misread', () => {
    expect(() => mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { carrier: { codecs: { strip: ['telephone-event'] } } })).toThrow(/telephone-event/);
    expect(() => mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { teams: { srtp: null } })).toThrow(/srtp policy/);
    expect(() => mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { teams: { srtp: { suites: ['AES_CM_129'] } } })).toThrow(/unknown SDES suite/);
    expect(() => mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { teams: { iceLite: true } })).toThrow(/iceLite/);
    expect(() => mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, { carrier: { srtp: { suites: ['AES_CM_128_HMAC_SHA1_80'] } } })).toThrow(/plain/);
  });
});
