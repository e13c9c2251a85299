/**
 * A router's life outside its config (issue 12, item 14): SIGHUP stops it as cleanly as SIGTERM,
 * and a namespace deleted under it leaves its interface shown down, said once, and what is routed
 * there dropped as interface-down.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Topology, destroyNamespace, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { leftoversOf } from '../support/lab-process.ts';

const topology = new Topology(uniqueTag('hcl'), ['client', 'server']);

afterAll(() => topology.destroy());

function exited(child: import('node:child_process').ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('SIGHUP', () => {
  it('stops a lab as SIGTERM does: exit 0, its namespaces, TUNs and socket removed', async () => {
    const tag = uniqueTag('hch');
    const socket = `/tmp/${tag}.sock`;
    const lab = await startRouterProcess(`name: ${tag}
control: ${socket}
hosts:
  a: { segment: left, address: 10.8.1.2/24, gateway: 10.8.1.1 }
  b: { segment: right, address: 10.8.2.2/24, gateway: 10.8.2.1 }
routers:
  r:
    interfaces:
      - { name: left0, segment: left, address: 10.8.1.1/24 }
      - { name: right0, segment: right, address: 10.8.2.1/24 }
`);
    try {
      expect(existsSync(socket)).toBe(true);
      expect(spawnSync('ip', ['netns', 'exec', `${tag}-a`, 'ping', '-c', '1', '-W', '2', '10.8.2.2']).status).toBe(0);
      const pid = lab.child.pid!;
      lab.child.kill('SIGHUP');
      expect(await exited(lab.child)).toEqual({ code: 0, signal: null });
      expect(lab.output()).toContain('vrouter: SIGHUP: interfaces removed, stopped');
      expect(leftoversOf(tag, socket, pid)).toEqual([]);
    } finally {
      // What a router killed by the signal would have left.
      for (const host of ['a', 'b']) destroyNamespace(`${tag}-${host}`);
      rmSync(socket, { force: true });
      await lab.stop();
    }
  });
});

describe('a namespace deleted under a running router', () => {
  it('shows its interface down, says so once, and drops what is routed there', async () => {
    const socket = `/tmp/${topology.tag}.sock`;
    const router = await startRouterProcess(`control: ${socket}
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('server')}, address: 203.0.113.1/24, peer: 203.0.113.2/24 }
`);
    try {
      const state = async (): Promise<Record<string, string>> =>
        Object.fromEntries(((await controlCall(socket, 'interfaces')) as { name: string; state: string }[]).map((link) => [link.name, link.state]));
      expect(await state()).toEqual({ lan0: 'up', wan0: 'up' });
      expect(topology.exec('client', 'ping', ['-c', '1', '-W', '2', '203.0.113.2']).status).toBe(0);

      spawnSync('ip', ['netns', 'del', topology.ns('server')]);
      const start = Date.now();
      while ((await state()).wan0 !== 'down' && Date.now() - start < 10_000) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await state()).toEqual({ lan0: 'up', wan0: 'down' });

      const drops = async (): Promise<Record<string, number>> => ((await controlCall(socket, 'stats')) as { drops: Record<string, number> }).drops;
      expect((await drops())['interface-down']).toBeUndefined();
      for (let i = 0; i < 3; i++) expect(topology.exec('client', 'ping', ['-c', '1', '-W', '1', '203.0.113.2']).status).not.toBe(0);
      expect((await drops())['interface-down']).toBe(3);

      const said = router.output().split('\n').filter((line) => line.includes(topology.ns('server')) && !line.includes('ready'));
      expect(said).toEqual([`vrouter: lost-${topology.ns('server')}:wan0: host ${topology.ns('server')} interface wan0: network namespace ${topology.ns('server')} is gone, reading its TUN failed with errno 77; router router interface wan0 marked down`]);
    } finally {
      expect(await router.stop()).toBe(0);
    }
  });
});
