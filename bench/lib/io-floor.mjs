/**
 * The I/O floor of a drachtio-compatible server written for Node, for the CPS benchmark's uas
 * shape: the least a Node process can do and still relay that call flow between SIPp (UDP) and
 * the drachtio-srf app (TCP, drachtio wire protocol).
 *
 *   node bench/lib/io-floor.mjs --address 127.0.7.1 --sip-port 5060 --port 9022 --secret cymru
 *
 * It is NOT a SIP server and must never be used as one: no parser, no validation, no
 * transactions, no retransmissions, no timers, no error handling. It finds the few header lines
 * the flow needs with indexOf, keeps one map entry per pending transaction and per dialog, and
 * frames and writes exactly the messages the real server writes (the same batching of app writes
 * per event-loop iteration, no 100 Trying). What it spends per call is what the kernel and Node
 * charge for this traffic before any SIP logic runs; the gap between it and the real server is
 * what our code costs.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setImmediate } from 'node:timers';

const { values } = parseArgs({
  options: {
    address: { type: 'string', default: '127.0.7.1' },
    'sip-port': { type: 'string', default: '5060' },
    port: { type: 'string', default: '9022' },
    secret: { type: 'string', default: 'cymru' },
  },
});
const ADDR = values.address;
const SIP_PORT = Number(values['sip-port']);
const HOSTPORT = `udp/${ADDR}:${SIP_PORT}`;

/** The value of the first `\r\n<name>: ` header line, or '' (SIPp's uac.xml spells them this way). */
function header(text, name) {
  const at = text.indexOf(`\r\n${name}: `);
  if (at < 0) return '';
  const s = at + name.length + 4;
  return text.slice(s, text.indexOf('\r\n', s));
}

let lastMs = -1;
let lastTime = '';
/** HH:MM:SS.uuuuuu, formatted once per millisecond as the real server does. */
function time() {
  const now = Date.now();
  if (now === lastMs) return lastTime;
  lastMs = now;
  const d = new Date(now);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  lastTime = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}000`;
  return lastTime;
}

let app; // the one app connection
let pending = [];
let pendingScheduled = false;
function queue(payload) {
  pending.push(`${Buffer.byteLength(payload)}#${payload}`);
  if (!pendingScheduled) {
    pendingScheduled = true;
    setImmediate(flush);
  }
}
function flush() {
  pendingScheduled = false;
  const out = pending.join('');
  pending = [];
  if (app && !app.destroyed) app.write(out);
}

/** txnId → the network request the app will answer; Call-ID → dialog id. */
const txns = new Map();
const dialogs = new Map();

const udp = createSocket('udp4');
udp.on('message', (buf, rinfo) => {
  const text = buf.toString('utf8');
  const sp = text.indexOf(' ');
  const method = text.slice(0, sp);
  const callId = header(text, 'Call-ID');
  const src = `udp|${rinfo.address}|${rinfo.port}|${time()}`;
  if (method === 'INVITE') {
    const txnId = randomUUID();
    txns.set(txnId, { text, rinfo });
    queue(`${randomUUID()}|sip|network|${buf.length}|${src}|${txnId}||${ADDR}|${SIP_PORT}|\r\n${text}`);
  } else if (method === 'ACK') {
    const dialogId = dialogs.get(callId);
    if (dialogId) queue(`${randomUUID()}|sip|network|${buf.length}|${src}|${randomUUID()}|${dialogId}|\r\n${text}`);
  } else if (method === 'BYE') {
    const dialogId = dialogs.get(callId);
    if (!dialogId) return;
    dialogs.delete(callId);
    const txnId = randomUUID();
    txns.set(txnId, { text, rinfo });
    queue(`${randomUUID()}|sip|network|${buf.length}|${src}|${txnId}|${dialogId}|\r\n${text}`);
  }
});

/** The app's response: Via/From/To/Call-ID/CSeq from the stored request, the rest from the app. */
function onAppResponse(msgId, txnId, sip) {
  const t = txns.get(txnId);
  if (!t) return;
  txns.delete(txnId);
  const req = t.text;
  const sep = sip.indexOf('\r\n\r\n');
  const body = sip.slice(sep + 4);
  const statusLine = sip.slice(0, sip.indexOf('\r\n'));
  const callId = header(req, 'Call-ID');
  const from = header(req, 'From');
  let to = header(req, 'To');
  const isInvite = header(req, 'CSeq').endsWith('INVITE');
  // §11: Call-ID plus the caller's From tag (the BYE comes from the caller, so it is the same).
  const dialogId = `${callId};from-tag=${from.slice(from.indexOf('tag=') + 4)}`;
  if (isInvite) {
    to += `;tag=${randomUUID().slice(0, 8)}`;
    dialogs.set(callId, dialogId);
  }
  let extra = '';
  const ct = header(sip, 'Content-Type');
  if (ct) extra += `Content-Type: ${ct}\r\n`;
  if (isInvite) extra += `Contact: <sip:${ADDR}:${SIP_PORT}>\r\n`;
  const res = `${statusLine}\r\nVia: ${header(req, 'Via')}\r\nFrom: ${from}\r\nTo: ${to}\r\nCall-ID: ${callId}\r\nCSeq: ${header(req, 'CSeq')}\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const wire = Buffer.from(res, 'utf8');
  udp.send(wire, t.rinfo.port, t.rinfo.address);
  queue(`${randomUUID()}|response|${msgId}|OK|application|${wire.length}|udp|${t.rinfo.address}|${t.rinfo.port}|${time()}|${txnId}|${dialogId}||Msg sent:|\r\n${res}`);
}

function onAppMessage(payload) {
  const cr = payload.indexOf('\r');
  const leader = cr < 0 ? payload : payload.slice(0, cr);
  const tok = leader.split('|');
  const [msgId, type] = tok;
  if (type === 'authenticate') {
    queue(tok[2] === values.secret ? `${randomUUID()}|response|${msgId}|OK|${HOSTPORT}|v0.9.9-floor|${HOSTPORT}` : `${randomUUID()}|response|${msgId}|NO|incorrect secret`);
  } else if (type === 'route') {
    queue(`${randomUUID()}|response|${msgId}|OK`);
  } else if (type === 'ping') {
    queue(`${randomUUID()}|response|${msgId}|OK|pong`);
  } else if (type === 'sip') {
    onAppResponse(msgId, tok[2], payload.slice(cr + 2));
  }
}

const tcp = createServer((sock) => {
  app = sock;
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0);
  sock.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      const hash = buf.indexOf(0x23, off);
      if (hash < 0) break;
      const len = Number(buf.toString('latin1', off, hash));
      if (buf.length - hash - 1 < len) break;
      onAppMessage(buf.toString('utf8', hash + 1, hash + 1 + len));
      off = hash + 1 + len;
    }
    buf = buf.subarray(off);
  });
  sock.on('error', () => {});
});

udp.bind(SIP_PORT, ADDR, () => {
  tcp.listen(Number(values.port), ADDR, () => process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`));
});
const stop = () => {
  udp.close();
  tcp.close();
  app?.destroy();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
