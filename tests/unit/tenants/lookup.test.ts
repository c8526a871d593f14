import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CidrTable, formatIp, parseCidr, parseIp } from '../../../src/tenants/ip.js';
import { loadConfigTexts } from '../../../src/tenants/load.js';
import { MemoryTenantStore } from '../../../src/tenants/memory-tenant-store.js';
import { TenantConfigError } from '../../../src/tenants/errors.js';
import { writeFileSync } from 'node:fs';
import { CARRIERS, GOOD_RING_GROUP, RING_GROUP_CASES, ringGroupTenants, SETTINGS, tenantsFile, writeConfigDir } from './fixture.js';

const TENANTS = tenantsFile([
  { id: 'ranges', dids: ['+14255550100-+14255550199', '+14255550300-+14255550349', '+14255550340-+14255550399'] },
  { id: 'exact', dids: ['+14255550200', '+14255550299', '+1'] },
  // nested prefixes of one tenant, plus a range and an exact number under them
  { id: 'prefix', dids: ['+4930*', '+493012*', '+4930123*', '+49301234500-+49301234599', '+4930999'] },
  { id: 'other', dids: ['+4931*', '+442071838000-+442071838999'] },
]);

describe('MemoryTenantStore lookups', () => {
  let store: MemoryTenantStore;
  let cleanup: () => void;
  beforeAll(async () => {
    const d = writeConfigDir({ 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 'tenants/all.yaml': TENANTS });
    cleanup = d.cleanup;
    store = new MemoryTenantStore({ configDir: d.dir });
    await store.start();
  });
  afterAll(async () => {
    await store.close();
    cleanup();
  });

  const id = async (n: string): Promise<string | undefined> => (await store.byNumber(n))?.id;

  it('ranges: first, last, one below, one above, merged overlaps of one tenant', async () => {
    expect(await id('+14255550099')).toBeUndefined();
    expect(await id('+14255550100')).toBe('ranges');
    expect(await id('+14255550199')).toBe('ranges');
    expect(await id('+14255550200')).toBe('exact');
    expect(await id('+14255550201')).toBeUndefined();
    expect(await id('+14255550300')).toBe('ranges');
    expect(await id('+14255550345')).toBe('ranges'); // in both overlapping ranges of the tenant
    expect(await id('+14255550399')).toBe('ranges');
    expect(await id('+14255550400')).toBeUndefined();
    // same digits, other length: a range only covers numbers of its own length
    expect(await id('+1425555010')).toBeUndefined();
    expect(await id('+142555501000')).toBeUndefined();
  });

  it('exact numbers, including a one-digit number, with or without "+"', async () => {
    expect(await id('+14255550299')).toBe('exact');
    expect(await id('14255550299')).toBe('exact');
    expect(await id('+1')).toBe('exact');
    expect(await id('+2')).toBeUndefined();
  });

  it('prefixes: longest wins, the prefix itself matches, shorter numbers do not', async () => {
    expect(await id('+4930')).toBe('prefix');
    expect(await id('+493')).toBeUndefined();
    expect(await id('+4930123')).toBe('prefix');
    expect(await id('+493012399999999')).toBe('prefix'); // 15 digits
    expect(await id('+4931')).toBe('other');
    expect(await id('+4932')).toBeUndefined();
    expect(await id('+49301234500')).toBe('prefix');
    expect(await id('+442071838999')).toBe('other');
    expect(await id('+442071839000')).toBeUndefined();
  });

  it('malformed numbers find nothing', async () => {
    for (const n of ['', '+', '+0123', 'abc', '+1234567890123456', '+1425 555']) expect(await id(n)).toBeUndefined();
  });

  it('byNumberSync answers from memory for the embedded store', () => {
    expect(store.snapshot().byNumberSync('+14255550150')?.id).toBe('ranges');
    expect(store.snapshot().byNumberSync('+99')).toBeNull();
  });

  it('byFqdn is case-insensitive and accepts an absolute name', () => {
    expect(store.byFqdn('exact.customers.example.net')?.id).toBe('exact');
    expect(store.byFqdn('EXACT.Customers.Example.NET.')?.id).toBe('exact');
    expect(store.byFqdn('customers.example.net')).toBeUndefined();
  });

  it('carrierBySourceIp: exact, longest-prefix CIDR, IPv4 and IPv6 edges', () => {
    const c = (ip: string): string | undefined => store.carrierBySourceIp(ip)?.name;
    expect(c('198.51.100.10')).toBe('alpha');
    expect(c('198.51.100.11')).toBeUndefined();
    expect(c('203.0.113.0')).toBe('alpha'); // network address
    expect(c('203.0.113.63')).toBe('alpha'); // last of /26
    expect(c('203.0.113.64')).toBeUndefined();
    expect(c('203.0.112.255')).toBeUndefined();
    expect(c('192.0.2.127')).toBe('beta');
    expect(c('192.0.2.128')).toBe('beta');
    expect(c('::ffff:203.0.113.1')).toBe('alpha'); // IPv4-mapped from a dual-stack socket
    expect(c('2001:db8:100::')).toBe('alpha');
    expect(c('2001:db8:100:ffff:ffff:ffff:ffff:ffff')).toBe('alpha');
    expect(c('2001:db8:101::')).toBeUndefined();
    expect(c('2001:db8:100:5::1')).toBe('beta'); // the /64 inside alpha's /48: longest prefix
    expect(c('2001:db8:100:6::1')).toBe('alpha');
    expect(c('2001:db8:200::10')).toBe('beta');
    expect(c('2001:db8:200::11')).toBeUndefined();
    expect(c('2001:DB8:200:0:0:0:0:10')).toBe('beta');
    expect(c('fe80::1%eth0')).toBeUndefined();
    expect(c('not an ip')).toBeUndefined();
  });

  it('get / list / version', () => {
    expect(store.get('other')?.trunks).toEqual([{ carrier: 'alpha', priority: 10 }]);
    expect(store.list().map((t) => t.id)).toEqual(['ranges', 'exact', 'prefix', 'other']);
    expect(store.version()).toBe(1);
    expect(store.status()).toMatchObject({ source: 'memory', state: 'ok', version: 1 });
  });
});

describe('MemoryTenantStore loading', () => {
  it('refuses an invalid directory with every problem, and keeps the running config on reload', async () => {
    const d = writeConfigDir({ 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 't.yaml': tenantsFile([{ id: 'a', dids: ['+0'], trunks: ['x'] }]) });
    try {
      const bad = new MemoryTenantStore({ configDir: d.dir });
      const err = await bad.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TenantConfigError);
      expect((err as TenantConfigError).problems.map((p) => p.rule)).toEqual(['e164-malformed', 'carrier-unknown']);
      await bad.close();
    } finally {
      d.cleanup();
    }
    const good = writeConfigDir({ 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 't.yaml': tenantsFile([{ id: 'a', dids: ['+1425*'] }]) });
    try {
      const s = new MemoryTenantStore({ configDir: good.dir });
      await s.start();
      const { writeFileSync } = await import('node:fs');
      writeFileSync(`${good.dir}/t.yaml`, tenantsFile([{ id: 'a', fqdn: 'a.elsewhere.net' }]));
      const r = await s.reload();
      expect(r.ok).toBe(false);
      expect(r.problems[0]!.rule).toBe('fqdn-outside-base');
      expect((await s.byNumber('+14255550000'))?.id).toBe('a');
      await s.close();
      expect(s.closed).toBe(true);
      await s.close(); // idempotent
    } finally {
      good.cleanup();
    }
  });

  it('load() swaps a validated set in one step', async () => {
    const s = new MemoryTenantStore();
    await s.start();
    const r = loadConfigTexts([{ file: 'a.yaml', text: SETTINGS + CARRIERS + tenantsFile([{ id: 'z', dids: ['+33*'] }]) }]);
    const versions: number[] = [];
    s.on('reload', (e) => versions.push(e.version));
    s.load(r.config!);
    expect((await s.byNumber('+33123'))?.id).toBe('z');
    expect(versions).toEqual([1]);
    await s.close();
  });
});

describe('MemoryTenantStore ring groups: one lookup returns the tenant and the group', () => {
  const G = GOOD_RING_GROUP;
  const SEQ = { did: '+4930123', strategy: 'sequential', memberTimeoutSec: 15, members: ['+4930124', '+4930125'], fallback: '+4930100' };
  let store: MemoryTenantStore;
  let dir: { dir: string; cleanup: () => void };
  beforeAll(async () => {
    dir = writeConfigDir({ 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 'tenants.yaml': ringGroupTenants([G, { ...G, did: '+14255551234' }, SEQ]) });
    store = new MemoryTenantStore({ configDir: dir.dir });
    await store.start();
  });
  afterAll(async () => {
    await store.close();
    dir.cleanup();
  });

  it('a ring-group DID inside a range, an exact one and one under a prefix; other numbers of the tenant have no group', async () => {
    const inRange = await store.lookupNumber('+14255550170');
    expect(inRange?.tenant.id).toBe('a');
    expect(inRange?.ringGroup).toEqual({ did: '+14255550170', strategy: 'simultaneous', memberTimeoutSec: 20, members: ['+14255550171', '+14255550172'] });
    expect((await store.lookupNumber('14255551234'))?.ringGroup?.did).toBe('+14255551234'); // bare digits too
    expect((await store.lookupNumber('+4930123'))?.ringGroup).toEqual({ did: '+4930123', strategy: 'sequential', memberTimeoutSec: 15, members: ['+4930124', '+4930125'], fallback: '+4930100' });
    const plain = await store.lookupNumber('+14255550171');
    expect(plain?.tenant.id).toBe('a');
    expect(plain?.ringGroup).toBeUndefined();
    expect((await store.lookupNumber('+493012345'))?.ringGroup).toBeUndefined(); // under the prefix, not the group number
    expect((await store.lookupNumber('+14255550300'))).toMatchObject({ tenant: { id: 'b' }, ringGroup: undefined });
    expect(await store.lookupNumber('+15550000000')).toBeUndefined();
    expect(await store.lookupNumber('not a number')).toBeUndefined();
    // byNumber answers as before, and the runtime tenant carries neither DIDs nor ring groups
    expect(await store.byNumber('+14255550170')).toBe(inRange!.tenant);
    expect(inRange!.tenant).not.toHaveProperty('ringGroups');
    expect(inRange!.tenant).not.toHaveProperty('dids');
  });

  it('answers are shared frozen objects (no allocation per lookup); the sync variant agrees', async () => {
    const a = await store.lookupNumber('+14255550170');
    expect(await store.lookupNumber('+14255550170')).toBe(a);
    expect(await store.lookupNumber('+14255550101')).toBe(await store.lookupNumber('+14255550102'));
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a!.ringGroup)).toBe(true);
    expect(Object.isFrozen(a!.ringGroup!.members)).toBe(true);
    const snap = store.snapshot();
    expect(snap.lookupNumberSync('+14255550170')).toBe(a);
    expect(snap.lookupNumberSync('+15550000000')).toBeNull();
    expect(snap.index.ringGroupCount).toBe(3);
  });

  it.each(RING_GROUP_CASES)('reload with an invalid file ($name) keeps the running config and its ring groups', async ({ groups, problem }) => {
    const version = store.version();
    writeFileSync(`${dir.dir}/tenants.yaml`, ringGroupTenants(groups));
    try {
      const r = await store.reload();
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => [p.rule, p.message])).toEqual([[problem.rule, problem.message]]);
      expect(store.version()).toBe(version);
      expect((await store.lookupNumber('+14255550170'))?.ringGroup?.members).toEqual(['+14255550171', '+14255550172']);
      expect((await store.lookupNumber('+4930123'))?.ringGroup?.strategy).toBe('sequential');
    } finally {
      writeFileSync(`${dir.dir}/tenants.yaml`, ringGroupTenants([G, { ...G, did: '+14255551234' }, SEQ]));
    }
  });

  it('a valid reload swaps the groups: added, changed and removed ones', async () => {
    writeFileSync(`${dir.dir}/tenants.yaml`, ringGroupTenants([{ ...G, members: ['+14255550173', '+14255550174', '+14255550175'] }, { ...G, did: '+14255550180' }]));
    try {
      expect((await store.reload()).ok).toBe(true);
      expect((await store.lookupNumber('+14255550170'))?.ringGroup?.members).toEqual(['+14255550173', '+14255550174', '+14255550175']);
      expect((await store.lookupNumber('+14255550180'))?.ringGroup?.did).toBe('+14255550180');
      expect((await store.lookupNumber('+4930123'))?.ringGroup).toBeUndefined();
    } finally {
      writeFileSync(`${dir.dir}/tenants.yaml`, ringGroupTenants([G, { ...G, did: '+14255551234' }, SEQ]));
      expect((await store.reload()).ok).toBe(true);
    }
  });
});

describe('CIDR table against a brute-force reference', () => {
  const v4 = fc.tuple(fc.nat(0xffffffff), fc.integer({ min: 0, max: 32 }));
  it('IPv4: longest matching prefix', () => {
    fc.assert(
      fc.property(fc.array(v4, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(0xffffffff), { minLength: 1, maxLength: 30 }), (nets, ips) => {
        const entries = nets.map(([a, len], i) => {
          const c = parseCidr(`${formatIp(4, BigInt(a))}/${len}`)!;
          return { cidr: c, value: i };
        });
        const table = new CidrTable(entries);
        for (const ipn of ips) {
          const ip = formatIp(4, BigInt(ipn));
          let best: { len: number; i: number } | undefined;
          entries.forEach(({ cidr }, i) => {
            const mask = cidr.len === 0 ? 0n : ((1n << BigInt(cidr.len)) - 1n) << BigInt(32 - cidr.len);
            if ((BigInt(ipn) & mask) === cidr.addr && (!best || cidr.len > best.len)) best = { len: cidr.len, i };
          });
          const got = table.lookup(ip);
          // equal networks: the first entry wins
          if (best === undefined) expect(got).toBeUndefined();
          else expect(entries[got!]!.cidr.network).toBe(entries[best.i]!.cidr.network);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('IPv6: text forms round-trip and match their own network', () => {
    const hex = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(hex, fc.integer({ min: 0, max: 128 }), (groups, len) => {
        const full = groups.map((g) => g.toString(16)).join(':');
        const parsed = parseIp(full);
        if (!parsed || parsed.family === 4) return; // ::ffff:0:0/96 folds to IPv4 on purpose
        const text = formatIp(6, parsed.addr);
        expect(parseIp(text)!.addr).toBe(parsed.addr);
        const net = parseCidr(`${text}/${len}`)!;
        const table = new CidrTable([{ cidr: parseCidr(net.network)!, value: 'x' }]);
        expect(table.lookup(text)).toBe('x');
      }),
      { numRuns: 300 },
    );
  });
});
