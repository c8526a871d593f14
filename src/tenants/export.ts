/**
 * `tenants export <dir>`: writes a config set back as files that validate: settings.yaml,
 * carriers.yaml and tenants/<id>.yaml, each pointing editors at the published schema.
 */
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { stringify } from 'yaml';
import { schemaPath } from './schema.js';
import type { TenantConfigSet } from './types.js';

function header(file: string, note: string): string {
  const rel = relative(dirname(file), schemaPath()).split(sep).join('/');
  return `# yaml-language-server: $schema=${rel}\n# ${note}\n`;
}

const yaml = (v: unknown): string => stringify(v, { lineWidth: 0 });

/** Writes the files; refuses a directory that already holds YAML unless `force`. Returns the paths written. */
export function exportConfig(config: TenantConfigSet, dir: string, opts: { note: string; force?: boolean }): string[] {
  const root = resolve(dir);
  if (existsSync(root) && !opts.force) {
    const clash = readdirSync(root).filter((f) => /\.ya?ml$/.test(f) || f === 'tenants');
    if (clash.length > 0) throw new Error(`${dir} already holds ${clash.join(', ')}: choose an empty directory or pass --force`);
  }
  mkdirSync(join(root, 'tenants'), { recursive: true });
  const written: string[] = [];
  const write = (file: string, body: unknown): void => {
    writeFileSync(file, header(file, opts.note) + yaml(body));
    written.push(file);
  };
  write(join(root, 'settings.yaml'), { settings: config.settings });
  if (config.carriers.length > 0) write(join(root, 'carriers.yaml'), { carriers: config.carriers });
  for (const t of config.tenants) write(join(root, 'tenants', `${t.id}.yaml`), { tenants: [t] });
  return written;
}
