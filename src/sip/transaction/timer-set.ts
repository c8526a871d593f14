import type { Clock, TimerHandle } from '../../util/clock.js';

/**
 * The named timers (A…M) of one transaction over an injected Clock. Starting a timer that is
 * already armed re-arms it; `clearAll()` is called when the transaction terminates. The map is
 * made on first use: transactions whose timers wait in the layer's shared queues never need it.
 */
export class TimerSet<N extends string = string> {
  readonly #clock: Clock;
  #handles: Map<N, TimerHandle> | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  start(name: N, ms: number, fn: () => void): void {
    this.stop(name);
    const handles = (this.#handles ??= new Map());
    const h = this.#clock.setTimeout(() => {
      if (handles.get(name) !== h) return;
      handles.delete(name);
      fn();
    }, ms);
    handles.set(name, h);
  }

  stop(name: N): void {
    const h = this.#handles?.get(name);
    if (h) {
      this.#clock.clearTimeout(h);
      this.#handles!.delete(name);
    }
  }

  has(name: N): boolean {
    return this.#handles?.has(name) ?? false;
  }

  get size(): number {
    return this.#handles?.size ?? 0;
  }

  clearAll(): void {
    if (!this.#handles) return;
    for (const h of this.#handles.values()) this.#clock.clearTimeout(h);
    this.#handles.clear();
  }
}
