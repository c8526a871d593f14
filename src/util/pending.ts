import { type Clock, type TimerHandle, realClock } from './clock.js';
import { ChurnMap } from './churn-map.js';
import { InvalidStateError, TimeoutError } from './errors.js';

interface Entry<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer?: TimerHandle;
  data?: unknown;
}

/**
 * The one request/response correlation map of the project (wire msgIds, rtpengine cookies,
 * pending SIP requests). Every entry is settled exactly once: by resolve, reject, its timeout
 * or closeAll().
 */
export class PendingMap<K, T> {
  readonly #entries = new ChurnMap<K, Entry<T>>();
  readonly #clock: Clock;
  #closed = false;

  constructor(clock: Clock = realClock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  keys(): IterableIterator<K> {
    return this.#entries.keys();
  }

  /** Registers `key` and returns a promise settled by resolve/reject/timeout/closeAll. */
  add(key: K, timeoutMs?: number, data?: unknown): Promise<T> {
    if (this.#closed) return Promise.reject(new InvalidStateError('pending map closed'));
    if (this.#entries.has(key)) return Promise.reject(new InvalidStateError(`duplicate pending key ${String(key)}`));
    return new Promise<T>((resolve, reject) => {
      const e: Entry<T> = { resolve, reject, data };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        e.timer = this.#clock.setTimeout(() => {
          if (this.#entries.get(key) === e) {
            this.#entries.delete(key);
            reject(new TimeoutError(`request ${String(key)} timed out after ${timeoutMs} ms`));
          }
        }, timeoutMs);
      }
      this.#entries.set(key, e);
    });
  }

  data(key: K): unknown {
    return this.#entries.get(key)?.data;
  }

  resolve(key: K, value: T): boolean {
    const e = this.#take(key);
    if (!e) return false;
    e.resolve(value);
    return true;
  }

  reject(key: K, err: Error): boolean {
    const e = this.#take(key);
    if (!e) return false;
    e.reject(err);
    return true;
  }

  /** Rejects every pending entry; later add() calls reject immediately. Idempotent. */
  closeAll(err: Error = new InvalidStateError('closed')): void {
    this.#closed = true;
    const all = [...this.#entries.values()];
    for (const e of all) this.#clock.clearTimeout(e.timer);
    this.#entries.clear();
    for (const e of all) e.reject(err);
  }

  #take(key: K): Entry<T> | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    this.#clock.clearTimeout(e.timer);
    return e;
  }
}
