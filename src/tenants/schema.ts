/**
 * The published JSON Schema (config/schema/tenants.schema.json) compiled with ajv. The same
 * file editors use through `# yaml-language-server: $schema=...`, so there is one source of
 * truth for structure; semantic rules live in validate.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';

type AjvClass = typeof AjvModule.default;

const SCHEMA_REL = join('config', 'schema', 'tenants.schema.json');

/** Finds the schema from src/tenants (tsx) or dist/src/tenants (built) alike. */
export function schemaPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, SCHEMA_REL);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error(`cannot find ${SCHEMA_REL} above ${dirname(fileURLToPath(import.meta.url))}`);
}

let compiled: ValidateFunction | undefined;

export function schemaValidator(): ValidateFunction {
  if (compiled) return compiled;
  const schema = JSON.parse(readFileSync(schemaPath(), 'utf8')) as object;
  // ajv is CommonJS; under NodeNext its default export arrives as the module namespace.
  const Ajv = ((AjvModule as unknown as { default?: AjvClass }).default ?? AjvModule) as AjvClass;
  const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, strict: true });
  // `x-reason` names the message builder used for a pattern failure (annotation only).
  ajv.addKeyword({ keyword: 'x-reason', schemaType: 'string' });
  const fn = ajv.compile(schema);
  compiled = fn;
  return fn;
}

export type SchemaError = ErrorObject;
