/**
 * Issue 2 acceptance: "proxyRequest with Record-Route", "REFER handled by an app",
 * "SUBSCRIBE/NOTIFY" — real drachtio-srf apps on our server, SIPp as the far ends, UDP and TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValues, receivedMessages, runSipp, startSippUas, stopAllSipp } from '../helpers/sipp.js';
import { waitFor } from '../helpers/net.js';
import { deferred, sdp } from '../helpers/srf.js';
import { waitForIdle } from '../helpers/sip-server.js';
import { body, expectSippOk, header, oneReceived, sippPort, startHarness, TRANSPORTS, type Harness } from './support.js';

const SERVER_IP = '127.0.3.40';
const A_IP = '127.0.3.41';
const B_IP = '127.0.3.42';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ host: SERVER_IP });
});

afterAll(async () => {
  await stopAllSipp();
  await h?.close();
});

describe.each(TRANSPORTS)('proxy, REFER, SUBSCRIBE over $name', (t) => {
  it('srf.proxyRequest with recordRoute: B sees our Record-Route and Via, ACK and BYE are routed through us', async () => {
    const bPort = await sippPort(B_IP);
    const b = await startSippUas({ scenario: 'uas-answer-200.xml', localIp: B_IP, localPort: bPort, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const proxied = deferred<any>();
    h.onInvite = (req) => {
      h.app.srf.proxyRequest(req, [`sip:bob@${B_IP}:${bPort}${t.uriParam}`], { recordRoute: true, remainInDialog: true }).then(proxied.resolve, proxied.reject);
    };
    const a = await runSipp({ scenario: 'uac-invite-200.xml', localIp: A_IP, localPort: await sippPort(A_IP), remote: h.s.sipHostPort, transport: t.sipp, pauseMs: 200 });
    const rb = await b.done;
    expectSippOk(a);
    expectSippOk(rb);
    const results = await proxied.promise;
    expect(results.finalStatus).toBe(200);
    expect(results.connected).toBe(true);

    const bInvite = oneReceived(rb, /^INVITE /);
    const rr = headerValues(bInvite.text, 'Record-Route');
    expect(rr.length).toBe(1);
    expect(rr[0]).toMatch(new RegExp(`<sip:${SERVER_IP.replace(/\./g, '\\.')}:${h.s.sipPort}[^>]*;lr[^>]*>`));
    // RFC 3261 16.6: the proxy pushed its own Via on top of A's, and decremented Max-Forwards
    const vias = headerValues(bInvite.text, 'Via').flatMap((v) => v.split(','));
    expect(vias.length).toBe(2);
    expect(vias[0]).toContain(SERVER_IP);
    expect(vias[1]).toContain(A_IP);
    expect(header(bInvite, 'Max-Forwards')).toBe('69');
    // the Request-URI named the proxy itself, so it was replaced by the destination
    expect(bInvite.firstLine).toBe(`INVITE sip:bob@${B_IP}:${bPort}${t.uriParam} SIP/2.0`);
    // A got B's 200 with the Record-Route and routed its ACK and BYE through the proxy to B
    expect(headerValues(oneReceived(a, /^SIP\/2\.0 200/).text, 'Record-Route')).toEqual(rr);
    for (const m of [oneReceived(rb, /^ACK /), oneReceived(rb, /^BYE /)]) {
      expect(headerValues(m.text, 'Via').flatMap((v) => v.split(',')).length).toBe(2);
      expect(header(m, 'Call-ID')).toBe(header(bInvite, 'Call-ID'));
    }
  });

  it('an app handles an in-dialog REFER: 202, NOTIFY 100/200 sipfrag, and the new call to the Refer-To target', async () => {
    const cPort = await sippPort(B_IP);
    const target = await startSippUas({ scenario: 'uas-answer-200.xml', localIp: B_IP, localPort: cPort, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const referSeen = deferred<{ referTo: string; referredBy: string }>();
    h.onInvite = async (req, res) => {
      const dlg = await h.app.srf.createUAS(req, res, { localSdp: sdp('app-transferee', SERVER_IP) });
      let transferred: any;
      dlg.on('destroy', () => transferred?.destroy().catch(() => undefined));
      dlg.on('refer', async (rq: any, rs: any) => {
        const referTo = rq.getParsedHeader('Refer-To').uri as string;
        const referredBy = rq.get('Referred-By') as string;
        referSeen.resolve({ referTo, referredBy });
        rs.send(202);
        const sipfrag = { Event: 'refer', 'Content-Type': 'message/sipfrag;version=2.0' };
        await dlg.request({ method: 'NOTIFY', headers: { ...sipfrag, 'Subscription-State': 'active;expires=60' }, body: 'SIP/2.0 100 Trying\r\n' });
        transferred = await h.app.srf.createUAC(referTo, { localSdp: sdp('app-transfer', SERVER_IP), headers: { 'Referred-By': referredBy } });
        await dlg.request({ method: 'NOTIFY', headers: { ...sipfrag, 'Subscription-State': 'terminated;reason=noresource' }, body: 'SIP/2.0 200 OK\r\n' });
      });
    };
    const a = await runSipp({
      scenario: 'uac-refer.xml',
      localIp: A_IP,
      localPort: await sippPort(A_IP),
      remote: h.s.sipHostPort,
      transport: t.sipp,
      keys: { refer_to: `sip:carol@${B_IP}:${cPort}${t.uriParam}` },
    });
    const rc = await target.done;
    expectSippOk(a);
    expectSippOk(rc);
    const seen = await referSeen.promise;
    expect(seen.referTo).toBe(`sip:carol@${B_IP}:${cPort}${t.uriParam}`);
    const notifies = [oneReceived(a, /^NOTIFY /, 0), oneReceived(a, /^NOTIFY /, 1)];
    expect(notifies.map((n) => body(n).split(/\r?\n/)[0])).toEqual(['SIP/2.0 100 Trying', 'SIP/2.0 200 OK']);
    expect(header(notifies[1]!, 'Subscription-State')).toMatch(/^terminated/);
    // the NOTIFYs did not end the INVITE dialog: A's BYE afterwards got a 200 (scenario), and
    // the transfer target was called with the Referred-By of the REFER
    const cInvite = oneReceived(rc, /^INVITE /);
    expect(cInvite.firstLine).toBe(`INVITE sip:carol@${B_IP}:${cPort}${t.uriParam} SIP/2.0`);
    expect(header(cInvite, 'Referred-By')).toBe(seen.referredBy);
    expect(seen.referredBy).toContain(A_IP);
  });

  it('an app as notifier: SUBSCRIBE → 202, NOTIFY active, in-dialog unsubscribe → NOTIFY terminated', async () => {
    const unsubscribed = deferred<void>();
    h.onSubscribe = async (req, res) => {
      const dlg = await h.app.srf.createUAS(req, res, { headers: { Expires: req.get('Expires') } } as any);
      dlg.on('unsubscribe', async () => {
        await dlg.request({ method: 'NOTIFY', headers: { Event: 'presence', 'Subscription-State': 'terminated;reason=timeout' } });
        unsubscribed.resolve();
      });
      await dlg.request({
        method: 'NOTIFY',
        headers: { Event: 'presence', 'Subscription-State': 'active;expires=60', 'Content-Type': 'application/pidf+xml' },
        body: '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:app@test"/>',
      });
    };
    const a = await runSipp({ scenario: 'uac-subscribe.xml', localIp: A_IP, localPort: await sippPort(A_IP), remote: h.s.sipHostPort, transport: t.sipp });
    expectSippOk(a);
    await unsubscribed.promise;
    const active = oneReceived(a, /^NOTIFY /, 0);
    expect(header(active, 'Content-Type')).toBe('application/pidf+xml');
    expect(body(active)).toContain('urn:ietf:params:xml:ns:pidf');
    expect(header(oneReceived(a, /^NOTIFY /, 1), 'Subscription-State')).toBe('terminated;reason=timeout');
  });

  it('an app as subscriber: createUAC SUBSCRIBE gets 202, both NOTIFYs reach the dialog, terminated ends it on the server', async () => {
    const bPort = await sippPort(B_IP);
    const notifier = await startSippUas({ scenario: 'uas-notifier.xml', localIp: B_IP, localPort: bPort, transport: t.sipp, calls: 1, timeoutMs: 15_000 });
    const states: string[] = [];
    const bodies: string[] = [];
    const dlg = await h.app.srf.createUAC(`sip:presentity@${B_IP}:${bPort}${t.uriParam}`, {
      method: 'SUBSCRIBE',
      headers: { Event: 'presence', Expires: '60', Accept: 'application/pidf+xml' },
    } as any);
    expect(dlg.type).toBe('uac');
    expect(h.s.stats().dialogs).toBe(1);
    dlg.on('notify', (req: any, res: any) => {
      states.push(req.get('Subscription-State'));
      bodies.push(req.body);
      res.send(200);
    });
    const rb = await notifier.done;
    expectSippOk(rb);
    expect(states).toEqual(['active;expires=60', 'terminated;reason=timeout']);
    expect(bodies[0]).toContain('<basic>open</basic>');
    // RFC 6665 4.1.2.4 / wire protocol 11: a NOTIFY with Subscription-State: terminated ends the
    // subscription dialog on the server. (srf 5.0.29 itself keeps its Dialog object here: it
    // looks the subscription up by the NOTIFY's To URI, which is the subscriber, not the
    // presentity, so the test does not wait for srf's 'destroy'.)
    await waitFor(() => h.s.stats().dialogs === 0, { timeoutMs: 3000, what: 'subscription dialog removed' });
    const sub = oneReceived(rb, /^SUBSCRIBE /);
    expect(header(sub, 'Event')).toBe('presence');
    expect(header(sub, 'Contact')).toContain(SERVER_IP);
    // both NOTIFY responses went back to the notifier as 200
    expect(receivedMessages(rb, /^SIP\/2\.0 200/).length).toBe(2);
  });
});

describe('proxy/REFER/SUBSCRIBE bookkeeping', () => {
  it('leaves no transactions, dialogs or pending requests behind', async () => {
    const stats = await waitForIdle(h.s, 8000);
    expect(stats.appConnections).toBe(1);
    expect(h.handlerErrors).toEqual([]);
  });
});
