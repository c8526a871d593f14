import { newTag } from '../../util/ids.js';
import { SipError } from '../message/errors.js';
import { SipResponse, type SipRequest } from '../message/message.js';
import { reasonPhrase } from '../message/status.js';

function required(req: SipRequest, name: string): string {
  const v = req.get(name);
  if (v === undefined) throw new SipError('SIP_ERR_MISSING_HEADER', `missing ${name} header`);
  return v;
}

/**
 * Builds a response to `req` per RFC 3261 §8.2.6.2: "The From field of the response MUST equal
 * the From header field of the request. The Call-ID header field of the response MUST equal
 * the Call-ID header field of the request. The CSeq header field of the response MUST equal
 * the CSeq field of the request. The Via header field values in the response MUST equal the
 * Via header field values in the request and MUST maintain the same ordering."
 *
 * "If a request contained a To tag in the request, the To header field in the response MUST
 * equal that of the request. However, if the To header field in the request did not contain a
 * tag, ... the UAS MUST add a tag to the To header field in the response (with the exception of
 * the 100 (Trying) response, in which a tag MAY be present)." For 100 no tag is added
 * (§17.2.1 downgrades it to SHOULD NOT). `toTag` is used when a tag is added (default: random).
 */
export function createResponse(req: SipRequest, status: number, reason?: string, toTag?: string): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new TypeError(`invalid status code ${status}`);
  const res = new SipResponse(status, reason ?? reasonPhrase(status));
  let vias = 0;
  for (const h of req.headers) {
    if (h.key === 'via') {
      res.add('Via', h.value);
      vias++;
    }
  }
  if (vias === 0) throw new SipError('SIP_ERR_MISSING_HEADER', 'missing Via header');
  res.shareView(req, 'via');
  res.add('From', required(req, 'from'));
  let to = required(req, 'to');
  if (status > 100 && req.toTag === undefined) to += `;tag=${toTag ?? newTag()}`;
  res.add('To', to);
  res.add('Call-ID', required(req, 'call-id'));
  res.add('CSeq', required(req, 'cseq'));
  // §8.2.6.1: "When a 100 (Trying) response is generated, any Timestamp header field present
  // in the request MUST be copied into this 100 (Trying) response."
  if (status === 100) {
    const ts = req.get('timestamp');
    if (ts !== undefined) res.add('Timestamp', ts);
  }
  res.add('Content-Length', '0');
  return res;
}
