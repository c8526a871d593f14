import { describe, expect, it } from 'vitest';
import {
  SrtpContext,
  aesCmKeystream,
  buildRtp,
  deriveSrtpKeys,
  isRtcp,
  newSdesKey,
  parseCryptoLines,
  parseRtp,
  srtpIv,
} from '../../helpers/rtp.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('RFC 3711 Appendix B.2: AES-CM keystream', () => {
  const sessionKey = hex('2B7E151628AED2A6ABF7158809CF4F3C');
  const salt = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD');

  it('the IV for SSRC 0, index 0 is the shifted salt', () => {
    expect(srtpIv(salt, 0, 0n).toString('hex').toUpperCase()).toBe('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000');
  });

  it('produces the published keystream blocks (0, 1, 2, 0xFEFF, 0xFF00, 0xFF01)', () => {
    const ks = aesCmKeystream(sessionKey, srtpIv(salt, 0, 0n), 0xff02 * 16);
    const block = (n: number): string => ks.subarray(n * 16, n * 16 + 16).toString('hex').toUpperCase();
    expect(block(0x0000)).toBe('E03EAD0935C95E80E166B16DD92B4EB4');
    expect(block(0x0001)).toBe('D23513162B02D0F72A43A2FE4A5F97AB');
    expect(block(0x0002)).toBe('41E95B3BB0A2E8DD477901E4FCA894C0');
    expect(block(0xfeff)).toBe('EC8CDF7398607CB0F2D21675EA9EA1E4');
    expect(block(0xff00)).toBe('362B7C3C6773516318A077D7FC5073AE');
    expect(block(0xff01)).toBe('6A2CC3787889374FBEB4C81B17BA6C44');
  });

  it('places SSRC and packet index where §4.1.1 says', () => {
    const iv = srtpIv(Buffer.alloc(14), 0x11223344, 0xaabbccddeeffn);
    expect(iv.toString('hex')).toBe('00000000' + '11223344' + 'aabbccddeeff' + '0000');
  });
});

describe('RFC 3711 Appendix B.3: key derivation', () => {
  const masterKey = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const masterSalt = hex('0EC675AD498AFEEBB6960B3AABE6');

  it('derives the cipher key, cipher salt and auth key', () => {
    const k = deriveSrtpKeys(masterKey, masterSalt);
    expect(k.encKey.toString('hex').toUpperCase()).toBe('C61E7A93744F39EE10734AFE3FF7A087');
    expect(k.salt.toString('hex').toUpperCase()).toBe('30CBBC08863D8C85D49DB34A9AE1');
    expect(k.authKey.toString('hex').toUpperCase()).toBe('CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
  });

  it('the full label-1 keystream matches the published auth-key blocks', () => {
    const x = Buffer.from(masterSalt);
    x[7] = x[7]! ^ 0x01;
    const ks = aesCmKeystream(masterKey, Buffer.concat([x, Buffer.alloc(2)]), 94);
    expect(ks.toString('hex').toUpperCase()).toBe(
      'CEBE321F6FF7716B6FD4AB49AF256A15' +
        '6D38BAA48F0A0ACF3C34E2359E6CDBCE' +
        'E049646C43D9327AD175578EF7227098' +
        '6371C10C9A369AC2F94A8C5FBCDDDC25' +
        '6D6E919A48B610EF17C2041E47403576' +
        '6B68642C59BBFC2F34DB60DBDFB2',
    );
  });
});

describe('SRTP protect/unprotect (AES_CM_128_HMAC_SHA1_80)', () => {
  const masterKey = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const masterSalt = hex('0EC675AD498AFEEBB6960B3AABE6');
  // libsrtp's srtp_driver reference packet for this key (also used by several SRTP stacks).
  const plain = hex('800f1234decafbadcafebabe' + 'ab'.repeat(16));
  const cipher = hex('800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb');

  it('matches the libsrtp reference ciphertext and tag', () => {
    expect(new SrtpContext(masterKey, masterSalt).protect(plain).toString('hex')).toBe(cipher.toString('hex'));
  });

  it('decrypts and authenticates the reference packet', () => {
    expect(new SrtpContext(masterKey, masterSalt).unprotect(cipher).toString('hex')).toBe(plain.toString('hex'));
  });

  it('rejects a packet whose payload or tag was altered', () => {
    for (const pos of [13, cipher.length - 1]) {
      const bad = Buffer.from(cipher);
      bad[pos] = bad[pos]! ^ 0x01;
      expect(() => new SrtpContext(masterKey, masterSalt).unprotect(bad)).toThrow(/authentication failed/);
    }
  });

  it('round-trips across a sequence-number wrap (ROC increments on both sides)', () => {
    const { inline } = newSdesKey();
    const tx = SrtpContext.fromInline(inline);
    const rx = SrtpContext.fromInline(`inline:${inline}|2^31`);
    const seqs = [65533, 65534, 65535, 0, 1, 2];
    const protectedPackets = seqs.map((seq, n) =>
      tx.protect(buildRtp({ payloadType: 8, sequenceNumber: seq, timestamp: n * 160, ssrc: 0xdeadbeef, payload: Buffer.alloc(160, n) })),
    );
    protectedPackets.forEach((p, n) => {
      const rtp = parseRtp(rx.unprotect(p));
      expect(rtp.sequenceNumber).toBe(seqs[n]);
      expect(rtp.payload.equals(Buffer.alloc(160, n))).toBe(true);
    });
    // After the wrap the index uses ROC 1: a context that never saw the wrap cannot authenticate.
    expect(() => SrtpContext.fromInline(inline).unprotect(protectedPackets[4]!)).toThrow(/authentication failed/);
  });

  it('a different key fails authentication', () => {
    const a = SrtpContext.fromInline(newSdesKey().inline);
    const b = SrtpContext.fromInline(newSdesKey().inline);
    const p = a.protect(buildRtp({ payloadType: 0, sequenceNumber: 1, timestamp: 0, ssrc: 1, payload: Buffer.alloc(160) }));
    expect(() => b.unprotect(p)).toThrow(/authentication failed/);
  });
});

describe('RTP and SDES parsing', () => {
  it('builds and parses a header', () => {
    const b = buildRtp({ payloadType: 101, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0x01020304, marker: true, payload: Buffer.from([1, 2, 3]) });
    const p = parseRtp(b);
    expect(p).toMatchObject({ version: 2, marker: true, payloadType: 101, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0x01020304, headerLength: 12 });
    expect([...p.payload]).toEqual([1, 2, 3]);
    expect(isRtcp(b)).toBe(false);
    expect(isRtcp(Buffer.from([0x80, 200, 0, 6]))).toBe(true);
  });

  it('skips CSRCs and a header extension', () => {
    const h = Buffer.from([0x91, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0xaa]);
    const p = parseRtp(h);
    expect(p.csrcs).toEqual([7]);
    expect(p.headerLength).toBe(24);
    expect([...p.payload]).toEqual([0xaa]);
  });

  it('rejects non-RTP', () => {
    expect(() => parseRtp(Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/version/);
    expect(() => parseRtp(Buffer.alloc(5))).toThrow(/short/);
  });

  it('reads every a=crypto line with its key and salt', () => {
    const k = newSdesKey(3);
    const sdp = `v=0\r\nm=audio 1 RTP/SAVP 0\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:${newSdesKey().inline}|2^31\r\n${k.line}\r\n`;
    const lines = parseCryptoLines(sdp);
    expect(lines.map((l) => [l.tag, l.suite])).toEqual([
      [2, 'AES_CM_128_HMAC_SHA1_32'],
      [3, 'AES_CM_128_HMAC_SHA1_80'],
    ]);
    expect(lines[1]!.masterKey.equals(k.masterKey)).toBe(true);
    expect(lines[1]!.masterSalt.equals(k.masterSalt)).toBe(true);
  });
});
