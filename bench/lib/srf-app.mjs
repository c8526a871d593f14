/**
 * The drachtio-srf 5.0.29 application used by the CPS benchmark, run as its own process so its
 * CPU can be read from /proc/<pid>/stat.
 *
 *   node bench/lib/srf-app.mjs --host 127.0.7.1 --port 9022 --secret cymru --mode uas
 *   node bench/lib/srf-app.mjs ... --mode b2b --target sip:bench@127.0.7.4:5060
 *
 * uas: srf.createUAS with an SDP answer (the caller's offer echoed), the dialog ends on the
 *      caller's BYE (srf answers it).
 * b2b: srf.createB2BUA to --target with the caller's SDP; a BYE on either leg ends the other.
 *
 * Prints one JSON line `{"ready":true,...}` once connected, `{"stats":...}` on SIGUSR2, and
 * exits on SIGTERM/SIGINT after srf.disconnect().
 */
import { parseArgs } from 'node:util';
import Srf from 'drachtio-srf';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.7.1' },
    port: { type: 'string', default: '9022' },
    secret: { type: 'string', default: 'cymru' },
    mode: { type: 'string', default: 'uas' },
    target: { type: 'string' },
  },
});

const mode = values.mode;
if (mode !== 'uas' && mode !== 'b2b') {
  process.stderr.write(`srf-app: unknown --mode ${mode}\n`);
  process.exit(2);
}
if (mode === 'b2b' && !values.target) {
  process.stderr.write('srf-app: --mode b2b needs --target\n');
  process.exit(2);
}

const stats = { invites: 0, answered: 0, failed: 0, ended: 0, errors: 0 };
const srf = new Srf();
let connected = false;

srf.on('error', (err) => {
  stats.errors++;
  if (!connected) {
    process.stderr.write(`srf-app: ${err.message}\n`);
    process.exit(1);
  }
});

srf.on('connect', (err, hostports) => {
  if (err) {
    process.stderr.write(`srf-app: connect: ${err.message ?? err}\n`);
    process.exit(1);
  }
  connected = true;
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, hostports, mode })}\n`);
});

srf.invite(async (req, res) => {
  stats.invites++;
  try {
    if (mode === 'uas') {
      const dlg = await srf.createUAS(req, res, { localSdp: req.body });
      stats.answered++;
      dlg.on('destroy', () => stats.ended++);
    } else {
      const { uas, uac } = await srf.createB2BUA(req, res, values.target, { localSdpB: req.body });
      stats.answered++;
      uas.on('destroy', () => {
        stats.ended++;
        uac.destroy().catch(() => undefined);
      });
      uac.on('destroy', () => {
        stats.ended++;
        uas.destroy().catch(() => undefined);
      });
    }
  } catch {
    stats.failed++;
  }
});

srf.connect({ host: values.host, port: Number(values.port), secret: values.secret });

process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ stats })}\n`));
const stop = () => {
  try {
    srf.disconnect();
  } catch {
    /* already gone */
  }
  process.stdout.write(`${JSON.stringify({ stats, exiting: true })}\n`);
  setTimeout(() => process.exit(0), 200);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
