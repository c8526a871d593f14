import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DNS_CACHE_MS, Resolver } from '../../../src/gateway/resolver.js';
import { type DnsResponder, startDnsResponder } from '../../helpers/dns-responder.js';

const SIP = 'sip.pstnhub.microsoft.com';
let shortTtl: DnsResponder;
let longTtl: DnsResponder;
beforeAll(async () => {
  shortTtl = await startDnsResponder('127.0.0.1', { [SIP]: '192.0.2.1' }, 30);
  longTtl = await startDnsResponder('127.0.0.1', { [SIP]: '192.0.2.1' }, 86_400);
});
afterAll(async () => {
  await shortTtl?.close();
  await longTtl?.close();
});

describe('Resolver with DNS servers (teams-direct-routing §1.6: never pin, re-resolve ≤ 15 min)', () => {
  it('follows a DNS change once the record\'s TTL has passed, and asks nothing within it', async () => {
    let now = 1_000_000;
    const r = new Resolver({ servers: [shortTtl.server], now: () => now });
    expect(await r.resolve(SIP)).toBe('192.0.2.1');
    const asked = shortTtl.queries.length;
    shortTtl.set(SIP, '192.0.2.2');
    now += 29_000;
    expect(await r.resolve(SIP.toUpperCase())).toBe('192.0.2.1'); // cached: same name, any case
    expect(shortTtl.queries.length).toBe(asked);
    now += 2_000;
    expect(await r.resolve(SIP)).toBe('192.0.2.2');
    expect(shortTtl.queries.length).toBe(asked + 1);
  });

  it('a long TTL is capped at 15 minutes', async () => {
    let now = 5_000_000;
    longTtl.set(SIP, '192.0.2.1');
    const r = new Resolver({ servers: [longTtl.server], now: () => now });
    expect(await r.resolve(SIP)).toBe('192.0.2.1');
    longTtl.set(SIP, '192.0.2.3');
    now += MAX_DNS_CACHE_MS - 1;
    expect(await r.resolve(SIP)).toBe('192.0.2.1');
    now += 2;
    expect(await r.resolve(SIP)).toBe('192.0.2.3');
  });

  it('static hosts win; IP literals are not looked up; unknown names fail; bad servers are a config error naming the key', async () => {
    const r = new Resolver({ hosts: { [SIP]: '127.0.5.1' }, servers: [shortTtl.server] });
    const asked = shortTtl.queries.length;
    expect(await r.resolve(SIP)).toBe('127.0.5.1');
    expect(await r.resolve('203.0.113.9')).toBe('203.0.113.9');
    expect(shortTtl.queries.length).toBe(asked);
    await expect(r.resolve('nowhere.pstnhub.microsoft.com')).rejects.toThrow();
    expect(() => new Resolver({ servers: ['not-an-ip'] })).toThrow(/^teams\.dnsServers: /);
  });
});
