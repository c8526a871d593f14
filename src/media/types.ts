/**
 * Public types of the media layer (rtpengine anchoring). Call control needs only these and
 * the classes exported from ./index.ts; it never talks ng itself.
 */
import { type Logger, silentLogger } from '../util/logger.js';

/** The two legs of a gateway call, named by who is on the far side. */
export type MediaLeg = 'carrier' | 'teams';

export const otherLeg = (leg: MediaLeg): MediaLeg => (leg === 'carrier' ? 'teams' : 'carrier');

/** The logger the media layer uses (the project's pino-shaped interface). */
export type MediaLogger = Logger;
export { silentLogger };

/** An ng request dictionary (without `command`). Values are bencoded by rtpengine-client. */
export type NgParams = Record<string, unknown>;

/** An ng response dictionary. */
export interface NgResponse {
  result: string;
  'error-reason'?: string;
  warning?: string;
  sdp?: string;
  [k: string]: unknown;
}

/** ng commands the media layer issues (rtpengine-client method names). */
export type NgCommand = 'ping' | 'offer' | 'answer' | 'delete' | 'query' | 'list' | 'statistics' | 'playMedia' | 'stopMedia' | 'blockMedia' | 'unblockMedia';

export type CommandOutcome = 'ok' | 'error' | 'timeout';

/** Per-command counters of one instance. Latencies are in milliseconds. */
export interface CommandStats {
  count: number;
  /** rtpengine answered `result: error`. */
  errors: number;
  /** No answer within the command timeout (or the socket failed). */
  timeouts: number;
  totalLatencyMs: number;
  maxLatencyMs: number;
  lastLatencyMs: number;
}

export interface InstanceStats {
  /** ng address, `host:port`. */
  address: string;
  up: boolean;
  /** Consecutive failed commands (timeouts/socket errors), reset by any answer. */
  consecutiveFailures: number;
  /** Sessions created on this instance by this process and not yet deleted. */
  sessions: number;
  /** performance.now()-based time of the last up/down change. */
  lastChangeAt: number;
  commands: Partial<Record<NgCommand, CommandStats>>;
}

export interface PoolStats {
  instances: InstanceStats[];
  /** Instances currently considered alive. */
  up: number;
  /** Sessions refused because no instance was alive. */
  noRtpengine: number;
}

/** Events for metrics/logging (prom-client wiring subscribes to these elsewhere). */
export type MediaPoolEvent =
  | { type: 'instance-up'; instance: string }
  | { type: 'instance-down'; instance: string; reason: string }
  | { type: 'command'; instance: string; command: NgCommand; outcome: CommandOutcome; latencyMs: number }
  | { type: 'no-rtpengine'; callId: string };

/** Packets/bytes rtpengine received from one leg (what that leg sent into the gateway). */
export interface LegMediaStats {
  packets: number;
  bytes: number;
  errors: number;
  /** RTCP, counted apart. */
  rtcpPackets: number;
}

/** Media counters of one call, for CDRs. */
export interface MediaStats {
  instance: string;
  carrier: LegMediaStats;
  teams: LegMediaStats;
  /** Seconds since the epoch at which rtpengine created the call. */
  created?: number;
}
