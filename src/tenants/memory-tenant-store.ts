/**
 * The embedded default: with no Redis configured, the gateway loads config/tenants/ into memory
 * with the same validation and serves the same TenantStore interface. `reload()` re-reads the
 * directory; an invalid directory keeps the running config and reports the problems.
 */
import { TenantConfigError } from './errors.js';
import { loadConfigDir } from './load.js';
import { BaseTenantStore, type TenantLogger } from './tenant-store.js';
import { buildIndexData, TenantIndex, TenantSnapshot } from './tenant-index.js';
import type { Problem, TenantConfigSet } from './types.js';

export interface MemoryTenantStoreOptions {
  /** Directory to load (start/reload). Omit when feeding config sets with load(). */
  configDir?: string;
  logger?: TenantLogger;
}

export class MemoryTenantStore extends BaseTenantStore {
  readonly #dir: string | undefined;
  #seq = 0;

  constructor(opts: MemoryTenantStoreOptions = {}) {
    super('memory', opts.logger);
    this.#dir = opts.configDir;
  }

  /** Loads the directory; throws TenantConfigError listing every problem when it is invalid. */
  async start(): Promise<void> {
    if (this.#dir === undefined) {
      this.setState('ok');
      return;
    }
    const r = await this.reload();
    if (!r.ok) throw new TenantConfigError(r.problems);
  }

  /** Re-reads the directory; on problems the running config stays. */
  async reload(): Promise<{ ok: boolean; problems: Problem[]; version: number }> {
    if (this.#dir === undefined) throw new Error('MemoryTenantStore has no configDir');
    const r = loadConfigDir(this.#dir);
    if (!r.config) {
      this.st.reloadFailures++;
      this.log.error({ problems: r.problems.length, dir: this.#dir }, 'tenant config is invalid; keeping the running config');
      return { ok: false, problems: r.problems, version: this.version() };
    }
    this.load(r.config);
    this.log.info({ version: this.version(), tenants: r.config.tenants.length, dir: this.#dir }, 'tenant config loaded');
    return { ok: true, problems: [], version: this.version() };
  }

  /** Serves an already validated config set. */
  load(config: TenantConfigSet): void {
    this.install(new TenantSnapshot(new TenantIndex(buildIndexData(config, ++this.#seq)), { stats: this.lookupStats }));
    this.setState('ok');
  }

  protected async doClose(): Promise<void> {}
}
