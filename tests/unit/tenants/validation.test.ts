import { describe, expect, it } from 'vitest';
import { formatProblem, loadConfigDir, loadConfigTexts } from '../../../src/tenants/load.js';
import type { Problem } from '../../../src/tenants/types.js';
import { CARRIERS, GOOD_RING_GROUP, RING_GROUP_CASES, ringGroupTenants, SETTINGS, tenantsFile, type TenantSpec } from './fixture.js';

/** Problems of settings.yaml + carriers.yaml + the given tenants.yaml (or extra files). */
function check(tenants: TenantSpec[] | string, extra: Record<string, string> = {}): Problem[] {
  const files: Record<string, string> = {
    'settings.yaml': SETTINGS,
    'carriers.yaml': CARRIERS,
    'tenants.yaml': typeof tenants === 'string' ? tenants : tenantsFile(tenants),
    ...extra,
  };
  const r = loadConfigTexts(Object.entries(files).map(([file, text]) => ({ file, text })));
  if (r.problems.length === 0) expect(r.config).toBeDefined();
  return r.problems;
}

const only = (problems: Problem[]): Problem => {
  expect(problems, problems.map(formatProblem).join('\n')).toHaveLength(1);
  return problems[0]!;
};

// tenantsFile layout: line 1 "tenants:", then 5 lines per tenant (id, name, fqdn, dids, trunks).
const line = (tenant: number, field: 'id' | 'name' | 'fqdn' | 'dids' | 'trunks'): number =>
  2 + tenant * 5 + ['id', 'name', 'fqdn', 'dids', 'trunks'].indexOf(field);

describe('tenant config validation: the example set', () => {
  it('config/tenants validates with no problem', () => {
    const r = loadConfigDir('config/tenants');
    expect(r.problems).toEqual([]);
    expect(r.config!.tenants.map((t) => t.id)).toEqual(['contoso', 'fabrikam', 'adatum', 'litware']);
    expect(r.config!.carriers.map((c) => c.name)).toEqual(['northwind-voice', 'tailspin-sip']);
    expect(r.config!.settings.carrierBaseDomain).toBe('customers.example.net');
  });

  it('a correct set gets schema defaults filled in', () => {
    expect(check([{ id: 'a', dids: ['+14255550100'] }])).toEqual([]);
    const r = loadConfigTexts([
      { file: 's.yaml', text: SETTINGS + CARRIERS + tenantsFile([{ id: 'a', dids: ['+14255550100'] }]) },
    ]);
    const t = r.config!.tenants[0]!;
    expect(t.enabled).toBe(true);
    expect(t.media).toEqual({ codecs: ['PCMU', 'PCMA'], transcoding: false });
    expect(t.teams).toEqual({ advertiseRefer: true, forwardPai: false, historyInfoToDiversion: true, callerIdScreening: 'off' });
    expect(r.config!.carriers[0]!.targets[0]).toEqual({ host: 'sip.alpha.example', port: 5061, transport: 'tls', priority: 10 });
  });
});

describe('tenant config validation: each rule has its exact message', () => {
  it('caller-ID screening: replace needs a defaultCallerId, which must be a DID of the tenant; off and reject need none', () => {
    const teams = (t: string) => `    teams: { ${t} }\n`;
    expect(check([{ id: 'a', dids: ['+14255550100-+14255550199'], extra: teams('callerIdScreening: replace, defaultCallerId: "+14255550150"') }])).toEqual([]);
    expect(check([{ id: 'a', dids: ['+14255550100-+14255550199'], extra: teams('callerIdScreening: reject') }])).toEqual([]);
    const missing = only(check([{ id: 'a', dids: ['+14255550100'], extra: teams('callerIdScreening: replace') }]));
    expect(missing).toMatchObject({ path: 'tenants[0].teams.defaultCallerId', rule: 'caller-id-default' });
    expect(missing.message).toBe('callerIdScreening "replace" needs teams.defaultCallerId: the number presented instead of one the tenant does not own');
    const foreign = only(check([{ id: 'a', dids: ['+14255550100'] }, { id: 'b', dids: ['+14255550200*'], extra: teams('callerIdScreening: replace, defaultCallerId: "+14255550100"') }]));
    expect(foreign).toMatchObject({ path: 'tenants[1].teams.defaultCallerId', rule: 'caller-id-default' });
    expect(foreign.message).toBe('defaultCallerId "+14255550100" is not a DID of tenant "b": carriers would be sent a number the tenant does not own');
    expect(only(check([{ id: 'a', dids: ['+14255550100'], extra: teams('callerIdScreening: sometimes') }])).path).toBe('tenants[0].teams.callerIdScreening');
  });

  it('duplicate FQDN', () => {
    const p = only(check([{ id: 'a' }, { id: 'b', fqdn: 'a.customers.example.net' }]));
    expect(p).toMatchObject({ file: 'tenants.yaml', line: line(1, 'fqdn'), column: 11, path: 'tenants[1].fqdn', rule: 'fqdn-duplicate' });
    expect(p.message).toBe('duplicate FQDN "a.customers.example.net": already used by tenant "a" (tenants.yaml:4)');
  });

  it('a number in two tenants: identical exact numbers', () => {
    const p = only(check([{ id: 'a', dids: ['+14255550100'] }, { id: 'b', dids: ['+14255550100'] }]));
    expect(p).toMatchObject({ line: line(1, 'dids'), path: 'tenants[1].dids[0]', rule: 'did-overlap' });
    expect(p.message).toBe('DID "+14255550100" overlaps "+14255550100" of tenant "a" (tenants.yaml:5): a number would map to two tenants');
  });

  it('a number in two tenants: overlapping ranges (shared last/first number)', () => {
    const p = only(check([{ id: 'a', dids: ['+14255550100-+14255550199'] }, { id: 'b', dids: ['+14255550199-+14255550299'] }]));
    expect(p.path).toBe('tenants[1].dids[0]');
    expect(p.message).toBe(
      'DID "+14255550199-+14255550299" overlaps "+14255550100-+14255550199" of tenant "a" (tenants.yaml:5): a number would map to two tenants',
    );
  });

  it('adjacent ranges of two tenants do not overlap', () => {
    expect(check([{ id: 'a', dids: ['+14255550100-+14255550199'] }, { id: 'b', dids: ['+14255550200-+14255550299'] }])).toEqual([]);
  });

  it('a number in two tenants: an exact number inside another tenant\'s range', () => {
    const p = only(check([{ id: 'a', dids: ['+14255550100-+14255550199'] }, { id: 'b', dids: ['+14255550100'] }]));
    expect(p.message).toBe('DID "+14255550100" overlaps "+14255550100-+14255550199" of tenant "a" (tenants.yaml:5): a number would map to two tenants');
  });

  it('a number in two tenants: nested prefixes', () => {
    const p = only(check([{ id: 'a', dids: ['+4930*'] }, { id: 'b', dids: ['+493012*'] }]));
    expect(p).toMatchObject({ path: 'tenants[1].dids[0]', line: line(1, 'dids') });
    expect(p.message).toBe('DID "+493012*" overlaps "+4930*" of tenant "a" (tenants.yaml:5): a number would map to two tenants');
  });

  it('a number in two tenants: a range under another tenant\'s prefix', () => {
    const p = only(check([{ id: 'a', dids: ['+4930123*'] }, { id: 'b', dids: ['+493012299-+493012300'] }]));
    expect(p.message).toBe('DID "+493012299-+493012300" overlaps "+4930123*" of tenant "a" (tenants.yaml:5): a number would map to two tenants');
  });

  it('the same tenant may list overlapping entries', () => {
    expect(check([{ id: 'a', dids: ['+4930*', '+493012*', '+4930123', '+493011-+493019', '+493015-+493018'] }])).toEqual([]);
  });

  it('unknown carrier reference', () => {
    const p = only(check([{ id: 'a', trunks: ['alpha', 'gamma'] }]));
    expect(p).toMatchObject({ line: line(0, 'trunks'), path: 'tenants[0].trunks[1].carrier', rule: 'carrier-unknown' });
    expect(p.message).toBe('unknown carrier "gamma": no carrier with that name is defined');
  });

  it('inboundCarriers: each must be a defined carrier; kept sorted, and left out when empty', () => {
    const p = only(check([{ id: 'a', extra: '    inboundCarriers: [beta, gamma]\n' }]));
    expect(p).toMatchObject({ path: 'tenants[0].inboundCarriers[1]', rule: 'carrier-unknown', message: 'unknown carrier "gamma": no carrier with that name is defined' });
    expect(p.line).toBeGreaterThan(line(0, 'trunks'));
    const load = (extra: string) => loadConfigTexts([{ file: 's.yaml', text: SETTINGS + CARRIERS + tenantsFile([{ id: 'a', extra }]) }]).config!.tenants[0]!;
    expect(load('    inboundCarriers: [beta, alpha]\n').inboundCarriers).toEqual(['alpha', 'beta']);
    expect('inboundCarriers' in load('    inboundCarriers: []\n')).toBe(false);
    expect('inboundCarriers' in load('')).toBe(false);
    // Not a list of names: the schema names the field.
    expect(only(check([{ id: 'a', extra: '    inboundCarriers: alpha\n' }])).path).toBe('tenants[0].inboundCarriers');
  });

  it('malformed E.164: leading zero, too long, letters', () => {
    const ps = check([{ id: 'a', dids: ['+04255550100', '+1425555010012345', '14255550100', '+1425555O100'] }]);
    expect(ps.map((p) => [p.path, p.line, p.rule, p.message])).toEqual([
      ['tenants[0].dids[0]', 5, 'e164-malformed', 'malformed E.164 number "+04255550100": expected "+" and 1 to 15 digits, the first not 0'],
      ['tenants[0].dids[1]', 5, 'e164-malformed', 'malformed E.164 number "+1425555010012345": expected "+" and 1 to 15 digits, the first not 0'],
      ['tenants[0].dids[2]', 5, 'e164-malformed', 'malformed E.164 number "14255550100": expected "+" and 1 to 15 digits, the first not 0'],
      ['tenants[0].dids[3]', 5, 'e164-malformed', 'malformed E.164 number "+1425555O100": expected "+" and 1 to 15 digits, the first not 0'],
    ]);
  });

  it('malformed E.164 inside a range names the bad end; malformed prefix', () => {
    const ps = check([{ id: 'a', dids: ['+14255550100-+0425555019', '+49 30*'] }]);
    expect(ps.map((p) => p.message)).toEqual([
      'malformed E.164 number "+0425555019": expected "+" and 1 to 15 digits, the first not 0',
      'malformed E.164 prefix "+49 30*": expected "+", 1 to 15 digits (the first not 0) and a final "*"',
    ]);
  });

  it('ranges: different lengths, reversed', () => {
    const ps = check([{ id: 'a', dids: ['+1425555010-+14255550199', '+14255550199-+14255550100'] }]);
    expect(ps.map((p) => p.message)).toEqual([
      'DID range "+1425555010-+14255550199" must start and end with numbers of the same length',
      'DID range "+14255550199-+14255550100" is empty: the first number is greater than the last',
    ]);
  });

  it('FQDN outside the base domain', () => {
    const p = only(check([{ id: 'a', fqdn: 'a.customers.example.com' }]));
    expect(p).toMatchObject({ line: line(0, 'fqdn'), path: 'tenants[0].fqdn', rule: 'fqdn-outside-base' });
    expect(p.message).toBe('FQDN "a.customers.example.com" is not under the carrier base domain "customers.example.net"');
  });

  it('FQDN that merely ends with the base domain text is outside it', () => {
    expect(only(check([{ id: 'a', fqdn: 'evilcustomers.example.net' }])).message).toBe(
      'FQDN "evilcustomers.example.net" is not under the carrier base domain "customers.example.net"',
    );
  });

  it('FQDN equal to the base domain', () => {
    expect(only(check([{ id: 'a', fqdn: 'customers.example.net' }])).message).toBe(
      'FQDN "customers.example.net" is the carrier base domain itself: a tenant needs its own label under it',
    );
  });

  it('FQDN with more than one label under the base domain', () => {
    const p = only(check([{ id: 'a', fqdn: 'sbc1.a.customers.example.net' }]));
    expect(p.rule).toBe('fqdn-labels');
    expect(p.message).toBe('FQDN "sbc1.a.customers.example.net" must be a single label under "customers.example.net", found 2 labels');
  });

  it('FQDN label longer than 48 characters (48 is fine)', () => {
    const l48 = 'a'.repeat(48);
    expect(check([{ id: 'a', fqdn: `${l48}.customers.example.net` }])).toEqual([]);
    const p = only(check([{ id: 'a', fqdn: `${l48}b.customers.example.net` }]));
    expect(p.message).toBe(`FQDN label "${l48}b" is 49 characters long: at most 48 are allowed`);
  });

  it('FQDN in upper case, FQDN label with bad characters', () => {
    expect(only(check([{ id: 'a', fqdn: 'Contoso.customers.example.net' }])).message).toBe('FQDN "Contoso.customers.example.net" must be lower case');
    expect(only(check([{ id: 'a', fqdn: '"*.customers.example.net"' }])).message).toBe(
      'FQDN label "*" may only contain a-z, 0-9 and "-", and must not start or end with "-"',
    );
    expect(only(check([{ id: 'a', fqdn: '-a.customers.example.net' }])).rule).toBe('fqdn-label-chars');
  });

  it('CIDR that is not a network address (IPv4 and IPv6)', () => {
    const carriers = `carriers:
  - name: alpha
    sources: [10.0.0.1/8, "2001:db8::1/64", 10.1.2.3/32, "10.0.0.0/33", 10.0.0.0/16]
    targets: [{ host: a.example }]
`;
    const ps = check([{ id: 'a' }], { 'carriers.yaml': carriers });
    expect(ps.map((p) => [p.file, p.line, p.path, p.rule, p.message])).toEqual([
      ['carriers.yaml', 3, 'carriers[0].sources[0]', 'cidr-not-network', 'CIDR "10.0.0.1/8" is not a network address: host bits are set (the network is "10.0.0.0/8")'],
      ['carriers.yaml', 3, 'carriers[0].sources[1]', 'cidr-not-network', 'CIDR "2001:db8::1/64" is not a network address: host bits are set (the network is "2001:db8::/64")'],
      ['carriers.yaml', 3, 'carriers[0].sources[3]', 'address', '"10.0.0.0/33" is not an IP address or CIDR network'],
    ]);
  });

  it('the same source on two carriers', () => {
    const carriers = `carriers:
  - name: alpha
    sources: ["2001:db8::/32"]
    targets: [{ host: a.example }]
  - name: beta
    sources: ["2001:0db8:0::/32"]
    targets: [{ host: b.example }]
`;
    const p = only(check([{ id: 'a' }], { 'carriers.yaml': carriers }));
    expect(p).toMatchObject({ line: 6, path: 'carriers[1].sources[0]' });
    expect(p.message).toBe('source "2001:0db8:0::/32" is already allowed for carrier "alpha" (carriers.yaml:3): a source address must identify one carrier');
  });

  it('credentials written inline (the secret is not echoed)', () => {
    const carriers = `carriers:
  - name: alpha
    sources: [198.51.100.10]
    targets: [{ host: a.example }]
    auth: { username: u1, password: "S3cret!pass" }
`;
    const p = only(check([{ id: 'a' }], { 'carriers.yaml': carriers }));
    expect(p).toMatchObject({ file: 'carriers.yaml', line: 5, path: 'carriers[0].auth.password', rule: 'credential-inline' });
    expect(p.message).toBe('credentials must not be written inline: use "env:VARIABLE" or "file:/path/to/secret"');
    expect(JSON.stringify(p)).not.toContain('S3cret');
  });

  it('schema: unknown property points at the key, missing property at the item', () => {
    const ps = check(tenantsFile([{ id: 'a', extra: '    fqnd: typo\n' }]) + '  - id: b\n    name: B\n');
    expect(ps.map((p) => [p.line, p.column, p.path, p.message])).toEqual([
      [7, 5, 'tenants[0].fqnd', 'unknown property "fqnd"'],
      [8, 5, 'tenants[1]', 'missing required property "fqdn"'],
    ]);
  });

  it('schema: types, enums and limits', () => {
    const ps = check([{ id: 'a', extra: '    enabled: "yes"\n    limits: { maxConcurrentCalls: 0, cps: 0 }\n' }], {
      'carriers.yaml': CARRIERS.replace('transport: tls', 'transport: sctp'),
    });
    expect(ps.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'carriers[0].targets[0].transport: must be one of: udp, tcp, tls',
      'tenants[0].enabled: must be true or false',
      'tenants[0].limits.maxConcurrentCalls: must be at least 1',
      'tenants[0].limits.cps: must be greater than 0',
    ]);
  });

  it('settings: missing, twice, bad base domain', () => {
    const none = loadConfigTexts([{ file: 't.yaml', text: CARRIERS + tenantsFile([{ id: 'a' }]) }]);
    expect(none.problems.map((p) => [p.file, p.line, p.message])).toEqual([['', 0, 'no settings block: one file must define settings.carrierBaseDomain']]);
    expect(only(check([{ id: 'a' }], { 'more.yaml': SETTINGS })).message).toBe('settings are already defined at settings.yaml:1: define them once');
    const bad = check([{ id: 'a' }], { 'settings.yaml': 'settings:\n  carrierBaseDomain: Customers_example\n' });
    expect(only(bad).message).toBe('carrierBaseDomain "Customers_example" is not a valid lower-case domain name with at least two labels');
  });

  it('duplicate tenant ids and carrier names', () => {
    expect(only(check([{ id: 'a' }, { id: 'a', fqdn: 'a2.customers.example.net' }])).message).toBe(
      'duplicate tenant id "a": already defined at tenants.yaml:2',
    );
  });

  it('an unquoted wildcard is a YAML alias error, reported, not thrown', () => {
    expect(only(check([{ id: 'a', fqdn: '*.customers.example.net' }]))).toMatchObject({
      line: 4,
      column: 11,
      rule: 'yaml',
      message: 'YAML syntax error: Unresolved alias (the anchor must be set before the alias): .customers.example.net',
    });
  });

  it('YAML syntax errors carry their line', () => {
    const ps = check('tenants:\n  - id: a\n    name: [unclosed\n');
    expect(ps[0]).toMatchObject({ file: 'tenants.yaml', rule: 'yaml' });
    expect(ps[0]!.message.startsWith('YAML syntax error: ')).toBe(true);
    expect(ps[0]!.line).toBeGreaterThanOrEqual(3);
  });

  it('a broken document does not hide the other documents of its file', () => {
    const text = `${SETTINGS}---\n${CARRIERS}---\ntenants:\n  - id: a\n    name: [unclosed\n`;
    const r = loadConfigTexts([{ file: 'all.yaml', text }]);
    expect(r.problems.map((p) => p.rule)).toEqual(['yaml']); // no "no settings block", no unknown carriers
    expect(r.problems[0]!.message.startsWith('YAML syntax error: ')).toBe(true);
  });

  it('duplicate keys are a YAML error', () => {
    const p = only(check('tenants:\n  - id: a\n    id: b\n    name: A\n    fqdn: a.customers.example.net\n'));
    expect(p).toMatchObject({ line: 3, rule: 'yaml', message: 'YAML syntax error: Map keys must be unique' });
  });

  it('reports every problem at once, across files, sorted by file and line', () => {
    const carriers = `carriers:
  - name: alpha
    sources: [10.0.0.1/24]
    targets: [{ host: a.example }]
    auth: { username: u, password: hunter2 }
`;
    const ps = check(
      [
        { id: 'a', dids: ['+0123'], trunks: ['nope'] },
        { id: 'b', fqdn: 'a.customers.example.net', dids: ['+4930*'] },
        { id: 'c', fqdn: 'x.y.customers.example.net', dids: ['+49301*'] },
      ],
      { 'carriers.yaml': carriers },
    );
    expect(ps.map(formatProblem)).toEqual([
      'carriers.yaml:3:15 carriers[0].sources[0]: CIDR "10.0.0.1/24" is not a network address: host bits are set (the network is "10.0.0.0/24")',
      'carriers.yaml:5:36 carriers[0].auth.password: credentials must not be written inline: use "env:VARIABLE" or "file:/path/to/secret"',
      'tenants.yaml:5:12 tenants[0].dids[0]: malformed E.164 number "+0123": expected "+" and 1 to 15 digits, the first not 0',
      'tenants.yaml:6:25 tenants[0].trunks[0].carrier: unknown carrier "nope": no carrier with that name is defined',
      'tenants.yaml:9:11 tenants[1].fqdn: duplicate FQDN "a.customers.example.net": already used by tenant "a" (tenants.yaml:4)',
      'tenants.yaml:14:11 tenants[2].fqdn: FQDN "x.y.customers.example.net" must be a single label under "customers.example.net", found 2 labels',
      'tenants.yaml:15:12 tenants[2].dids[0]: DID "+49301*" overlaps "+4930*" of tenant "b" (tenants.yaml:10): a number would map to two tenants',
    ]);
  });

  it('several documents per file and several tenants per document', () => {
    const text = `${SETTINGS}---\n${CARRIERS}---\n${tenantsFile([{ id: 'a' }, { id: 'b' }])}---\n${tenantsFile([{ id: 'c', fqdn: 'b.customers.example.net' }])}`;
    const r = loadConfigTexts([{ file: 'all.yaml', text }]);
    const lines = text.split('\n');
    const first = lines.indexOf('    fqdn: b.customers.example.net') + 1;
    const second = lines.lastIndexOf('    fqdn: b.customers.example.net') + 1;
    expect(second).toBeGreaterThan(first);
    expect(r.problems.map(formatProblem)).toEqual([
      `all.yaml:${second}:11 tenants[0].fqdn: duplicate FQDN "b.customers.example.net": already used by tenant "b" (all.yaml:${first})`,
    ]);
  });
});

describe('tenant config validation: ring groups', () => {
  const G = GOOD_RING_GROUP;

  it('groups on an exact number, a range number and a prefix number validate; they are sorted by number, and a tenant without groups has no ringGroups key', () => {
    const r = loadConfigTexts([
      { file: 'settings.yaml', text: SETTINGS },
      { file: 'carriers.yaml', text: CARRIERS },
      {
        file: 'tenants.yaml',
        text: ringGroupTenants([
          { ...G, did: '+4930123', strategy: 'sequential', memberTimeoutSec: 15, members: ['+4930124', '+4930125', '+4930126'], fallback: '+4930100' },
          G,
          { ...G, did: '+14255551234' },
        ]),
      },
    ]);
    expect(r.problems).toEqual([]);
    const [a, b] = r.config!.tenants;
    expect(a!.ringGroups).toEqual([
      { did: '+14255550170', strategy: 'simultaneous', memberTimeoutSec: 20, members: ['+14255550171', '+14255550172'] },
      { did: '+14255551234', strategy: 'simultaneous', memberTimeoutSec: 20, members: ['+14255550171', '+14255550172'] },
      { did: '+4930123', strategy: 'sequential', memberTimeoutSec: 15, members: ['+4930124', '+4930125', '+4930126'], fallback: '+4930100' },
    ]);
    // dids, then ringGroups, then the rest: the order export writes and Redis reads back
    expect(Object.keys(a!).slice(4, 7)).toEqual(['dids', 'ringGroups', 'trunks']);
    expect(b).not.toHaveProperty('ringGroups');
  });

  it('the example set carries a ring group', () => {
    const r = loadConfigDir('config/tenants');
    const contoso = r.config!.tenants.find((t) => t.id === 'contoso')!;
    expect(contoso.ringGroups?.map((g) => [g.did, g.strategy])).toEqual([
      ['+14255550100', 'simultaneous'],
      ['+14255550150', 'sequential'],
    ]);
  });

  it.each(RING_GROUP_CASES)('$name', ({ groups, problem }) => {
    const p = only(check(ringGroupTenants(groups)));
    expect(p).toEqual({ file: 'tenants.yaml', ...problem });
  });

  it('an invalid DID entry of the tenant is reported once: its ring groups are not also called unowned', () => {
    const text = tenantsFile([{ id: 'a', dids: ['+14255550199-+14255550100'], extra: `${'    ringGroups:\n'}      - { did: "+14255550170", strategy: simultaneous, memberTimeoutSec: 20, members: ["+14255550171", "+14255550172"] }\n` }]);
    expect(check(text).map((p) => p.rule)).toEqual(['range-empty']);
  });

  it('every problem of several groups at once, with file, line and path', () => {
    const ps = check(ringGroupTenants([{ ...G, did: '+14255550300', fallback: '+14255550171' }, { ...G, members: ['x'] }]));
    expect(ps.map(formatProblem)).toEqual([
      'tenants.yaml:8:14 tenants[0].ringGroups[0].did: ring group number "+14255550300" is not a DID of tenant "a": add it (or a range or prefix covering it) to the tenant\'s dids',
      'tenants.yaml:12:19 tenants[0].ringGroups[0].fallback: fallback "+14255550171" is also a member of the ring group: it would ring twice',
      'tenants.yaml:16:9 tenants[0].ringGroups[1].members: must list at least 2 items',
      'tenants.yaml:16:19 tenants[0].ringGroups[1].members[0]: malformed E.164 number "x": expected "+" and 1 to 15 digits, the first not 0',
    ]);
  });
});
