/**
 * The reference: the Linux kernel routing between the same namespaces, with the same addresses,
 * interface names and iptables-restore rules as a vrouter config, so that a test or benchmark can
 * run one case through both and compare. The router is a namespace joined to each host namespace
 * by a veth pair whose two ends carry the interface's name.
 */
import { execFileSync } from 'node:child_process';
import type { Topology } from './netns-topology.ts';

export interface KernelLink {
  /** Interface name, as in the vrouter config (used by -i/-o in the rules). */
  name: string;
  /** Topology role of the host namespace on the other end. */
  role: string;
  /** Router address with prefix, e.g. 10.0.1.1/24. */
  address: string;
  /** Host address with prefix, e.g. 10.0.1.2/24. */
  peer: string;
  mtu?: number;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Builds the kernel router in `topology`'s namespace `routerRole` and loads `rules`, if any. */
export function setUpKernelRouter(topology: Topology, routerRole: string, links: KernelLink[], rules?: string): string {
  const router = topology.ns(routerRole);
  for (const link of links) {
    const host = topology.ns(link.role);
    ip(['link', 'add', link.name, 'netns', router, 'type', 'veth', 'peer', 'name', link.name, 'netns', host]);
    for (const [ns, address] of [[router, link.address], [host, link.peer]] as const) {
      if (link.mtu) ip(['-n', ns, 'link', 'set', link.name, 'mtu', String(link.mtu)]);
      ip(['-n', ns, 'addr', 'add', address, 'dev', link.name]);
      ip(['-n', ns, 'link', 'set', link.name, 'up']);
    }
    ip(['-n', host, 'route', 'replace', 'default', 'via', link.address.split('/')[0]!]);
  }
  execFileSync('ip', ['netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (rules) execFileSync('ip', ['netns', 'exec', router, 'iptables-restore'], { input: rules });
  return router;
}

/** The vrouter one-router config for the same links and rules: what a test runs beside the kernel router. */
export function vrouterConfigOf(topology: Topology, links: readonly KernelLink[], rules: string): string {
  return `control: /tmp/${topology.tag}.sock
interfaces:
${links.map((l) => `  - { name: ${l.name}, netns: ${topology.ns(l.role)}, address: ${l.address}, peer: ${l.peer}${l.mtu ? `, mtu: ${l.mtu}` : ''} }`).join('\n')}
rules: |
${rules.trimEnd().split('\n').map((line) => `  ${line}`).join('\n')}
`;
}
