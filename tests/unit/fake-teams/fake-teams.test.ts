import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SipRequest, type SipResponse } from '../../../src/sip/message/index.js';
import { newBranch } from '../../../src/util/ids.js';
import { FakeTeams, type FakeTeamsOptions, type FakeTeamsPki, audioOf, createFakeTeamsPki, parseSdp, step } from '../../helpers/fake-teams/index.js';
import { TENANT, TestSbc, sbcOffer } from './test-sbc.js';

let dir: string;
let pki: FakeTeamsPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fake-teams-test-'));
  pki = await createFakeTeamsPki(join(dir, 'pki'));
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function rig(opts: Partial<FakeTeamsOptions> = {}): Promise<{ ft: FakeTeams; sbc: TestSbc }> {
  const ft = await FakeTeams.start({ pki, tenants: [TENANT], ...opts });
  cleanup.push(() => ft.close());
  const sbc = await TestSbc.start(pki);
  cleanup.push(() => sbc.close());
  return { ft, sbc };
}

const isFinal = (r: SipResponse): boolean => r.status >= 200;

describe('FakeTeams: endpoints and TLS', () => {
  it('exposes the hosts map and proxy list for the gateway resolver override', async () => {
    const { ft } = await rig();
    expect(ft.hosts).toMatchObject({
      'sip.pstnhub.microsoft.com': '127.0.5.1',
      'sip2.pstnhub.microsoft.com': '127.0.5.2',
      'sip3.pstnhub.microsoft.com': '127.0.5.3',
    });
    expect(ft.proxies).toEqual([
      { host: 'sip.pstnhub.microsoft.com', port: 5061 },
      { host: 'sip2.pstnhub.microsoft.com', port: 5061 },
      { host: 'sip3.pstnhub.microsoft.com', port: 5061 },
    ]);
  });

  it('refuses a client without a certificate and records the failed handshake', async () => {
    const { ft } = await rig();
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.5.1', port: 5061, servername: 'sip.pstnhub.microsoft.com', ca: pki.teams.ca.cert, localAddress: '127.0.5.21' } as tls.ConnectionOptions);
      s.on('secureConnect', () => s.write('OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n\r\n'));
      s.on('data', () => resolve('data'));
      s.on('error', () => resolve('error'));
      s.on('close', () => resolve('closed'));
    });
    expect(outcome).not.toBe('data');
    await expect.poll(() => ft.tlsFailures.length).toBe(1);
    expect(ft.tlsFailures[0]).toMatchObject({ endpoint: 'sip', direction: 'inbound', remoteAddress: '127.0.5.21' });
    expect(ft.violationsOf('tls-handshake')).toHaveLength(1);
    expect(ft.connections()).toHaveLength(0);
  });

  it('refuses a client certificate from another CA, and one without the clientAuth EKU', async () => {
    const { ft } = await rig();
    const other = await createFakeTeamsPki(join(dir, 'rogue'));
    const rogue = await TestSbc.start(pki, { address: '127.0.5.22', cert: other.sbc.server });
    cleanup.push(() => rogue.close());
    const c1 = rogue.send(rogue.options(ft.endpoints.sip), rogue.dest(ft.endpoints.sip));
    await expect.poll(() => ft.tlsFailures.map((f) => f.remoteAddress)).toContain('127.0.5.22');
    const serverOnly = await pki.sbc.issue({ name: 'server-only', cn: `*.${pki.baseDomain}`, sans: [`*.${pki.baseDomain}`], eku: ['serverAuth'] });
    const noEku = await TestSbc.start(pki, { address: '127.0.5.23', cert: serverOnly });
    cleanup.push(() => noEku.close());
    const c2 = noEku.send(noEku.options(ft.endpoints.sip), noEku.dest(ft.endpoints.sip));
    await expect.poll(() => ft.tlsFailures.map((f) => f.remoteAddress)).toContain('127.0.5.23');
    expect(ft.tlsFailures.find((f) => f.remoteAddress === '127.0.5.22')!.error).toMatch(/UNABLE_TO_VERIFY/);
    expect(ft.tlsFailures.find((f) => f.remoteAddress === '127.0.5.23')!.error).toMatch(/INVALID_PURPOSE/);
    expect(c1.responses).toEqual([]);
    expect(c2.responses).toEqual([]);
    expect(ft.options).toHaveLength(0);
    expect(ft.violationsOf('tls-handshake')).toHaveLength(2);
  });

  it('records SNI and the SBC certificate names of an accepted connection', async () => {
    const { ft, sbc } = await rig();
    const c = sbc.send(sbc.options(ft.endpoints.sip2), sbc.dest(ft.endpoints.sip2));
    await c.wait(isFinal);
    const conn = ft.connections().find((r) => r.endpoint === 'sip2')!;
    expect(conn.direction).toBe('inbound');
    expect(conn.remoteAddress).toBe('127.0.5.20');
    expect(conn.tls).toMatchObject({ servername: 'sip2.pstnhub.microsoft.com', authorized: true, peerSubjectCN: `*.${pki.baseDomain}`, peerKeyType: 'rsa' });
    expect(conn.tls.peerSubjectAltName).toContain(`DNS:*.${pki.baseDomain}`);
    expect(conn.tls.peerEku).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(ft.violations).toEqual([]);
  });

  it('setMode down refuses connections; up restores the endpoint', async () => {
    const { ft, sbc } = await rig();
    await ft.setMode('sip', 'down');
    const c = sbc.send(sbc.options(ft.endpoints.sip), sbc.dest(ft.endpoints.sip));
    await expect.poll(() => c.error?.message).toMatch(/ECONNREFUSED|connect/);
    await ft.setMode('sip', 'up');
    const c2 = sbc.send(sbc.options(ft.endpoints.sip), sbc.dest(ft.endpoints.sip));
    expect((await c2.wait(isFinal)).status).toBe(200);
  });

  it('setMode hang never completes the handshake (SBC connect timeout); reset and slow behave as named', async () => {
    const { ft } = await rig();
    const sbc = await TestSbc.start(pki, { address: '127.0.5.25', connectTimeoutMs: 400 });
    cleanup.push(() => sbc.close());
    await ft.setMode('sip', 'hang');
    const c = sbc.send(sbc.options(ft.endpoints.sip), sbc.dest(ft.endpoints.sip));
    await expect.poll(() => c.error?.message).toMatch(/no connection within 400 ms/);
    await ft.setMode('sip2', 'reset');
    const c2 = sbc.send(sbc.options(ft.endpoints.sip2), sbc.dest(ft.endpoints.sip2));
    await expect.poll(() => c2.error?.message).toMatch(/ECONNRESET|closed|socket/i);
    await ft.setMode('sip3', 'slow', 150);
    const t0 = Date.now();
    const c3 = sbc.send(sbc.options(ft.endpoints.sip3), sbc.dest(ft.endpoints.sip3));
    expect((await c3.wait(isFinal)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(ft.options.map((o) => o.endpoint)).toEqual(['sip3']);
  });

  it('close() is idempotent and frees the addresses', async () => {
    const ft = await FakeTeams.start({ pki });
    await Promise.all([ft.close(), ft.close()]);
    const again = await FakeTeams.start({ pki });
    cleanup.push(() => again.close());
    expect(again.endpoints.sip.port).toBe(5061);
  });
});

describe('FakeTeams: OPTIONS', () => {
  it('answers OPTIONS on every proxy with Teams’ Allow/Server and records cadence and Contact', async () => {
    const { ft, sbc } = await rig();
    for (const name of ['sip', 'sip2', 'sip3', 'sip'] as const) {
      const c = sbc.send(sbc.options(ft.endpoints[name]), sbc.dest(ft.endpoints[name]));
      const res = await c.wait(isFinal);
      expect(res.status).toBe(200);
      expect(res.get('allow')).toBe('INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY');
      expect(res.get('server')).toMatch(/^Microsoft\.PSTNHub\.SIPProxy/);
    }
    expect(ft.options.map((o) => o.endpoint)).toEqual(['sip', 'sip2', 'sip3', 'sip']);
    expect(ft.options[0]!.contact).toBe(`<sip:${TENANT}:${sbc.port};transport=tls>`);
    expect(ft.optionsIntervals('sip')).toHaveLength(1);
    expect(ft.optionsIntervals('sip')[0]).toBeGreaterThanOrEqual(0);
    // The carrier trunk FQDN (base domain) is a valid OPTIONS Contact (§3.6), another domain is not.
    const carrier = await sbc.send(sbc.options(ft.endpoints.sip, `<sip:sbc.customers.example.net:${sbc.port};transport=tls>`), sbc.dest(ft.endpoints.sip)).wait(isFinal);
    expect(carrier.status).toBe(200);
    expect(ft.violations).toEqual([]);
    const foreign = await sbc.send(sbc.options(ft.endpoints.sip, `<sip:sbc.example.org:${sbc.port};transport=tls>`), sbc.dest(ft.endpoints.sip)).wait(isFinal);
    expect(foreign.status).toBe(403);
    expect(ft.violations.map((v) => v.rule).sort()).toEqual(['contact-cert', 'contact-tenant']);
  });

  it('an OPTIONS with an IP Contact gets 403 and a contact-fqdn violation; a wrong Request-URI host is flagged', async () => {
    const { ft, sbc } = await rig();
    const c = sbc.send(sbc.options(ft.endpoints.sip, `<sip:127.0.5.20:${sbc.port};transport=tls>`), sbc.dest(ft.endpoints.sip));
    expect((await c.wait(isFinal)).status).toBe(403);
    expect(ft.violations.map((v) => v.rule)).toEqual(['contact-fqdn']);
    const req = sbc.options(ft.endpoints.sip2);
    req.uri = 'sip:127.0.5.2:5061';
    await sbc.send(req, sbc.dest(ft.endpoints.sip2)).wait(isFinal);
    expect(ft.violationsOf('ruri-host')).toHaveLength(1);
  });

  it('setOptionsReply(null) makes a proxy silent', async () => {
    const { ft, sbc } = await rig({ timers: { T1: 50 } });
    ft.setOptionsReply(null, 'sip3');
    const c = sbc.send(sbc.options(ft.endpoints.sip3), sbc.dest(ft.endpoints.sip3));
    await ft.waitForRequest('OPTIONS', { endpoint: 'sip3' });
    await new Promise((r) => setTimeout(r, 200));
    expect(c.responses).toEqual([]);
    expect(ft.options[0]!.status).toBeUndefined();
  });
});

describe('FakeTeams: SBC → Teams INVITE checks', () => {
  it('a compliant INVITE, scripted 180 + 183 + 200, produces no violations and usable SRTP keys', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.ringing(), step.progress(), step.answer(20)]);
    const inv = sbc.invite();
    const dest = sbc.dest(ft.endpoints.sip);
    const c = sbc.send(inv, dest);
    const ok = await c.wait((r) => r.status === 200);
    expect(c.responses.map((r) => r.status)).toEqual([100, 180, 183, 200]);
    await sbc.ack(inv, ok, dest);
    const call = await ft.waitForCall();
    await call.waitForAck();
    expect(call.state).toBe('confirmed');
    expect(call.called).toBe('+15551230001');
    expect(call.caller).toBe('+14155550123');

    const answer = audioOf(parseSdp(ok.body.toString()))!;
    expect(answer.proto).toBe('RTP/SAVP');
    expect(answer.crypto).toHaveLength(1);
    expect(answer.crypto[0]!.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(answer.rtcpMux).toBe(true);
    const media = call.media();
    expect(answer.crypto[0]!.key).toBe(media.teams.key);
    expect(Buffer.from(media.teams.key, 'base64')).toHaveLength(30);
    expect(media.teams).toMatchObject({ address: '127.0.5.1', port: answer.port });
    expect(media.gateway).toMatchObject({ address: '127.0.5.20', port: 30000, rtcpMux: true });
    expect(media.gateway!.crypto!.key).toBe(Buffer.alloc(30, 7).toString('base64'));
    expect(ok.get('contact')).toBe('<sip:sip.pstnhub.microsoft.com:5061;transport=tls>');
    expect(ok.get('session-expires')).toBe('1800;refresher=uac');
    expect(ft.violations).toEqual([]);
  });

  const variants: Array<[string, (req: ReturnType<TestSbc['invite']>, sbc: TestSbc) => void, string | string[], number | undefined]> = [
    ['IP address in Contact', (r, s) => r.set('Contact', `<sip:+14155550123@127.0.5.20:${s.port};transport=tls>`), 'contact-fqdn', 403],
    ['unknown tenant FQDN in Contact', (r, s) => r.set('Contact', `<sip:+14155550123@other.customers.example.net:${s.port};transport=tls>`), 'contact-tenant', 403],
    ['Record-Route present', (r) => r.add('Record-Route', '<sip:sbc.customers.example.net;transport=tls;lr>'), 'record-route', undefined],
    ['missing X-MS-SBC', (r) => r.remove('X-MS-SBC'), 'x-ms-sbc', undefined],
    ['RTP/AVP offer', (r) => (r.body = Buffer.from(sbcOffer({ proto: 'RTP/AVP', crypto: false }))), ['sdp-savp', 'sdp-crypto'], 488],
    ['Replaces header', (r) => r.add('Replaces', 'abc@host;to-tag=1;from-tag=2'), 'replaces', undefined],
    ['Require: 100rel', (r) => r.add('Require', '100rel'), 'require-100rel', undefined],
    ['no rtcp-mux', (r) => (r.body = Buffer.from(sbcOffer().replace('a=rtcp-mux\r\n', ''))), 'sdp-rtcp-mux', undefined],
    ['a=sendonly in the offer', (r) => (r.body = Buffer.from(sbcOffer({ direction: 'sendonly' }))), 'sdp-hold', undefined],
    ['Request-URI without +', (r) => (r.uri = 'sip:15551230001@sip.pstnhub.microsoft.com:5061;user=phone'), 'ruri-e164', undefined],
    ['Request-URI host is an IP', (r) => (r.uri = 'sip:+15551230001@127.0.5.1:5061;user=phone'), 'ruri-host', undefined],
    ['From not E.164', (r) => r.set('From', `<sip:4155550123@${TENANT}>;tag=x1`), 'from-e164', undefined],
    ['Allow without REFER', (r) => r.set('Allow', 'INVITE,ACK,OPTIONS,CANCEL,BYE'), 'allow', undefined],
    ['no SDP (delayed offer)', (r) => ((r.body = Buffer.alloc(0)), r.remove('Content-Type')), 'sdp-missing', 488],
  ];

  it.each(variants)('%s → %s violation', async (_name, mutate, rule, status) => {
    const { ft, sbc } = await rig();
    ft.script([step.reject(486)]);
    const inv = sbc.invite();
    mutate(inv, sbc);
    const c = sbc.send(inv, sbc.dest(ft.endpoints.sip));
    const final = await c.wait(isFinal);
    expect(final.status).toBe(status ?? 486);
    expect(ft.violations.map((v) => v.rule)).toEqual(Array.isArray(rule) ? rule : [rule]);
    expect(ft.violations[0]).toMatchObject({ endpoint: 'sip', method: 'INVITE', callId: inv.callId });
  });

  it('re-INVITE with a=sendonly hold, or with moved media, is flagged; a=inactive is not; UPDATE is flagged', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.answer()]);
    const inv = sbc.invite();
    const dest = sbc.dest(ft.endpoints.sip);
    const ok = await sbc.send(inv, dest).wait((r) => r.status === 200);
    await sbc.ack(inv, ok, dest);
    const call = await ft.waitForCall();

    const hold = sbc.inDialog('INVITE', inv, ok, 2);
    hold.add('Content-Type', 'application/sdp');
    hold.body = Buffer.from(sbcOffer({ direction: 'inactive' }));
    const holdRes = await sbc.send(hold, dest).wait(isFinal);
    expect(holdRes.status).toBe(200);
    expect(audioOf(parseSdp(holdRes.body.toString()))!.direction).toBe('inactive');
    expect(ft.violations).toEqual([]);

    const bad = sbc.inDialog('INVITE', inv, ok, 3);
    bad.add('Content-Type', 'application/sdp');
    bad.body = Buffer.from(sbcOffer({ direction: 'sendonly', port: 30002 }));
    await sbc.send(bad, dest).wait(isFinal);
    expect(ft.violations.map((v) => v.rule).sort()).toEqual(['sdp-hold', 'sdp-media-moved']);
    expect(call.requests.items.filter((r) => r.method === 'INVITE')).toHaveLength(2);

    const upd = sbc.inDialog('UPDATE', inv, ok, 4);
    expect((await sbc.send(upd, dest).wait(isFinal)).status).toBe(405);
    expect(ft.violationsOf('method-not-allowed')).toHaveLength(1);
  });

  it('a 200 never ACKed is an ack-missing violation', async () => {
    const { ft, sbc } = await rig({ ackTimeoutMs: 150 });
    ft.script([step.answer()]);
    await sbc.send(sbc.invite(), sbc.dest(ft.endpoints.sip)).wait((r) => r.status === 200);
    await expect.poll(() => ft.violations.map((v) => v.rule)).toEqual(['ack-missing']);
  });
});

describe('FakeTeams: scripted behaviour', () => {
  it('503 with Retry-After on sip, answer on sip2 (scripts per endpoint)', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.reject(503, { retryAfter: 1 })], { endpoint: 'sip' });
    ft.script([step.ringing(), step.answer()], { endpoint: 'sip2' });
    const first = await sbc.send(sbc.invite(), sbc.dest(ft.endpoints.sip)).wait(isFinal);
    expect(first.status).toBe(503);
    expect(first.get('retry-after')).toBe('1');
    const inv2 = sbc.invite();
    const second = await sbc.send(inv2, sbc.dest(ft.endpoints.sip2)).wait(isFinal);
    expect(second.status).toBe(200);
    const calls = [await ft.waitForCall(), await ft.waitForCall()];
    expect(calls.map((c) => [c.endpoint, c.state])).toEqual([
      ['sip', 'rejected'],
      ['sip2', 'answered'],
    ]);
  });

  it('603 and 486 rejections, and forked 180s with different To-tags', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.reject(603)], { times: 1 });
    ft.script([step.ringing(0), step.ringing(1), step.ringing(2), step.reject(486)], { times: 1 });
    expect((await sbc.send(sbc.invite(), sbc.dest(ft.endpoints.sip)).wait(isFinal)).status).toBe(603);
    const c = sbc.send(sbc.invite(), sbc.dest(ft.endpoints.sip));
    expect((await c.wait(isFinal)).status).toBe(486);
    const rings = c.responses.filter((r) => r.status === 180);
    expect(rings).toHaveLength(3);
    expect(new Set(rings.map((r) => r.toTag)).size).toBe(3);
    expect(ft.violations).toEqual([]);
  });

  it('drop resets the TLS connection the INVITE came on', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.ringing(), step.drop(20)]);
    const c = sbc.send(sbc.invite(), sbc.dest(ft.endpoints.sip));
    await c.wait((r) => r.status === 180);
    await expect.poll(() => sbc.closedConnections.length).toBe(1);
    const call = await ft.waitForCall();
    expect(call.state).toBe('dropped');
    expect(ft.connections()[0]!.closeReason).toBe('dropped by fake Teams');
    expect(c.responses.some(isFinal)).toBe(false);
  });

  it('a script without a final response never answers; the test can drive the call by hand', async () => {
    const { ft, sbc } = await rig();
    const inv = sbc.invite();
    const c = sbc.send(inv, sbc.dest(ft.endpoints.sip3));
    const call = await ft.waitForCall({ endpoint: 'sip3' });
    await new Promise((r) => setTimeout(r, 100));
    expect(c.responses.map((r) => r.status)).toEqual([100]);
    await call.ringing();
    await call.answer();
    expect((await c.wait(isFinal)).status).toBe(200);
  });
});

describe('FakeTeams: Teams-originated requests', () => {
  it('BYE from Teams reaches the SBC via the tenant Contact', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.answer()]);
    const inv = sbc.invite();
    const dest = sbc.dest(ft.endpoints.sip);
    const ok = await sbc.send(inv, dest).wait((r) => r.status === 200);
    await sbc.ack(inv, ok, dest);
    const call = await ft.waitForCall();
    const res = await call.bye();
    expect(res.status).toBe(200);
    const bye = sbc.received.find((r) => r.req.method === 'BYE')!;
    expect(bye.req.uri).toBe(`sip:+14155550123@${TENANT}:${sbc.port};transport=tls`);
    expect(bye.flow.remoteAddress).toBe('127.0.5.1');
    expect(call.state).toBe('ended');
    expect(call.endedBy).toBe('teams');
  });

  it('originates a Teams-like INVITE, checks the SBC answer, then hold, REFER from another address, NOTIFY and BYE', async () => {
    const { ft, sbc } = await rig();
    ft.setSbc(sbc.address, sbc.port);
    sbc.onRequest = (req, txn) => {
      sbc.answer(req, txn);
      if (req.method === 'REFER') {
        // RFC 3515: progress of the transfer as NOTIFY in the dialog (Teams is the remote side).
        const notify = new SipRequest('NOTIFY', 'sip:sip.pstnhub.microsoft.com:5061;transport=tls');
        notify.add('Via', `SIP/2.0/TLS ${sbc.address}:${sbc.port};branch=${newBranch()};rport`);
        notify.add('Max-Forwards', '70');
        notify.add('From', `${req.get('to')!}`);
        notify.add('To', req.get('from')!);
        notify.add('Call-ID', req.callId);
        notify.add('CSeq', '1 NOTIFY');
        notify.add('Contact', `<sip:${TENANT}:${sbc.port};transport=tls>`);
        notify.add('Event', 'refer');
        notify.add('Subscription-State', 'terminated;reason=noresource');
        notify.add('Content-Type', 'message/sipfrag');
        notify.body = Buffer.from('SIP/2.0 200 OK\r\n');
        sbc.send(notify, sbc.dest(ft.endpoints.sip));
      }
    };
    const call = ft.originate({ to: '+15551239876', tenant: TENANT });
    const ok = await call.waitForFinal();
    expect(ok.status).toBe(200);
    const got = sbc.received.find((r) => r.req.method === 'INVITE')!;
    expect(got.req.uri).toBe(`sip:+15551239876@${TENANT}:${sbc.port};user=phone;transport=tls`);
    expect(got.flow.remoteAddress).toBe('127.0.5.1');
    const offer = audioOf(parseSdp(got.req.body.toString()))!;
    expect(offer.crypto.map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_32', 'AES_CM_128_HMAC_SHA1_80']);
    expect(offer.codecs.map((c) => c.name)).toEqual(expect.arrayContaining(['SILK', 'G722', 'PCMU', 'PCMA', 'CN', 'telephone-event']));
    expect(offer.rtcpMux).toBe(true);
    expect(offer.iceUfrag).toBeDefined();
    const conn = ft.connections().find((r) => r.direction === 'outbound')!;
    expect(conn.tls).toMatchObject({ servername: TENANT, authorized: true });
    await expect.poll(() => sbc.received.some((r) => r.req.method === 'ACK')).toBe(true);
    expect(call.state).toBe('confirmed');
    expect(call.media().gateway).toMatchObject({ address: '127.0.5.20', port: 30000 });

    const hold = await call.reinvite({ direction: 'inactive' });
    expect(hold.status).toBe(200);
    const reinv = sbc.received.filter((r) => r.req.method === 'INVITE')[1]!;
    expect(audioOf(parseSdp(reinv.req.body.toString()))!).toMatchObject({ direction: 'inactive', port: call.media().teams.port });

    const { response, referredBy } = await call.refer();
    expect(response.status).toBe(202);
    expect(referredBy.length).toBeGreaterThanOrEqual(350);
    const refer = sbc.received.find((r) => r.req.method === 'REFER')!;
    expect(refer.flow.remoteAddress).toBe('127.0.5.4');
    expect(refer.req.get('referred-by')).toBe(referredBy);
    const notify = await call.waitForNotify(200);
    expect(notify.get('event')).toBe('refer');

    expect((await call.bye()).status).toBe(200);
    expect(ft.violations).toEqual([]);
  });

  it('flags an SBC answer with an IP Contact, two crypto lines or no REFER in Allow', async () => {
    const { ft, sbc } = await rig();
    ft.setSbc(sbc.address, sbc.port);
    sbc.onRequest = (req, txn) => {
      if (req.method !== 'INVITE') return sbc.answer(req, txn);
      sbc.answer(req, txn, { contact: `<sip:127.0.5.20:${sbc.port};transport=tls>` });
    };
    const call = ft.originate({ to: '+15551239876', tenant: TENANT });
    expect((await call.waitForFinal()).status).toBe(200);
    expect(ft.violations.map((v) => v.rule)).toEqual(['contact-fqdn']);
    expect(ft.violations[0]).toMatchObject({ method: 'INVITE', status: 200 });
  });

  it('refuses an SBC whose certificate does not cover the tenant FQDN', async () => {
    const { ft } = await rig();
    const wrong = await pki.sbc.issue({ name: 'wrong-san', cn: 'other.example.org', sans: ['other.example.org'] });
    const sbc2 = await TestSbc.start(pki, { address: '127.0.5.24', cert: wrong });
    cleanup.push(() => sbc2.close());
    ft.setSbc(sbc2.address, sbc2.port);
    const call = ft.originate({ to: '+15551239876', tenant: TENANT });
    await expect(call.waitForFinal()).rejects.toThrow(/does not match|not delivered/);
    expect(ft.violationsOf('tls-server-cert')).toHaveLength(1);
    expect(sbc2.received).toEqual([]);
  });

  it('sends INVITE with Replaces for an existing dialog, and OPTIONS to the SBC over a new connection', async () => {
    const { ft, sbc } = await rig();
    ft.setSbc(sbc.address, sbc.port);
    const first = ft.originate({ to: '+15551239876', tenant: TENANT });
    await first.waitForFinal();
    const second = ft.originate({ to: '+15551239876', tenant: TENANT, replaces: first, endpoint: 'sip2' });
    await second.waitForFinal();
    const inv = sbc.received.filter((r) => r.req.method === 'INVITE')[1]!;
    expect(inv.req.get('replaces')).toBe(`${first.callId};to-tag=${first.remoteTag};from-tag=${first.localTag}`);
    expect(inv.flow.remoteAddress).toBe('127.0.5.2');
    const before = ft.connections().filter((c) => c.direction === 'outbound').length;
    const res = await ft.sendOptions({ to: TENANT });
    expect(res.status).toBe(200);
    expect(ft.connections().filter((c) => c.direction === 'outbound').length).toBe(before + 1);
  });
});

describe('FakeTeams: more dialog behaviour', () => {
  it('records a CANCEL from the SBC (the transaction layer answers 200 + 487)', async () => {
    const { ft, sbc } = await rig();
    ft.script([step.ringing()]);
    const inv = sbc.invite();
    const dest = sbc.dest(ft.endpoints.sip);
    const c = sbc.send(inv, dest);
    await c.wait((r) => r.status === 180);
    const call = await ft.waitForCall();
    sbc.txn.sendCancel(c.handle!);
    await call.waitForCancel();
    expect((await c.wait(isFinal)).status).toBe(487);
    expect(call.state).toBe('cancelled');
    expect(ft.requests('CANCEL')).toHaveLength(1);
    expect(ft.violations).toEqual([]);
  });

  it('probes back with its own OPTIONS to the Contact FQDN when probeOptions is set', async () => {
    const { ft, sbc } = await rig({ probeOptions: true });
    await sbc.send(sbc.options(ft.endpoints.sip), sbc.dest(ft.endpoints.sip)).wait(isFinal);
    await expect.poll(() => ft.options[0]?.probe).toBe(200);
    const back = sbc.received.find((r) => r.req.method === 'OPTIONS')!;
    expect(back.req.uri).toBe(`sip:${TENANT}:${sbc.port};transport=tls`);
    expect(back.flow.remoteAddress).toBe('127.0.5.1');
    expect(ft.violations).toEqual([]);
  });

  it('Teams session refresh re-INVITE carries Session-Expires and the same media', async () => {
    const { ft, sbc } = await rig();
    ft.setSbc(sbc.address, sbc.port);
    const call = ft.originate({ to: '+15551239876', tenant: TENANT, endpoint: 'alt' });
    expect((await call.waitForFinal()).status).toBe(200);
    expect(sbc.received[0]!.flow.remoteAddress).toBe('127.0.5.4');
    const before = call.media().teams;
    expect((await call.reinvite({ refresh: true })).status).toBe(200);
    const re = sbc.received.filter((r) => r.req.method === 'INVITE')[1]!;
    expect(re.req.get('session-expires')).toBe('1800;refresher=uac');
    expect(audioOf(parseSdp(re.req.body.toString()))).toMatchObject({ address: before.address, port: before.port, direction: 'sendrecv' });
    expect(ft.violations).toEqual([]);
  });
});
