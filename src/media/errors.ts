import { AppError } from '../util/errors.js';

/**
 * Stable error codes of the media layer (catalog: docs/errors.md, "Media").
 *
 * - MEDIA_ERR_NO_RTPENGINE: no rtpengine instance is alive (or every live one failed the
 *   initial offer). Call control answers 503.
 * - MEDIA_ERR_TIMEOUT: the instance holding this call did not answer an ng command in time.
 * - MEDIA_ERR_RTPENGINE: rtpengine answered `result: error` (bad SDP, no codec left, ...).
 * - MEDIA_ERR_INVALID_STATE: the session was used in a state that does not allow the
 *   operation (answer before offer, anything after delete()).
 * - MEDIA_ERR_CLOSED: the pool was closed.
 * - MEDIA_ERR_PLAYBACK: rtpengine refused `play media` (built without transcoding, codec it
 *   cannot encode, unreadable or undecodable file). The call goes on without the tone.
 */
export const MEDIA_ERROR_CODES = {
  NO_RTPENGINE: 'MEDIA_ERR_NO_RTPENGINE',
  TIMEOUT: 'MEDIA_ERR_TIMEOUT',
  RTPENGINE: 'MEDIA_ERR_RTPENGINE',
  INVALID_STATE: 'MEDIA_ERR_INVALID_STATE',
  CLOSED: 'MEDIA_ERR_CLOSED',
  PLAYBACK: 'MEDIA_ERR_PLAYBACK',
} as const;

export type MediaErrorCode = (typeof MEDIA_ERROR_CODES)[keyof typeof MEDIA_ERROR_CODES];

/** SIP status call control should answer with for each code (it owns the final decision). */
export const MEDIA_ERROR_SIP_STATUS: Readonly<Record<MediaErrorCode, number>> = {
  MEDIA_ERR_NO_RTPENGINE: 503,
  MEDIA_ERR_TIMEOUT: 503,
  MEDIA_ERR_RTPENGINE: 488,
  MEDIA_ERR_INVALID_STATE: 500,
  MEDIA_ERR_CLOSED: 503,
  // Never fails a call (call control logs it and goes on); listed for completeness.
  MEDIA_ERR_PLAYBACK: 500,
};

export class MediaError extends AppError {
  declare readonly code: MediaErrorCode;
  /** Suggested SIP status for the failed call (see MEDIA_ERROR_SIP_STATUS). */
  readonly sipStatus: number;
  /** ng address of the instance involved, when there was one. */
  readonly instance: string | undefined;

  constructor(code: MediaErrorCode, message: string, options?: { cause?: unknown; instance?: string }) {
    super(code, message, options);
    this.sipStatus = MEDIA_ERROR_SIP_STATUS[code];
    this.instance = options?.instance;
  }
}

export function isMediaError(e: unknown, code?: MediaErrorCode): e is MediaError {
  return e instanceof MediaError && (code === undefined || e.code === code);
}
