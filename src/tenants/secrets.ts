/**
 * Credentials are referenced, never written in config: `env:VARIABLE` or `file:/path`.
 * Resolve at the moment of use; never log the result.
 */
import { readFileSync } from 'node:fs';
import { AppError } from '../util/errors.js';

export class SecretUnavailableError extends AppError {
  constructor(message: string) {
    super('ERR_SECRET_UNAVAILABLE', message);
  }
}

/** Resolves a reference; the error message names the reference, never a value. */
export function resolveSecret(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const v = env[name];
    if (v === undefined || v === '') throw new SecretUnavailableError(`environment variable ${name} is not set`);
    return v;
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new SecretUnavailableError(`cannot read secret file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  throw new SecretUnavailableError('not a secret reference (expected env:VARIABLE or file:/path)');
}
