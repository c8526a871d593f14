/**
 * SIP extensions used on the carrier leg only (teams-direct-routing.md §4.6, §4.17: Teams gets
 * no 100rel, PRACK or UPDATE and no offer-less INVITE): reliable provisional responses toward
 * carriers (RFC 3262), UPDATE in a carrier's early dialog (RFC 3311), and the completion of a
 * late-offer call from a carrier (RFC 3261 §13.2.1). Everything goes through drachtio-srf
 * (Response#send's PRACK callback, the INVITE request's 'update' event, the dialog's 'ack'
 * event), so it behaves the same on a real drachtio-server.
 */
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { TimeoutError } from '../util/errors.js';
import type { CallSession } from './call-session.js';
import type { ReliableProvisionalsMode } from './features.js';
import { ackAnswer, answerLocally } from './mid-call.js';

/** What a carrier INVITE asks of our provisional responses. */
export type Rel100 = 'required' | 'supported' | 'off';

/** RFC 3262 §3: the UAS retransmits a reliable provisional for 64*T1 awaiting its PRACK. */
export const PRACK_TIMEOUT_MS = 64 * 500;

/** The part of a drachtio-srf request or response read here. */
export interface SipHeaders {
  has?(name: string): boolean;
  get?(name: string): any;
}

/** The first of `names` the message has, its lines joined with ", "; undefined when none. */
export function headerOf(m: SipHeaders, ...names: string[]): string | undefined {
  for (const n of names) {
    if (!m.has?.(n)) continue;
    const v = m.get?.(n);
    return Array.isArray(v) ? v.join(', ') : v === undefined ? undefined : String(v);
  }
  return undefined;
}

/** The header (possibly several lines or comma-joined) lists `tag` (lower case), case-insensitively. */
export function hasOptionTag(req: SipHeaders, header: string, tag: string): boolean {
  return (headerOf(req, header) ?? '').split(',').some((t) => t.trim().toLowerCase() === tag);
}

/**
 * RFC 3262 §3: "The UAS MUST send any non-100 provisional response reliably if the initial
 * request contained a Require header field with the option tag 100rel", and MAY do so when the
 * request's Supported lists 100rel (we do unless the carrier's policy is `off`).
 */
export function rel100Of(req: any, policy: ReliableProvisionalsMode): Rel100 {
  if (hasOptionTag(req, 'Require', '100rel')) return 'required';
  if (policy === 'supported' && hasOptionTag(req, 'Supported', '100rel')) return 'supported';
  return 'off';
}

export interface ReliableResponseOptions {
  mode: Rel100;
  /** The INVITE had no offer (late offer): our offer goes in the first reliable 18x or the 2xx. */
  lateOffer: boolean;
  log: Logger;
  /** A reliable provisional was never PRACKed: the INVITE got a 500; end the call. */
  onPrackTimeout(): void;
  prackTimeoutMs?: number;
  /**
   * RFC 3262 §5: a PRACK carrying an offer, to be answered in the 2xx to the PRACK through
   * `res` (its drachtio-srf Response). Whatever is sent next on the INVITE (the next reliable
   * 18x, the 2xx) waits until this settles. Without it, such a PRACK gets a plain 200.
   */
  onPrackOffer?(prack: any, res: any): Promise<unknown>;
  /**
   * Late offer: the PRACK of the reliable 18x that carried our offer, with the carrier's answer
   * in it (RFC 3262 §5: "the UAC MUST generate an answer in the PRACK"). It gets the usual 200;
   * whatever is sent next on the INVITE waits until this settles.
   */
  onPrackAnswer?(prack: any): Promise<unknown>;
}

/** PRACKs whose 2xx call control sends itself (an offer in the PRACK); see {@link prackAnsweredHere}. */
const offerPracks = new WeakSet<object>();

/**
 * True for a PRACK that call control answers itself (it carried an offer). The app's PRACK
 * route sends drachtio-srf's usual 200 to every other one; drachtio-srf hands the PRACK to
 * Response#send's PRACK callback before it reaches the routes, so the mark is set by then.
 */
export function prackAnsweredHere(prack: object): boolean {
  return offerPracks.has(prack);
}

type SendArgs = { reason: string | undefined; opts: Record<string, any>; cb: ((err: unknown, msg?: unknown) => void) | undefined; fnPrack: ((prack: unknown) => void) | undefined };

/** drachtio-srf's Response#send(status, [reason], [opts], [callback], [fnPrack]) arguments. */
function sendArgs(a: unknown, b: unknown, c: unknown, d: unknown): SendArgs {
  if (typeof a === 'function') return { reason: undefined, opts: {}, cb: a as SendArgs['cb'], fnPrack: b as SendArgs['fnPrack'] };
  if (a && typeof a === 'object') return { reason: undefined, opts: a as Record<string, any>, cb: (b ?? undefined) as SendArgs['cb'], fnPrack: (c ?? undefined) as SendArgs['fnPrack'] };
  return { reason: a as string | undefined, opts: (b ?? {}) as Record<string, any>, cb: (c ?? undefined) as SendArgs['cb'], fnPrack: (d ?? undefined) as SendArgs['fnPrack'] };
}

/**
 * The carrier-facing response of an INVITE, with RFC 3262 applied to what call control sends
 * through it (relayed 18x, the 2xx from drachtio-srf's createUAS, failures). Everything else
 * is the drachtio-srf Response itself. The rules, RFC 3262 §3:
 * - which 18x go reliably (`Require: 100rel`, RSeq added by the server): every one when the
 *   carrier requires it, a 183 with SDP when it only supports it;
 * - "The UAS MUST NOT send a second reliable provisional response until the first is
 *   acknowledged": provisionals are queued behind an unacknowledged reliable one;
 * - a 2xx waits for the PRACKs too ("...unless the final response is 2xx and any of the
 *   unacknowledged reliable provisional responses contained a session description. In that
 *   case, it MUST NOT send a final response until those provisional responses are
 *   acknowledged"); other final responses go at once;
 * - "If a reliable provisional response is retransmitted for 64*T1 seconds without reception
 *   of a corresponding PRACK, the UAS SHOULD reject the original request with a 5xx response."
 * Late offer: RFC 3261 §13.2.1 puts our offer in "the first reliable non-failure message", and
 * RFC 3262 §5: "If the INVITE contained no offer, the UAS MUST include an offer in the first
 * reliable provisional response" — so the first reliable 18x must carry an SDP body (our offer,
 * which exists once Teams sent early SDP), its PRACK carries the carrier's answer
 * (`onPrackAnswer`), and reliable 18x without SDP are held back until then (not sent).
 */
export function reliableCarrierResponse(req: any, res: any, o: ReliableResponseOptions): any {
  if (o.mode === 'off') return res;
  const timeoutMs = o.prackTimeoutMs ?? PRACK_TIMEOUT_MS;
  let chain: Promise<void> = Promise.resolve();
  let finalWanted = false;
  let failed: Error | undefined;
  /** Late offer: our offer went in a reliable 18x (from then on reliable 18x need no SDP). */
  let offerSent = false;
  const timers = new Set<NodeJS.Timeout>();
  const stopTimers = () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
  req.on?.('cancel', stopTimers);

  const sendReliable = (status: number, a: SendArgs, carriesOffer: boolean) =>
    new Promise<void>((resolve, reject) => {
      if (finalWanted || res.finalResponseSent) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        reject(new TimeoutError(`no PRACK for the reliable ${status} within ${timeoutMs} ms`));
      }, timeoutMs);
      timers.add(t);
      const opts = { ...a.opts, headers: { ...(a.opts.headers ?? {}), Require: '100rel' } };
      res.send(
        status,
        a.reason,
        opts,
        (err: unknown, msg?: unknown) => {
          a.cb?.(err, msg);
          if (!err) return;
          clearTimeout(t);
          timers.delete(t);
          resolve(); // not sent (transaction gone): nothing to wait for
        },
        (prack: any) => {
          clearTimeout(t);
          timers.delete(t);
          o.log.debug({ status }, 'PRACK received');
          a.fnPrack?.(prack);
          // RFC 3262 §5: the PRACK of our offer carries the answer.
          if (carriesOffer && o.onPrackAnswer) {
            o.onPrackAnswer(prack).then(
              () => resolve(),
              () => resolve(),
            );
            return;
          }
          // RFC 3262 §5: an offer in the PRACK is answered in its 2xx, before anything else
          // goes out on the INVITE.
          if (o.onPrackOffer && prack?.res && String(prack.body ?? '').trim()) {
            offerPracks.add(prack);
            o.onPrackOffer(prack, prack.res).then(
              () => resolve(),
              () => resolve(),
            );
            return;
          }
          resolve();
        },
      );
    });

  const enqueue = (step: () => Promise<void> | void, onSkip?: (err: Error) => void) => {
    chain = chain
      .then(async () => {
        if (failed) return onSkip?.(failed);
        await step();
      })
      .catch((err: Error) => {
        failed = err;
        o.log.warn({ err: err.message }, 'reliable provisional not acknowledged: call rejected with 500');
        finalWanted = true;
        stopTimers();
        if (!res.finalResponseSent) {
          try {
            res.send(500);
          } catch {
            // transaction gone
          }
        }
        o.onPrackTimeout();
      });
  };

  const send = (status: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown): void => {
    const args = sendArgs(a, b, c, d);
    const plain = () => res.send(status, args.reason, args.opts, args.cb, args.fnPrack);
    if (status < 200) {
      if (status === 100) return plain();
      if (finalWanted) return;
      const reliable = o.mode === 'required' || (status === 183 && !!args.opts.body);
      let carriesOffer = false;
      if (reliable && o.lateOffer && !offerSent) {
        if (!args.opts.body) {
          o.log.debug({ status }, 'late offer: provisional not sent (the first reliable one must carry our offer)');
          return;
        }
        offerSent = carriesOffer = true;
      }
      if (!reliable) return enqueue(() => (finalWanted || res.finalResponseSent ? undefined : plain()));
      return enqueue(() => sendReliable(status, args, carriesOffer));
    }
    finalWanted = true;
    if (status >= 300) {
      stopTimers();
      return plain();
    }
    enqueue(plain, (err) => args.cb?.(err));
  };

  return new Proxy(res, {
    get(target, prop) {
      if (prop === 'send') return send;
      if (prop === 'finalResponseSent' || prop === 'headersSent') return finalWanted || target.finalResponseSent;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
    set(target, prop, value) {
      return Reflect.set(target, prop, value, target);
    },
  });
}

/**
 * RFC 3311 §5.2: an UPDATE from the carrier inside its early dialog (the INVITE not answered
 * yet, either direction), and RFC 3262 §5: a PRACK with an offer. Neither reaches Teams
 * (§4.17), and Teams' INVITE transaction cannot take a new offer, so an offer is answered here
 * from rtpengine (answerLocally): media goes to the carrier's new address, Teams keeps the SDP
 * it has. Without an offer: 200. Resolves true when an offer was answered.
 */
export async function earlyCarrierOffer(s: CallSession, req: any, res: any): Promise<boolean> {
  const method = String(req.method ?? 'UPDATE');
  const body = String(req.body ?? '');
  if (s.closed) return reply(res, 481);
  if (!body.trim()) return reply(res, 200);
  // RFC 3311 §5.2 (applied to a PRACK too): "if an UPDATE is received that contains an offer,
  // and the UAS has received an offer (in an UPDATE, PRACK or INVITE) to which it has not yet
  // generated an answer, the UAS MUST reject the UPDATE with a 500 response, and MUST include
  // a Retry-After header field with a randomly chosen value between 0 and 10 seconds" — no SDP
  // from Teams yet.
  if (!s.media || !s.sdpFrom.teams) return reply(res, 500, { 'Retry-After': String(randomInt(0, 11)) });
  // RFC 3311 §5.2: an offer while one of ours is unanswered gets 491.
  if (s.busy) return reply(res, 491);
  s.busy = true;
  try {
    // rtpengine now has the carrier as the offerer (for a Teams → PSTN call too: its ports
    // toward Teams stay only while the carrier's moves come as offers); the carrier's 2xx is
    // handled accordingly (outbound.ts).
    const answer = await answerLocally(s, 'carrier', body);
    res.send(200, { body: answer, headers: { 'Content-Type': 'application/sdp' } });
    s.log.info(`${method} in the early dialog answered`);
    return true;
  } catch (err) {
    s.log.warn({ err: (err as Error).message }, `${method} in the early dialog failed`);
    return reply(res, 500);
  } finally {
    s.busy = false;
  }
}

/** Sends a response that ends the UPDATE without an answer; false (the session is unchanged). */
function reply(res: any, status: number, headers?: Record<string, string>): false {
  try {
    res.send(status, headers ? { headers } : {});
  } catch {
    // transaction gone
  }
  return false;
}

/**
 * Late offer from a carrier, after the call is up: our 2xx carried the offer (rtpengine's
 * carrier-side SDP answering a stand-in, sdp-rules lateOfferStandIn), and RFC 3261 §13.2.1 puts
 * the carrier's answer in its ACK. rtpengine then learns the carrier's real address, port and
 * codec (answerLocally: Teams keeps its SDP).
 */
export async function completeLateOffer(s: CallSession): Promise<void> {
  const a = s.leg('carrier');
  if (!a || !s.media || s.closed) return;
  // The ACK may already be in (drachtio-srf records its body as the dialog's remote SDP).
  await applyLateAnswer(s, 'ACK', async () => (a.remote.sdp?.trim() ? a.remote.sdp : await ackAnswer(a)));
}

/**
 * Late offer, RFC 3262 §5: our offer went in a reliable 18x, and the carrier's answer comes in
 * its PRACK, before the call is answered. Applied like the answer from an ACK; true when the
 * PRACK had one (otherwise the ACK is the carrier's last chance).
 */
export async function lateAnswerFromPrack(s: CallSession, prack: any): Promise<boolean> {
  const body = String(prack?.body ?? '');
  if (!s.media || s.closed || !body.trim()) {
    if (!s.closed) s.log.warn('late offer: the PRACK of our offer carried no answer');
    return false;
  }
  await applyLateAnswer(s, 'PRACK', async () => body);
  return true;
}

async function applyLateAnswer(s: CallSession, from: 'ACK' | 'PRACK', answerOf: () => Promise<string | undefined>): Promise<void> {
  s.busy = true;
  try {
    const answer = await answerOf();
    if (s.closed) return;
    if (!answer) {
      s.log.warn(`late offer: the ${from} carried no answer; media toward the carrier waits for its first RTP packet`);
      return;
    }
    await answerLocally(s, 'carrier', answer);
    s.log.info(`late offer completed with the answer from the ${from}`);
  } catch (err) {
    s.log.warn({ err: (err as Error).message }, `late offer: the answer from the ${from} could not be applied`);
  } finally {
    s.busy = false;
  }
}
