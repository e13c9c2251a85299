/**
 * YAML problems in a config, lab or scenario file: each is refused with the file and its line
 * (exit code 2 from `vrouter run`), all of them at once; aliases are checked before the data is
 * used (none naming nothing, none inside the value it names, no alias bomb), so nothing fails
 * later with "Converting circular structure to JSON" or yaml's line-less ReferenceErrors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../router/deploy/config.ts';
import { parseLabText } from '../../../router/deploy/lab/lab-file.ts';
import { parseScenario } from '../../../router/deploy/scenario/scenario-config.ts';
import { VROUTER_BIN } from '../../../scripts/router-process.ts';

const options = { namespaceExists: () => true };
const LAN = '  - { name: lan0, netns: client, address: 10.0.1.1/24, peer: 10.0.1.2/24 }\n';

/** Nine aliases of nine aliases, seven levels deep: 9^7 values from a few lines. */
const BOMB = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefg'.split('').map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`), `interfaces: [${Array(9).fill('*g').join(', ')}]`].join('\n');

function problems(text: string, parse: (t: string) => unknown = (t) => parseLabText('router.yaml', t, options)): string[] {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message);
    throw error;
  }
  throw new Error('accepted');
}

describe('YAML problems', () => {
  it.each([
    ['a key given twice', `interfaces:\n${LAN}interfaces: []\n`, 'router.yaml:3: not valid YAML: a key given twice in one mapping'],
    ['a tab as indentation', `interfaces:\n\t- { name: lan0 }\n`, 'router.yaml:2: not valid YAML: Tabs are not allowed as indentation'],
    ['a second document', `interfaces:\n${LAN}---\ninterfaces: []\n`, 'router.yaml:3: not valid YAML: a second document (after ---): a config file holds one'],
    ['an unresolved alias', `interfaces: *lans\n`, 'router.yaml:1: alias *lans names no anchor before it (set &lans on a value above)'],
    ['an alias used before its anchor', `routes: *r\ninterfaces: &r []\n`, 'router.yaml:1: alias *r names no anchor before it (set &r on a value above)'],
    ['a recursive alias', `interfaces: &x\n  - *x\n`, 'router.yaml:2: alias *x is inside the value it names (a recursive alias)'],
    ['an alias bomb', BOMB, 'router.yaml:7: alias *f makes the document hold more than 100000 values once aliases are expanded (an alias bomb?)'],
  ])('refuses %s, naming the line', (_, text, message) => {
    expect(problems(text)).toEqual([message]);
  });

  it('reports every syntax error at once', () => {
    expect(problems(`interfaces:\n${LAN}interfaces: []\nroutes: []\nroutes: []\n`)).toEqual([
      'router.yaml:3: not valid YAML: a key given twice in one mapping',
      'router.yaml:5: not valid YAML: a key given twice in one mapping',
    ]);
  });

  it('refuses the same in a scenario file', () => {
    const scenario = (text: string): unknown => parseScenario('s.yaml', text, options);
    expect(problems('name: a\nname: b\n', scenario)).toEqual(['s.yaml:2: not valid YAML: a key given twice in one mapping']);
    expect(problems('name: &n [*n]\n', scenario)).toEqual(['s.yaml:1: alias *n is inside the value it names (a recursive alias)']);
  });

  it('still takes anchors and aliases that are fine', () => {
    const lab = parseLabText(
      'router.yaml',
      `interfaces:\n  - { name: lan0, netns: client, address: 10.0.1.1/24, peer: 10.0.1.2/24, mtu: &mtu 1400 }\n  - { name: wan0, netns: server, address: 203.0.113.1/24, peer: 203.0.113.2/24, mtu: *mtu }\n`,
      options,
    );
    expect(lab.routers[0]!.spec.interfaces.map((link) => link.mtu)).toEqual([1400, 1400]);
  });

  it('vrouter run: a recursive alias exits 2 with the file and line', { timeout: 30_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'yaml-problems-'));
    try {
      const file = join(dir, 'router.yaml');
      writeFileSync(file, 'interfaces: &x\n  - *x\n');
      const result = spawnSync(process.execPath, [VROUTER_BIN, 'run', file], { encoding: 'utf8', timeout: 20_000 });
      expect(result.stderr).toBe(`vrouter: ${file}:2: alias *x is inside the value it names (a recursive alias)\n`);
      expect(result.status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
