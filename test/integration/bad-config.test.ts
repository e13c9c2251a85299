/**
 * `vrouter run` with configs that must be refused: a clear message naming the file, key and value,
 * exit code 2, and no TUN, address or socket left behind, even when a later interface fails after
 * an earlier one was already set up.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN } from '../../scripts/router-process.ts';

const topology = new Topology(uniqueTag('vb'), ['client', 'server']);
const dir = mkdtempSync(join(tmpdir(), 'vrouter-bad-'));
const socket = join(dir, 'control.sock');

afterAll(() => {
  topology.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function run(yaml: string): { status: number | null; stderr: string; file: string } {
  const file = join(dir, `router-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  const result = spawnSync(process.execPath, [VROUTER_BIN, 'run', file], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stderr: result.stderr, file };
}

function tunsEverywhere(): string {
  const here = spawnSync('ip', ['-o', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' }).stdout;
  const there = topology.namespaces.map((ns) => spawnSync('ip', ['-n', ns, '-o', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' }).stdout);
  return [here, ...there].join('');
}

const good = (): string => `control: ${socket}
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('server')}, address: 203.0.113.1/24, peer: 203.0.113.2/24 }
`;

describe('bad configs are refused and leave nothing behind', () => {
  const tunsBefore = tunsEverywhere();

  it.each([
    ['a missing namespace', (y: string) => y.replace(topology.ns('server'), 'vrouter-no-such-ns'), /:4: interfaces\[1\]\.netns: network namespace "vrouter-no-such-ns" does not exist/],
    ['a bad address', (y: string) => y.replace('203.0.113.1/24', '203.0.113.256/24'), /:4: interfaces\[1\]\.address: .*\(got "203\.0\.113\.256\/24"\)/],
    ['an unknown key', (y: string) => `${y}rutes: []\n`, /:5: rutes: unknown key/],
    ['a route to no interface', (y: string) => `${y}routes:\n  - { to: 198.51.100.0/24, dev: eth7 }\n`, /:6: routes\[0\]\.dev: no interface has this name .*\(got "eth7"\)/],
    ['a rule it does not understand', (y: string) => `${y}rules: |\n  *filter\n  -A FORWARD -p tcp --bogus 1 -j ACCEPT\n  COMMIT\n`, /yaml \(rules\):7: .*"--bogus"/],
  ])('refuses %s with exit code 2', (_, edit, message) => {
    const result = run(edit(good()));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(result.file);
    expect(result.stderr).toMatch(message);
    expect(tunsEverywhere()).toBe(tunsBefore);
    expect(existsSync(socket)).toBe(false);
  });

  it('refuses a config file that does not exist', () => {
    const result = spawnSync(process.execPath, [VROUTER_BIN, 'run', join(dir, 'absent.yaml')], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/absent\.yaml: cannot read the config file/);
  });

  it('undoes the first interface when the second cannot be set up', () => {
    // A device named wan0 already in the server namespace makes the rename of the second TUN fail.
    expect(topology.exec('server', 'ip', ['link', 'add', 'wan0', 'type', 'bridge']).status).toBe(0);
    try {
      const result = run(good());
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/interface wan0 \(netns .*\): renaming the TUN to wan0 failed/);
      expect(spawnSync('ip', ['-n', topology.ns('client'), 'link', 'show', 'lan0']).status).not.toBe(0);
      expect(spawnSync('ip', ['-n', topology.ns('client'), '-4', 'addr', 'show'], { encoding: 'utf8' }).stdout).not.toContain('10.0.1.2');
      expect(tunsEverywhere()).toBe(tunsBefore);
      expect(existsSync(socket)).toBe(false);
    } finally {
      topology.exec('server', 'ip', ['link', 'del', 'wan0']);
    }
  });
});
