/**
 * A small RTP/SRTP toolkit for media tests: build/parse RTP (RFC 3550 §5.1), send G.711
 * streams from a UDP socket, and SRTP (RFC 3711) protect/unprotect for
 * AES_CM_128_HMAC_SHA1_80 keyed from an SDES `a=crypto` inline key (RFC 4568 §6.1).
 * node:crypto only. Verified against RFC 3711 Appendix B in tests/unit/media/rtp.test.ts.
 */
import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';

// ---------------------------------------------------------------------------------------
// RTP
// ---------------------------------------------------------------------------------------

export interface RtpPacket {
  version: number;
  padding: boolean;
  extension: boolean;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  /** Header length in bytes (fixed header + CSRCs + extension). */
  headerLength: number;
  payload: Buffer;
}

export interface RtpInit {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker?: boolean;
  payload: Buffer;
}

/** RFC 3550 §5.1 fixed header, no CSRC, no extension. */
export function buildRtp(p: RtpInit): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (p.marker ? 0x80 : 0) | (p.payloadType & 0x7f);
  h.writeUInt16BE(p.sequenceNumber & 0xffff, 2);
  h.writeUInt32BE(p.timestamp >>> 0, 4);
  h.writeUInt32BE(p.ssrc >>> 0, 8);
  return Buffer.concat([h, p.payload]);
}

/** RTP header length (RFC 3550 §5.1, §5.3.1), throws on a malformed packet. */
export function rtpHeaderLength(buf: Buffer): number {
  if (buf.length < 12) throw new Error(`RTP packet too short (${buf.length})`);
  if (buf[0]! >> 6 !== 2) throw new Error(`not RTP version 2 (${buf[0]! >> 6})`);
  let len = 12 + (buf[0]! & 0x0f) * 4;
  if (buf[0]! & 0x10) {
    if (buf.length < len + 4) throw new Error('truncated RTP header extension');
    len += 4 + buf.readUInt16BE(len + 2) * 4;
  }
  if (buf.length < len) throw new Error('truncated RTP header');
  return len;
}

export function parseRtp(buf: Buffer): RtpPacket {
  const headerLength = rtpHeaderLength(buf);
  const cc = buf[0]! & 0x0f;
  const csrcs: number[] = [];
  for (let i = 0; i < cc; i++) csrcs.push(buf.readUInt32BE(12 + i * 4));
  let end = buf.length;
  if (buf[0]! & 0x20) end -= buf[buf.length - 1]!;
  return {
    version: buf[0]! >> 6,
    padding: (buf[0]! & 0x20) !== 0,
    extension: (buf[0]! & 0x10) !== 0,
    marker: (buf[1]! & 0x80) !== 0,
    payloadType: buf[1]! & 0x7f,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrcs,
    headerLength,
    payload: buf.subarray(headerLength, end),
  };
}

/** RFC 5761 §4: on a multiplexed port, RTCP has packet type 192–223 in the second octet. */
export function isRtcp(buf: Buffer): boolean {
  return buf.length >= 2 && buf[1]! >= 192 && buf[1]! <= 223;
}

/** A deterministic 20 ms G.711 payload (160 octets) that differs per sequence number. */
export function g711Payload(seq: number, size = 160): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------
// SDES (RFC 4568)
// ---------------------------------------------------------------------------------------

export interface SdesCrypto {
  tag: number;
  suite: string;
  /** Base64 key||salt as in the SDP. */
  inline: string;
  masterKey: Buffer;
  masterSalt: Buffer;
}

/** Parses every `a=crypto` line of an SDP (RFC 4568 §9.1: tag suite inline:key||salt[|life][|mki]). */
export function parseCryptoLines(sdp: string): SdesCrypto[] {
  const out: SdesCrypto[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/.exec(line);
    if (!m) continue;
    const raw = Buffer.from(m[3]!, 'base64');
    out.push({ tag: Number(m[1]), suite: m[2]!, inline: m[3]!, masterKey: raw.subarray(0, 16), masterSalt: raw.subarray(16, 30) });
  }
  return out;
}

/** A fresh AES_CM_128_HMAC_SHA1_80 master key and salt, and its `a=crypto` line. */
export function newSdesKey(tag = 1): { line: string; masterKey: Buffer; masterSalt: Buffer; inline: string } {
  const raw = randomBytes(30);
  const inline = raw.toString('base64');
  return { line: `a=crypto:${tag} AES_CM_128_HMAC_SHA1_80 inline:${inline}`, masterKey: raw.subarray(0, 16), masterSalt: raw.subarray(16, 30), inline };
}

// ---------------------------------------------------------------------------------------
// SRTP (RFC 3711), AES_CM_128_HMAC_SHA1_80
// ---------------------------------------------------------------------------------------

/** RFC 3711 §4.1.1: AES in counter mode; the keystream for `length` octets from `iv`. */
export function aesCmKeystream(key: Buffer, iv: Buffer, length: number): Buffer {
  const c = createCipheriv('aes-128-ctr', key, iv);
  return Buffer.concat([c.update(Buffer.alloc(length)), c.final()]);
}

export interface SrtpSessionKeys {
  encKey: Buffer;
  authKey: Buffer;
  salt: Buffer;
}

/**
 * RFC 3711 §4.3.1 key derivation with key_derivation_rate 0 (so `index DIV kdr` is 0):
 * x = (label || 0^48) XOR master_salt, then AES-CM with the master key from IV x·2^16
 * (§4.3.3). Labels 0x00/0x01/0x02 give the SRTP cipher key, auth key and salt.
 */
export function deriveSrtpKeys(masterKey: Buffer, masterSalt: Buffer, labels: [number, number, number] = [0, 1, 2]): SrtpSessionKeys {
  const prf = (label: number, len: number): Buffer => {
    const x = Buffer.from(masterSalt); // 14 octets
    // key_id = label || r (48 bits); aligned to the right of the 112-bit salt → label at octet 7.
    x[7] = x[7]! ^ label;
    const iv = Buffer.concat([x, Buffer.alloc(2)]);
    return aesCmKeystream(masterKey, iv, len);
  };
  return { encKey: prf(labels[0], 16), authKey: prf(labels[1], 20), salt: prf(labels[2], 14) };
}

/** RFC 3711 §4.1.1: IV = (k_s·2^16) XOR (SSRC·2^64) XOR (i·2^16). */
export function srtpIv(salt: Buffer, ssrc: number, index: bigint): Buffer {
  const iv = Buffer.alloc(16);
  salt.copy(iv, 0);
  const s = Buffer.alloc(4);
  s.writeUInt32BE(ssrc >>> 0);
  for (let k = 0; k < 4; k++) iv[4 + k] = iv[4 + k]! ^ s[k]!;
  // i is 48 bits, occupying octets 8..13.
  for (let k = 0; k < 6; k++) {
    const byte = Number((index >> BigInt(8 * (5 - k))) & 0xffn);
    iv[8 + k] = iv[8 + k]! ^ byte;
  }
  return iv;
}

const AUTH_TAG_LEN = 10; // HMAC-SHA1 truncated to 80 bits (§5.2)

interface SsrcState {
  roc: number;
  /** Highest sequence number seen (s_l). */
  sl: number;
}

/**
 * One direction of an SRTP session keyed by one SDES master key. `protect` is for a sender,
 * `unprotect` for a receiver; each keeps its rollover counter per SSRC (§3.3.1).
 */
export class SrtpContext {
  readonly keys: SrtpSessionKeys;
  readonly #tx = new Map<number, SsrcState>();
  readonly #rx = new Map<number, SsrcState>();

  constructor(masterKey: Buffer, masterSalt: Buffer) {
    if (masterKey.length !== 16 || masterSalt.length !== 14) throw new Error('AES_CM_128_HMAC_SHA1_80 needs a 16-octet key and a 14-octet salt');
    this.keys = deriveSrtpKeys(masterKey, masterSalt);
  }

  static fromInline(inline: string): SrtpContext {
    const raw = Buffer.from(inline.replace(/^inline:/, '').split('|')[0]!, 'base64');
    return new SrtpContext(raw.subarray(0, 16), raw.subarray(16, 30));
  }

  #tag(authenticated: Buffer, roc: number): Buffer {
    const r = Buffer.alloc(4);
    r.writeUInt32BE(roc >>> 0);
    // §4.2: M = Authenticated Portion || ROC; tag = HMAC-SHA1(k_a, M) truncated.
    return createHmac('sha1', this.keys.authKey).update(authenticated).update(r).digest().subarray(0, AUTH_TAG_LEN);
  }

  /** RTP → SRTP (§3.3). */
  protect(rtp: Buffer): Buffer {
    const hl = rtpHeaderLength(rtp);
    const ssrc = rtp.readUInt32BE(8);
    const seq = rtp.readUInt16BE(2);
    let st = this.#tx.get(ssrc);
    if (!st) {
      st = { roc: 0, sl: seq };
      this.#tx.set(ssrc, st);
    } else if (seq < st.sl && st.sl - seq > 0x8000) {
      st.roc = (st.roc + 1) >>> 0; // sequence number wrapped
      st.sl = seq;
    } else if (seq > st.sl) {
      st.sl = seq;
    }
    const index = (BigInt(st.roc) << 16n) | BigInt(seq);
    const ks = aesCmKeystream(this.keys.encKey, srtpIv(this.keys.salt, ssrc, index), rtp.length - hl);
    const out = Buffer.from(rtp);
    for (let i = hl; i < out.length; i++) out[i] = out[i]! ^ ks[i - hl]!;
    return Buffer.concat([out, this.#tag(out, st.roc)]);
  }

  /** SRTP → RTP (§3.3.2); throws when authentication fails. */
  unprotect(srtp: Buffer): Buffer {
    if (srtp.length < 12 + AUTH_TAG_LEN) throw new Error('SRTP packet too short');
    const body = srtp.subarray(0, srtp.length - AUTH_TAG_LEN);
    const tag = srtp.subarray(srtp.length - AUTH_TAG_LEN);
    const hl = rtpHeaderLength(body);
    const ssrc = body.readUInt32BE(8);
    const seq = body.readUInt16BE(2);
    const st = this.#rx.get(ssrc);
    // §3.3.1 index estimation (Appendix A).
    let v: number;
    if (!st) v = 0;
    else if (st.sl < 0x8000) v = seq - st.sl > 0x8000 ? (st.roc - 1) >>> 0 : st.roc;
    else v = st.sl - 0x8000 > seq ? (st.roc + 1) >>> 0 : st.roc;
    const expected = this.#tag(body, v);
    if (!timingSafeEqual(expected, tag)) throw new Error(`SRTP authentication failed (ssrc ${ssrc >>> 0}, seq ${seq})`);
    if (!st) this.#rx.set(ssrc, { roc: v, sl: seq });
    else if (v === ((st.roc + 1) >>> 0)) {
      st.roc = v;
      st.sl = seq;
    } else if (v === st.roc && seq > st.sl) st.sl = seq;
    const index = (BigInt(v) << 16n) | BigInt(seq);
    const ks = aesCmKeystream(this.keys.encKey, srtpIv(this.keys.salt, ssrc, index), body.length - hl);
    const out = Buffer.from(body);
    for (let i = hl; i < out.length; i++) out[i] = out[i]! ^ ks[i - hl]!;
    return out;
  }
}

// ---------------------------------------------------------------------------------------
// UDP endpoint
// ---------------------------------------------------------------------------------------

export interface ReceivedDatagram {
  data: Buffer;
  from: { address: string; port: number };
  at: number;
}

/** A UDP socket that records every datagram it receives. close() is idempotent. */
export class RtpSocket {
  readonly received: ReceivedDatagram[] = [];
  readonly #sock: dgram.Socket;
  #closed = false;
  #waiters = new Set<() => void>();

  private constructor(sock: dgram.Socket) {
    this.#sock = sock;
    sock.on('message', (data, rinfo) => {
      this.received.push({ data, from: { address: rinfo.address, port: rinfo.port }, at: Date.now() });
      for (const w of [...this.#waiters]) w();
    });
  }

  /** Binds `host` on `port` (default: any free even port, so RTCP can use port+1). */
  static async open(host: string, port = 0): Promise<RtpSocket> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const sock = dgram.createSocket('udp4');
      const bound = await new Promise<boolean>((resolve) => {
        sock.once('error', () => resolve(false));
        sock.bind(port, host, () => resolve(true));
      });
      if (bound && (port !== 0 || sock.address().port % 2 === 0)) return new RtpSocket(sock);
      sock.close();
      if (port !== 0) throw new Error(`cannot bind ${host}:${port}`);
    }
    throw new Error(`no even UDP port free on ${host}`);
  }

  get address(): string {
    return this.#sock.address().address;
  }

  get port(): number {
    return this.#sock.address().port;
  }

  send(data: Buffer, port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => this.#sock.send(data, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves with the matching datagrams once at least `count` arrived; rejects on timeout. */
  async waitFor(count: number, opts: { timeoutMs?: number; filter?: (d: ReceivedDatagram) => boolean } = {}): Promise<ReceivedDatagram[]> {
    const filter = opts.filter ?? (() => true);
    const timeoutMs = opts.timeoutMs ?? 3000;
    const matching = (): ReceivedDatagram[] => this.received.filter(filter);
    if (matching().length >= count) return matching();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = matching();
        if (m.length >= count) {
          clearTimeout(t);
          this.#waiters.delete(check);
          resolve(m);
        }
      };
      const t = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`waited ${timeoutMs} ms for ${count} datagrams on ${this.address}:${this.port}, got ${matching().length}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.clear();
    this.#sock.close();
  }
}

export interface StreamOptions {
  to: { address: string; port: number };
  count: number;
  ssrc: number;
  payloadType?: number;
  firstSeq?: number;
  firstTimestamp?: number;
  /** Gap between packets (ms). Default 20. */
  ptimeMs?: number;
  /** Applied to each RTP packet before sending (e.g. SrtpContext.protect). */
  transform?: (rtp: Buffer) => Buffer;
}

/** Sends a G.711 stream (PCMU by default), 160 samples per packet; returns the RTP sent. */
export function sendG711Stream(sock: RtpSocket, o: StreamOptions): Promise<Buffer[]> {
  return sendStream(sock, o, 0, g711Payload);
}

/** One 20 ms GSM 06.10 frame: 33 bytes, the 0xD signature nibble first, differing per `n`. */
export function gsmFrame(n: number): Buffer {
  return Buffer.from(Array.from({ length: 33 }, (_, k) => (k === 0 ? 0xd0 | (n & 0x0f) : (n * 7 + k * 13) & 0xff)));
}

/** Sends a GSM stream (payload type 3), 160 samples per packet; returns the RTP sent. */
export function sendGsmStream(sock: RtpSocket, o: StreamOptions): Promise<Buffer[]> {
  return sendStream(sock, o, 3, gsmFrame);
}

async function sendStream(sock: RtpSocket, o: StreamOptions, defaultPt: number, payload: (seq: number) => Buffer): Promise<Buffer[]> {
  const sent: Buffer[] = [];
  const seq0 = o.firstSeq ?? 1000;
  const ts0 = o.firstTimestamp ?? 160_000;
  for (let n = 0; n < o.count; n++) {
    const seq = (seq0 + n) & 0xffff;
    const rtp = buildRtp({ payloadType: o.payloadType ?? defaultPt, sequenceNumber: seq, timestamp: (ts0 + n * 160) >>> 0, ssrc: o.ssrc, marker: n === 0, payload: payload(seq) });
    sent.push(rtp);
    await sock.send(o.transform ? o.transform(rtp) : rtp, o.to.port, o.to.address);
    if (n + 1 < o.count) await new Promise((r) => setTimeout(r, o.ptimeMs ?? 20));
  }
  return sent;
}
