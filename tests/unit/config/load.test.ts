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

  it('validates ring groups and fills their defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'rg.yaml');
    writeFileSync(f, 'calls:\n  ringGroups:\n    "+14255550100":\n      members: ["+14255550101", "+14255550102"]\n      fallback: "+14255550199"\n');
    const c = loadConfig(f, {});
    expect(c.calls.ringGroups['+14255550100']).toEqual({ members: ['+14255550101', '+14255550102'], fallback: '+14255550199', strategy: 'simultaneous', memberTimeoutSec: 20 });
    writeFileSync(f, 'calls:\n  ringGroups:\n    "+14255550100":\n      members: ["4255550101"]\n');
    expect(() => loadConfig(f, {})).toThrow(/calls\.ringGroups\.\+14255550100\.members\.0 must match pattern/);
  });
});

