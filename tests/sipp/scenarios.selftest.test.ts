/**
 * The SIPp scenarios of this directory checked against each other, SIPp to SIPp, with no server
 * in between: a failure here is a scenario bug, not a server bug. Peers under scenarios/peer/
 * play the app's part where no scenario of the suite does.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { rowsFor, runSipp, sippReport, startSippUas, stopAllSipp, type SippOptions, type SippTransport } from '../helpers/sipp.js';
import { freePort } from '../helpers/net.js';

const UAS_IP = '127.0.3.2';
const UAC_IP = '127.0.3.3';

afterAll(async () => {
  await stopAllSipp();
});

interface Pair {
  uas: string;
  uac: string;
  uasOpts?: Partial<SippOptions>;
  uacOpts?: Partial<SippOptions>;
  transports: SippTransport[];
  check?: (uas: Awaited<ReturnType<typeof runSipp>>, uac: Awaited<ReturnType<typeof runSipp>>) => void;
}

const PAIRS: Pair[] = [
  { uas: 'uas-answer-200.xml', uac: 'uac-invite-200.xml', transports: ['u1', 't1'] },
  {
    uas: 'uas-answer-200.xml',
    uac: 'uac-invite-ignore-first-200.xml',
    transports: ['u1'],
    check: (_s, c) => expect(rowsFor(c, '200', 'recv')[0]?.retrans ?? 0).toBeGreaterThanOrEqual(1),
  },
  { uas: 'uas-reject-486.xml', uac: 'uac-invite-reject.xml', transports: ['u1', 't1'], check: (_s, c) => expect(rowsFor(c, '486', 'recv')[0]?.count).toBe(1) },
  { uas: 'uas-reject-404.xml', uac: 'uac-invite-reject.xml', transports: ['u1'], check: (_s, c) => expect(rowsFor(c, '404', 'recv')[0]?.count).toBe(1) },
  {
    uas: 'uas-reject-503.xml',
    uac: 'uac-invite-ignore-first-503.xml',
    transports: ['u1'],
    check: (_s, c) => expect(rowsFor(c, '503', 'recv')[0]?.retrans ?? 0).toBeGreaterThanOrEqual(1),
  },
  { uas: 'uas-cancel.xml', uac: 'uac-invite-cancel.xml', transports: ['u1', 't1'], check: (s) => expect(s.logs).toContain('CANCEL Reason: SIP;cause=600;text="sipp caller gave up"') },
  { uas: 'uas-reinvite-both.xml', uac: 'uac-invite-reinvite-both.xml', transports: ['u1', 't1'] },
  { uas: 'uas-answer-200-send-bye.xml', uac: 'uac-invite-wait-bye.xml', uasOpts: { pauseMs: 100 }, transports: ['u1', 't1'] },
  { uas: 'uas-100rel.xml', uac: 'uac-invite-100rel.xml', transports: ['u1', 't1'] },
  { uas: 'uas-auth.xml', uac: 'peer/peer-uac-invite-auth.xml', uacOpts: { auth: { username: 'alice', password: 'wonderland' } }, transports: ['u1'], check: (s) => expect(s.logs).toContain('AUTH OK') },
  { uas: 'uas-auth.xml', uac: 'peer/peer-uac-invite-auth.xml', uacOpts: { auth: { username: 'alice', password: 'wrong' } }, transports: ['u1'], check: (s) => expect(s.logs).toContain('AUTH BAD') },
  { uas: 'uas-302.xml', uac: 'peer/peer-uac-invite-302.xml', uasOpts: { keys: { redirect_to: '127.0.3.4:5090' } }, transports: ['u1'] },
  { uas: 'peer/peer-uas-refer-handler.xml', uac: 'uac-refer.xml', uacOpts: { keys: { refer_to: 'sip:carol@127.0.3.4:5090' } }, transports: ['u1', 't1'] },
  { uas: 'peer/peer-uas-subscribe-handler.xml', uac: 'uac-subscribe.xml', transports: ['u1', 't1'] },
  { uas: 'uas-notifier.xml', uac: 'peer/peer-uac-subscriber.xml', transports: ['u1', 't1'] },
  { uas: 'uas-answer-200-tls.xml', uac: 'uac-invite-200.xml', uasOpts: { keys: { tls_contact: '127.0.3.4:5061' } }, transports: ['t1'] },
];

describe('SIPp scenarios against each other', () => {
  for (const p of PAIRS) {
    for (const t of p.transports) {
      it(`${p.uac} ↔ ${p.uas} (${t})`, async () => {
        const uasPort = await freePort(UAS_IP);
        const uas = await startSippUas({ scenario: p.uas, localIp: UAS_IP, localPort: uasPort, transport: t, calls: 1, timeoutMs: 15_000, ...p.uasOpts });
        const c = await runSipp({ scenario: p.uac, localIp: UAC_IP, localPort: await freePort(UAC_IP), remote: `${UAS_IP}:${uasPort}`, transport: t, timeoutMs: 15_000, ...p.uacOpts });
        const s = await uas.done;
        expect(c.exitCode, sippReport(c)).toBe(0);
        expect(s.exitCode, sippReport(s)).toBe(0);
        expect(c.stats?.successful).toBe(1);
        p.check?.(s, c);
      });
    }
  }
});
