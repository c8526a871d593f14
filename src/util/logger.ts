/**
 * The pino-shaped logger interface every layer logs through. Layers below call control
 * (src/sip, src/drachtio, src/media, src/tenants) never import pino; the composition root
 * passes a pino logger, which satisfies this shape.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: Record<string, unknown>): Logger;
  isLevelEnabled?(level: string): boolean;
}

/** Logs nothing (the default when no logger is given). */
export const silentLogger: Logger & { isLevelEnabled(level: string): boolean } = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  isLevelEnabled: () => false,
};
