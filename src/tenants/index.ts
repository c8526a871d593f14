/** Public surface of the tenants layer. */
import { MemoryTenantStore } from './memory-tenant-store.js';
import { redisOptionsFromEnv, type RedisConnectionOptions } from './redis-connection.js';
import { RedisTenantStore, type RedisTenantStoreOptions } from './redis-tenant-store.js';
import type { TenantLogger, TenantStore } from './tenant-store.js';

export type * from './types.js';
export type { TenantStore, TenantLookup, StoreStatus, StoreState, TenantStoreEvents, TenantLogger } from './tenant-store.js';
export { MemoryTenantStore } from './memory-tenant-store.js';
export { RedisTenantStore, type RedisTenantStoreOptions } from './redis-tenant-store.js';
export { TenantSnapshot } from './tenant-index.js';
export { TenantAdmin, type ApplyResult, type LiveConfig } from './redis-admin.js';
export { loadConfigDir, loadConfigTexts, formatProblem, type LoadResult } from './load.js';
export { redisOptionsFromEnv, createRedisClient, type RedisConnectionOptions } from './redis-connection.js';
export { resolveSecret, SecretUnavailableError } from './secrets.js';
export { TenantConfigError, TenantStoreUnavailableError, TenantApplyConflictError, NoPreviousVersionError } from './errors.js';
export { msg as validationMessages } from './messages.js';

export interface CreateTenantStoreOptions {
  /** Redis connection; default: TEAMS_GW_REDIS_* from `env`. None → embedded MemoryTenantStore. */
  redis?: RedisConnectionOptions;
  /** Config directory for the embedded store (default TEAMS_GW_TENANTS_DIR or config/tenants). */
  configDir?: string;
  namespace?: string;
  logger?: TenantLogger;
  env?: NodeJS.ProcessEnv;
  store?: Omit<RedisTenantStoreOptions, 'redis' | 'namespace' | 'logger'>;
}

/**
 * The composition root's one call: a RedisTenantStore when Redis is configured, else the
 * embedded MemoryTenantStore over config/tenants. Call start() on the result.
 */
export function createTenantStore(opts: CreateTenantStoreOptions = {}): TenantStore {
  const env = opts.env ?? process.env;
  const redis = opts.redis ?? redisOptionsFromEnv(env);
  if (redis) {
    return new RedisTenantStore({
      redis,
      namespace: opts.namespace ?? env.TEAMS_GW_TENANTS_NAMESPACE ?? 'tg',
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...opts.store,
    });
  }
  return new MemoryTenantStore({ configDir: opts.configDir ?? env.TEAMS_GW_TENANTS_DIR ?? 'config/tenants', ...(opts.logger ? { logger: opts.logger } : {}) });
}
