import { type Logger, pino } from 'pino';

/** Paths never written to logs (credentials, auth headers, secrets). */
export const REDACT_PATHS = [
  'secret', '*.secret', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization',
  'headers["proxy-authorization"]', 'sip.headers.authorization', 'config.sipServer.admin.secret', 'credentials', '*.credentials',
];

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}

export type { Logger };
