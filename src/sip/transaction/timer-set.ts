import type { Clock, TimerHandle } from '../../util/clock.js';

/**
 * The named timers (A…M) of one transaction over an injected Clock. Starting a timer that is
 * already armed re-arms it; `clearAll()` is called when the transaction terminates.
 */
export class TimerSet<N extends string = string> {
  readonly #clock: Clock;
  readonly #handles = new Map<N, TimerHandle>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  start(name: N, ms: number, fn: () => void): void {
    this.stop(name);
    const h = this.#clock.setTimeout(() => {
      if (this.#handles.get(name) !== h) return;
      this.#handles.delete(name);
      fn();
    }, ms);
    this.#handles.set(name, h);
  }

  stop(name: N): void {
    const h = this.#handles.get(name);
    if (h) {
      this.#clock.clearTimeout(h);
      this.#handles.delete(name);
    }
  }

  has(name: N): boolean {
    return this.#handles.has(name);
  }

  get size(): number {
    return this.#handles.size;
  }

  clearAll(): void {
    for (const h of this.#handles.values()) this.#clock.clearTimeout(h);
    this.#handles.clear();
  }
}
