/** What call control needs from media anchoring (implemented over rtpengine in src/media). */
export type MediaSide = 'carrier' | 'teams';

export interface MediaSession {
  /** SDP offer that arrived from `from`; returns the offer to send to the other side. */
  offer(from: MediaSide, sdp: string): Promise<string>;
  /** SDP answer that arrived from `from`; returns the answer to send to the other side. */
  answer(from: MediaSide, sdp: string): Promise<string>;
  /**
   * Plays a media file (a path on the media server, or its bytes inline) to the party on
   * `to`, `repeatTimes` times, muting the other side toward it meanwhile. Rejects (code
   * MEDIA_ERR_PLAYBACK) when the media server cannot play it.
   */
  playMedia(to: MediaSide, source: { file: string } | { blob: Buffer }, opts?: { repeatTimes?: number }): Promise<{ durationMs?: number }>;
  /** Stops playMedia() toward `to` and unmutes the other side. Never rejects. */
  stopMedia(to: MediaSide): Promise<void>;
  /** Idempotent. */
  delete(): Promise<void>;
}

export interface MediaService {
  /** Throws an error with code MEDIA_ERR_NO_RTPENGINE when no rtpengine is alive. */
  createSession(opts: { callId: string; fromTag: string; codecs?: string[]; transcode?: boolean }): MediaSession;
  activeSessions(): Promise<number>;
  close(): Promise<void>;
}
