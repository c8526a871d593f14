import type { TimerHandle } from '../util/clock.js';
import type { Dialog } from '../sip/dialog/dialog.js';
import type { SipRequest, SipResponse } from '../sip/message/index.js';
import type { ClientTransactionHandle, ServerTransactionHandle } from '../sip/transaction/types.js';
import type { Destination, Flow, ListenPoint } from '../sip/transport/types.js';
import type { AppSession } from './app-session.js';

/** A request from the network that an app owns until it sends a final response (§9, §12). */
export interface NetTxn {
  id: string;
  app: AppSession | undefined;
  txn: ServerTransactionHandle;
  req: SipRequest;
  flow: Flow;
  /** Local (To) tag chosen on the first non-100 response (§9.2). */
  toTag?: string;
  canceled: boolean;
  /** Dialog the request arrived in, or the dialog its responses create (INVITE/SUBSCRIBE). */
  dialog?: DialogRec;
  /** clock.now() after which the app's answer is no longer awaited (64 s, §9.1). */
  expires: number;
  /** RFC 3262: last RSeq used and unacknowledged reliable provisionals by RSeq. */
  rseq?: number;
  unacked?: Map<number, { res: SipResponse; timer?: TimerHandle; interval: number; started: number }>;
  /** Set when a proxy operation took the request over: upstream CANCEL goes to it. */
  onCancel?: () => void;
  /** For UPDATE/PRACK in an INVITE: not used for routing, kept for logs. */
  kind: 'new' | 'in-dialog';
}

/** A request an app sent to the network (§7, §8). */
export interface AppTxn {
  id: string;
  app: AppSession | undefined;
  req: SipRequest;
  handle?: ClientTransactionHandle;
  dest: Destination;
  /** INVITE/SUBSCRIBE out-of-dialog: the dialog id reported with every response. */
  dialogId: string;
  dialog?: DialogRec;
  canceled: boolean;
  /** The app's ACK target, once a 2xx has been forwarded (UAC INVITE). */
  got2xx?: SipResponse;
  lp: ListenPoint;
}

/** Pending 2xx retransmission on the UAS side (§13.3.1.4). */
export interface Pending2xx {
  seq: number;
  res: SipResponse;
  /** `res` as sent (retransmitted as is). */
  wire: Buffer;
  flow: Flow;
  interval: number;
  /** clock.now() at which the session ends if no ACK came (64*T1 after the 2xx). */
  deadline: number;
  /** After the first interval: the timer of the next retransmission or of the deadline. */
  timer?: TimerHandle;
  /** Until the first interval: the slot in the server's shared first-interval queue. */
  slot?: number;
  /** The network INVITE this 2xx answers (kept findable for a CANCEL until the ACK); its dialog is the one waiting. */
  net: NetTxn;
}

/**
 * A dialog plus what the drachtio server tracks for it: its owner app, its id on the wire
 * (`<Call-ID>;from-tag=<tag of the creating request's From>`) and INVITE bookkeeping.
 */
export interface DialogRec {
  id: string;
  d: Dialog;
  app: AppSession | undefined;
  lp: ListenPoint;
  /**
   * UAS over a connection the peer opened, without its leave to reuse it (flow-reuse.ts): our
   * in-dialog requests go to the route set / remote target instead.
   */
  targetOnly?: boolean;
  /** UAS: 2xx waiting for its ACK. */
  pending2xx?: Pending2xx;
  /** UAC: the INVITE (initial or re-INVITE) whose 2xx the app must ACK. */
  inviteSeq?: number;
  inviteStatus?: number;
  /** UAC: the ACK we sent for inviteSeq (re-sent on a retransmitted 2xx). */
  lastAck?: { seq: number; msg: SipRequest; dest: Destination };
  /** UAC: the INVITE was CANCELed by the app; a 2xx that still wins gets ACK + BYE. */
  canceled?: boolean;
  /** UAC: out-of-dialog INVITE transaction (for CANCEL-before-BYE). */
  reinviteOut?: AppTxn;
  /** UAS: a re-INVITE from the network in progress (§14.2 → 491 on overlap). */
  reinviteIn?: NetTxn;
  /** Dialog-creating request's method. */
  method: 'INVITE' | 'SUBSCRIBE';
  /** RFC 3262: RSeq of the last reliable provisional on this (early) dialog. */
  lastRseq?: number;
  /** Set when created by a proxy (not owned by an app). */
  proxied?: boolean;
}
