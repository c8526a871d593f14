/** Where a problem is: a parsed YAML document, a path in it, and the problem list. */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import type { Problem } from './types.js';

export type PathSeg = string | number;

/**
 * One YAML file's text, with its position-keeping parse made on first need: values are read
 * with a fast parser, and node positions (the slow part) are only computed when a problem has
 * to cite a line.
 */
export class SourceFile {
  #parsed: { docs: Document.Parsed[]; lines: LineCounter } | undefined;
  constructor(
    readonly file: string,
    readonly text: string,
    parsed?: { docs: Document.Parsed[]; lines: LineCounter },
  ) {
    this.#parsed = parsed;
  }

  get parsed(): { docs: Document.Parsed[]; lines: LineCounter } {
    if (!this.#parsed) {
      const lines = new LineCounter();
      const docs = parseAllDocuments(this.text, { lineCounter: lines, prettyErrors: false });
      this.#parsed = { docs: Array.isArray(docs) ? docs : [], lines };
    }
    return this.#parsed;
  }
}

/** One YAML document of a file: its value, and how to turn a path in it into a line. */
export class SourceDoc {
  constructor(
    readonly source: SourceFile,
    readonly index: number,
    readonly value: unknown,
  ) {}

  get file(): string {
    return this.source.file;
  }

  /** Position of the node at `path` (or its closest existing ancestor); `key` → the key of that pair. */
  locate(path: readonly PathSeg[], key?: string): { line: number; column: number } {
    const { docs, lines } = this.source.parsed;
    const doc = docs[this.index];
    if (!doc) return { line: 0, column: 0 };
    let node: unknown = doc.contents;
    let best: Node | null = doc.contents;
    const segs = key === undefined ? path : [...path, key];
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
        if (!pair) break;
        const last = i === segs.length - 1;
        if (last && (key !== undefined || isMap(pair.value) || isSeq(pair.value))) {
          // A key named in the problem, or a block value: the key's line is where it starts.
          best = pair.key as Node;
          break;
        }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else break;
      if (node && typeof node === 'object' && 'range' in node) best = node as Node;
      else break;
    }
    const offset = best?.range?.[0] ?? 0;
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  }
}

export function formatPath(path: readonly PathSeg[]): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}

export class ProblemList {
  readonly items: Problem[] = [];

  add(src: SourceDoc | undefined, path: readonly PathSeg[], rule: string, message: string, key?: string): void {
    const pos = src ? src.locate(path, key) : { line: 0, column: 0 };
    const full = key === undefined ? path : [...path, key];
    this.items.push({ file: src?.file ?? '', line: pos.line, column: pos.column, path: formatPath(full), rule, message });
  }

  /** `file:line` of a place, for messages that cite a second location. */
  static where(src: SourceDoc, path: readonly PathSeg[]): string {
    return `${src.file}:${src.locate(path).line}`;
  }

  sorted(): Problem[] {
    return [...this.items].sort(
      (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.message.localeCompare(b.message),
    );
  }
}
