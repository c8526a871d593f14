/** Small config builders shared by the tenants tests. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const SETTINGS = `settings:
  carrierBaseDomain: customers.example.net
`;

export const CARRIERS = `carriers:
  - name: alpha
    sources: [198.51.100.10, 203.0.113.0/26, "2001:db8:100::/48"]
    targets: [{ host: sip.alpha.example, transport: tls }]
    auth: { username: u1, password: env:ALPHA_PASSWORD }
  - name: beta
    sources: [192.0.2.0/24, 192.0.2.128/25, "2001:db8:100:5::/64", "2001:db8:200::10"]
    targets: [{ host: 192.0.2.50 }]
`;

export interface TenantSpec {
  id: string;
  fqdn?: string;
  name?: string;
  dids?: string[];
  trunks?: string[];
  extra?: string;
}

export function tenantYaml(t: TenantSpec): string {
  const dids = (t.dids ?? []).map((d) => JSON.stringify(d)).join(', ');
  return `  - id: ${t.id}
    name: ${JSON.stringify(t.name ?? `Tenant ${t.id}`)}
    fqdn: ${t.fqdn ?? `${t.id}.customers.example.net`}
    dids: [${dids}]
    trunks: [${(t.trunks ?? ['alpha']).map((c) => `{ carrier: ${c} }`).join(', ')}]
${t.extra ?? ''}`;
}

export function tenantsFile(list: TenantSpec[]): string {
  return `tenants:\n${list.map(tenantYaml).join('')}`;
}

/** A temp config directory; returns its path and a cleanup. */
export function writeConfigDir(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tenants-'));
  writeFiles(dir, files);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

/** One ring group as YAML lines (keys in the order given; values as JSON, which YAML reads). */
export type RingGroupSpec = Record<string, unknown>;

export function ringGroupsYaml(groups: RingGroupSpec[]): string {
  const item = (g: RingGroupSpec): string =>
    Object.entries(g)
      .map(([k, v], i) => `${i === 0 ? '      - ' : '        '}${k}: ${JSON.stringify(v)}\n`)
      .join('');
  return `    ringGroups:\n${groups.map(item).join('')}`;
}

export const GOOD_RING_GROUP = { did: '+14255550170', strategy: 'simultaneous', memberTimeoutSec: 20, members: ['+14255550171', '+14255550172'] };

/**
 * tenants.yaml with tenant "a" (a range, an exact number and a prefix) carrying `groups`, and
 * tenant "b". Layout: line 1 "tenants:", tenant a's id..trunks on 2-6, "ringGroups:" on 7, then
 * one line per key of each group (the first group starts on line 8).
 */
export function ringGroupTenants(groups: RingGroupSpec[]): string {
  return tenantsFile([
    { id: 'a', dids: ['+14255550100-+14255550199', '+14255551234', '+4930*'], extra: ringGroupsYaml(groups) },
    { id: 'b', dids: ['+14255550300'] },
  ]);
}

export interface RingGroupCase {
  name: string;
  groups: RingGroupSpec[];
  /** The one problem expected in tenants.yaml. */
  problem: { line: number; column: number; path: string; rule: string; message: string };
}

const G = GOOD_RING_GROUP;
const E164 = (n: string): string => `malformed E.164 number "${n}": expected "+" and 1 to 15 digits, the first not 0`;

/**
 * Every ring-group rule, one invalid file each: the validation tests assert the exact problem,
 * the store and CLI tests that none of them changes Redis or a running store.
 */
export const RING_GROUP_CASES: RingGroupCase[] = [
  {
    name: 'ring-group-did: a number of another tenant',
    groups: [{ ...G, did: '+14255550300' }],
    problem: { line: 8, column: 14, path: 'tenants[0].ringGroups[0].did', rule: 'ring-group-did', message: 'ring group number "+14255550300" is not a DID of tenant "a": add it (or a range or prefix covering it) to the tenant\'s dids' },
  },
  {
    name: 'ring-group-did: digits of the range, one digit short',
    groups: [{ ...G, did: '+1425555017' }],
    problem: { line: 8, column: 14, path: 'tenants[0].ringGroups[0].did', rule: 'ring-group-did', message: 'ring group number "+1425555017" is not a DID of tenant "a": add it (or a range or prefix covering it) to the tenant\'s dids' },
  },
  {
    name: 'ring-group-duplicate: two groups for one number',
    groups: [G, { ...G, members: ['+14255550173', '+14255550174'] }],
    problem: { line: 12, column: 14, path: 'tenants[0].ringGroups[1].did', rule: 'ring-group-duplicate', message: 'duplicate ring group for "+14255550170": already defined at tenants.yaml:8' },
  },
  {
    name: 'ring-group-fallback: the fallback is also a member',
    groups: [{ ...G, fallback: '+14255550172' }],
    problem: { line: 12, column: 19, path: 'tenants[0].ringGroups[0].fallback', rule: 'ring-group-fallback', message: 'fallback "+14255550172" is also a member of the ring group: it would ring twice' },
  },
  {
    name: 'e164-malformed: a member without "+"',
    groups: [{ ...G, members: ['+14255550171', '14255550172'] }],
    problem: { line: 11, column: 34, path: 'tenants[0].ringGroups[0].members[1]', rule: 'e164-malformed', message: E164('14255550172') },
  },
  {
    name: 'e164-malformed: a range as the group number',
    groups: [{ ...G, did: '+14255550170-+14255550171' }],
    problem: { line: 8, column: 14, path: 'tenants[0].ringGroups[0].did', rule: 'e164-malformed', message: E164('+14255550170-+14255550171') },
  },
  {
    name: 'e164-malformed: a fallback with a space',
    groups: [{ ...G, fallback: '+1 4255550179' }],
    problem: { line: 12, column: 19, path: 'tenants[0].ringGroups[0].fallback', rule: 'e164-malformed', message: E164('+1 4255550179') },
  },
  {
    name: 'schema: fewer than two members',
    groups: [{ ...G, members: ['+14255550171'] }],
    problem: { line: 11, column: 9, path: 'tenants[0].ringGroups[0].members', rule: 'schema', message: 'must list at least 2 items' },
  },
  {
    name: 'schema: a member listed twice',
    groups: [{ ...G, members: ['+14255550171', '+14255550171'] }],
    problem: { line: 11, column: 9, path: 'tenants[0].ringGroups[0].members', rule: 'schema', message: 'lists "+14255550171" twice' },
  },
  {
    name: 'schema: unknown strategy',
    groups: [{ ...G, strategy: 'round-robin' }],
    problem: { line: 9, column: 19, path: 'tenants[0].ringGroups[0].strategy', rule: 'schema', message: 'must be one of: simultaneous, sequential' },
  },
  {
    name: 'schema: memberTimeoutSec below 1',
    groups: [{ ...G, memberTimeoutSec: 0 }],
    problem: { line: 10, column: 27, path: 'tenants[0].ringGroups[0].memberTimeoutSec', rule: 'schema', message: 'must be at least 1' },
  },
  {
    name: 'schema: memberTimeoutSec above 300',
    groups: [{ ...G, memberTimeoutSec: 301 }],
    problem: { line: 10, column: 27, path: 'tenants[0].ringGroups[0].memberTimeoutSec', rule: 'schema', message: 'must be at most 300' },
  },
  {
    name: 'schema: strategy missing',
    groups: [{ did: G.did, memberTimeoutSec: 20, members: G.members }],
    problem: { line: 8, column: 9, path: 'tenants[0].ringGroups[0]', rule: 'schema', message: 'missing required property "strategy"' },
  },
  {
    name: 'schema: unknown property',
    groups: [{ ...G, ringTimeSec: 30 }],
    problem: { line: 12, column: 9, path: 'tenants[0].ringGroups[0].ringTimeSec', rule: 'schema', message: 'unknown property "ringTimeSec"' },
  },
];
