export * from './errors.js';
export type { ConnectionInfo, ConnectionState } from './tcp.js';
export type { TlsPeerInfo } from './tls.js';
export * from './transport-layer.js';
export * from './types.js';
export { applyReceived, normalizeIp, responseTarget } from './via-received.js';
