import { type DestinationStream, type Level, type Logger, pino } from 'pino';

/**
 * Paths pino censors with its fast path redaction (credentials, auth headers, secrets). Keys at
 * other depths or in other spellings, and credentials inside strings, are caught by
 * {@link scrubLogValue}, which runs on every log line as well.
 */
export const REDACT_PATHS = [
  'secret', '*.secret', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization',
  'headers["proxy-authorization"]', 'sip.headers.authorization', 'config.sipServer.admin.secret', 'credentials', '*.credentials',
];

export const CENSOR = '[redacted]';

/** Keys whose values never reach a log line, whatever their depth or case. */
const SECRET_KEY = /^(?:password|passwd|pass|secret|client[-_]?secret|credentials?|token|access[-_]?token|api[-_]?key|authorization|proxy[-_]authorization)$/i;

/** Credentials inside strings: SIP/HTTP auth header lines, digest responses, URL userinfo passwords. */
const STRING_RULES: Array<[RegExp, string]> = [
  [/((?:proxy-)?authorization\s*:\s*)[^\r\n]*/gi, `$1${CENSOR}`],
  [/(\bDigest\s[^\r\n]*?\bresponse\s*=\s*")[^"]*"/gi, `$1${CENSOR}"`],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@\s/]+@/gi, `$1${CENSOR}@`],
];

function scrubString(s: string): string {
  let out = s;
  for (const [re, rep] of STRING_RULES) out = out.replace(re, rep);
  return out;
}

/**
 * A copy of `v` with secrets censored: values of secret-looking keys (any depth, any case) and
 * credentials inside strings. Depth-limited; Errors become { type, message, stack }.
 */
export function scrubLogValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (v === null || typeof v !== 'object' || depth > 8) return v;
  if (v instanceof Error) {
    const e: Record<string, unknown> = { type: v.name, message: scrubString(v.message) };
    if (v.stack) e.stack = scrubString(v.stack);
    const code = (v as { code?: unknown }).code;
    if (code !== undefined) e.code = code;
    return e;
  }
  if (Array.isArray(v)) return v.map((x) => scrubLogValue(x, depth + 1));
  if (Buffer.isBuffer(v)) return scrubString(v.toString('utf8'));
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) ? CENSOR : scrubLogValue(x, depth + 1);
  return out;
}

/** Every live logger of a tree (the root and its children), for run-time level changes. */
const trees = new WeakMap<Logger, Set<WeakRef<Logger>>>();

export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const members = new Set<WeakRef<Logger>>();
  const opts = {
    level,
    base: { pid: process.pid, ...bindings },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: { log: (o: Record<string, unknown>) => scrubLogValue(o) as Record<string, unknown> },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrubString(a) : a)));
      },
    },
    onChild: (child: Logger) => {
      members.add(new WeakRef(child));
      trees.set(child, members);
    },
  };
  const root = destination ? pino(opts, destination) : pino(opts);
  members.add(new WeakRef(root));
  trees.set(root, members);
  return root;
}

/**
 * Sets the level of `logger` and of every logger of its tree (pino children keep the level
 * they were created with, so changing the root alone would leave component loggers behind).
 */
export function setLogLevel(logger: Logger, level: Level): number {
  const members = trees.get(logger);
  if (!members) {
    logger.level = level;
    return 1;
  }
  let n = 0;
  for (const ref of members) {
    const l = ref.deref();
    if (!l) {
      members.delete(ref);
      continue;
    }
    l.level = level;
    n++;
  }
  return n;
}

export type { Logger };
