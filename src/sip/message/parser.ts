import { SipError } from './errors.js';
import { TOKEN_RE, headerKey } from './header-names.js';
import { EMPTY, type HeaderField, SipMessage, SipRequest, SipResponse } from './message.js';

export interface ParseOptions {
  /**
   * RFC 3261 §18.3: over a datagram transport, bytes beyond Content-Length are discarded and a
   * Content-Length larger than the datagram is an error. Over streams the framer has already
   * cut the message at Content-Length.
   */
  datagram?: boolean;
}

/** Index of the blank line that ends the header section, tolerating bare LF. Returns [index, length of separator]. */
export function findHeaderEnd(buf: Buffer, from = 0): [number, number] {
  for (let i = from; i < buf.length - 1; i++) {
    if (buf[i] === 10) {
      if (buf[i + 1] === 10) return [i, 2];
      if (buf[i + 1] === 13 && buf[i + 2] === 10) return [i, 3];
    }
  }
  return [-1, 0];
}

const REQUEST_LINE = /^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP\/(\d+\.\d+)$/;
const STATUS_LINE = /^SIP\/(\d+\.\d+) (\d{3})(?: (.*))?$/;

/**
 * RFC 3261 §7: parse one complete message. Header values are split into lines only; typed
 * parsing happens lazily in SipMessage accessors. Throws SipError (statusCode 400/505).
 */
export function parseMessage(buf: Buffer, opts: ParseOptions = {}): SipMessage {
  // §7.5: implementations SHOULD ignore leading CRLFs before the start line.
  let start = 0;
  while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++;
  const [end, sepLen] = findHeaderEnd(buf, start);
  const headEnd = end < 0 ? buf.length : end;
  const head = buf.toString('utf8', start, headEnd);
  const lines = head.split(/\r?\n/);
  const first = lines[0] ?? '';
  if (!first) throw new SipError('SIP_ERR_PARSE', 'empty message');

  const headers: HeaderField[] = [];
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i]!;
    // §7.3.1 header folding: a line starting with SP/HTAB continues the previous one.
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) line += ' ' + lines[++i]!.trim();
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SipError('SIP_ERR_PARSE', `malformed header line: ${line.slice(0, 60)}`);
    const name = line.slice(0, colon).trimEnd();
    if (!TOKEN_RE.test(name)) throw new SipError('SIP_ERR_PARSE', `invalid header name: ${name.slice(0, 60)}`);
    headers.push({ name, key: headerKey(name), value: line.slice(colon + 1).trim() });
  }

  let body: Buffer = EMPTY;
  const bodyStart = end < 0 ? buf.length : end + sepLen;
  const avail = buf.length - bodyStart;
  const clField = headers.find((h) => h.key === 'content-length');
  if (clField) {
    if (!/^\d{1,9}$/.test(clField.value)) throw new SipError('SIP_ERR_CONTENT_LENGTH', 'malformed Content-Length');
    const cl = Number(clField.value);
    if (cl > avail) throw new SipError('SIP_ERR_CONTENT_LENGTH', `Content-Length ${cl} exceeds the ${avail} body bytes received`);
    body = cl === 0 ? EMPTY : buf.subarray(bodyStart, bodyStart + cl);
  } else if (avail > 0) {
    if (!opts.datagram) throw new SipError('SIP_ERR_CONTENT_LENGTH', 'missing Content-Length on a stream transport');
    body = buf.subarray(bodyStart);
  }

  let msg: SipMessage;
  let m = STATUS_LINE.exec(first);
  if (m) {
    if (m[1] !== '2.0') throw new SipError('SIP_ERR_VERSION', `unsupported SIP version ${m[1]}`);
    const status = Number(m[2]);
    if (status < 100 || status > 699) throw new SipError('SIP_ERR_PARSE', `invalid status code ${status}`);
    msg = new SipResponse(status, m[3] ?? '', headers, body);
  } else if ((m = REQUEST_LINE.exec(first))) {
    if (m[3] !== '2.0') throw new SipError('SIP_ERR_VERSION', `unsupported SIP version ${m[3]}`);
    msg = new SipRequest(m[1]!, m[2]!, headers, body);
  } else {
    throw new SipError('SIP_ERR_PARSE', `malformed start line: ${first.slice(0, 80)}`);
  }
  msg.raw = buf;
  return msg;
}

/**
 * RFC 3261 §8.2 / §16.3 sanity check of the mandatory headers. Parses Via, From, To, Call-ID and
 * CSeq (throwing SipError 400 with a reason) so later code can use the cached views safely.
 */
export function validateMandatory(msg: SipMessage): void {
  void msg.vias;
  void msg.callId;
  if (!msg.callId) throw new SipError('SIP_ERR_BAD_HEADER', 'empty Call-ID');
  const cseq = msg.cseq;
  void msg.from;
  void msg.to;
  if (msg instanceof SipRequest) {
    if (cseq.method !== msg.method) {
      throw new SipError('SIP_ERR_BAD_HEADER', `CSeq method ${cseq.method} does not match ${msg.method}`);
    }
    void msg.parsedUri;
    void msg.maxForwards;
  }
}
