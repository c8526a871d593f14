#!/usr/bin/env node
/** Stand-alone entry for `tenants` (tests, or before src/cli.ts registers it): `tsx src/tenants/cli-entry.ts validate`. */
import tenantsCli from './cli.js';

tenantsCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`teams-gw tenants: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
