/**
 * NAT to an address range, through vrouter and through the kernel with the same rules: eight LAN
 * clients (10.0.1.2 to 10.0.1.9) each send one datagram, and every connection must be bound to the
 * same address of the range on both routers (find_best_ips_proto's jhash2 of the addresses), with
 * SNAT, SNAT --persistent (the destination not hashed) and DNAT.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpKernelRouter, type KernelLink, vrouterConfigOf } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { runPeer } from '../support/peers.ts';

const RULES = `*nat
-A PREROUTING -i lan0 -d 198.18.0.1/32 -p udp --dport 5004 -j DNAT --to-destination 203.0.113.10-203.0.113.13
-A POSTROUTING -o wan0 -p udp --dport 5002 -j SNAT --to-source 198.51.100.10-198.51.100.13
-A POSTROUTING -o wan0 -p udp --dport 5003 -j SNAT --to-source 198.51.100.10-198.51.100.13 --persistent
COMMIT
`;

const LINKS: KernelLink[] = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'wan0', role: 'outside', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

const CLIENTS = [2, 3, 4, 5, 6, 7, 8, 9].map((host) => `10.0.1.${host}`);

const ours = new Topology(uniqueTag('vr'), ['client', 'outside']);
const kernel = new Topology(uniqueTag('kr'), ['client', 'outside', 'router']);
let router: RouterProcess;

/** The clients' other addresses, beside the peer address the link setup gave lan0. */
function addClientAddresses(topology: Topology): void {
  for (const address of CLIENTS.slice(1)) {
    spawnSync('ip', ['-n', topology.ns('client'), 'addr', 'add', `${address}/24`, 'dev', 'lan0'], { stdio: 'inherit' });
  }
}

beforeAll(async () => {
  router = await startRouterProcess(vrouterConfigOf(ours, LINKS, RULES));
  setUpKernelRouter(kernel, 'router', LINKS, RULES);
  addClientAddresses(ours);
  addClientAddresses(kernel);
});

afterAll(async () => {
  await router?.stop();
  ours.destroy();
  kernel.destroy();
});

/** `src -> dst:dport bound to ADDRESS` for each UDP connection in a `conntrack -L` listing. */
function bindings(lines: string[]): string[] {
  const result: string[] = [];
  for (const line of lines) {
    const match = /^udp .*?src=(\S+) dst=(\S+) sport=\d+ dport=(\d+) .*?src=(\S+) dst=(\S+) /.exec(line);
    if (!match) continue;
    const [, src, dst, dport, replySrc, replyDst] = match;
    const bound = replyDst !== src ? replyDst : replySrc;
    result.push(`${src} -> ${dst}:${dport} bound to ${bound}`);
  }
  return result.sort();
}

function sendFromEveryClient(topology: Topology): void {
  for (const [to, port] of [['203.0.113.2', '5002'], ['203.0.113.2', '5003'], ['198.18.0.1', '5004']] as const) {
    expect(runPeer(topology, 'client', ['udp-send', to, port, ...CLIENTS])).toEqual({ sent: CLIENTS.length });
  }
}

describe('NAT to an address range, vrouter and kernel side by side', () => {
  it('binds every client to the address of the range the kernel binds it to (SNAT, SNAT --persistent, DNAT)', async () => {
    sendFromEveryClient(kernel);
    sendFromEveryClient(ours);
    const kernelList = spawnSync('ip', ['netns', 'exec', kernel.ns('router'), 'conntrack', '-L'], { encoding: 'utf8' }).stdout.trim().split('\n');
    const ourList = (await controlCall(router.controlSocket, 'conntrack-list', {})) as string[];
    const kernelBindings = bindings(kernelList);
    expect(kernelBindings).toHaveLength(3 * CLIENTS.length);
    // The example: the kernel binds 10.0.1.2 to .13, with and without --persistent.
    expect(kernelBindings).toContain('10.0.1.2 -> 203.0.113.2:5002 bound to 198.51.100.13');
    expect(kernelBindings).toContain('10.0.1.2 -> 203.0.113.2:5003 bound to 198.51.100.13');
    expect(bindings(ourList)).toEqual(kernelBindings);
  });
});
