import { SipError } from '../message/errors.js';
import { type SipMessage, SipRequest, type SipResponse } from '../message/message.js';

function required(msg: SipMessage, name: string): string {
  const v = msg.get(name);
  if (v === undefined) throw new SipError('SIP_ERR_MISSING_HEADER', `missing ${name} header`);
  return v;
}

function topViaValue(req: SipRequest): string {
  const v = req.getAll('via')[0];
  if (v === undefined) throw new SipError('SIP_ERR_MISSING_HEADER', 'missing Via header');
  return v;
}

/**
 * §17.1.1.3: the ACK the INVITE client transaction sends for a 300-699 response. "The ACK
 * request constructed by the client transaction MUST contain values for the Call-ID, From, and
 * Request-URI that are equal to the values of those header fields in the request passed to the
 * transport by the client transaction ... The To header field in the ACK MUST equal the To
 * header field in the response being acknowledged ... The ACK MUST contain a single Via header
 * field, and this MUST be equal to the top Via header field of the original request ... The
 * CSeq header field in the ACK MUST contain the same value for the sequence number as was
 * present in the original request, but the method parameter MUST be equal to "ACK"."
 * "If the INVITE request whose response is being acknowledged had Route header fields, those
 * header fields MUST appear in the ACK."
 */
export function buildNon2xxAck(invite: SipRequest, res: SipResponse): SipRequest {
  const ack = new SipRequest('ACK', invite.uri);
  ack.add('Via', topViaValue(invite));
  ack.add('Max-Forwards', '70');
  for (const r of invite.getAll('route')) ack.add('Route', r);
  ack.add('From', required(invite, 'from'));
  ack.add('To', required(res, 'to'));
  ack.add('Call-ID', required(invite, 'call-id'));
  ack.add('CSeq', `${invite.cseq.seq} ACK`);
  ack.add('Content-Length', '0');
  return ack;
}

/**
 * §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the
 * CANCEL request MUST be identical to those in the request being cancelled, including tags. A
 * CANCEL constructed by a client MUST have only a single Via header field value matching the
 * top Via value in the request being cancelled." "If the request being cancelled contains a
 * Route header field, the CANCEL request MUST include that Route header field's values."
 */
export function buildCancel(invite: SipRequest): SipRequest {
  const c = new SipRequest('CANCEL', invite.uri);
  c.add('Via', topViaValue(invite));
  c.add('Max-Forwards', '70');
  for (const r of invite.getAll('route')) c.add('Route', r);
  c.add('From', required(invite, 'from'));
  c.add('To', required(invite, 'to'));
  c.add('Call-ID', required(invite, 'call-id'));
  c.add('CSeq', `${invite.cseq.seq} CANCEL`);
  c.add('Content-Length', '0');
  return c;
}
