/**
 * The router between real namespaces over real TUN devices: ping, ICMP errors, MTU handling,
 * fragmentation, a TCP stream and UDP, then a clean stop. Only addresses of the namespaces made
 * here are used; 192.0.2.1 (TEST-NET-1) has no route on purpose and never leaves the router.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { runPeer, startPeer } from '../support/peers.ts';

const topology = new Topology(uniqueTag('vf'), ['client', 'server', 'narrow']);
let router: RouterProcess;

function ping(role: string, target: string, extra: string[] = []): { status: number | null; stdout: string } {
  return topology.exec(role, 'ping', ['-c', '1', '-W', '2', ...extra, target]);
}

beforeAll(async () => {
  router = await startRouterProcess(`control: /tmp/${topology.tag}.sock
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('server')}, address: 203.0.113.1/24, peer: 203.0.113.2/24, mtu: 1500 }
  - { name: dmz0, netns: ${topology.ns('narrow')}, address: 198.51.100.1/24, peer: 198.51.100.2/24, mtu: 1280 }
`);
});

afterAll(async () => {
  await router?.stop();
  topology.destroy();
});

describe('forwarding between namespaces', () => {
  it('forwards ping across, with the TTL decremented', () => {
    const result = ping('client', '203.0.113.2');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/from 203\.0\.113\.2: icmp_seq=1 ttl=63/);
  });

  it('answers ping to both of its addresses on the way', () => {
    for (const address of ['10.0.1.1', '203.0.113.1']) {
      const result = ping('client', address);
      expect(result.stdout).toMatch(new RegExp(`from ${address.replace(/\./g, '\\.')}: icmp_seq=1 ttl=64`));
    }
    expect(ping('server', '10.0.1.1').stdout).toMatch(/from 10\.0\.1\.1: icmp_seq=1 ttl=64/);
  });

  it('sends time exceeded to ping -t 1', () => {
    expect(ping('client', '203.0.113.2', ['-t', '1']).stdout).toMatch(/From 10\.0\.1\.1 icmp_seq=1 Time to live exceeded/);
  });

  it('sends net unreachable for a destination without a route', () => {
    expect(ping('client', '192.0.2.1').stdout).toMatch(/From 10\.0\.1\.1 icmp_seq=1 Destination Net Unreachable/);
  });

  // Before the DF test: once the client learns the 1280 path MTU it fragments for it itself.
  it('forwards a 4000-byte ping in fragments, refragments it for a narrower link, and answers one itself', () => {
    expect(ping('client', '203.0.113.2', ['-s', '4000']).stdout).toMatch(/4008 bytes from 203\.0\.113\.2/);
    expect(ping('client', '198.51.100.2', ['-s', '4000']).stdout).toMatch(/4008 bytes from 198\.51\.100\.2/);
    expect(ping('client', '10.0.1.1', ['-s', '4000']).stdout).toMatch(/4008 bytes from 10\.0\.1\.1/);
  });

  it('carries a 1472-byte DF ping whole, and refuses it with the MTU towards a narrower link', () => {
    const fits = ping('client', '203.0.113.2', ['-M', 'do', '-s', '1472']);
    expect(fits.stdout).toMatch(/1480 bytes from 203\.0\.113\.2/);
    const narrow = ping('client', '198.51.100.2', ['-M', 'do', '-s', '1472']);
    expect(narrow.stdout).toMatch(/From 10\.0\.1\.1 icmp_seq=1 Frag needed and DF set \(mtu = 1280\)/);
  });

  it('carries a 100 kB TCP stream intact', async () => {
    const sink = await startPeer(topology, 'server', ['tcp-sink', '5001']);
    const sent = runPeer(topology, 'client', ['tcp-send', '203.0.113.2', '5001', '100000']);
    const [, received] = await sink.lines;
    expect(sent.bytes).toBe(100000);
    expect(received).toEqual({ bytes: 100000, sha256: sent.sha256 });
  });

  it('carries UDP both ways', async () => {
    const echo = await startPeer(topology, 'server', ['udp-echo', '5002']);
    expect(runPeer(topology, 'client', ['udp-ask', '203.0.113.2', '5002', 'hello over udp'])).toEqual({ reply: 'hello over udp' });
    echo.child.kill();
  });

  it('refuses TCP and UDP to its own address as a host with no listeners does', () => {
    expect(runPeer(topology, 'client', ['tcp-connect', '10.0.1.1', '80'])).toEqual({ result: 'ECONNREFUSED' });
    expect(runPeer(topology, 'client', ['udp-ask', '10.0.1.1', '53', 'anyone?'])).toEqual({ error: 'ECONNREFUSED' });
  });

  it('counts what it did on the control socket', async () => {
    const stats = (await controlCall(router.controlSocket, 'stats')) as { counters: Record<string, number>; drops: Record<string, number> };
    expect(stats.counters.forwarded).toBeGreaterThan(20);
    // The TUNs take segmentation offload: the 100 kB stream came in as TSO super-packets.
    expect(stats.counters['super-packets-received']).toBeGreaterThan(0);
    // No rule needs conntrack here, so, as in the kernel, nothing is tracked or defragmented:
    // 2 x 1500-byte fragments split for the 1280 link, and the 4000-byte echo reply split for lan0.
    expect(stats.counters['fragments-created']).toBe(7);
    expect((stats as unknown as { conntrack: { entries: number } }).conntrack.entries).toBe(0);
    expect(stats.drops['ttl-exceeded']).toBe(1);
    expect(stats.drops['no-route']).toBe(1);
  });

  it('removes every TUN on SIGTERM and exits 0', async () => {
    expect(execFileSync('ip', ['-n', topology.ns('client'), '-o', 'link', 'show', 'lan0']).toString()).toContain('lan0');
    expect(await router.stop()).toBe(0);
    for (const [role, name] of [['client', 'lan0'], ['server', 'wan0'], ['narrow', 'dmz0']] as const) {
      expect(spawnSync('ip', ['-n', topology.ns(role), 'link', 'show', name]).status).not.toBe(0);
    }
    expect(router.output()).toMatch(/SIGTERM: interfaces removed/);
  });
});
