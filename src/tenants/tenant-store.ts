/**
 * The lookup interface the call path uses, and the part both implementations share.
 *
 *   byNumber(e164)         called number → tenant (exact, then range, then longest prefix)
 *   lookupNumber(e164)     the same, plus the ring group when the number is a ring-group DID
 *   byFqdn(fqdn)           tenant FQDN (Teams Contact / Request-URI host) → tenant
 *   carrierBySourceIp(ip)  source address → carrier (exact, then longest-prefix CIDR)
 *
 * Lookups read an immutable snapshot that is swapped whole on reload, so a caller never sees two
 * versions mixed; `snapshot()` pins one version for several related lookups.
 */
import { EventEmitter } from 'node:events';
import { type Logger, silentLogger } from '../util/logger.js';
import { TenantIndex, TenantSnapshot } from './tenant-index.js';
import type { Carrier, NumberMatch, Tenant } from './types.js';

export type StoreState = 'starting' | 'ok' | 'degraded' | 'closed';

export interface StoreStatus {
  source: 'memory' | 'redis';
  state: StoreState;
  /** Config version served (0 before the first load). */
  version: number;
  /** Date.now() of the last state change. */
  since: number;
  lastError: string | undefined;
  /** Successful reloads, failed reload attempts, Redis connection errors seen. */
  reloads: number;
  reloadFailures: number;
  redisErrors: number;
  /** Number lookups answered from memory / needing a Redis round trip (current snapshot). */
  cacheHits: number;
  cacheMisses: number;
}

export interface TenantStoreEvents {
  reload: [{ version: number; previous: number }];
  status: [StoreStatus];
}

/** The part of the project's logger interface the tenant layer uses. */
export type TenantLogger = Pick<Logger, 'info' | 'warn' | 'error'>;
export { silentLogger };

export interface TenantLookup {
  byNumber(e164: string): Promise<Tenant | undefined>;
  /** Called number → `{ tenant, ringGroup }` in one lookup (what the inbound call path uses). */
  lookupNumber(e164: string): Promise<NumberMatch | undefined>;
  byFqdn(fqdn: string): Tenant | undefined;
  carrierBySourceIp(ip: string): Carrier | undefined;
  carrier(name: string): Carrier | undefined;
  get(id: string): Tenant | undefined;
  list(): readonly Tenant[];
}

export interface TenantStore extends TenantLookup {
  /** Loads the config; resolves when lookups are served. */
  start(): Promise<void>;
  version(): number;
  /** All lookups on the returned object see this one version. */
  snapshot(): TenantSnapshot;
  status(): StoreStatus;
  on<K extends keyof TenantStoreEvents>(event: K, fn: (...args: TenantStoreEvents[K]) => void): this;
  off<K extends keyof TenantStoreEvents>(event: K, fn: (...args: TenantStoreEvents[K]) => void): this;
  readonly closed: boolean;
  close(): Promise<void>;
}

export function emptySnapshot(): TenantSnapshot {
  return new TenantSnapshot(
    new TenantIndex({ version: 0, settings: { carrierBaseDomain: '' }, tenants: [], carriers: [], ranges: [], prefixes: [], ringGroups: [], exact: new Map(), exactCount: 0 }),
  );
}

export abstract class BaseTenantStore extends EventEmitter<TenantStoreEvents> implements TenantStore {
  protected readonly lookupStats = { hits: 0, misses: 0 };
  protected snap: TenantSnapshot = emptySnapshot();
  protected readonly st: StoreStatus;
  protected readonly log: TenantLogger;
  #closed = false;

  constructor(source: StoreStatus['source'], logger: TenantLogger | undefined) {
    super();
    this.log = logger ?? silentLogger;
    this.st = {
      source,
      state: 'starting',
      version: 0,
      since: Date.now(),
      lastError: undefined,
      reloads: 0,
      reloadFailures: 0,
      redisErrors: 0,
      cacheHits: 0,
      cacheMisses: 0,
    };
  }

  abstract start(): Promise<void>;
  protected abstract doClose(): Promise<void>;

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.setState('closed');
    await this.doClose();
  }

  /** Swaps in a new snapshot (one assignment: readers see the old or the new, never a mix). */
  protected install(next: TenantSnapshot): void {
    const previous = this.snap.version;
    this.snap = next;
    this.st.version = next.version;
    this.st.reloads++;
    this.emitSafe('reload', { version: next.version, previous });
  }

  protected setState(state: StoreState, error?: unknown): void {
    if (error !== undefined) this.st.lastError = error instanceof Error ? error.message : String(error);
    if (this.st.state === state) return;
    this.st.state = state;
    this.st.since = Date.now();
    this.emitSafe('status', this.status());
  }

  protected emitSafe<K extends keyof TenantStoreEvents>(event: K, ...args: TenantStoreEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: TenantStoreEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'tenant store: event listener threw');
    }
  }

  status(): StoreStatus {
    return { ...this.st, cacheHits: this.lookupStats.hits, cacheMisses: this.lookupStats.misses };
  }

  version(): number {
    return this.snap.version;
  }

  snapshot(): TenantSnapshot {
    return this.snap;
  }

  byNumber(e164: string): Promise<Tenant | undefined> {
    return this.snap.byNumber(e164);
  }

  lookupNumber(e164: string): Promise<NumberMatch | undefined> {
    return this.snap.lookupNumber(e164);
  }

  byFqdn(fqdn: string): Tenant | undefined {
    return this.snap.byFqdn(fqdn);
  }

  carrierBySourceIp(ip: string): Carrier | undefined {
    return this.snap.carrierBySourceIp(ip);
  }

  carrier(name: string): Carrier | undefined {
    return this.snap.carrier(name);
  }

  get(id: string): Tenant | undefined {
    return this.snap.get(id);
  }

  list(): readonly Tenant[] {
    return this.snap.list();
  }
}
