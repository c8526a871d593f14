/** Media anchoring in rtpengine: the public surface for call control. */
export { MediaError, MEDIA_ERROR_CODES, MEDIA_ERROR_SIP_STATUS, isMediaError, type MediaErrorCode } from './errors.js';
export { RtpenginePool, type RtpenginePoolOptions, type MediaPoolListener } from './rtpengine-pool.js';
export { MediaSession, type MediaSessionOptions, type MediaSessionState, type DeleteOptions, type PlayOptions, type PlaySource } from './media-session.js';
export {
  RINGBACK_PLANS,
  cadencePeriodMs,
  ringbackWav,
  type RingbackCountry,
  type TonePlan,
} from './ringback-tone.js';
export {
  DEFAULT_MEDIA_PROFILES,
  KNOWN_SDES_SUITES,
  TEAMS_CODECS,
  TEAMS_SRTP_SUITE,
  buildAnswerParams,
  buildOfferParams,
  offeredAudioCodecs,
  mergeMediaProfiles,
  validateMediaProfiles,
  type CodecAllowLists,
  type CodecPolicy,
  type IceMode,
  type LegProfile,
  type LegProfileOverride,
  type MediaProfiles,
  type MediaProfilesOverride,
  type RtcpMuxPolicy,
  type SrtpPolicy,
  type TransportProtocol,
} from './profiles.js';
export { parseNgAddress } from './ng-client.js';
export {
  otherLeg,
  silentLogger,
  type CommandStats,
  type InstanceStats,
  type LegMediaStats,
  type MediaLeg,
  type MediaLogger,
  type MediaPoolEvent,
  type MediaStats,
  type PoolStats,
} from './types.js';
