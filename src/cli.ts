#!/usr/bin/env node
/**
 * teams-gw: the one command-line entry point.
 *   teams-gw run            start the gateway (embedded SIP server + call control)
 *   teams-gw sip-server     run only the drachtio-compatible SIP server
 *   teams-gw tenants ...    tenant onboarding (validate | plan | apply | list | show | export | rollback)
 */
type Command = { default: (argv: string[]) => Promise<number> };

// Each command lives in its own module, loaded only when used.
const commands: Record<string, () => Promise<Command>> = {
  run: () => import('./main.js'),
  'sip-server': () => import('./drachtio/cli.js'),
  tenants: () => import('./tenants/cli.js'),
  status: () => import('./ops/status-cli.js'),
  check: () => import('./ops/check-cli.js'),
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const load = cmd ? commands[cmd] : undefined;
  if (!load) {
    process.stderr.write(`usage: teams-gw <${Object.keys(commands).join('|')}> [options]\n`);
    return cmd === undefined || cmd === '--help' || cmd === '-h' ? 0 : 2;
  }
  const mod = await load();
  return mod.default(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`teams-gw: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
