import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedisServer, type RedisServerHandle } from '../../helpers/redis-server.js';
import { runTenantsCli } from '../../../src/tenants/cli.js';
import { RedisTenantStore } from '../../../src/tenants/redis-tenant-store.js';
import { CARRIERS, SETTINGS, tenantsFile, writeConfigDir } from '../../unit/tenants/fixture.js';

// ioredis Sentinel mode, the way ioredis users configure it: sentinels + master name.
describe('Redis Sentinel configuration', () => {
  let master: RedisServerHandle;
  let sentinel: RedisServerHandle;
  let confDir: string;
  beforeAll(async () => {
    master = await startRedisServer();
    confDir = mkdtempSync(join(tmpdir(), 'sentinel-'));
    const conf = join(confDir, 'sentinel.conf');
    writeFileSync(conf, `sentinel monitor gwmaster 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds gwmaster 5000\n`);
    sentinel = await startRedisServer({ port: await freePort(), configFile: conf, args: ['--sentinel'] });
  });
  afterAll(async () => {
    await sentinel?.stop();
    await master?.stop();
    rmSync(confDir, { recursive: true, force: true });
  });

  it('the CLI applies through Sentinel and a store started through Sentinel serves it', async () => {
    const d = writeConfigDir({ 'settings.yaml': SETTINGS, 'carriers.yaml': CARRIERS, 't.yaml': tenantsFile([{ id: 's', dids: ['+3355*'] }]) });
    try {
      const out: string[] = [];
      const code = await runTenantsCli(
        ['apply', '--config-dir', d.dir, '--redis-sentinels', `127.0.0.1:${sentinel.port}`, '--redis-sentinel-name', 'gwmaster', '--json'],
        { out: (s) => out.push(s), err: (s) => out.push(s), env: {}, cwd: process.cwd() },
      );
      expect(code).toBe(0);
      expect(JSON.parse(out[0]!)).toMatchObject({ ok: true, version: 1 });
      const store = new RedisTenantStore({ redis: { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: 'gwmaster' } });
      await store.start();
      expect((await store.byNumber('+33551234'))?.id).toBe('s');
      await store.close();
    } finally {
      d.cleanup();
    }
  });
});
