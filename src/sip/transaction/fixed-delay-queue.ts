import type { Clock, TimerHandle } from '../../util/clock.js';

/**
 * Timers that all have the same delay, kept in one FIFO behind a single clock timer: their
 * deadlines come in the order they were added, so the queue's head is always the next one due.
 * A transaction that lingers 32 s (Timer J/L) then costs a queue slot instead of a timer, a
 * closure and a handle of its own; at a few hundred calls per second tens of thousands linger.
 *
 * Cancelling clears the slot; the clock timer is dropped as soon as no live entry is left.
 *
 * With a grain, the clock timer only fires on multiples of it (each entry expires up to one grain
 * late, never early), so entries due within the same grain expire together. For the 32 s linger
 * of every call's transactions that is one wake-up of the process per grain instead of one per
 * distinct due millisecond: at a few hundred calls per second those arrive a couple of
 * milliseconds apart, and each was a wake-up of its own between the calls' packets.
 */
export class FixedDelayQueue<T> {
  readonly delayMs: number;
  readonly grainMs: number;
  readonly #clock: Clock;
  readonly #expire: (item: T) => void;
  #items: Array<T | undefined> = [];
  #due: number[] = [];
  /** Index in #items of the head; slots before it are spent. */
  #head = 0;
  /** Slot number of #items[0] (slots are never reused, so a stale cancel is harmless). */
  #base = 0;
  #live = 0;
  #timer: TimerHandle | undefined;
  #timerDue = 0;
  /** Inside #run: expiry callbacks may add or cancel; the timer is re-armed once at the end. */
  #running = false;

  constructor(clock: Clock, delayMs: number, expire: (item: T) => void, grainMs = 0) {
    this.#clock = clock;
    this.delayMs = delayMs;
    this.grainMs = grainMs;
    this.#expire = expire;
  }

  /** Number of entries still waiting. */
  get size(): number {
    return this.#live;
  }

  /** Schedules `item` to expire `delayMs` from now; returns its slot (for cancel). */
  add(item: T): number {
    const due = this.#clock.now() + this.delayMs;
    const slot = this.#base + this.#items.length;
    this.#items.push(item);
    this.#due.push(due);
    this.#live++;
    if (this.#timer === undefined && !this.#running) this.#arm(due);
    return slot;
  }

  /** Cancels the entry in `slot` if it is still waiting for `item`. */
  cancel(slot: number, item: T): void {
    const i = slot - this.#base;
    if (i < this.#head || i >= this.#items.length || this.#items[i] !== item) return;
    this.#items[i] = undefined;
    if (--this.#live === 0 && !this.#running) this.clear();
  }

  /** Drops every entry (nothing expires) and the clock timer. */
  clear(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#base += this.#items.length;
    this.#items = [];
    this.#due = [];
    this.#head = 0;
    this.#live = 0;
  }

  #arm(due: number): void {
    const g = this.grainMs;
    const at = g > 0 ? Math.ceil(due / g) * g : due;
    this.#timerDue = at;
    this.#timer = this.#clock.setTimeout(this.#run, Math.max(0, at - this.#clock.now()));
  }

  readonly #run = (): void => {
    this.#timer = undefined;
    // Clock timers run on the loop's whole-millisecond clock and may land a fraction early.
    const now = Math.max(this.#clock.now(), this.#timerDue);
    this.#running = true;
    try {
      while (this.#head < this.#items.length && this.#due[this.#head]! <= now) {
        const item = this.#items[this.#head];
        this.#items[this.#head] = undefined;
        this.#head++;
        if (item === undefined) continue;
        this.#live--;
        this.#expire(item);
      }
    } finally {
      this.#running = false;
    }
    if (this.#live === 0) {
      this.clear();
      return;
    }
    while (this.#items[this.#head] === undefined) this.#head++;
    // Drop the spent prefix now and then, so the arrays do not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#due = this.#due.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
    this.#arm(this.#due[this.#head]!);
  };
}
