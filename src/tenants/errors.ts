/** Errors of the tenants layer (stable codes; see docs/tenants.md "Errors"). */
import { AppError } from '../util/errors.js';
import type { Problem } from './types.js';

/** The config did not validate; `problems` lists every problem found. */
export class TenantConfigError extends AppError {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[]) {
    super('ERR_TENANT_CONFIG_INVALID', `tenant config is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'})`);
    this.problems = problems;
  }
}

/** A lookup needed Redis and Redis could not answer (the call path should answer 503, not 404). */
export class TenantStoreUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TENANT_STORE_UNAVAILABLE', message, options);
  }
}

/** The live version changed while an apply or rollback was in progress. */
export class TenantApplyConflictError extends AppError {
  constructor(message: string) {
    super('ERR_TENANT_APPLY_CONFLICT', message);
  }
}

/** Rollback asked for, but there is no previous version. */
export class NoPreviousVersionError extends AppError {
  constructor() {
    super('ERR_TENANT_NO_PREVIOUS', 'there is no previous config version to roll back to');
  }
}
