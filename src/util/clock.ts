/**
 * An injectable clock. Everything that arms a timer (transactions, dialogs, pending maps)
 * takes a Clock so tests can drive time deterministically with {@link FakeClock}.
 */
export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

class RealHandle implements TimerHandle {
  constructor(readonly id: number, readonly t: NodeJS.Timeout) {}
}

let realSeq = 0;

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return new RealHandle(++realSeq, t);
  },
  clearTimeout(h) {
    if (h instanceof RealHandle) clearTimeout(h.t);
  },
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A manually advanced clock for deterministic timer tests. */
export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers = new Map<number, FakeTimer>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(h: TimerHandle | undefined): void {
    if (h) this.#timers.delete(h.id);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Time of the next timer, or undefined. */
  nextAt(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }

  /** Advance time by `ms`, firing due timers in order (timers armed while firing also run if due). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      }
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = next.at;
      next.fn();
    }
    this.#now = target;
  }

  /** Advance to the next timer and fire it; returns the elapsed ms or undefined if none. */
  tick(): number | undefined {
    const at = this.nextAt();
    if (at === undefined) return undefined;
    const d = at - this.#now;
    this.advance(d);
    return d;
  }
}
