/**
 * Ringback for the PSTN party during a REFER transfer (teams-direct-routing.md §6.6: "Play
 * ringback to the PSTN party from the new leg's 180/183"). The PSTN call was answered long
 * ago, so the carrier plays no ringing of its own. When the new Teams leg sends 183 (or 180)
 * WITH SDP, its early media is what the PSTN party hears (transfer.ts anchors it). When it
 * sends 180 WITHOUT SDP there is no media to pass, so the gateway has rtpengine's media player
 * play a ringing tone toward the carrier leg until the new leg answers, sends SDP, fails, or
 * the call ends.
 *
 * How the tone reaches rtpengine (decision): inline, as the ng `blob` of `play media`, so a
 * remote rtpengine needs no file deployed and no shared storage. The blob is ONE cadence
 * period of a µ-law WAV generated in code (src/media/ringback-tone.ts: 24-48 kB, e.g. the US
 * plan's 6 s are 48,058 bytes) looped with `repeat-times`; that keeps the ng datagram under
 * UDP's 65,507-byte limit, which rtpengine's ng socket accepts in one read. Across a real
 * network such a datagram travels as ~33 IP fragments: where fragments are dropped, or for a
 * custom tone, `calls.transferRingback.file` names a file on the rtpengine host instead (ng
 * `file`).
 */
import type { Logger } from 'pino';
import { cadencePeriodMs, RINGBACK_PLANS, type RingbackCountry, ringbackWav } from '../media/ringback-tone.js';
import type { TransferRingbackSettings } from './features.js';
import type { MediaSession } from './media-port.js';

const wavCache = new Map<RingbackCountry, Buffer>();

/** The generated tone of `country` (built once per process). */
export function ringbackBlob(country: RingbackCountry): Buffer {
  let b = wavCache.get(country);
  if (!b) {
    b = ringbackWav(country);
    wavCache.set(country, b);
  }
  return b;
}

type State = 'idle' | 'playing' | 'stopped';

/**
 * One transfer's ringback (also the tone of a late offer made from a stand-in, late-offer.ts).
 * start() at most once (a 180 without SDP), stop() on every way the ringing phase ends; both are idempotent, and stop() before start() just prevents it. Both
 * queue their ng commands on the call's media session before returning (the session runs its
 * commands one at a time, in order), so an offer/answer issued after stop() reaches rtpengine
 * after the stop, and a stop() can never overtake the start it ends.
 */
export class TransferRingback {
  #state: State = 'idle';
  #started: Promise<void> | undefined;
  readonly #media: MediaSession | undefined;
  readonly #settings: TransferRingbackSettings;
  readonly #log: Logger;
  /** What the log lines call it ('transfer ringback', 'late-offer ringback'). */
  readonly #label: string;

  constructor(media: MediaSession | undefined, settings: TransferRingbackSettings, log: Logger, label = 'transfer ringback') {
    this.#media = media;
    this.#settings = settings;
    this.#log = log;
    this.#label = label;
  }

  get playing(): boolean {
    return this.#state === 'playing';
  }

  /** Starts the tone toward the carrier leg (no-op when disabled, already started or stopped). */
  start(): Promise<void> {
    if (this.#state !== 'idle' || !this.#settings.enabled || !this.#media) return Promise.resolve();
    this.#state = 'playing';
    const media = this.#media;
    const s = this.#settings;
    const plan = RINGBACK_PLANS[s.country];
    const source = s.file ? { file: s.file } : { blob: ringbackBlob(s.country) };
    // With a file the period is unknown here: assume one second per play (a longer file only
    // makes the bound longer; stop() ends it anyway).
    const periodMs = s.file ? 1000 : cadencePeriodMs(plan);
    const repeatTimes = Math.max(1, Math.ceil((s.maxSeconds * 1000) / periodMs));
    this.#started = media.playMedia('carrier', source, { repeatTimes }).then(
      (r) => this.#log.info({ country: s.file ? undefined : s.country, file: s.file || undefined, repeatTimes, durationMs: r.durationMs }, `${this.#label} started`),
      (err: Error & { code?: string }) => {
        if (this.#state === 'playing') this.#state = 'stopped';
        this.#log.warn({ err: err.message, code: err.code }, `${this.#label} not played`);
      },
    );
    return this.#started;
  }

  /** Stops the tone (the other leg's media flows again). Never rejects. */
  async stop(): Promise<void> {
    const was = this.#state;
    this.#state = 'stopped';
    if (was !== 'playing' || !this.#media) return;
    // Queued behind start()'s commands on the session; waiting for start() keeps the log order.
    const stopping = this.#media.stopMedia('carrier');
    await this.#started;
    await stopping;
    this.#log.info(`${this.#label} stopped`);
  }
}
