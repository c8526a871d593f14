/**
 * ng datagrams carry binary values byte for byte (`play media` `blob`): rtpengine-client 0.4
 * turned them into UTF-8 text on the way out (src/media/ng-client.ts replaces its encoder).
 * A UDP socket on 127.0.0.1 stands in for rtpengine and records what arrives.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { NgInstance } from '../../../src/media/ng-client.js';
import { silentLogger } from '../../../src/media/types.js';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

async function fakeRtpengine(): Promise<{ port: number; got: Buffer[] }> {
  const sock = dgram.createSocket('udp4');
  open.push(sock);
  const got: Buffer[] = [];
  sock.on('message', (msg, rinfo) => {
    got.push(msg);
    const cookie = msg.subarray(0, msg.indexOf(0x20)).toString('latin1');
    sock.send(Buffer.from(`${cookie} d8:durationi6000e6:result2:oke`, 'latin1'), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, got };
}

function instance(port: number): NgInstance {
  const i = new NgInstance({ address: `127.0.0.1:${port}`, commandTimeoutMs: 1000, failuresBeforeDown: 2, logger: silentLogger, onChange: () => {}, onCommand: () => {} });
  open.push(i);
  return i;
}

describe('ng encoding', () => {
  it('a blob with every byte value arrives unchanged, with the right bencode length, as one datagram', async () => {
    const peer = await fakeRtpengine();
    const blob = Buffer.alloc(48_000);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + 3) & 0xff;
    const res = await instance(peer.port).command('playMedia', { 'call-id': 'c1', 'from-tag': 't1', blob, 'repeat-times': 30 });
    expect(res).toMatchObject({ result: 'ok', duration: 6000 });
    expect(peer.got).toHaveLength(1);
    const dgramBytes = peer.got[0]!;
    const body = dgramBytes.subarray(dgramBytes.indexOf(0x20) + 1);
    const at = body.indexOf(Buffer.from('4:blob48000:', 'latin1'));
    expect(at).toBeGreaterThanOrEqual(0);
    const start = at + '4:blob48000:'.length;
    expect(body.subarray(start, start + blob.length).equals(blob)).toBe(true);
    expect(body.includes(Buffer.from('7:command10:play media', 'latin1'))).toBe(true);
    expect(body.includes(Buffer.from('12:repeat-timesi30e', 'latin1'))).toBe(true);
  });

  it('text values (SDP with non-ASCII) are encoded as before: UTF-8 with byte lengths', async () => {
    const peer = await fakeRtpengine();
    const sdp = 'v=0\r\ns=Überweisung ☎\r\n';
    await instance(peer.port).command('offer', { 'call-id': 'c2', 'from-tag': 't', sdp });
    const body = peer.got[0]!.subarray(peer.got[0]!.indexOf(0x20) + 1);
    const bytes = Buffer.from(sdp, 'utf8');
    expect(body.includes(Buffer.concat([Buffer.from(`3:sdp${bytes.length}:`, 'latin1'), bytes]))).toBe(true);
  });
});
