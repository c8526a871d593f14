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
});
