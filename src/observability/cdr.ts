import type { Logger } from 'pino';

/** One call attempt, for billing pipelines. Times are ISO strings (UTC). */
export interface Cdr {
  callId: string;
  direction: 'inbound' | 'outbound';
  tenant: string;
  carrier: string;
  from: string;
  to: string;
  startTime: string;
  answerTime: string | null;
  endTime: string;
  durationSec: number;
  finalStatus: number;
  /** caller | callee | gateway */
  hangupBy: string;
  /** Set when an RFC 4028 session timer ended the call: `<leg>_session_expired` or `<leg>_refresh_failed` (leg carrier | teams). */
  endCause: string | null;
  teamsProxy: string | null;
  media: Record<string, number> | null;
}

/** Where CDRs go besides the log: a Redis stream (XADD … MAXLEN ~ n). */
export interface CdrStreamSink {
  xadd(key: string, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * Writes one CDR per call attempt to the log (msg "cdr") and, when Redis is configured, to a
 * length-bounded Redis stream for billing pipelines.
 */
export class CdrWriter {
  readonly #log: Logger;
  readonly #redis: CdrStreamSink | undefined;
  readonly #stream: string;
  readonly #maxLen: number;
  readonly #onWritten: ((sink: 'log' | 'redis') => void) | undefined;

  constructor(opts: { logger: Logger; redis?: CdrStreamSink; stream?: string; maxLen?: number; onWritten?: (sink: 'log' | 'redis') => void }) {
    this.#log = opts.logger;
    this.#redis = opts.redis;
    this.#stream = opts.stream ?? 'tg:cdrs';
    this.#maxLen = opts.maxLen ?? 100_000;
    this.#onWritten = opts.onWritten;
  }

  async write(cdr: Cdr): Promise<void> {
    this.#log.info({ cdr }, 'cdr');
    this.#onWritten?.('log');
    if (!this.#redis) return;
    const fields: string[] = [];
    for (const [k, v] of Object.entries(cdr)) fields.push(k, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    try {
      await this.#redis.xadd(this.#stream, 'MAXLEN', '~', this.#maxLen, '*', ...fields);
      this.#onWritten?.('redis');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'CDR not written to Redis stream');
    }
  }
}
