import { AppError } from '../../util/errors.js';

/**
 * SIP-layer error catalog. Every error that should be answered on the wire carries the status
 * code to answer with, so no handler invents numbers inline.
 */
export const SipErrorCodes = {
  SIP_ERR_PARSE: 400,
  SIP_ERR_MISSING_HEADER: 400,
  SIP_ERR_BAD_HEADER: 400,
  SIP_ERR_BAD_URI: 416,
  SIP_ERR_TOO_LARGE: 513,
  SIP_ERR_VERSION: 505,
  SIP_ERR_CONTENT_LENGTH: 400,
} as const;

export type SipErrorCode = keyof typeof SipErrorCodes;

export class SipError extends AppError {
  readonly statusCode: number;
  constructor(code: SipErrorCode, message: string) {
    super(code, message);
    this.statusCode = SipErrorCodes[code];
  }
}
