/**
 * SIP message layer micro-benchmark: `npx tsx bench/parser.bench.ts [iterations]`.
 *
 * Parses a realistic INVITE (with SDP), a 200 OK (with SDP) and a BYE, each N times after a
 * warm-up, and reports messages/second for:
 *   - parse only (typed views stay unparsed: the lazy path),
 *   - parse + the typed views a B2BUA touches on every message (vias, from tag, to tag, cseq,
 *     call-id),
 *   - serialize (toBuffer of an already parsed message, Content-Length recomputed).
 * The last line printed is one JSON object with every number.
 */
import { parseMessage, type SipMessage } from '../src/sip/message/index.js';

const SDP = [
  'v=0',
  'o=- 3724394400 3724394400 IN IP4 198.51.100.10',
  's=-',
  'c=IN IP4 198.51.100.10',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

function msg(lines: string[], body = ''): Buffer {
  const b = Buffer.from(body, 'utf8');
  return Buffer.from([...lines, `Content-Length: ${b.length}`, '', ''].join('\r\n') + body, 'utf8');
}

const INVITE = msg(
  [
    'INVITE sip:+14255550100@sip.pstnhub.microsoft.com:5061;transport=tls SIP/2.0',
    'Via: SIP/2.0/TLS 203.0.113.5:5061;branch=z9hG4bK-524287-1---8d4e1f0c2a7b;rport',
    'Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK776asdhds;received=10.20.30.40',
    'Record-Route: <sip:sbc1.example.com:5061;transport=tls;lr>',
    'Max-Forwards: 69',
    'From: "Alice Example" <sip:+14255550123@sbc1.example.com;user=phone>;tag=1928301774',
    'To: <sip:+14255550100@sip.pstnhub.microsoft.com;user=phone>',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:+14255550123@sbc1.example.com:5061;transport=tls>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, UPDATE, PRACK',
    'Supported: 100rel, replaces, timer',
    'Session-Expires: 1800;refresher=uac',
    'Min-SE: 90',
    'User-Agent: teams-dr-gateway/0.1',
    'P-Asserted-Identity: <sip:+14255550123@sbc1.example.com;user=phone>',
    'Content-Type: application/sdp',
  ],
  SDP,
);

const OK200 = msg(
  [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/TLS 203.0.113.5:5061;branch=z9hG4bK-524287-1---8d4e1f0c2a7b;rport=5061;received=203.0.113.5',
    'Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK776asdhds;received=10.20.30.40',
    'Record-Route: <sip:sbc1.example.com:5061;transport=tls;lr>',
    'From: "Alice Example" <sip:+14255550123@sbc1.example.com;user=phone>;tag=1928301774',
    'To: <sip:+14255550100@sip.pstnhub.microsoft.com;user=phone>;tag=a6c85cf',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:api-du-b.pstnhub.microsoft.com:443;x-i=2b1e1c34;transport=tls>',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER, UPDATE',
    'Supported: timer',
    'Session-Expires: 1800;refresher=uac',
    'Server: Microsoft.PSTNHub.SIPProxy v.2024.1.1.1 i.USWE.1',
    'Content-Type: application/sdp',
  ],
  SDP.replace('198.51.100.10', '52.114.1.1').replace('198.51.100.10', '52.114.1.1'),
);

const BYE = msg([
  'BYE sip:+14255550123@sbc1.example.com:5061;transport=tls SIP/2.0',
  'Via: SIP/2.0/TLS 52.114.1.1:5061;branch=z9hG4bK9f2c.0b1d4e2a1',
  'Max-Forwards: 70',
  'From: <sip:+14255550100@sip.pstnhub.microsoft.com;user=phone>;tag=a6c85cf',
  'To: "Alice Example" <sip:+14255550123@sbc1.example.com;user=phone>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.example.com',
  'CSeq: 2 BYE',
  'User-Agent: Microsoft.PSTNHub.SIPProxy',
]);

const CORPUS = [INVITE, OK200, BYE];
const N = Number(process.argv[2] ?? 100_000);
const WARMUP = Math.min(20_000, N);

let sink = 0;

function touch(m: SipMessage): void {
  // What a B2BUA reads on every message: transaction key (top Via branch), dialog id, CSeq.
  const v = m.vias;
  sink += v.length + (v[0]!.params.get('branch')?.length ?? 0);
  sink += (m.fromTag?.length ?? 0) + (m.toTag?.length ?? 0);
  sink += m.cseq.seq + m.callId.length;
}

function run(label: string, fn: (i: number) => void): number {
  for (let i = 0; i < WARMUP; i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0);
  const perSec = Math.round((N / ns) * 1e9);
  console.log(`${label.padEnd(28)} ${perSec.toLocaleString('en-US').padStart(12)} msg/s  (${(ns / N).toFixed(0)} ns/msg)`);
  return perSec;
}

const results: Record<string, number> = {};
console.log(`SIP parser benchmark: ${N} iterations per case after ${WARMUP} warm-up, node ${process.version}`);
console.log(`message sizes: INVITE ${INVITE.length} B, 200 OK ${OK200.length} B, BYE ${BYE.length} B`);
for (const [name, buf] of [['invite', INVITE], ['ok200', OK200], ['bye', BYE]] as const) {
  results[`${name}_parse`] = run(`${name} parse`, () => {
    sink += parseMessage(buf).headers.length;
  });
  results[`${name}_parse_access`] = run(`${name} parse+access`, () => {
    touch(parseMessage(buf));
  });
  const parsed = parseMessage(buf);
  results[`${name}_serialize`] = run(`${name} serialize`, () => {
    sink += parsed.toBuffer().length;
  });
}
results.mixed_parse_access = run('mixed parse+access', (i) => {
  touch(parseMessage(CORPUS[i % 3]!));
});
if (sink === 42) console.log('');
console.log(JSON.stringify({ bench: 'sip-parser', iterations: N, node: process.version, msgPerSec: results }));
