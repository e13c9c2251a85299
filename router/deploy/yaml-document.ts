/**
 * A config's YAML document, checked before its data is used, every problem with its line: syntax
 * errors (a key given twice, a tab as indentation, a second document), and aliases that name no
 * anchor, sit inside the value they name (which would make the data circular), or would blow the
 * document up (an alias bomb: nine aliases of nine aliases of ...).
 */
import { LineCounter, isAlias, isCollection, isPair, parseDocument, visit, type Alias, type Document, type Node, type YAMLError } from 'yaml';
import { ConfigError, ConfigErrors } from './config-errors.ts';

/** Values the document may hold once its aliases are expanded; a real config has some hundreds. */
export const MAX_EXPANDED_VALUES = 100_000;

export interface ConfigDocument {
  readonly doc: Document;
  readonly lines: LineCounter;
  /** The document as plain data (aliases share their anchor's value). */
  readonly data: unknown;
}

/** Throws ConfigErrors naming every problem, each on its line. */
export function parseConfigDocument(file: string, text: string): ConfigDocument {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number): number => lines.linePos(offset).line;
  const problems = doc.errors.map((error) => new ConfigError(file, lineAt(error.pos[0]), '', undefined, `not valid YAML: ${describe(error)}`));
  if (problems.length === 0) problems.push(...checkAliases(doc, (alias, reason) => new ConfigError(file, lineAt(alias.range?.[0] ?? 0), '', undefined, reason)));
  if (problems.length) throw new ConfigErrors(problems);
  // The aliases are checked above, so yaml's own alias budget is not needed (it names no line).
  return { doc, lines, data: doc.toJS({ maxAliasCount: -1 }) };
}

function describe(error: YAMLError): string {
  if (error.code === 'MULTIPLE_DOCS') return 'a second document (after ---): a config file holds one';
  if (error.code === 'DUPLICATE_KEY') return 'a key given twice in one mapping';
  return error.message.split('\n')[0]!;
}

function checkAliases(doc: Document, refuse: (alias: Alias, reason: string) => ConfigError): ConfigError[] {
  const problems: ConfigError[] = [];
  // What each alias names: the last node with its anchor before it, in document order (as yaml resolves).
  const anchors = new Map<string, Node>();
  const sources = new Map<Alias, Node>();
  visit(doc, {
    Node(_key, node, path) {
      if (isAlias(node)) {
        const source = anchors.get(node.source);
        if (source === undefined) problems.push(refuse(node, `alias *${node.source} names no anchor before it (set &${node.source} on a value above)`));
        else if (path.includes(source)) problems.push(refuse(node, `alias *${node.source} is inside the value it names (a recursive alias)`));
        else sources.set(node, source);
      } else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  if (problems.length || sources.size === 0) return problems;
  // Sizes capped just past the limit, so that a bomb's size stays a small number.
  const cap = MAX_EXPANDED_VALUES + 1;
  const sizes = new Map<unknown, number>();
  const sizeOf = (node: unknown): number => {
    if (node === null || node === undefined) return 0;
    if (isAlias(node)) return sizeOf(sources.get(node));
    if (isPair(node)) return Math.min(cap, sizeOf(node.key) + sizeOf(node.value));
    if (!isCollection(node)) return 1;
    let size = sizes.get(node);
    if (size === undefined) {
      size = 1;
      for (const item of node.items) size = Math.min(cap, size + sizeOf(item));
      sizes.set(node, size);
    }
    return size;
  };
  if (sizeOf(doc.contents) <= MAX_EXPANDED_VALUES) return problems;
  let biggest: Alias | null = null;
  for (const alias of sources.keys()) if (biggest === null || sizeOf(alias) > sizeOf(biggest)) biggest = alias;
  problems.push(refuse(biggest!, `alias *${biggest!.source} makes the document hold more than ${MAX_EXPANDED_VALUES} values once aliases are expanded (an alias bomb?)`));
  return problems;
}
