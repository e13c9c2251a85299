/**
 * NAT through vrouter and through the kernel with the same rules, compared: MASQUERADE for a LAN
 * (ping, TCP, UDP, an ICMP error about a NATed datagram getting back to the client), a DNAT port
 * forward reached from outside and, hairpin, from inside through the router's public address, and
 * the time exceeded about a port-forwarded first packet quoting it as sent;
 * and `conntrack -L` showing the NATed reply tuples as the kernel does.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpKernelRouter, type KernelLink, vrouterConfigOf } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { pingOutcome, runPeer, startPeer } from '../support/peers.ts';

const RULES = `*nat
-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8080 -j DNAT --to-destination 10.0.2.2:5001
-A PREROUTING -i wan0 -d 203.0.113.1/32 -p icmp -j DNAT --to-destination 10.0.2.2
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
`;

/** A LAN client, a DMZ server (the port forward's target), and a host outside. */
const LINKS: KernelLink[] = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'dmz0', role: 'dmz', address: '10.0.2.1/24', peer: '10.0.2.2/24' },
  { name: 'wan0', role: 'outside', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

const ours = new Topology(uniqueTag('vn'), ['client', 'dmz', 'outside']);
const kernel = new Topology(uniqueTag('kn'), ['client', 'dmz', 'outside', 'router']);
let router: RouterProcess;

beforeAll(async () => {
  router = await startRouterProcess(vrouterConfigOf(ours, LINKS, RULES));
  setUpKernelRouter(kernel, 'router', LINKS, RULES);
});

afterAll(async () => {
  await router?.stop();
  ours.destroy();
  kernel.destroy();
});

/** Sends `bytes` from `role` to the port forward, with a fresh one-connection sink in the DMZ. */
async function throughPortForward(topology: Topology, role: string, bytes: number): Promise<string> {
  const sink = await startPeer(topology, 'dmz', ['tcp-sink', '5001']);
  const sent = runPeer(topology, role, ['tcp-send', '203.0.113.1', '8080', String(bytes)]);
  const timeout = new Promise<Record<string, unknown>[]>((resolve) => setTimeout(() => resolve([]), 3000));
  const received = (await Promise.race([sink.lines, timeout])).find((line) => 'bytes' in line);
  sink.child.kill();
  return `sent ${String(sent.bytes ?? sent.error)}, the DMZ server received ${String(received?.bytes)}`;
}

async function outcomes(topology: Topology): Promise<Record<string, string>> {
  const echo = await startPeer(topology, 'outside', ['udp-echo', '5002']);
  const tcpOut = await startPeer(topology, 'outside', ['tcp-sink', '5003']);
  const result = {
    'client pings outside': pingOutcome(topology, 'client', '203.0.113.2', { waitSeconds: 2 }),
    'client TCP to outside': JSON.stringify(runPeer(topology, 'client', ['tcp-send', '203.0.113.2', '5003', '20000']).bytes),
    'client UDP to outside': JSON.stringify(runPeer(topology, 'client', ['udp-ask', '203.0.113.2', '5002', 'hi', '2000'])),
    'port unreachable about a NATed datagram': JSON.stringify(runPeer(topology, 'client', ['udp-ask', '203.0.113.2', '5999', 'hi', '2000'])),
    'outside reaches the port forward': await throughPortForward(topology, 'outside', 3000),
    'client reaches the port forward through the public address (hairpin)': await throughPortForward(topology, 'client', 4000),
    'outside pings the public address (forwarded to the DMZ)': pingOutcome(topology, 'outside', '203.0.113.1', { waitSeconds: 2 }),
    // The TTL runs out after DNAT, on the connection's first packet: the time exceeded must quote
    // the datagram as it was sent (to the public address), or ping does not recognise it.
    'the same with TTL 1': pingOutcome(topology, 'outside', '203.0.113.1', { ttl: 1, waitSeconds: 2 }),
  };
  for (const peer of [echo, tcpOut]) peer.child.kill();
  return result;
}

describe('NAT, vrouter and kernel side by side', () => {
  it('masquerades the LAN, forwards the port from outside and from inside, and translates ICMP errors, as the kernel does', async () => {
    const kernelOutcomes = await outcomes(kernel);
    const ourOutcomes = await outcomes(ours);
    expect(kernelOutcomes).toEqual({
      'client pings outside': 'answered',
      'client TCP to outside': '20000',
      'client UDP to outside': JSON.stringify({ reply: 'hi' }),
      'port unreachable about a NATed datagram': JSON.stringify({ error: 'ECONNREFUSED' }),
      'outside reaches the port forward': 'sent 3000, the DMZ server received 3000',
      'client reaches the port forward through the public address (hairpin)': 'sent 4000, the DMZ server received 4000',
      'outside pings the public address (forwarded to the DMZ)': 'answered',
      'the same with TTL 1': 'Time to live exceeded from 203.0.113.1',
    });
    expect(ourOutcomes).toEqual(kernelOutcomes);
  });

  it('lists NATed connections as the kernel lists them', async () => {
    const shape = (lines: string[]): string[] =>
      lines
        .filter((line) => !line.startsWith('icmp'))
        .map((line) => line.replace(/^(\w+\s+\d+) \d+ /, '$1 T ').replace(/^(tcp +6 T )[A-Z_]+ /, '$1S ').replace(/port=\d{5}/g, 'port=E'))
        .sort();
    const kernelLines = spawnSync('ip', ['netns', 'exec', kernel.ns('router'), 'conntrack', '-L'], { encoding: 'utf8' }).stdout.trim().split('\n');
    const ourLines = (await controlCall(router.controlSocket, 'conntrack-list', {})) as string[];
    expect(ourLines.find((line) => line.includes('dport=5003'))).toMatch(
      /src=10\.0\.1\.2 dst=203\.0\.113\.2 sport=\d+ dport=5003 src=203\.0\.113\.2 dst=203\.0\.113\.1 sport=5003 dport=\d+ \[ASSURED\]/,
    );
    expect(ourLines.find((line) => line.includes('dport=8080'))).toMatch(/dport=8080 src=10\.0\.2\.2 dst=\S+ sport=5001 dport=\d+/);
    expect(shape(ourLines)).toEqual(shape(kernelLines));
  });
});
