import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, loadConfig } from '../../../src/config/load.js';

describe('gateway config', () => {
  it('config/default.json equals the schema defaults', () => {
    expect(JSON.parse(readFileSync('config/default.json', 'utf8'))).toEqual(defaultConfig());
  });

  it('overlays a file and the environment, and freezes the result', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'gw.yaml');
    writeFileSync(f, 'teams:\n  signalingPort: 5071\nlog:\n  level: debug\n');
    const c = loadConfig(f, { TEAMS_GW_LOG_LEVEL: 'warn', DRACHTIO_SECRET: 's3' });
    expect(c.teams.signalingPort).toBe(5071);
    expect(c.log.level).toBe('warn');
    expect(c.sipServer.admin.secret).toBe('s3');
    expect(c.teams.proxies.map((p) => p.host)).toEqual(['sip.pstnhub.microsoft.com', 'sip2.pstnhub.microsoft.com', 'sip3.pstnhub.microsoft.com']);
    expect(Object.isFrozen(c.teams)).toBe(true);
  });

  it('names the file and the field of every problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'teams:\n  signalingPort: 70000\n  sbcHeadr: x\nmedia:\n  rtpengines: nope\n');
    let err: any;
    try {
      loadConfig(f, {});
    } catch (e) {
      err = e;
    }
    expect(err?.code).toBe('CONFIG_ERR_INVALID');
    expect(err.message.split('\n').sort()).toEqual([
      `${f}: media.rtpengines must be array`,
      `${f}: teams.sbcHeadr: unknown setting`,
      `${f}: teams.signalingPort must be <= 65535`,
    ]);
  });

  it('names the environment variable source when the overlay is invalid', () => {
    expect(() => loadConfig(undefined, { TEAMS_GW_SIP_MODE: 'sideways' })).toThrow(/environment: sipServer\.mode must be equal to one of the allowed values/);
  });

  it('calls.ringGroups (moved to the tenant config) is refused with a message naming the key and the tenant file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'rg.yaml');
    writeFileSync(f, 'calls:\n  info: local\n  ringGroups:\n    "+14255550100":\n      members: ["+14255550101", "+14255550102"]\n');
    let err: any;
    try {
      loadConfig(f, {});
    } catch (e) {
      err = e;
    }
    expect(err?.code).toBe('CONFIG_ERR_INVALID');
    expect(err.message).toBe(
      `${f}: calls.ringGroups: ring groups moved to the tenant config: define them per DID under tenants[].ringGroups in the tenant's file (config/tenants/*.yaml, see docs/tenants.md "Ring groups") and remove calls.ringGroups here`,
    );
    // an empty leftover is refused too (the key itself is gone), other unknown keys keep the plain message
    writeFileSync(f, 'calls:\n  ringGroups: {}\n  ringGroup: {}\n');
    expect(() => loadConfig(f, {})).toThrow(/calls\.ringGroups: ring groups moved to the tenant config/);
    expect(() => loadConfig(f, {})).toThrow(`${f}: calls.ringGroup: unknown setting`);
  });

  it('sipServer.tls.verifyClients needs verifyPeer and caFile; the error names the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'tls.yaml');
    writeFileSync(f, 'sipServer:\n  tls:\n    verifyClients: true\n');
    expect(() => loadConfig(f, {})).toThrow(`${f}: sipServer.tls.verifyClients needs sipServer.tls.verifyPeer: true and a sipServer.tls.caFile`);
    writeFileSync(f, 'sipServer:\n  tls:\n    verifyClients: true\n    verifyPeer: true\n');
    expect(() => loadConfig(f, {})).toThrow(`${f}: sipServer.tls.verifyClients needs`);
    writeFileSync(f, 'sipServer:\n  tls:\n    verifyClients: true\n    verifyPeer: true\n    caFile: /etc/ssl/teams-roots.pem\n');
    expect(loadConfig(f, {}).sipServer.tls.verifyClients).toBe(true);
  });

  it('teams.cloud chooses the proxies and source ranges; a government cloud needs port 5061 and refuses commercial proxies (§1.2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'cloud.yaml');
    const commercial = defaultConfig().teams;
    expect(commercial.cloud).toBe('commercial');
    expect(commercial.sourceCidrs).toEqual(['52.112.0.0/14', '52.120.0.0/14']);
    writeFileSync(f, 'teams:\n  cloud: gcch\n');
    const gcch = loadConfig(f, {}).teams;
    expect(gcch.proxies).toEqual([{ host: 'sip.pstnhub.gov.teams.microsoft.us', port: 5061 }]);
    expect(gcch.sourceCidrs).toEqual(['52.127.88.0/21']);
    const dod = loadConfig(undefined, { TEAMS_GW_TEAMS_CLOUD: 'dod' }).teams;
    expect(dod.proxies).toEqual([{ host: 'sip.pstnhub.dod.teams.microsoft.us', port: 5061 }]);
    expect(dod.sourceCidrs).toEqual(['52.127.64.0/21']);
    // what the file sets wins over the preset
    writeFileSync(f, 'teams:\n  cloud: dod\n  sourceCidrs: [52.127.64.0/21, 10.1.2.3/32]\n  proxies: [{ host: sip.pstnhub.dod.teams.microsoft.us, port: 5061 }]\n');
    expect(loadConfig(f, {}).teams.sourceCidrs).toEqual(['52.127.64.0/21', '10.1.2.3/32']);
    // a commercial config (config/default.json spells the list out) switched to gcch
    writeFileSync(f, 'teams:\n  cloud: gcch\n  proxies: [{ host: sip.pstnhub.gov.teams.microsoft.us }, { host: SIP2.pstnhub.microsoft.com }]\n');
    expect(() => loadConfig(f, {})).toThrow(
      `${f}: teams.proxies.1.host: SIP2.pstnhub.microsoft.com is a commercial cloud proxy but teams.cloud is gcch; remove teams.proxies to use the gcch proxies, or set teams.cloud`,
    );
    writeFileSync(f, 'teams:\n  proxies: [{ host: sip.pstnhub.dod.teams.microsoft.us }]\n');
    expect(() => loadConfig(f, {})).toThrow(`${f}: teams.proxies.0.host: sip.pstnhub.dod.teams.microsoft.us is a dod cloud proxy but teams.cloud is commercial`);
    writeFileSync(f, 'teams:\n  cloud: dod\n  signalingPort: 5062\n');
    expect(() => loadConfig(f, {})).toThrow(`${f}: teams.signalingPort must be 5061 when teams.cloud is dod`);
    writeFileSync(f, 'teams:\n  signalingPort: 5062\n');
    expect(loadConfig(f, {}).teams.signalingPort).toBe(5062);
    writeFileSync(f, 'teams:\n  cloud: gov\n');
    expect(() => loadConfig(f, {})).toThrow(`${f}: teams.cloud must be equal to one of the allowed values`);
    // a proxy under no Microsoft domain (split-horizon test hosts, a lab) is the operator's choice
    writeFileSync(f, 'teams:\n  cloud: gcch\n  proxies: [{ host: teams-lab.example.net }]\n');
    expect(loadConfig(f, {}).teams.proxies).toEqual([{ host: 'teams-lab.example.net', port: 5061 }]);
  });
});
