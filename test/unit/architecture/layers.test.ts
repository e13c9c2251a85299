/**
 * The layers of the code base and the one direction their imports may point (README,
 * "Architecture"): deploy -> stack -> path / netfilter / nat -> wire -> core. Read from the import
 * statements themselves, type-only imports included, so that a shortcut shows up here first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Folder prefix -> layer name, most specific first. */
const LAYERS: readonly (readonly [string, string])[] = [
  ['router/core/', 'core'],
  ['router/wire/', 'wire'],
  ['router/path/', 'path'],
  ['router/stack/', 'stack'],
  ['router/deploy/', 'deploy'],
  ['router/bin/', 'bin'],
  ['netfilter/', 'netfilter'],
  ['nat/', 'nat'],
];

/** What each layer may import besides itself. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  wire: ['core'],
  path: ['core', 'wire'],
  netfilter: ['core', 'wire'],
  nat: ['core', 'wire', 'netfilter'],
  stack: ['core', 'wire', 'path', 'netfilter', 'nat'],
  deploy: ['core', 'wire', 'path', 'netfilter', 'nat', 'stack'],
  bin: ['deploy'],
};

function layerOf(file: string): string | null {
  for (const [prefix, layer] of LAYERS) if (file.startsWith(prefix)) return layer;
  return null;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(path));
    else if (/\.(ts|mjs)$/.test(entry.name)) out.push(path);
  }
  return out;
}

const IMPORT = /(?:from\s+|import\s*\(\s*|import\s+|declare module\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => relative(root, resolve(root, dirname(file), m[1]!)));
}

const files = [...sources('router'), ...sources('netfilter'), ...sources('nat')];

describe('layers', () => {
  it('puts every source file in a layer', () => {
    expect(files.filter((file) => layerOf(file) === null)).toEqual([]);
  });

  it('lets imports point only downwards', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = layerOf(file)!;
      for (const target of importsOf(file)) {
        const to = layerOf(target);
        if (to === null || to === from || ALLOWED[from]!.includes(to)) continue;
        violations.push(`${file} (${from}) imports ${target} (${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('would notice an upward import', () => {
    // The check itself can fail: a core file importing netfilter is flagged.
    expect(ALLOWED.core!.includes(layerOf('netfilter/defrag.ts')!)).toBe(false);
  });
});
