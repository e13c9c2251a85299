/**
 * TRACE beside the kernel: the same rules (a TRACE rule in raw, MASQUERADE, a user chain jumped
 * to from FORWARD) in vrouter and in a kernel router, one ping through each; the TRACE lines the
 * kernel logs (iptables-legacy, whose TRACE goes to the kernel log; nf_log_all_netns on for the
 * test, as it was put back after) equal vrouter's, field by field. What legitimately differs is
 * taken out: the MAC field (a veth's addresses, a TUN has none), the IP id and the ping's id.
 * Only the namespaces made here are sent to.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpKernelRouter, vrouterConfigOf, type KernelLink } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';

const RULES = `*raw
-A PREROUTING -p icmp -j TRACE
COMMIT
*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:checks - [0:0]
-A checks -p udp -j DROP
-A FORWARD -j checks
COMMIT
`;
const LINKS: KernelLink[] = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'wan0', role: 'server', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];
const ALL_NETNS = '/proc/sys/net/netfilter/nf_log_all_netns';

const ours = new Topology(uniqueTag('vt'), ['client', 'server']);
const kernel = new Topology(uniqueTag('kt'), ['client', 'server', 'router']);
let router: RouterProcess;
let logAllBefore = '0';

beforeAll(async () => {
  router = await startRouterProcess(vrouterConfigOf(ours, LINKS, RULES));
  setUpKernelRouter(kernel, 'router', LINKS);
  execFileSync('ip', ['netns', 'exec', kernel.ns('router'), 'iptables-legacy-restore'], { input: RULES });
  logAllBefore = readFileSync(ALL_NETNS, 'utf8').trim();
  writeFileSync(ALL_NETNS, '1');
});

afterAll(async () => {
  writeFileSync(ALL_NETNS, logAllBefore);
  await router?.stop();
  ours.destroy();
  kernel.destroy();
});

/** A TRACE line without what legitimately differs: the MAC field, the IP id, the ICMP id. */
function comparable(line: string): string {
  return line
    .replace(/^.*?TRACE: /, 'TRACE: ')
    .replace(/ MAC=\S*/, ' MAC=')
    .replace(/( TTL=\d+) ID=\d+/, '$1 ID=N')
    .replace(/( CODE=\d+) ID=\d+/, '$1 ID=N')
    .trimEnd();
}

const traceLines = (text: string): string[] => text.split('\n').filter((line) => /TRACE: \w+:/.test(line) && line.includes('PROTO=ICMP'));

describe('TRACE, vrouter and kernel side by side', () => {
  it('logs the same TRACE lines for a ping through MASQUERADE and a user chain', async () => {
    // The kernel log is a ring (a line count says nothing once it is full): lines after the last stamp seen.
    const stamp = (line: string): number => Number(/^\[\s*(\d+\.\d+)\]/.exec(line)?.[1] ?? 0);
    const kernelLog = (): string[] => spawnSync('dmesg', [], { encoding: 'utf8' }).stdout.split('\n');
    const before = Math.max(0, ...kernelLog().map(stamp));
    expect(kernel.exec('client', 'ping', ['-c', '1', '-W', '2', '203.0.113.2']).status).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const kernelLines = traceLines(kernelLog().filter((line) => stamp(line) > before).join('\n')).map(comparable);
    const ourBefore = traceLines(router.output()).length;
    expect(ours.exec('client', 'ping', ['-c', '1', '-W', '2', '203.0.113.2']).status).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ourLines = traceLines(router.output()).slice(ourBefore).map(comparable);
    expect(kernelLines.map((line) => line.split(' ')[1])).toEqual([
      'raw:PREROUTING:policy:2',
      'nat:PREROUTING:policy:1',
      'filter:FORWARD:rule:1',
      'filter:checks:return:2',
      'filter:FORWARD:policy:2',
      'nat:POSTROUTING:rule:1',
      'raw:PREROUTING:policy:2',
      'filter:FORWARD:rule:1',
      'filter:checks:return:2',
      'filter:FORWARD:policy:2',
    ]);
    expect(ourLines).toEqual(kernelLines);
  });
});
