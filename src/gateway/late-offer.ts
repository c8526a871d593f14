/**
 * A late offer (carrier INVITE without SDP) toward a carrier that does 100rel: our offer in a
 * reliable 183 instead of the 2xx. RFC 3262 §5: "If the INVITE contained no offer, the UAS MUST
 * include an offer in the first reliable provisional response", and the UAC "MUST generate an
 * answer in the PRACK". Our offer is rtpengine's carrier side, which rtpengine makes from Teams'
 * answer; while Teams rings without SDP, a stand-in for that answer (sdp-rules
 * teamsAnswerStandIn) is used, and the carrier hears a ringing tone until Teams' own SDP
 * replaces it. The 2xx repeats the offer unchanged (RFC 3261 §13.2.1: once an offer was made,
 * no new one in a response to the INVITE). Used for single calls (inbound.ts) and ring groups.
 */
import type { Logger } from 'pino';
import type { CallSession } from './call-session.js';
import { lateAnswerFromPrack } from './carrier-leg.js';
import { sameSession } from './carrier-session-timer.js';
import type { TransferRingbackSettings } from './features.js';
import { noteReceived, noteSent } from './mid-call.js';
import { teamsAnswerStandIn } from './sdp-rules.js';
import { TransferRingback } from './transfer-ringback.js';

export class EarlyLateOffer {
  /** Our offer, as sent in the reliable 183 (undefined until then). */
  offer: string | undefined;
  /** The PRACK of that 183 carried the carrier's answer (else the ACK is its last chance). */
  answeredInPrack = false;
  /** Our offer is being made or was made (from Teams' SDP or a stand-in): at most once. */
  #made = false;
  /** The offer came from a stand-in that Teams' SDP has not replaced yet. */
  #standIn = false;
  #ringback: TransferRingback | undefined;
  readonly #s: CallSession;
  readonly #tone: TransferRingbackSettings;
  readonly #log: Logger;

  constructor(s: CallSession, tone: TransferRingbackSettings, log: Logger) {
    this.#s = s;
    this.#tone = tone;
    this.#log = log;
  }

  /**
   * Teams sent early SDP. The first time: our offer is made from it (the SDP for the reliable
   * 183 is returned). After a stand-in: it replaces the stand-in in rtpengine, its early media
   * replaces the tone, and nothing is sent (undefined). Otherwise undefined.
   */
  async teamsEarlySdp(sdp: string): Promise<string | undefined> {
    const media = this.#s.media;
    if (!media) return undefined;
    if (this.#standIn) {
      this.#standIn = false;
      await this.#ringback?.stop();
      noteReceived(this.#s, 'teams', sdp);
      await media.answer('teams', sdp);
      this.#log.info("late offer: Teams' early SDP replaced the stand-in");
      return undefined;
    }
    if (this.#made) return undefined;
    this.#made = true;
    noteReceived(this.#s, 'teams', sdp);
    return this.#offerFrom(await media.answer('teams', sdp));
  }

  /**
   * Teams rings without SDP and the carrier requires 100rel (a reliable 18x must carry the
   * offer): rtpengine answers a stand-in for Teams' SDP made from `teamsOffer` (the offer Teams
   * got). Returns the SDP for the reliable 183, or undefined when an offer was made already.
   */
  async standIn(teamsOffer: string): Promise<string | undefined> {
    const media = this.#s.media;
    if (!media || this.#made) return undefined;
    const standIn = teamsAnswerStandIn(teamsOffer);
    // Set before the await: Teams' SDP arriving meanwhile replaces the stand-in (its answer to
    // rtpengine queues behind this one) instead of being dropped.
    this.#made = this.#standIn = true;
    this.#ringback = new TransferRingback(media, this.#tone, this.#log, 'late-offer ringback');
    noteReceived(this.#s, 'teams', standIn);
    const sdp = this.#offerFrom(await media.answer('teams', standIn));
    this.#log.info('late offer: Teams rings without SDP; our offer goes in a reliable 183 with a ringing tone');
    return sdp;
  }

  /** The PRACK of our 183: its answer goes to rtpengine; then the tone, while a stand-in is in place. */
  async prackAnswered(prack: any): Promise<void> {
    this.answeredInPrack = await lateAnswerFromPrack(this.#s, prack);
    // (a stop() that came first, Teams' SDP, prevents it)
    if (this.answeredInPrack && this.#standIn) void this.#ringback?.start();
  }

  /**
   * Teams answered with `sdp`: the tone stops, rtpengine gets that SDP when it differs from what
   * it has (the stand-in, or early SDP that changed), and the SDP for the carrier's 2xx is
   * returned: our offer repeated, or undefined when none went out (the 2xx makes it).
   */
  async teamsAnswered(sdp: string | undefined): Promise<string | undefined> {
    this.#standIn = false;
    await this.#ringback?.stop();
    const media = this.#s.media;
    if (this.offer === undefined || !media) return undefined;
    if (sdp && !sameSession(sdp, this.#s.sdpFrom.teams ?? '')) {
      noteReceived(this.#s, 'teams', sdp);
      await media.answer('teams', sdp);
    }
    return this.offer;
  }

  #offerFrom(sdp: string): string {
    noteSent(this.#s, 'carrier', sdp);
    this.offer = sdp;
    return sdp;
  }
}
