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
