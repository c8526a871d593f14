/* global require, module, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports */
'use strict';
// Stand-in for drachtio-srf's test/sipp.js used by tests/srf-compat/run-srf-compat.ts.
// The upstream file starts SIPp containers with `docker run`; this one starts the local `sipp`
// binary on loopback addresses instead. Same module shape: (networkName) => {output, sippUac, sippUas}.
//   sippUac(file)               one call from 127.0.0.<UAC_IP_BASE + n % 10>:5060 to SUT_SIP
//   sippUas(file, nameOrIp)     a one-call UAS on the address that name maps to (UAS_IPS)
// `-max_socket 4096` keeps Debian's SIPp from refusing to start under this machine's fd limit.
const { spawn } = require('child_process');
const path = require('path');

const scenarioDir = path.join(__dirname, 'scenarios');
const target = process.env.SUT_SIP || '127.0.0.10:5060';
const uacBase = Number.parseInt(process.env.UAC_IP_BASE || '40', 10);
const uasIps = JSON.parse(process.env.UAS_IPS || '{"sipp-uas-b-teardown":"127.0.0.30"}');

let captured = '';
let callIndex = 1;
let uacCount = 0;

function launch(args) {
  captured = '';
  return new Promise((resolve, reject) => {
    const child = spawn('sipp', ['-max_socket', '4096', ...args], { cwd: scenarioDir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (buf) => {
      // the upstream helper keeps only 7-bit characters; do the same so tests that grep it match
      for (const ch of buf.toString()) if (ch.charCodeAt(0) < 128) captured += ch;
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      console.log(`sipp exited with non-zero code ${code} signal ${signal}`);
      reject(code);
    });
  });
}

const api = {
  output: () => captured,
  sippUac(file) {
    const ip = `127.0.0.${uacBase + (uacCount++ % 10)}`;
    return launch(['-sf', file, '-i', ip, '-p', '5060', '-m', '1', '-sleep', '250ms', '-nostdin', '-cid_str', `%u-%p@%s-${callIndex++}`, target]);
  },
  sippUas(file, nameOrIp) {
    const ip = /^\d+\.\d+\.\d+\.\d+$/.test(nameOrIp) ? nameOrIp : uasIps[nameOrIp];
    if (!ip) return Promise.reject(new Error(`no loopback address configured for ${nameOrIp}`));
    return launch(['-sf', file, '-i', ip, '-p', '5060', '-m', '1', '-nostdin']);
  },
};

module.exports = () => api;
