/**
 * Base of every error this project throws on purpose. `code` is stable and documented in
 * docs/errors.md (a unit test keeps the catalog and the docs in step).
 */
export class AppError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Thrown when an operation is attempted on a closed object or in the wrong state. */
export class InvalidStateError extends AppError {
  constructor(message: string) {
    super('ERR_INVALID_STATE', message);
  }
}

/** Thrown (or used to reject) when a pending operation times out. */
export class TimeoutError extends AppError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

/** A configuration file or option is invalid; the message names the file (or flag) and field. */
export class ConfigError extends AppError {
  constructor(message: string) {
    super('CONFIG_ERR_INVALID', message);
  }
}
