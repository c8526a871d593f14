/**
 * One call's media anchoring in rtpengine. Created by RtpenginePool.createSession(); call
 * control feeds it every SDP it relays, tagged with the leg the SDP came from, and calls
 * delete() on every way the call ends.
 *
 * rtpengine identifies the call by call-id and one tag per participant. The gateway owns both
 * legs, so the tags are stable per leg for the whole call: the first offerer's leg gets
 * `fromTag`, the other leg `toTag`. An offer from leg X is sent as from-tag = tag(X),
 * to-tag = tag(other) (the to-tag only once the call has been answered, as in a re-INVITE);
 * an answer from leg Y is sent as from-tag = tag(offerer), to-tag = tag(Y).
 */
import { isMediaError, MediaError, MEDIA_ERROR_CODES } from './errors.js';
import { NgTransportError, type NgInstance } from './ng-client.js';
import { buildAnswerParams, buildOfferParams, type CodecAllowLists, type MediaProfiles, offeredAudioCodecs, type TranscodeInput } from './profiles.js';
import { otherLeg, type LegMediaStats, type MediaLeg, type MediaLogger, type MediaStats, type NgParams, type NgResponse } from './types.js';

export type MediaSessionState = 'new' | 'offered' | 'answered' | 'deleted';

/** What rtpengine plays: a file on the rtpengine host, or the file's bytes sent inline. */
export type PlaySource = { file: string } | { blob: Buffer };

export interface PlayOptions {
  /** How many times rtpengine plays the file in a row (ng `repeat-times`; rtpengine's default 1). */
  repeatTimes?: number;
  /** Block media from the other leg while playing (default true). */
  muteOther?: boolean;
}

/** ng commands a session sends (rtpengine-client method names). */
type SessionCommand = 'offer' | 'answer' | 'query' | 'playMedia' | 'stopMedia' | 'blockMedia' | 'unblockMedia';

/** What a session needs from its pool. */
export interface MediaSessionHost {
  /** A live instance not in `exclude`, or undefined. */
  pick(exclude: ReadonlySet<NgInstance>): NgInstance | undefined;
  noRtpengine(callId: string, cause?: unknown): MediaError;
  readonly closed: boolean;
}

export interface MediaSessionOptions {
  /** rtpengine call-id (the A leg's Call-ID is a good choice). */
  callId: string;
  /** Tag of the leg that sends the first offer (the A leg's From tag). */
  fromTag: string;
  /** Tag of the other leg (default `${fromTag}-b`). */
  toTag?: string;
  /** Codec allow-list toward both legs (e.g. the tenant's), telephone-event always kept. */
  codecs?: string[];
  /** Per-leg allow-lists; win over `codecs` for the legs they name. */
  codecsByLeg?: CodecAllowLists;
  /** Profiles for this call (default: the pool's). */
  profiles?: MediaProfiles;
  /** delete() without options queries the counters first (for CDRs; see `finalStats`). */
  collectStatsOnDelete?: boolean;
  /**
   * teams-direct-routing.md §7.10: an offer none of whose codecs is allowed toward the other leg
   * is transcoded to the allowed ones (needs an rtpengine built with transcoding, as Debian's is).
   * Off: such an offer goes on unchanged (rtpengine strips no last codec) and the other leg
   * usually refuses it.
   */
  transcode?: boolean;
  logger?: MediaLogger;
}

export interface DeleteOptions {
  /** Query rtpengine's counters just before deleting (one extra command); see `finalStats`. */
  collectStats?: boolean;
}

const EDGES = {
  new: ['offered', 'deleted'],
  offered: ['offered', 'answered', 'deleted'],
  answered: ['offered', 'answered', 'deleted'],
  deleted: [],
} as const satisfies Record<MediaSessionState, readonly MediaSessionState[]>;

function emptyLeg(): LegMediaStats {
  return { packets: 0, bytes: 0, errors: 0, rtcpPackets: 0 };
}

export class MediaSession {
  readonly callId: string;
  readonly #host: MediaSessionHost;
  readonly #profiles: MediaProfiles;
  readonly #codecs: CodecAllowLists | undefined;
  readonly #log: MediaLogger;
  readonly #fromTag: string;
  readonly #toTag: string;
  readonly #collectStatsOnDelete: boolean;
  readonly #transcode: boolean;
  /** Audio codecs of the last SDP from each leg (a call that may transcode). */
  readonly #uses: Partial<Record<MediaLeg, string[]>> = {};
  #tags: Record<MediaLeg, string> | undefined;
  #state: MediaSessionState = 'new';
  /** Leg whose offer is waiting for an answer. */
  #offerer: MediaLeg | undefined;
  #instance: NgInstance | undefined;
  /** The instance initially chosen (sessions are sticky once rtpengine accepted an offer). */
  #candidate: NgInstance | undefined;
  #counted = false;
  #deleting: Promise<void> | undefined;
  /** Tail of this call's command queue (offer/answer/query run one at a time, in order). */
  #queue: Promise<unknown> = Promise.resolve();
  #finalStats: MediaStats | undefined;

  constructor(host: MediaSessionHost, candidate: NgInstance, profiles: MediaProfiles, opts: MediaSessionOptions, log: MediaLogger) {
    if (!opts.callId) throw new TypeError('MediaSession: callId is required');
    if (!opts.fromTag) throw new TypeError('MediaSession: fromTag is required');
    this.callId = opts.callId;
    this.#host = host;
    this.#candidate = candidate;
    this.#profiles = opts.profiles ?? profiles;
    this.#fromTag = opts.fromTag;
    this.#toTag = opts.toTag ?? `${opts.fromTag}-b`;
    if (this.#toTag === this.#fromTag) throw new TypeError('MediaSession: fromTag and toTag must differ');
    const lists: CodecAllowLists = {};
    if (opts.codecs) lists.carrier = lists.teams = [...opts.codecs];
    Object.assign(lists, opts.codecsByLeg ?? {});
    this.#codecs = Object.keys(lists).length > 0 ? lists : undefined;
    this.#collectStatsOnDelete = opts.collectStatsOnDelete ?? false;
    this.#transcode = opts.transcode ?? false;
    this.#log = log;
  }

  get state(): MediaSessionState {
    return this.#state;
  }

  /** ng address of the instance holding the call (once an offer succeeded). */
  get instance(): string | undefined {
    return this.#instance?.address;
  }

  /** rtpengine tags by leg (once the first offer fixed them). */
  get tags(): Readonly<Record<MediaLeg, string>> | undefined {
    return this.#tags;
  }

  /** Counters captured by delete({ collectStats: true }). */
  get finalStats(): MediaStats | undefined {
    return this.#finalStats;
  }

  #transition(to: MediaSessionState): void {
    const allowed = EDGES[this.#state] as readonly MediaSessionState[];
    if (!allowed.includes(to)) {
      throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: ${this.#state} → ${to} is not allowed`);
    }
    this.#state = to;
  }

  #assertUsable(op: string): void {
    if (this.#state === 'deleted') throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: ${op} after delete`);
    if (this.#host.closed) throw new MediaError(MEDIA_ERROR_CODES.CLOSED, `media session ${this.callId}: pool closed`);
  }

  /**
   * An SDP offer arrived from `from` (initial INVITE, re-INVITE, or a 200 carrying the offer
   * of a late-offer INVITE). Returns the SDP to send to the other leg.
   */
  async offer(from: MediaLeg, sdp: string): Promise<string> {
    this.#assertUsable('offer');
    const tags = (this.#tags ??= from === 'carrier' ? { carrier: this.#fromTag, teams: this.#toTag } : { teams: this.#fromTag, carrier: this.#toTag });
    const params: NgParams = {
      ...buildOfferParams(this.#profiles, from, { ...(this.#codecs ? { codecs: this.#codecs } : {}), ...(this.#transcode ? { transcode: this.#noteUses(from, sdp, otherLeg(from)) } : {}) }),
      'call-id': this.callId,
      'from-tag': tags[from],
      sdp,
    };
    // RFC 3264 §8: a re-offer is matched to the existing dialog, so rtpengine needs both tags.
    if (this.#state === 'answered') {
      params['to-tag'] = tags[otherLeg(from)];
      // teams-direct-routing.md §6.11: media address and port toward a leg never change
      // mid-call. rtpengine would otherwise open new local ports toward the other leg when the
      // offering leg moved its own port (a late-offer ACK, a carrier UPDATE or re-INVITE).
      params.flags = [...((params.flags as string[] | undefined) ?? []), 'port latching'];
    }
    const res = await this.#send('offer', params);
    this.#transition('offered');
    this.#offerer = from;
    return this.#sdpOf(res, 'offer');
  }

  /** An SDP answer arrived from `from`. Returns the SDP to send to the offerer's leg. */
  async answer(from: MediaLeg, sdp: string): Promise<string> {
    this.#assertUsable('answer');
    const offerer = this.#offerer;
    if (this.#state === 'new' || !offerer || !this.#tags) {
      throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: answer before any offer`);
    }
    if (offerer === from) {
      throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: answer from ${from}, which made the offer`);
    }
    if (this.#transcode) this.#uses[from] = offeredAudioCodecs(sdp);
    const params: NgParams = {
      ...buildAnswerParams(this.#profiles, from),
      'call-id': this.callId,
      'from-tag': this.#tags[offerer],
      'to-tag': this.#tags[from],
      sdp,
    };
    const res = await this.#send('answer', params);
    this.#transition('answered');
    return this.#sdpOf(res, 'answer');
  }

  /**
   * Plays a media file to the party on leg `to` through rtpengine's media player (ng `play
   * media`; needs an rtpengine built with transcoding, as Debian's is). In `play media` the
   * participant selected by `from-tag` is the one the file is played TO, so `from-tag` is the
   * tag of `to`. rtpengine encodes the file into that party's preferred codec, `repeatTimes`
   * times in a row. With `muteOther` (default), media from the other leg is blocked meanwhile
   * (`block media`, from-tag = the other leg: its packets are not forwarded), so that the two
   * streams do not interleave toward `to`; stopMedia() lifts the block. Resolves with the
   * file's duration when rtpengine reports it.
   */
  async playMedia(to: MediaLeg, source: PlaySource, opts: PlayOptions = {}): Promise<{ durationMs?: number }> {
    this.#assertUsable('play media');
    const tags = this.#playable('play media');
    const muteOther = opts.muteOther ?? true;
    const params: NgParams = { 'call-id': this.callId, 'from-tag': tags[to], ...('blob' in source ? { blob: source.blob } : { file: source.file }) };
    if (opts.repeatTimes !== undefined) params['repeat-times'] = opts.repeatTimes;
    // Both commands are queued before anything is awaited, so a stopMedia() issued meanwhile
    // always lands after them (never a playback started after its stop).
    const block = muteOther ? this.#send('blockMedia', { 'call-id': this.callId, 'from-tag': tags[otherLeg(to)] }) : undefined;
    const play = this.#send('playMedia', params);
    try {
      await block;
    } catch (err) {
      this.#log.warn({ callId: this.callId, err: errMessage(err) }, 'rtpengine block media failed; playing without muting the other leg');
    }
    try {
      const res = await play;
      return typeof res.duration === 'number' ? { durationMs: res.duration } : {};
    } catch (err) {
      if (muteOther) await this.#send('unblockMedia', { 'call-id': this.callId, 'from-tag': tags[otherLeg(to)] }).catch(() => {});
      if (isMediaError(err, MEDIA_ERROR_CODES.RTPENGINE)) {
        throw new MediaError(MEDIA_ERROR_CODES.PLAYBACK, `could not play media to the ${to} leg (${err.message})`, { cause: err, ...(err.instance ? { instance: err.instance } : {}) });
      }
      throw err;
    }
  }

  /**
   * Stops what playMedia() started toward `to` (ng `stop media`, same from-tag) and lifts the
   * block on the other leg's media (`unblock media`). Never throws: a playback that already
   * ended by itself ("Not currently playing media") or a session deleted meanwhile is fine.
   */
  async stopMedia(to: MediaLeg): Promise<void> {
    if (this.#state === 'deleted' || this.#host.closed || !this.#instance || !this.#tags) return;
    const tags = this.#tags;
    const sent = (
      [
        ['stopMedia', tags[to]],
        ['unblockMedia', tags[otherLeg(to)]],
      ] as const
    ).map(([command, tag]) =>
      this.#send(command, { 'call-id': this.callId, 'from-tag': tag }).catch((err: unknown) => {
        this.#log.debug({ callId: this.callId, command, err: errMessage(err) }, 'rtpengine media playback stop');
      }),
    );
    await Promise.all(sent);
  }

  #playable(op: string): Record<MediaLeg, string> {
    if (!this.#instance || !this.#tags || this.#state === 'new') {
      throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: ${op} before the call exists in rtpengine`);
    }
    return this.#tags;
  }

  /** Media counters per leg (packets rtpengine received from each leg). */
  async query(): Promise<MediaStats> {
    this.#assertUsable('query');
    if (!this.#instance || !this.#tags) {
      throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: query before any offer`);
    }
    const res = await this.#send('query', { 'call-id': this.callId });
    return this.#statsOf(res);
  }

  /**
   * Deletes the call in rtpengine. Idempotent and safe to call concurrently; never throws
   * (failures are logged: rtpengine then ends the call by its own RTP timeout). With
   * `collectStats`, the last counters are available from `finalStats` afterwards.
   */
  delete(opts: DeleteOptions = { collectStats: this.#collectStatsOnDelete }): Promise<void> {
    this.#deleting ??= this.#doDelete(opts);
    return this.#deleting;
  }

  async #doDelete(opts: DeleteOptions): Promise<void> {
    this.#state = 'deleted';
    // A CANCEL can race the initial offer: let the commands already issued land first, so a
    // call they create in rtpengine is deleted here rather than leaked.
    await this.#queue;
    const inst = this.#instance;
    if (!inst) return;
    try {
      if (opts.collectStats) {
        try {
          const q = await inst.command('query', { 'call-id': this.callId });
          if (q.result !== 'error') this.#finalStats = this.#statsOf(q);
        } catch (err) {
          this.#log.warn({ callId: this.callId, instance: inst.address, err: errMessage(err) }, 'rtpengine query before delete failed');
        }
      }
      const res = await inst.command('delete', { 'call-id': this.callId });
      if (res.result === 'error') {
        this.#log.warn({ callId: this.callId, instance: inst.address, reason: res['error-reason'] }, 'rtpengine delete refused');
      } else if (res.warning) {
        this.#log.debug({ callId: this.callId, instance: inst.address, warning: res.warning }, 'rtpengine delete warning');
      }
    } catch (err) {
      this.#log.error({ callId: this.callId, instance: inst.address, err: errMessage(err) }, 'rtpengine delete failed; the call will end by rtpengine timeout');
    } finally {
      if (this.#counted) {
        inst.sessions = Math.max(0, inst.sessions - 1);
        this.#counted = false;
      }
    }
  }

  /**
   * Sends a command to the instance holding the call. Before the first successful offer the
   * call exists nowhere yet, so a transport failure moves it to the next live instance
   * (failover of new sessions); afterwards the call sticks to its instance.
   */
  async #send(command: SessionCommand, params: NgParams): Promise<NgResponse> {
    // Commands of one call run one at a time, in the order issued: the answer to a 183's SDP
    // must reach rtpengine before the answer to the 200 that follows it (RFC 3264 §8 order).
    const p = this.#queue.then(() => {
      if (this.#state === 'deleted') throw new MediaError(MEDIA_ERROR_CODES.INVALID_STATE, `media session ${this.callId}: ${command} after delete`);
      return this.#sendOnce(command, params);
    });
    this.#queue = p.catch(() => {});
    return p;
  }

  async #sendOnce(command: SessionCommand, params: NgParams): Promise<NgResponse> {
    if (this.#instance) return this.#checked(command, this.#instance, () => this.#instance!.command(command, params));
    const tried = new Set<NgInstance>();
    let inst: NgInstance | undefined = this.#candidate?.up ? this.#candidate : this.#host.pick(tried);
    let lastErr: unknown;
    while (inst) {
      tried.add(inst);
      try {
        const res = await inst.command(command, params);
        if (res.result !== 'error') {
          this.#instance = inst;
          this.#candidate = undefined;
          inst.sessions++;
          this.#counted = true;
        }
        return this.#checked(command, inst, () => Promise.resolve(res));
      } catch (err) {
        if (!(err instanceof NgTransportError)) throw err;
        lastErr = err;
        this.#log.warn({ callId: this.callId, instance: inst.address, err: err.message }, 'rtpengine offer failed; trying the next instance');
        // The offer may have reached it and only the reply got lost: clean up best-effort.
        const failed = inst;
        void failed.command('delete', { 'call-id': this.callId }).catch(() => {});
        inst = this.#host.pick(tried);
      }
      if (this.#host.closed) break;
    }
    throw this.#host.noRtpengine(this.callId, lastErr);
  }

  async #checked(command: string, inst: NgInstance, run: () => Promise<NgResponse>): Promise<NgResponse> {
    let res: NgResponse;
    try {
      res = await run();
    } catch (err) {
      if (err instanceof NgTransportError) {
        throw new MediaError(MEDIA_ERROR_CODES.TIMEOUT, `rtpengine ${inst.address} did not answer ${command} for ${this.callId}`, { cause: err, instance: inst.address });
      }
      throw err;
    }
    if (res.result === 'error') {
      throw new MediaError(MEDIA_ERROR_CODES.RTPENGINE, `rtpengine ${inst.address} refused ${command} for ${this.callId}: ${res['error-reason'] ?? 'unknown reason'}`, { instance: inst.address });
    }
    return res;
  }

  /** A call that may transcode: records the offering leg's codecs; what codecDict needs toward `to`. */
  #noteUses(from: MediaLeg, sdp: string, to: MediaLeg): TranscodeInput {
    const offered = offeredAudioCodecs(sdp);
    this.#uses[from] = offered;
    return { offered, answererUses: this.#uses[to] };
  }

  #sdpOf(res: NgResponse, command: string): string {
    if (typeof res.sdp !== 'string' || res.sdp.length === 0) {
      throw new MediaError(MEDIA_ERROR_CODES.RTPENGINE, `rtpengine returned no SDP for ${command} of ${this.callId}`, { instance: this.#instance?.address });
    }
    return res.sdp;
  }

  #statsOf(res: NgResponse): MediaStats {
    const out: MediaStats = { instance: this.#instance?.address ?? '', carrier: emptyLeg(), teams: emptyLeg() };
    if (typeof res.created === 'number') out.created = res.created;
    const tags = (res.tags ?? {}) as Record<string, { medias?: Array<{ streams?: Array<{ flags?: string[]; stats?: { packets?: number; bytes?: number; errors?: number } }> }> }>;
    for (const leg of ['carrier', 'teams'] as const) {
      const t = this.#tags ? tags[this.#tags[leg]] : undefined;
      if (!t) continue;
      for (const m of t.medias ?? []) {
        for (const s of m.streams ?? []) {
          const flags = s.flags ?? [];
          const st = s.stats ?? {};
          if (flags.includes('RTP')) {
            out[leg].packets += st.packets ?? 0;
            out[leg].bytes += st.bytes ?? 0;
            out[leg].errors += st.errors ?? 0;
          } else if (flags.includes('RTCP')) {
            out[leg].rtcpPackets += st.packets ?? 0;
          }
        }
      }
    }
    return out;
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
