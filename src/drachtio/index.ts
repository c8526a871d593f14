import { DrachtioServerImpl } from './server.js';
import type { DrachtioServer, DrachtioServerOptions } from './types.js';

export type { DrachtioServer, DrachtioServerOptions, DrachtioServerStats, Logger } from './types.js';
export { SERVER_VERSION } from './server.js';

/** Starts a drachtio-compatible SIP server (SIP transports + admin wire-protocol listener). */
export async function createDrachtioServer(opts: DrachtioServerOptions): Promise<DrachtioServer> {
  const s = new DrachtioServerImpl(opts);
  try {
    await s.start();
  } catch (err) {
    await s.close().catch(() => {});
    throw err;
  }
  return s;
}
