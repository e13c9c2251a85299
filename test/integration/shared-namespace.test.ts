/**
 * Two routers with an interface in the same namespace: the second one takes over the namespace's
 * default route, and gives it back, whether it fails to start or stops; it never leaves the
 * first router's namespace without a default route (issue: a second router whose TUN name
 * collided deleted a running router's default route).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN, startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';

const topology = new Topology(uniqueTag('vs'), ['a', 'shared', 'b']);
const dir = mkdtempSync(join(tmpdir(), 'vrouter-shared-'));
let first: RouterProcess | null = null;

afterAll(async () => {
  await first?.stop();
  topology.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function defaultRoute(role: string): string {
  return spawnSync('ip', ['-n', topology.ns(role), 'route', 'show', 'default'], { encoding: 'utf8' }).stdout.trim();
}

describe('a namespace two routers share', () => {
  it('keeps the running router\'s default route when a second router fails to start, or stops', async () => {
    first = await startRouterProcess(`control: ${join(dir, 'a.sock')}
interfaces:
  - { name: lan0, netns: ${topology.ns('a')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('shared')}, address: 203.0.113.1/24, peer: 203.0.113.2/24 }
`);
    expect(defaultRoute('shared')).toBe('default via 203.0.113.1 dev wan0');

    // The second router's first interface takes the shared namespace's default route; its second
    // interface's name is taken in namespace a, so it fails after that.
    const failing = join(dir, 'b-fails.yaml');
    writeFileSync(failing, `control: ${join(dir, 'b.sock')}
interfaces:
  - { name: wan1, netns: ${topology.ns('shared')}, address: 198.51.100.1/24, peer: 198.51.100.2/24 }
  - { name: lan0, netns: ${topology.ns('a')}, address: 10.0.2.1/24, peer: 10.0.2.2/24 }
`);
    const result = spawnSync(process.execPath, [VROUTER_BIN, 'run', failing], { encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toContain('renaming the TUN to lan0 failed: RTNETLINK answers: File exists');
    expect(result.status).toBe(1);
    expect(defaultRoute('shared')).toBe('default via 203.0.113.1 dev wan0');
    expect(defaultRoute('a')).toBe('default via 10.0.1.1 dev lan0');

    const second = await startRouterProcess(`control: ${join(dir, 'b.sock')}
interfaces:
  - { name: wan1, netns: ${topology.ns('shared')}, address: 198.51.100.1/24, peer: 198.51.100.2/24 }
  - { name: lan0, netns: ${topology.ns('b')}, address: 10.0.2.1/24, peer: 10.0.2.2/24 }
`);
    expect(defaultRoute('shared')).toBe('default via 198.51.100.1 dev wan1');
    expect(await second.stop()).toBe(0);
    expect(defaultRoute('shared')).toBe('default via 203.0.113.1 dev wan0');
    // And the first router still forwards for the shared namespace.
    expect(topology.exec('shared', 'ping', ['-c', '1', '-W', '2', '10.0.1.2']).status).toBe(0);
  });
});
