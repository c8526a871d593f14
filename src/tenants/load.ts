/**
 * Reads a config directory (every *.yaml / *.yml below it, in path order; several YAML
 * documents per file allowed), checks each document against the published JSON Schema, then
 * runs the semantic rules over the whole set. Every problem is collected (none stops the
 * others) with its file, YAML path and line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import jsyaml from 'js-yaml';
import { LineCounter, parseAllDocuments, visit } from 'yaml';
import { msg } from './messages.js';
import { ProblemList, SourceDoc, SourceFile, type PathSeg } from './problems.js';
import { parseDid } from './numbers.js';
import { schemaValidator, type SchemaError } from './schema.js';
import type { Problem, TenantConfigSet } from './types.js';
import { validateSemantics } from './validate.js';

function listYamlFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'empty',
};

function pointerToPath(pointer: string): PathSeg[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function schemaProblem(problems: ProblemList, src: SourceDoc, e: SchemaError): void {
  const path = pointerToPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return problems.add(src, path, 'schema', msg.required(String(p.missingProperty)));
    case 'additionalProperties':
      return problems.add(src, path, 'schema', msg.unknownProperty(String(p.additionalProperty)), String(p.additionalProperty));
    case 'type':
      return problems.add(src, path, 'schema', msg.type(TYPE_NAMES[String(p.type)] ?? String(p.type)));
    case 'enum':
      return problems.add(src, path, 'schema', msg.enumeration(p.allowedValues as unknown[]));
    case 'minimum':
      return problems.add(src, path, 'schema', msg.minimum(Number(p.limit)));
    case 'maximum':
      return problems.add(src, path, 'schema', msg.maximum(Number(p.limit)));
    case 'exclusiveMinimum':
      return problems.add(src, path, 'schema', msg.exclusiveMinimum(Number(p.limit)));
    case 'minLength':
      return problems.add(src, path, 'schema', msg.minLength(Number(p.limit)));
    case 'maxLength':
      return problems.add(src, path, 'schema', msg.maxLength(Number(p.limit)));
    case 'minItems':
      return problems.add(src, path, 'schema', msg.minItems(Number(p.limit)));
    case 'uniqueItems':
      return problems.add(src, path, 'schema', msg.uniqueItems((e.data as unknown[])[Number(p.i)]));
    case 'pattern': {
      const value = String(e.data);
      const reason = (e.parentSchema as Record<string, unknown> | undefined)?.['x-reason'];
      if (reason === 'credential') return problems.add(src, path, 'credential-inline', msg.inlineCredential());
      if (reason === 'id') return problems.add(src, path, 'schema', msg.invalidId(value));
      if (reason === 'e164') return problems.add(src, path, 'e164-malformed', msg.malformedE164(value));
      if (reason === 'did') {
        const parsed = parseDid(value);
        if (!parsed.ok && parsed.kind === 'prefix') return problems.add(src, path, 'e164-malformed', msg.malformedPrefix(parsed.bad));
        return problems.add(src, path, 'e164-malformed', msg.malformedE164(parsed.ok ? value : parsed.bad));
      }
      return problems.add(src, path, 'schema', msg.pattern(value));
    }
    default:
      return problems.add(src, path, 'schema', e.message ?? e.keyword);
  }
}

export interface LoadResult {
  /** The config set, when there is no problem at all. */
  config?: TenantConfigSet;
  problems: Problem[];
  /** Number of files read. */
  files: number;
}

/** Parses YAML text already read; `file` is the name used in problems. */
export function parseSources(files: { file: string; text: string }[], problems: ProblemList): SourceDoc[] {
  const docs: SourceDoc[] = [];
  const validate = schemaValidator();
  for (const { file, text } of files) {
    let values: unknown[] | undefined;
    let source: SourceFile;
    try {
      // Fast path: js-yaml with the YAML 1.2 core schema (the same types `yaml` resolves);
      // duplicate keys throw here too.
      values = jsyaml.loadAll(text, undefined, { schema: jsyaml.CORE_SCHEMA, filename: file });
      source = new SourceFile(file, text);
    } catch {
      // Slow path: the position-keeping parser reports the error(s) precisely.
      ({ source, values } = fallbackParse(file, text, problems));
    }
    values.forEach((value, index) => {
      if (value === null || value === undefined) return; // an empty document
      const src = new SourceDoc(source, index, value);
      if (!validate(value)) for (const e of validate.errors ?? []) schemaProblem(problems, src, e);
      docs.push(src);
    });
  }
  return docs;
}

/** Reports the errors; documents without errors still load (so one bad document does not hide the rest). */
function fallbackParse(file: string, text: string, problems: ProblemList): { source: SourceFile; values: unknown[] } {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(parsed) ? parsed : [];
  const values: unknown[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      values.push(undefined);
      for (const err of doc.errors) {
        const pos = lines.linePos(err.pos[0]);
        const reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        problems.items.push({ file, line: pos.line, column: pos.col, path: '', rule: 'yaml', message: msg.yamlSyntax(reason) });
      }
      continue;
    }
    try {
      values.push(doc.toJS({ maxAliasCount: 1000 }));
    } catch (e) {
      // e.g. an unquoted `*.example.net` reads as an alias to a missing anchor
      values.push(undefined);
      let at = doc.contents?.range?.[0] ?? 0;
      visit(doc, { Alias: (_k, n) => ((at = n.range?.[0] ?? at), visit.BREAK) });
      const pos = lines.linePos(at);
      problems.items.push({ file, line: pos.line, column: pos.col, path: '', rule: 'yaml', message: msg.yamlSyntax((e as Error).message) });
    }
  }
  return { source: new SourceFile(file, text, { docs: list, lines }), values };
}

/** Loads and validates a config directory. Never throws for a config problem. */
export function loadConfigDir(dir: string): LoadResult {
  const paths = listYamlFiles(dir);
  const files = paths.map((p) => ({ file: relative(dir, p).split(sep).join('/'), text: readFileSync(p, 'utf8') }));
  return loadConfigTexts(files);
}

/** Same as loadConfigDir, over in-memory files (tests, export round trips). */
export function loadConfigTexts(files: { file: string; text: string }[]): LoadResult {
  const problems = new ProblemList();
  const docs = parseSources(files, problems);
  const config = validateSemantics(docs, problems);
  const sorted = problems.sorted();
  return sorted.length === 0 && config ? { config, problems: [], files: files.length } : { problems: sorted, files: files.length };
}

export function formatProblem(p: Problem): string {
  const where = p.file ? `${p.file}:${p.line}:${p.column}` : '(config)';
  return `${where}${p.path ? ` ${p.path}` : ''}: ${p.message}`;
}
