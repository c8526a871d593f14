/**
 * The two test PKIs a Teams Direct Routing test needs (requirements doc, harness section A):
 *
 * - `teams`: a root standing in for "DigiCert Global Root G2" and the certificate the fake
 *   Teams proxies present (SANs sip/sip2/sip3.pstnhub.microsoft.com and the government names),
 *   used as TLS server certificate and as client certificate on connections Teams opens.
 *   The gateway trusts `teams.ca.certPath`.
 * - `sbc`: a second root and the gateway certificate (RSA, serverAuth + clientAuth, SANs
 *   `*.<baseDomain>` + `<baseDomain>`). The fake Teams trusts `sbc.ca.cert`.
 */
import { join } from 'node:path';
import { type TestPki, createTestPki } from '../pki.js';

export const TEAMS_PROXY_FQDNS = ['sip.pstnhub.microsoft.com', 'sip2.pstnhub.microsoft.com', 'sip3.pstnhub.microsoft.com'] as const;

/** §1.2: the one proxy of each US government cloud (no sip2/sip3 there). */
export const TEAMS_GOV_PROXY_FQDNS = { gcch: 'sip.pstnhub.gov.teams.microsoft.us', dod: 'sip.pstnhub.dod.teams.microsoft.us' } as const;

export interface FakeTeamsPki {
  teams: TestPki;
  sbc: TestPki;
  baseDomain: string;
}

export interface FakeTeamsPkiOptions {
  /** Carrier base domain (default customers.example.net). */
  baseDomain?: string;
  /** SANs of the gateway certificate (default `*.<base>` and `<base>`). */
  sbcSans?: string[];
}

/** Creates both PKIs under `dir` (two subdirectories). Takes a few seconds (openssl). */
export async function createFakeTeamsPki(dir: string, opts: FakeTeamsPkiOptions = {}): Promise<FakeTeamsPki> {
  const baseDomain = opts.baseDomain ?? 'customers.example.net';
  const [teams, sbc] = await Promise.all([
    createTestPki(join(dir, 'teams'), {
      caCn: 'Test DigiCert Global Root G2 stand-in',
      server: {
        cn: 'sip.pstnhub.microsoft.com',
        sans: [...TEAMS_PROXY_FQDNS, 'sip-all.pstnhub.microsoft.com', ...Object.values(TEAMS_GOV_PROXY_FQDNS)].map((s) => `DNS:${s}`),
        eku: ['serverAuth', 'clientAuth'],
      },
      client: { cn: 'teams-client.test.invalid', eku: ['clientAuth'] },
    }),
    createTestPki(join(dir, 'sbc'), {
      caCn: 'Test SBC Root CA',
      server: {
        cn: `*.${baseDomain}`,
        sans: (opts.sbcSans ?? [`*.${baseDomain}`, baseDomain]).map((s) => (s.includes(':') ? s : `DNS:${s}`)),
        eku: ['serverAuth', 'clientAuth'],
      },
      client: { cn: `sbc-client.${baseDomain}`, eku: ['clientAuth'] },
    }),
  ]);
  return { teams, sbc, baseDomain };
}
