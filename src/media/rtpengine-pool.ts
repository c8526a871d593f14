/**
 * Several rtpengine instances behind one object: periodic `ping` health checks, up/down
 * state per instance, placement of new calls on a live instance (fewest sessions first),
 * and the MediaError NO_RTPENGINE that call control turns into 503.
 */
import { MediaError, MEDIA_ERROR_CODES } from './errors.js';
import { MediaSession, type MediaSessionHost, type MediaSessionOptions } from './media-session.js';
import { NgInstance } from './ng-client.js';
import { DEFAULT_MEDIA_PROFILES, mergeMediaProfiles, type MediaProfiles, type MediaProfilesOverride } from './profiles.js';
import { silentLogger, type MediaLogger, type MediaPoolEvent, type PoolStats } from './types.js';

export interface RtpenginePoolOptions {
  /** ng control addresses, `host:port` (UDP). At least one. */
  instances: string[];
  /** Upper bound for every ng command. Default 1000 ms. */
  commandTimeoutMs?: number;
  /** Health `ping` period. Default 5000 ms; 0 disables periodic checks. */
  healthIntervalMs?: number;
  /** Consecutive failures (pings or commands) before an instance is marked down. Default 2. */
  failuresBeforeDown?: number;
  /** Local address for the ng sockets. */
  localAddress?: string;
  /** Default for MediaSessionOptions.collectStatsOnDelete. Default false. */
  collectStatsOnDelete?: boolean;
  /** Flag profiles (config data) merged over DEFAULT_MEDIA_PROFILES. */
  profiles?: MediaProfilesOverride;
  logger?: MediaLogger;
}

export type MediaPoolListener = (ev: MediaPoolEvent) => void;

export class RtpenginePool implements MediaSessionHost {
  readonly profiles: MediaProfiles;
  readonly #instances: NgInstance[];
  readonly #log: MediaLogger;
  readonly #listeners = new Set<MediaPoolListener>();
  readonly #healthIntervalMs: number;
  readonly #collectStatsOnDelete: boolean;
  #healthTimer: NodeJS.Timeout | undefined;
  #healthRound: Promise<void> | undefined;
  #rr = 0;
  #noRtpengine = 0;
  #closed = false;

  constructor(opts: RtpenginePoolOptions) {
    if (!opts.instances || opts.instances.length === 0) throw new TypeError('RtpenginePool: at least one rtpengine instance is required');
    if (new Set(opts.instances).size !== opts.instances.length) throw new TypeError('RtpenginePool: duplicate rtpengine instance');
    this.#log = opts.logger ?? silentLogger;
    this.profiles = mergeMediaProfiles(DEFAULT_MEDIA_PROFILES, opts.profiles);
    const commandTimeoutMs = opts.commandTimeoutMs ?? 1000;
    const failuresBeforeDown = opts.failuresBeforeDown ?? 2;
    if (!(commandTimeoutMs > 0)) throw new TypeError('RtpenginePool: commandTimeoutMs must be > 0');
    if (!(failuresBeforeDown >= 1)) throw new TypeError('RtpenginePool: failuresBeforeDown must be >= 1');
    this.#healthIntervalMs = opts.healthIntervalMs ?? 5000;
    this.#collectStatsOnDelete = opts.collectStatsOnDelete ?? false;
    this.#instances = opts.instances.map(
      (address) =>
        new NgInstance({
          address,
          commandTimeoutMs,
          failuresBeforeDown,
          ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
          logger: this.#log,
          onChange: (ev) => {
            if (ev.type === 'down') {
              this.#log.error({ instance: address, reason: ev.reason }, 'rtpengine instance down');
              this.#emit({ type: 'instance-down', instance: address, reason: ev.reason });
            } else {
              this.#log.info({ instance: address }, 'rtpengine instance up');
              this.#emit({ type: 'instance-up', instance: address });
            }
          },
          onCommand: (command, outcome, latencyMs) => this.#emit({ type: 'command', instance: address, command, outcome, latencyMs }),
        }),
    );
    if (this.#healthIntervalMs > 0) {
      void this.checkHealth();
      this.#scheduleHealth();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** ng addresses of the instances currently considered alive. */
  get liveInstances(): string[] {
    return this.#instances.filter((i) => i.up).map((i) => i.address);
  }

  /**
   * A new call's media session. Throws MediaError MEDIA_ERR_NO_RTPENGINE at once when no
   * instance is alive (call control answers 503), MEDIA_ERR_CLOSED after close().
   */
  createSession(opts: MediaSessionOptions): MediaSession {
    if (this.#closed) throw new MediaError(MEDIA_ERROR_CODES.CLOSED, 'rtpengine pool is closed');
    const inst = this.pick(new Set());
    if (!inst) throw this.noRtpengine(opts.callId);
    const log = opts.logger ?? this.#log.child?.({ callId: opts.callId }) ?? this.#log;
    return new MediaSession(this, inst, this.profiles, { ...opts, collectStatsOnDelete: opts.collectStatsOnDelete ?? this.#collectStatsOnDelete }, log);
  }

  /** @internal MediaSessionHost: the live instance with the fewest sessions, round-robin on ties. */
  pick(exclude: ReadonlySet<NgInstance>): NgInstance | undefined {
    const n = this.#instances.length;
    let best: NgInstance | undefined;
    for (let k = 0; k < n; k++) {
      const inst = this.#instances[(this.#rr + k) % n]!;
      if (!inst.up || exclude.has(inst)) continue;
      if (!best || inst.sessions < best.sessions) best = inst;
    }
    this.#rr = (this.#rr + 1) % n;
    return best;
  }

  /** @internal MediaSessionHost: logs, counts and builds the NO_RTPENGINE error. */
  noRtpengine(callId: string, cause?: unknown): MediaError {
    this.#noRtpengine++;
    const states = this.#instances.map((i) => `${i.address}=${i.up ? 'up' : 'down'}`).join(', ');
    this.#log.error({ callId, instances: states }, 'no rtpengine alive: refusing call media');
    this.#emit({ type: 'no-rtpengine', callId });
    return new MediaError(MEDIA_ERROR_CODES.NO_RTPENGINE, `no rtpengine instance alive (${states})`, cause === undefined ? undefined : { cause });
  }

  /** One health round now: `ping` every instance (up or down) in parallel. */
  checkHealth(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#healthRound ??= Promise.all(
      this.#instances.map(async (i) => {
        try {
          await i.command('ping');
        } catch {
          // counted and logged by the instance
        }
      }),
    ).then(() => {
      this.#healthRound = undefined;
    });
    return this.#healthRound;
  }

  #scheduleHealth(): void {
    if (this.#closed) return;
    this.#healthTimer = setTimeout(() => {
      void this.checkHealth().then(() => this.#scheduleHealth());
    }, this.#healthIntervalMs);
    this.#healthTimer.unref?.();
  }

  /**
   * Calls currently held by the live instances (rtpengine `statistics` → sessionsown, so
   * calls created by other gateways sharing an instance count too). Down or unanswering
   * instances are skipped.
   */
  async activeSessions(): Promise<number> {
    const counts = await this.activeSessionsByInstance();
    return Object.values(counts).reduce<number>((a, b) => a + (b ?? 0), 0);
  }

  /** Per-instance `statistics` session counts; undefined for an instance that did not answer. */
  async activeSessionsByInstance(): Promise<Record<string, number | undefined>> {
    const out: Record<string, number | undefined> = {};
    await Promise.all(
      this.#instances.map(async (i) => {
        out[i.address] = undefined;
        if (!i.up || this.#closed) return;
        try {
          const res = await i.command('statistics');
          const cur = (res.statistics as { currentstatistics?: { sessionsown?: unknown } } | undefined)?.currentstatistics;
          if (typeof cur?.sessionsown === 'number') out[i.address] = cur.sessionsown;
        } catch (err) {
          this.#log.warn({ instance: i.address, err: err instanceof Error ? err.message : String(err) }, 'rtpengine statistics failed');
        }
      }),
    );
    return out;
  }

  stats(): PoolStats {
    const instances = this.#instances.map((i) => i.stats());
    return { instances, up: instances.filter((i) => i.up).length, noRtpengine: this.#noRtpengine };
  }

  /** Subscribes to pool events; returns the unsubscribe function. A throwing listener is logged, never propagated. */
  on(listener: MediaPoolListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(ev: MediaPoolEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(ev);
      } catch (err) {
        this.#log.warn({ event: ev.type, err: err instanceof Error ? err.message : String(err) }, 'media pool listener threw');
      }
    }
  }

  /** Stops health checks and closes every ng socket. Idempotent. Sessions are not deleted. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#healthTimer) clearTimeout(this.#healthTimer);
    this.#healthTimer = undefined;
    await this.#healthRound?.catch(() => {});
    for (const i of this.#instances) i.close();
    this.#listeners.clear();
  }
}
