import { SipError } from './errors.js';
import { commonHeaderName, tokenHeaderKey } from './header-names.js';
import { isWsp, sliceLws } from './lex.js';
import { EMPTY, type HeaderField, SipMessage, SipRequest, SipResponse } from './message.js';

export interface ParseOptions {
  /**
   * RFC 3261 §18.3: over a datagram transport, bytes beyond Content-Length are discarded and a
   * Content-Length larger than the datagram is an error. Over streams the framer has already
   * cut the message at Content-Length.
   */
  datagram?: boolean;
  /**
   * Largest message accepted, in bytes (start line + headers + body). A bigger one is rejected
   * with SipError SIP_ERR_TOO_LARGE (513 Message Too Large, RFC 3261 §21.5.11). No limit when
   * unset; DEFAULT_MAX_MESSAGE_SIZE is a sensible value for transports.
   */
  maxSize?: number;
}

/** 64 KiB: the largest UDP payload, and a generous bound for a stream message. */
export const DEFAULT_MAX_MESSAGE_SIZE = 65_535;

const LF_CRLF = Buffer.from('\n\r\n', 'latin1');
const LF_LF = Buffer.from('\n\n', 'latin1');

/**
 * Index of the blank line that ends the header section, tolerating bare LF. Returns
 * [index of the LF that ends the last header line, length of the separator from there (2 or 3)],
 * so the body starts at index + length; [-1, 0] when there is none yet.
 */
export function findHeaderEnd(buf: Buffer, from = 0): [number, number] {
  const a = buf.indexOf(LF_CRLF, from);
  // A bare-LF blank line before the CRLF one wins; look for it only in the part before.
  const region = a < 0 ? buf.subarray(from) : buf.subarray(from, a + 2);
  const b = region.indexOf(LF_LF);
  if (b >= 0) return [from + b, 2];
  return a < 0 ? [-1, 0] : [a, 3];
}

// RFC 3261 §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF (exactly one SP each,
// RFC 4475 §3.1.2.7-10); the Request-URI is an absolute URI, never `<uri>` and never with LWS.
// SIP-Version is case-insensitive.
const REQUEST_LINE = /^([A-Za-z0-9\-.!%*_+`'~]+) ([A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20<>"\x7f]*) [Ss][Ii][Pp]\/(\d+)\.(\d+)$/;
// RFC 3261 §7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF; Status-Code is
// 3DIGIT (RFC 4475 §3.1.2.19); the reason may be empty (§3.1.1.13) and may be UTF-8 (§3.1.1.12).
const STATUS_LINE = /^[Ss][Ii][Pp]\/(\d+)\.(\d+) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;

/**
 * RFC 3261 §7: parse one complete message. Header lines are unfolded and split into name and
 * value only; typed parsing happens lazily in SipMessage accessors. The body is a view into
 * `buf` (no copy). Throws SipError: 400 for malformed framing, start line or header lines, 505
 * for a SIP version other than 2.0, 513 beyond opts.maxSize. Never throws anything else.
 */
export function parseMessage(buf: Buffer, opts: ParseOptions = {}): SipMessage {
  const len = buf.length;
  const max = opts.maxSize;
  // §7.5: implementations SHOULD ignore leading CRLFs before the start line.
  let start = 0;
  while (start < len && (buf[start] === 13 || buf[start] === 10)) start++;
  if (start >= len) throw new SipError('SIP_ERR_PARSE', 'empty message');
  if (max !== undefined && !opts.datagram && len - start > max) {
    throw new SipError('SIP_ERR_TOO_LARGE', `message of ${len - start} bytes exceeds the ${max} byte limit`);
  }
  const [end, sepLen] = findHeaderEnd(buf, start);
  if (end < 0) {
    if (max !== undefined && len - start > max) throw new SipError('SIP_ERR_TOO_LARGE', `header section exceeds the ${max} byte limit`);
    throw new SipError('SIP_ERR_PARSE', 'no empty line ends the header section');
  }
  const bodyStart = end + sepLen;
  if (max !== undefined && bodyStart - start > max) throw new SipError('SIP_ERR_TOO_LARGE', `header section exceeds the ${max} byte limit`);

  const head = buf.toString('utf8', start, end);
  const hlen = head.length;
  let nl = head.indexOf('\n');
  if (nl < 0) nl = hlen;
  const first = head.charCodeAt(nl - 1) === 13 ? head.slice(0, nl - 1) : head.slice(0, nl);

  // Start line first, so a bad one is reported as such even when the framing is also wrong.
  let isRequest: boolean;
  let m = STATUS_LINE.exec(first);
  if (m) {
    isRequest = false;
    if (m[1] !== '2' || m[2] !== '0') throw new SipError('SIP_ERR_VERSION', `unsupported SIP version ${m[1]}.${m[2]}`);
    const status = Number(m[3]);
    if (status < 100 || status > 699) throw new SipError('SIP_ERR_PARSE', `invalid status code ${m[3]}`);
  } else if ((m = REQUEST_LINE.exec(first))) {
    isRequest = true;
    // §8.2.2 / §21.5.26: a request of another SIP version is answered 505.
    if (m[3] !== '2' || m[4] !== '0') throw new SipError('SIP_ERR_VERSION', `unsupported SIP version ${m[3]}.${m[4]}`);
  } else {
    throw new SipError('SIP_ERR_PARSE', `malformed start line: ${first.slice(0, 80)}`);
  }

  const headers: HeaderField[] = [];
  let cur: HeaderField | undefined;
  let clField: HeaderField | undefined;
  let clCount = 0;
  let pos = nl + 1;
  while (pos < hlen) {
    let eol = head.indexOf('\n', pos);
    if (eol < 0) eol = hlen;
    const lineEnd = head.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
    const c0 = head.charCodeAt(pos);
    if (c0 === 32 || c0 === 9) {
      // §7.3.1: a line starting with SP/HTAB continues the previous header value; the CRLF and
      // the leading white space are equivalent to a single SP.
      if (!cur) throw new SipError('SIP_ERR_PARSE', 'continuation line before the first header');
      const more = sliceLws(head, pos, lineEnd);
      if (more) cur.value = cur.value ? `${cur.value} ${more}` : more;
    } else {
      const colon = head.indexOf(':', pos);
      if (colon < 0 || colon >= lineEnd) throw new SipError('SIP_ERR_PARSE', `malformed header line: ${head.slice(pos, Math.min(lineEnd, pos + 60))}`);
      // HCOLON = *( SP / HTAB ) ":" SWS
      let ne = colon;
      while (ne > pos && isWsp(head.charCodeAt(ne - 1))) ne--;
      const common = commonHeaderName(head, pos, ne);
      const name = common ? common[0] : head.slice(pos, ne);
      const key = common ? common[1] : tokenHeaderKey(name);
      if (key === undefined) throw new SipError('SIP_ERR_PARSE', `invalid header name: ${name.slice(0, 60)}`);
      cur = { name, key, value: sliceLws(head, colon + 1, lineEnd) };
      headers.push(cur);
      if (key === 'content-length') {
        clField ??= cur;
        clCount++;
      }
    }
    pos = eol + 1;
  }

  let body: Buffer = EMPTY;
  const avail = len - bodyStart;
  if (clField) {
    const cl = contentLength(clField.value);
    if (clCount > 1) {
      // RFC 4475 §3.3.9: several Content-Length values leave the body length unknown.
      for (const h of headers) {
        if (h.key === 'content-length' && contentLength(h.value) !== cl) {
          throw new SipError('SIP_ERR_CONTENT_LENGTH', 'conflicting Content-Length headers');
        }
      }
    }
    // §18.3: a Content-Length larger than what arrived is an error (RFC 4475 §3.1.2.2); over a
    // stream the framer waits for the whole body, so a short buffer is an error there too.
    if (cl > avail) throw new SipError('SIP_ERR_CONTENT_LENGTH', `Content-Length ${cl} exceeds the ${avail} body bytes received`);
    body = cl === 0 ? EMPTY : buf.subarray(bodyStart, bodyStart + cl);
  } else if (avail > 0) {
    // §18.3 / §20.14: Content-Length is mandatory over streams; over datagrams the body runs to the end.
    if (!opts.datagram) throw new SipError('SIP_ERR_CONTENT_LENGTH', 'missing Content-Length on a stream transport');
    body = buf.subarray(bodyStart);
  }
  const msgEnd = bodyStart + body.length;
  if (max !== undefined && msgEnd - start > max) {
    throw new SipError('SIP_ERR_TOO_LARGE', `message of ${msgEnd - start} bytes exceeds the ${max} byte limit`);
  }

  const msg: SipMessage = isRequest
    ? new SipRequest(m[1]!, m[2]!, headers, body)
    : new SipResponse(Number(m[3]), m[4] ?? '', headers, body);
  // The bytes of this message only (a datagram may carry trailing octets, RFC 4475 §3.1.1.8).
  msg.raw = start === 0 && msgEnd === len ? buf : buf.subarray(start, msgEnd);
  return msg;
}

/** RFC 3261 §20.14 `Content-Length = 1*DIGIT`; negative (§3.1.2.3 of RFC 4475), non-numeric or huge values are 400. */
function contentLength(v: string): number {
  const n = v.length;
  if (n === 0 || n > 10) throw new SipError('SIP_ERR_CONTENT_LENGTH', `malformed Content-Length: ${v.slice(0, 20)}`);
  let x = 0;
  for (let i = 0; i < n; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) throw new SipError('SIP_ERR_CONTENT_LENGTH', `malformed Content-Length: ${v.slice(0, 20)}`);
    x = x * 10 + d;
  }
  if (x > 2 ** 31 - 1) throw new SipError('SIP_ERR_CONTENT_LENGTH', `Content-Length out of range: ${v}`);
  return x;
}

/**
 * RFC 3261 §8.2 / §16.3 sanity check of the mandatory headers. Parses Via, From, To, Call-ID and
 * CSeq (throwing SipError 400 with a reason) so later code can use the cached views safely.
 * Requests also get: CSeq method = request method (RFC 4475 §3.1.2.17/18), a parseable
 * Request-URI of a supported scheme (416 otherwise), no headers in a SIP Request-URI
 * (§19.1.1, RFC 4475 §3.1.2.11), and a valid Max-Forwards.
 */
export function validateMandatory(msg: SipMessage): void {
  // §8.1.1: To, From, CSeq, Call-ID and Via are mandatory; §20: all but Via appear at most once
  // (RFC 4475 §3.3.1 and §3.3.8).
  // One pass over the header lines counts the four (index i of SINGLE_KEYS ↔ SINGLE).
  let c0 = 0;
  let c1 = 0;
  let c2 = 0;
  let c3 = 0;
  for (const h of msg.headers) {
    const k = h.key;
    if (k === 'call-id') c0++;
    else if (k === 'cseq') c1++;
    else if (k === 'from') c2++;
    else if (k === 'to') c3++;
  }
  const counts = [c0, c1, c2, c3];
  for (let i = 0; i < SINGLE.length; i++) {
    const n = counts[i]!;
    const name = SINGLE[i]!;
    if (n === 0) throw new SipError('SIP_ERR_MISSING_HEADER', `missing ${name} header`);
    if (n > 1) throw new SipError('SIP_ERR_BAD_HEADER', `${n} ${name} headers where one is allowed`);
  }
  void msg.vias;
  void msg.callId;
  const cseq = msg.cseq;
  void msg.from;
  void msg.to;
  if (msg instanceof SipRequest) {
    if (cseq.method !== msg.method) {
      throw new SipError('SIP_ERR_BAD_HEADER', `CSeq method ${cseq.method} does not match ${msg.method}`);
    }
    const u = msg.parsedUri;
    if (u.headers !== undefined) throw new SipError('SIP_ERR_PARSE', 'Request-URI must not contain headers (RFC 3261 §19.1.1)');
    if (msg.count('max-forwards') > 1) throw new SipError('SIP_ERR_BAD_HEADER', 'several Max-Forwards headers');
    void msg.maxForwards;
  }
}

const SINGLE = ['Call-ID', 'CSeq', 'From', 'To'] as const;
