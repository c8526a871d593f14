#!/usr/bin/env node
// Makes sure the Debian packages the test suite drives are present (SIPp, redis-server,
// rtpengine, stunnel, docker-compose for the config check). Installs them with apt when run as
// root; otherwise names what is missing and exits 1. Kept in one list with .ci/run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const list = readFileSync(join(here, 'system-packages.txt'), 'utf8')
  .split('\n')
  .map((l) => l.replace(/#.*/, '').trim())
  .filter(Boolean)
  .map((l) => l.split(/\s+/));
// each line: <debian package> <binary that proves it is installed>
const missing = list.filter(([, bin]) => !existsSync(bin) && spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0);
if (missing.length === 0) process.exit(0);
const pkgs = missing.map(([p]) => p);
if (process.getuid?.() !== 0) {
  console.error(`missing system packages: ${pkgs.join(' ')}\nrun as root: apt-get install -y ${pkgs.join(' ')}`);
  process.exit(1);
}
console.log(`installing system packages: ${pkgs.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
