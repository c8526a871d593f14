/**
 * A tiny SBC for the fake Teams self-tests, made from the project's SIP stack (TransportLayer
 * over mutual TLS + TransactionLayer). It sends what a compliant gateway would send and lets
 * each test break one thing.
 */
import { newBranch, newCallId, newTag } from '../../../src/util/ids.js';
import { SipRequest, type SipResponse } from '../../../src/sip/message/index.js';
import { type ClientTransactionHandle, type ServerTransactionHandle, TransactionLayer, createResponse } from '../../../src/sip/transaction/index.js';
import { TransportLayer } from '../../../src/sip/transport/transport-layer.js';
import type { Destination, Flow, TlsOptions } from '../../../src/sip/transport/types.js';
import type { EndpointInfo, FakeTeamsPki } from '../../helpers/fake-teams/index.js';

export const TENANT = 'acme.customers.example.net';

export function sbcOffer(o: { address?: string; port?: number; proto?: string; crypto?: boolean; direction?: string; extra?: string[] } = {}): string {
  const addr = o.address ?? '127.0.5.20';
  const lines = [
    'v=0',
    `o=- 1 1 IN IP4 ${addr}`,
    's=-',
    `c=IN IP4 ${addr}`,
    't=0 0',
    `m=audio ${o.port ?? 30000} ${o.proto ?? 'RTP/SAVP'} 0 8 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
  ];
  if (o.crypto ?? true) lines.push(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${Buffer.alloc(30, 7).toString('base64')}`);
  lines.push('a=rtcp-mux', `a=${o.direction ?? 'sendrecv'}`, ...(o.extra ?? []));
  return lines.join('\r\n') + '\r\n';
}

export interface ClientCall {
  req: SipRequest;
  handle: ClientTransactionHandle | undefined;
  responses: SipResponse[];
  flow: Flow | undefined;
  error: Error | undefined;
  timedOut: boolean;
  wait(pred: (r: SipResponse) => boolean, timeoutMs?: number): Promise<SipResponse>;
}

export class TestSbc {
  readonly transport: TransportLayer;
  readonly txn: TransactionLayer;
  readonly address: string;
  /** Requests that reached the SBC (from the fake Teams). */
  readonly received: Array<{ req: SipRequest; flow: Flow }> = [];
  readonly closedConnections: string[] = [];
  /** How the SBC answers requests from Teams (default: compliant 200s). */
  onRequest: ((req: SipRequest, txn: ServerTransactionHandle) => void) | undefined;

  private constructor(address: string, tlsOpts: TlsOptions, connectTimeoutMs: number) {
    this.address = address;
    this.transport = new TransportLayer({ listen: [{ protocol: 'tls', host: address, port: 0, tls: tlsOpts }], connectTimeoutMs });
    this.txn = new TransactionLayer({
      transport: this.transport,
      core: {
        onRequest: (req, txn, flow) => {
          this.received.push({ req, flow });
          if (!txn) return;
          if (this.onRequest) this.onRequest(req, txn);
          else this.answer(req, txn);
        },
        onCancel: () => undefined,
      },
      onCallbackError: () => undefined,
    });
    this.transport.on('message', (m, f) => this.txn.receive(m, f));
    this.transport.on('connectionClosed', (info, reason) => this.closedConnections.push(`${info.flow.remoteAddress}:${info.flow.remotePort} ${reason}`));
  }

  static async start(pki: FakeTeamsPki, o: { address?: string; cert?: { key: string; cert: string }; connectTimeoutMs?: number } = {}): Promise<TestSbc> {
    const cert = o.cert ?? pki.sbc.server;
    const s = new TestSbc(o.address ?? '127.0.5.20', { key: cert.key, cert: cert.cert, ca: pki.teams.ca.cert, verifyPeer: true, requestClientCert: true }, o.connectTimeoutMs ?? 3000);
    await s.transport.start();
    return s;
  }

  get port(): number {
    return this.transport.listenPoints()[0]!.port;
  }

  /** The compliant answer to a Teams request (Contact = tenant FQDN, Allow with REFER, SRTP _80). */
  answer(req: SipRequest, txn: ServerTransactionHandle, o: { contact?: string; status?: number } = {}): void {
    const status = o.status ?? (req.method === 'REFER' ? 202 : 200);
    const res = createResponse(req, status);
    if (req.method === 'INVITE') {
      res.add('Contact', o.contact ?? `<sip:${TENANT}:${this.port};transport=tls>`);
      res.add('Allow', 'INVITE,ACK,OPTIONS,CANCEL,BYE,REFER,NOTIFY');
      res.add('Content-Type', 'application/sdp');
      const dir = /a=(inactive|sendonly|recvonly)/.exec(req.body.toString())?.[1];
      res.body = Buffer.from(sbcOffer({ direction: dir === 'sendonly' ? 'recvonly' : dir === 'recvonly' ? 'sendonly' : (dir ?? 'sendrecv') }).replace('m=audio 30000 RTP/SAVP 0 8 101', 'm=audio 30000 RTP/SAVP 0 101').replace('a=rtpmap:8 PCMA/8000\r\n', ''));
    }
    txn.respond(res).catch(() => undefined);
  }

  /** A compliant INVITE toward a fake Teams proxy. */
  invite(o: { called?: string; caller?: string; ruriHost?: string } = {}): SipRequest {
    const req = new SipRequest('INVITE', `sip:${o.called ?? '+15551230001'}@${o.ruriHost ?? 'sip.pstnhub.microsoft.com'}:5061;user=phone`);
    req.add('Via', `SIP/2.0/TLS ${this.address}:${this.port};branch=${newBranch()};rport`);
    req.add('Max-Forwards', '70');
    req.add('From', `<sip:${o.caller ?? '+14155550123'}@${TENANT};user=phone>;tag=${newTag()}`);
    req.add('To', `<sip:${o.called ?? '+15551230001'}@sip.pstnhub.microsoft.com;user=phone>`);
    req.add('Call-ID', newCallId());
    req.add('CSeq', '1 INVITE');
    req.add('Contact', `<sip:${o.caller ?? '+14155550123'}@${TENANT}:${this.port};transport=tls>`);
    req.add('Allow', 'INVITE,ACK,OPTIONS,CANCEL,BYE,REFER,NOTIFY');
    req.add('Supported', 'timer');
    req.add('X-MS-SBC', 'Test/TestSbc/1.0');
    req.add('Content-Type', 'application/sdp');
    req.body = Buffer.from(sbcOffer());
    return req;
  }

  options(proxy: EndpointInfo, contact?: string): SipRequest {
    const req = new SipRequest('OPTIONS', `sip:${proxy.fqdn}:${proxy.port}`);
    req.add('Via', `SIP/2.0/TLS ${this.address}:${this.port};branch=${newBranch()};rport`);
    req.add('Max-Forwards', '70');
    req.add('From', `<sip:${TENANT}>;tag=${newTag()}`);
    req.add('To', `<sip:${proxy.fqdn}>`);
    req.add('Call-ID', newCallId());
    req.add('CSeq', '1 OPTIONS');
    req.add('Contact', contact ?? `<sip:${TENANT}:${this.port};transport=tls>`);
    return req;
  }

  dest(proxy: EndpointInfo): Destination {
    return { protocol: 'tls', host: proxy.address, port: proxy.port, servername: proxy.fqdn };
  }

  /** Sends a request through a client transaction and records its responses. */
  send(req: SipRequest, dest: Destination): ClientCall {
    const waiters: Array<{ pred: (r: SipResponse) => boolean; resolve: (r: SipResponse) => void }> = [];
    const c: ClientCall = {
      req,
      handle: undefined,
      responses: [],
      flow: undefined,
      error: undefined,
      timedOut: false,
      wait: (pred, timeoutMs = 5000) => {
        const hit = c.responses.find(pred);
        if (hit) return Promise.resolve(hit);
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no matching response to ${req.method} (got ${c.responses.map((r) => r.status).join(',') || 'none'}; error ${c.error?.message ?? 'none'})`)), timeoutMs);
          waiters.push({
            pred,
            resolve: (r) => {
              clearTimeout(t);
              resolve(r);
            },
          });
        });
      },
    };
    const h = this.txn.request(req, dest, {
      onResponse: (res) => {
        c.responses.push(res);
        for (const w of [...waiters]) if (w.pred(res)) w.resolve(res);
      },
      onTimeout: () => {
        c.timedOut = true;
      },
      onTransportError: (err) => {
        c.error = err;
      },
    });
    c.handle = h;
    void Promise.resolve().then(() => {
      c.flow = h.flow;
    });
    return c;
  }

  /** ACK for a 2xx (RFC 3261 §13.2.2.4), sent to the same proxy. */
  async ack(invite: SipRequest, res: SipResponse, dest: Destination): Promise<void> {
    const ack = new SipRequest('ACK', invite.uri);
    ack.add('Via', `SIP/2.0/TLS ${this.address}:${this.port};branch=${newBranch()};rport`);
    ack.add('Max-Forwards', '70');
    ack.add('From', invite.get('from')!);
    ack.add('To', res.get('to')!);
    ack.add('Call-ID', invite.callId);
    ack.add('CSeq', `${invite.cseq.seq} ACK`);
    await this.transport.send(ack, dest);
  }

  /** An in-dialog request on an answered call (re-INVITE, BYE, UPDATE …). */
  inDialog(method: string, invite: SipRequest, res: SipResponse, seq: number): SipRequest {
    const req = new SipRequest(method, invite.uri);
    req.add('Via', `SIP/2.0/TLS ${this.address}:${this.port};branch=${newBranch()};rport`);
    req.add('Max-Forwards', '70');
    req.add('From', invite.get('from')!);
    req.add('To', res.get('to')!);
    req.add('Call-ID', invite.callId);
    req.add('CSeq', `${seq} ${method}`);
    req.add('Contact', invite.get('contact')!);
    return req;
  }

  async close(): Promise<void> {
    this.txn.close();
    await this.transport.close();
  }
}
