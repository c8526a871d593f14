/**
 * Property tests of the SIP message layer:
 *  - parse ∘ serialize round-trips generated valid messages (any header names/values a peer may
 *    legally send, quoted display names with escapes, multibyte UTF-8 and binary bodies);
 *  - whatever parses re-serializes to bytes that parse to the same message;
 *  - random bytes, SIP-looking token soup, mutations and truncations of real messages never make
 *    the parser or any typed view throw anything but SipError (no TypeError / RangeError).
 */
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type HeaderField,
  SipError,
  type SipMessage,
  SipRequest,
  SipResponse,
  field,
  formatNameAddr,
  headerKey,
  parseMessage,
  parseUri,
  validateMandatory,
} from '../../src/sip/message/index.js';
import { loadFixture } from '../fixtures/rfc4475/load.js';

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~";
const token = (max = 12): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: max });

/** TEXT-UTF8 for header values: any Unicode (multibyte, U+FEFF, NUL ...) except CR/LF, no SP/HTAB at the ends. */
const headerValue = fc
  .string({ unit: fc.oneof(fc.constantFrom(' ', '\t', ',', ';', '"', '\\', '<', '>', ':', '=', '\0'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 60 })
  .map((s) => s.replace(/[\r\n]/g, '').replace(/^[ \t]+|[ \t]+$/g, ''));

/** Reason-Phrase: UTF-8 text without control characters other than HTAB. */
const reason = fc
  .string({ unit: fc.oneof(fc.constantFrom(' ', '\t', 'é', '日', '🎉'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 30 })
  .map((s) => s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ''));

const body = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constant(Buffer.alloc(0)),
);

const extraHeader = fc
  .tuple(token(16), headerValue)
  // Not Content-Length (recomputed) nor a second copy of the dialog headers (`F` is From).
  .filter(([n]) => !['content-length', 'via', 'from', 'to', 'call-id', 'cseq', 'max-forwards'].includes(headerKey(n)))
  .map(([n, v]) => field(n, v));

/** Display names with characters that need quoting and escaping. */
const displayName = fc.string({ unit: fc.oneof(fc.constantFrom('"', '\\', ' ', ',', ';', '<', 'ä', '☃'), fc.constantFrom(...TOKEN_CHARS)), maxLength: 20 });

const dialogHeaders = fc
  .record({
    method: token(10),
    branch: token(20),
    host: fc.constantFrom('192.0.2.1', 'example.com', '[2001:db8::1]', 'sbc-1.example.net'),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    fromName: fc.option(displayName, { nil: undefined }),
    fromTag: token(16),
    toTag: fc.option(token(16), { nil: undefined }),
    callId: fc.tuple(token(20), fc.option(token(10), { nil: undefined })).map(([a, b]) => (b ? `${a}@${b}` : a)),
    seq: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map((d) => ({
    ...d,
    headers: [
      field('Via', `SIP/2.0/UDP ${d.host}${d.port ? `:${d.port}` : ''};branch=z9hG4bK${d.branch}`),
      field('From', formatNameAddr({ displayName: d.fromName, uri: 'sip:alice@example.com', params: new Map([['tag', d.fromTag]]), bracketed: true })),
      field('To', formatNameAddr({ uri: 'sip:bob@example.com', params: new Map(d.toTag ? [['tag', d.toTag]] : []), bracketed: true })),
      field('Call-ID', d.callId),
      field('CSeq', `${d.seq} ${d.method}`),
      field('Max-Forwards', '70'),
    ],
  }));

const message = fc
  .record({
    d: dialogHeaders,
    extra: fc.array(extraHeader, { maxLength: 8 }),
    isRequest: fc.boolean(),
    status: fc.integer({ min: 100, max: 699 }),
    reason,
    user: token(12),
    body,
  })
  .map(({ d, extra, isRequest, status, reason: why, user, body: b }) => {
    const headers: HeaderField[] = [...d.headers, ...extra];
    const m: SipMessage = isRequest ? new SipRequest(d.method, `sip:${user}@example.com;transport=tcp`, headers, b) : new SipResponse(status, why, headers, b);
    return { m, d };
  });

const withoutCl = (hs: HeaderField[]): [string, string][] => hs.filter((h) => h.key !== 'content-length').map((h) => [h.name, h.value]);

/** Reads every typed view; anything thrown must be a SipError. */
function touchAll(m: SipMessage): void {
  const probes: (() => unknown)[] = [
    () => m.vias,
    () => m.topVia,
    () => m.from,
    () => m.to,
    () => m.fromTag,
    () => m.toTag,
    () => m.callId,
    () => m.cseq,
    () => m.contacts.map((c) => parseUri(c.uri)),
    () => m.routes,
    () => m.recordRoutes,
    () => m.maxForwards,
    () => m.expires,
    () => m.date,
    () => m.getAll('via'),
    () => (m instanceof SipRequest ? m.parsedUri : undefined),
    () => validateMandatory(m),
    () => m.toBuffer(),
  ];
  for (const p of probes) {
    try {
      p();
    } catch (e) {
      if (!(e instanceof SipError)) throw e;
      expect(e.statusCode).toBeGreaterThanOrEqual(400);
    }
  }
}

/** parseMessage + touchAll; returns the message or the SipError. Rethrows anything else. */
function survive(buf: Buffer, datagram: boolean): SipMessage | SipError {
  let m: SipMessage;
  try {
    m = parseMessage(buf, { datagram, maxSize: 4096 });
  } catch (e) {
    if (e instanceof SipError) return e;
    throw e;
  }
  touchAll(m);
  return m;
}

/** Anything that parses serializes to bytes that parse to the same start line, headers and body. */
function reparses(m: SipMessage): void {
  const again = parseMessage(m.toBuffer());
  expect(again.startLine()).toBe(m.startLine());
  expect(withoutCl(again.headers)).toEqual(withoutCl(m.headers));
  expect(again.body.equals(m.body)).toBe(true);
}

const FIXTURES = readdirSync(new URL('../fixtures/rfc4475/', import.meta.url))
  .filter((f) => f.endsWith('.sip'))
  .map((f) => loadFixture(f.slice(0, -4)));

const seeds = fc.oneof(
  fc.constantFrom(...FIXTURES),
  message.map(({ m }) => m.toBuffer()),
);

const SOUP = ['\r\n', '\n', ' ', '\t', ':', ';', ',', '=', '"', '\\', '<', '>', '[', ']', '?', '@', '%', '%00', '/', 'SIP/2.0', 'sip:', 'sips:', 'tel:+1', 'INVITE', ' 200 OK', 'Via', 'v', 'From', 'f', 'To', 't', 'Call-ID', 'i', 'CSeq', 'Contact', 'm', 'Route', 'Content-Length', 'l', 'Max-Forwards', 'Expires', 'Date', 'branch', 'tag', '1', '0', '99999999999', '-1', 'a', 'é', '\uFEFF', '\0', '\r\n\r\n'];
const soup = fc.array(fc.constantFrom(...SOUP), { maxLength: 120 }).map((parts) => Buffer.from(parts.join(''), 'utf8'));

type Mutation = { kind: 'truncate' | 'flip' | 'insert' | 'delete' | 'dup'; at: number; len: number; bytes: Uint8Array };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('truncate', 'flip', 'insert', 'delete', 'dup'),
  at: fc.nat(),
  len: fc.integer({ min: 1, max: 40 }),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
});

function mutate(buf: Buffer, ms: Mutation[]): Buffer {
  let b = buf;
  for (const mu of ms) {
    const at = b.length ? mu.at % b.length : 0;
    if (mu.kind === 'truncate') b = b.subarray(0, at);
    else if (mu.kind === 'flip') b = Buffer.concat([b.subarray(0, at), Buffer.from([(b[at] ?? 0) ^ (mu.bytes[0]! | 1)]), b.subarray(at + 1)]);
    else if (mu.kind === 'insert') b = Buffer.concat([b.subarray(0, at), mu.bytes, b.subarray(at)]);
    else if (mu.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + mu.len)]);
    else b = Buffer.concat([b.subarray(0, at + mu.len), b.subarray(at)]);
  }
  return b;
}

describe('parse ∘ serialize', () => {
  it('round-trips generated valid messages (headers, display names, UTF-8 and binary bodies)', () => {
    fc.assert(
      fc.property(message, fc.boolean(), ({ m, d }, datagram) => {
        const wire = m.toBuffer();
        const p = parseMessage(wire, { datagram });
        expect(p.isRequest).toBe(m.isRequest);
        expect(p.startLine()).toBe(m.startLine());
        expect(withoutCl(p.headers)).toEqual(withoutCl(m.headers));
        expect(p.body.equals(m.body)).toBe(true);
        expect(Number(p.get('content-length'))).toBe(m.body.length);
        expect(p.toBuffer().equals(wire)).toBe(true);
        // Typed views see what was generated.
        expect(p.from.displayName).toBe(d.fromName);
        expect([p.fromTag, p.toTag, p.callId, p.cseq.seq, p.topVia.params.get('branch')]).toEqual([d.fromTag, d.toTag, d.callId, d.seq, `z9hG4bK${d.branch}`]);
        if (p instanceof SipRequest) {
          validateMandatory(p);
          expect(p.method).toBe(d.method);
        } else {
          expect((p as SipResponse).reason).toBe((m as SipResponse).reason);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('the parser never crashes on garbage', () => {
  it('random bytes: only SipError, ever', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), (bytes, datagram) => {
        const r = survive(Buffer.from(bytes), datagram);
        if (!(r instanceof SipError)) reparses(r);
      }),
      { numRuns: 1000 },
    );
  });

  it('SIP-looking token soup: only SipError, and what parses re-parses identically', () => {
    fc.assert(
      fc.property(soup, fc.boolean(), (buf, datagram) => {
        const r = survive(buf, datagram);
        if (!(r instanceof SipError)) reparses(r);
      }),
      { numRuns: 1500 },
    );
  });

  it('mutated real and generated messages: only SipError', () => {
    fc.assert(
      fc.property(seeds, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (seed, ms, datagram) => {
        const r = survive(mutate(seed, ms), datagram);
        if (!(r instanceof SipError)) reparses(r);
      }),
      { numRuns: 1500 },
    );
  });

  it('every truncation of every RFC 4475 message: only SipError', () => {
    let parsed = 0;
    let rejected = 0;
    for (const buf of FIXTURES) {
      for (let n = 0; n <= buf.length; n++) {
        for (const datagram of [true, false]) {
          const r = survive(buf.subarray(0, n), datagram);
          if (r instanceof SipError) rejected++;
          else parsed++;
        }
      }
    }
    // Both outcomes occur: a prefix ending after the header section is a valid datagram.
    expect(parsed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(parsed);
  });
});
