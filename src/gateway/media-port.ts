/** What call control needs from media anchoring (implemented over rtpengine in src/media). */
export type MediaSide = 'carrier' | 'teams';

export interface MediaSession {
  /** SDP offer that arrived from `from`; returns the offer to send to the other side. */
  offer(from: MediaSide, sdp: string): Promise<string>;
  /** SDP answer that arrived from `from`; returns the answer to send to the other side. */
  answer(from: MediaSide, sdp: string): Promise<string>;
  /** Idempotent. */
  delete(): Promise<void>;
}

export interface MediaService {
  /** Throws an error with code MEDIA_ERR_NO_RTPENGINE when no rtpengine is alive. */
  createSession(opts: { callId: string; fromTag: string; codecs?: string[] }): MediaSession;
  activeSessions(): Promise<number>;
  close(): Promise<void>;
}
