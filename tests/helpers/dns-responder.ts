/**
 * A tiny authoritative DNS responder over UDP for tests (`teams-gw check`, the gateway's
 * resolver; RFC 1035 §4.1): A queries for names in `records` get one answer with `ttlSec` (60),
 * other types for known names get an empty NOERROR answer, unknown names get NXDOMAIN. Every
 * query is recorded; `set` changes a record (a DNS change at the provider).
 */
import { type Socket, createSocket } from 'node:dgram';

export interface DnsResponder {
  readonly address: string;
  readonly port: number;
  /** `ip:port`, as config ops.dnsServers expects. */
  readonly server: string;
  readonly queries: { name: string; type: number }[];
  set(name: string, ip: string): void;
  close(): Promise<void>;
}

function readName(buf: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = off;
  for (;;) {
    const len = buf[i];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.'), end: i + 1 };
    if ((len & 0xc0) !== 0) throw new Error('compressed name in question');
    labels.push(buf.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
}

export async function startDnsResponder(address: string, records: Record<string, string>, ttlSec = 60): Promise<DnsResponder> {
  const table = new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase(), v]));
  const queries: { name: string; type: number }[] = [];
  const sock: Socket = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    try {
      if (msg.length < 12 || msg.readUInt16BE(4) < 1) return;
      const q = readName(msg, 12);
      const type = msg.readUInt16BE(q.end);
      queries.push({ name: q.name, type });
      const question = msg.subarray(12, q.end + 4);
      const ip = table.get(q.name.toLowerCase());
      const answer = ip && type === 1;
      const header = Buffer.alloc(12);
      header.writeUInt16BE(msg.readUInt16BE(0), 0); // ID
      // QR=1, AA=1, RD copied, RCODE 0 or 3 (NXDOMAIN).
      header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | (ip ? 0 : 3), 2);
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(answer ? 1 : 0, 6);
      const parts = [header, question];
      if (answer) {
        const rr = Buffer.alloc(16);
        rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
        rr.writeUInt16BE(1, 2); // A
        rr.writeUInt16BE(1, 4); // IN
        rr.writeUInt32BE(ttlSec, 6); // TTL
        rr.writeUInt16BE(4, 10);
        ip.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
        parts.push(rr);
      }
      sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
    } catch {
      // malformed query: no answer
    }
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, address, () => resolve());
  });
  const port = sock.address().port;
  let closed: Promise<void> | undefined;
  return {
    address,
    port,
    server: `${address}:${port}`,
    queries,
    set(name, ip) {
      table.set(name.toLowerCase(), ip);
    },
    close() {
      closed ??= new Promise<void>((r) => sock.close(() => r()));
      return closed;
    },
  };
}
