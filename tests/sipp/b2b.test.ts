/**
 * Issue 2 acceptance, "createB2BUA: 200, 404 passed through, CANCEL propagation, re-INVITE and
 * BYE from both sides, PRACK on both legs, headers proxied": SIPp A (caller) → our server →
 * drachtio-srf app (createB2BUA) → our server → SIPp B (callee), over UDP and TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSipp, rowsFor, startSippUas, stopAllSipp, type SippResult } from '../helpers/sipp.js';
import { deferred } from '../helpers/srf.js';
import { waitForIdle } from '../helpers/sip-server.js';
import { body, expectSippOk, header, oneReceived, sippPort, startHarness, TRANSPORTS, type Harness, type TransportCase } from './support.js';

const SERVER_IP = '127.0.3.30';
const A_IP = '127.0.3.31';
const B_IP = '127.0.3.32';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ host: SERVER_IP });
});

afterAll(async () => {
  await stopAllSipp();
  await h?.close();
});

interface B2bOutcome {
  a: SippResult;
  b: SippResult;
}

/** Starts B, points the app's createB2BUA at it, runs A. */
async function b2bCall(
  t: TransportCase,
  aScenario: string,
  bScenario: string,
  b2bOpts: Record<string, unknown>,
  wire?: (uas: any, uac: any) => void,
  extra: { bPauseMs?: number } = {},
): Promise<B2bOutcome & { result: Promise<unknown> }> {
  const bPort = await sippPort(B_IP);
  const b = await startSippUas({ scenario: bScenario, localIp: B_IP, localPort: bPort, transport: t.sipp, calls: 1, timeoutMs: 20_000, ...(extra.bPauseMs !== undefined ? { pauseMs: extra.bPauseMs } : {}) });
  const result = deferred<unknown>();
  h.onInvite = async (req, res) => {
    try {
      const { uas, uac } = await h.app.srf.createB2BUA(req, res, `sip:bob@${B_IP}:${bPort}${t.uriParam}`, { localSdpB: req.body, ...b2bOpts });
      uas.on('destroy', () => uac.destroy().catch(() => undefined));
      uac.on('destroy', () => uas.destroy().catch(() => undefined));
      wire?.(uas, uac);
      result.resolve({ uas, uac });
    } catch (err) {
      result.resolve(err);
    }
  };
  const a = await runSipp({ scenario: aScenario, localIp: A_IP, localPort: await sippPort(A_IP), remote: h.s.sipHostPort, transport: t.sipp, pauseMs: 300, timeoutMs: 20_000 });
  const bRes = await b.done;
  return { a, b: bRes, result: result.promise };
}

describe.each(TRANSPORTS)('createB2BUA over $name', (t) => {
  it('connects A and B with 200, passes SDP both ways and proxies the chosen request/response headers', async () => {
    const { a, b, result } = await b2bCall(t, 'uac-invite-200.xml', 'uas-answer-200.xml', {
      proxyRequestHeaders: ['X-Custom', 'Subject'],
      proxyResponseHeaders: ['X-Resp'],
    });
    expectSippOk(a);
    expectSippOk(b);
    expect(await result).toHaveProperty('uas');
    const bInvite = oneReceived(b, /^INVITE /);
    expect(header(bInvite, 'X-Custom')).toBe('a-leg-1');
    expect(header(bInvite, 'Subject')).toBe('sipp call 1');
    expect(body(bInvite)).toContain('o=sippcaller');
    const aOk = oneReceived(a, /^SIP\/2\.0 200/);
    expect(header(aOk, 'X-Resp')).toBe('b-leg-1');
    expect(body(aOk)).toContain('o=sippcallee');
    // B leg: its own Call-ID, Via of the server
    expect(header(bInvite, 'Call-ID')).not.toBe(header(oneReceived(a, /^SIP\/2\.0 200/), 'Call-ID'));
    expect(header(bInvite, 'Via')).toContain(SERVER_IP);
    // A's BYE was propagated to B
    expect(oneReceived(b, /^BYE /)).toBeDefined();
  });

  it('passes a 404 from B through to A', async () => {
    const { a, b, result } = await b2bCall(t, 'uac-invite-reject.xml', 'uas-reject-404.xml', {});
    expectSippOk(a);
    expectSippOk(b);
    expect(rowsFor(a, '404', 'recv')[0]?.count).toBe(1);
    expect(oneReceived(a, /^SIP\/2\.0 404/).firstLine).toBe('SIP/2.0 404 Not Found');
    expect((await result as any)?.status).toBe(404);
    // B's 404 was ACKed by the server
    expect(oneReceived(b, /^ACK /)).toBeDefined();
  });

  it('propagates A\'s CANCEL (with its Reason) to B; A gets 200 + 487', async () => {
    const { a, b, result } = await b2bCall(t, 'uac-invite-cancel.xml', 'uas-cancel.xml', {});
    expectSippOk(a);
    expectSippOk(b);
    expect(rowsFor(a, '487', 'recv')[0]?.count).toBe(1);
    const aCancelReason = 'SIP;cause=600;text="sipp caller gave up"';
    expect(header(oneReceived(b, /^CANCEL /), 'Reason')).toBe(aCancelReason);
    expect((await result as any)?.status).toBe(487);
  });

  it('relays a re-INVITE from A to B and one from B to A, then A hangs up', async () => {
    const modifies: string[] = [];
    const wire = (uas: any, uac: any): void => {
      uas.on('modify', async (req: any, res: any) => {
        modifies.push('from-a');
        const answer = await uac.modify(req.body);
        res.send(200, { body: answer });
      });
      uac.on('modify', async (req: any, res: any) => {
        modifies.push('from-b');
        const answer = await uas.modify(req.body);
        res.send(200, { body: answer });
      });
    };
    const { a, b } = await b2bCall(t, 'uac-invite-reinvite-both.xml', 'uas-reinvite-both.xml', {}, wire);
    expectSippOk(a);
    expectSippOk(b);
    expect(modifies).toEqual(['from-a', 'from-b']);
    // B saw A's new SDP, A saw B's new SDP, each answered SDP went back
    const bReinvite = oneReceived(b, /^INVITE /, 1);
    expect(body(bReinvite)).toContain('s=a-reinvite');
    const aReinvite = oneReceived(a, /^INVITE /, 0);
    expect(body(aReinvite)).toContain('s=b-reinvite');
    const aReinviteOk = oneReceived(a, /^SIP\/2\.0 200/, 1);
    expect(header(aReinviteOk, 'CSeq')).toBe('2 INVITE');
    expect(body(aReinviteOk)).toContain('s=b-answers-a-reinvite');
    // A's BYE reached B
    expect(oneReceived(b, /^BYE /)).toBeDefined();
  });

  it('propagates a BYE from B to A', async () => {
    const uacDestroyed = deferred<void>();
    const { a, b } = await b2bCall(t, 'uac-invite-wait-bye.xml', 'uas-answer-200-send-bye.xml', {}, (_uas, uac) => uac.on('destroy', () => uacDestroyed.resolve()), { bPauseMs: 300 });
    expectSippOk(a);
    expectSippOk(b);
    await uacDestroyed.promise;
    const aBye = oneReceived(a, /^BYE /);
    expect(header(aBye, 'Call-ID')).toBe(header(oneReceived(a, /^SIP\/2\.0 200/), 'Call-ID'));
  });

  it('handles PRACK on both legs (reliable 183 from B made reliable towards A)', async () => {
    const { a, b, result } = await b2bCall(t, 'uac-invite-100rel.xml', 'uas-100rel.xml', {
      proxyRequestHeaders: ['all'],
      proxyResponseHeaders: ['all'],
    });
    expectSippOk(a);
    expectSippOk(b);
    expect(await result).toHaveProperty('uac');
    // B leg: the app PRACKed B's 183 (RAck checked by the scenario)
    expect(header(oneReceived(b, /^PRACK /), 'RAck')).toMatch(/^1 \d+ INVITE$/);
    // A leg: our server sent the 183 reliably, with its own RSeq and the early SDP of B
    const a183 = oneReceived(a, /^SIP\/2\.0 183/);
    expect(header(a183, 'Require')).toContain('100rel');
    expect(header(a183, 'RSeq')).toMatch(/^\d+$/);
    expect(body(a183)).toContain('s=early');
    const prackOk = oneReceived(a, /^SIP\/2\.0 200/, 0);
    expect(header(prackOk, 'CSeq')).toBe('2 PRACK');
  });
});

describe('B2BUA bookkeeping', () => {
  it('leaves no dialogs, server transactions or pending requests behind', async () => {
    // UDP: the B-leg INVITE client transactions ended by 404 and 487 wait for Timer D (>= 32 s)
    const stats = await waitForIdle(h.s, 8000, { allowClientTransactions: 2 });
    expect(stats.appConnections).toBe(1);
    expect(h.handlerErrors).toEqual([]);
  });
});
