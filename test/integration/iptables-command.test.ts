/**
 * `vrouter iptables` beside the kernel's iptables, on a vrouter and a kernel router with the same
 * rules: the listings must be the same text, an edit must change what gets through at once on
 * both (ping and TCP between real namespaces), and refusals must print the same and exit the same.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpKernelRouter } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN, startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { pingOutcome, runPeer, startPeer } from '../support/peers.ts';

const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:lan-in - [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -j lan-in
-A lan-in -p tcp --dport 22 -m comment --comment "no ssh out" -j REJECT --reject-with tcp-reset
-A lan-in ! -d 10.0.0.0/8 -p udp -m multiport --dports 53,123 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:5001
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
`;

const LINKS = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'wan0', role: 'server', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

const viaVrouter = new Topology(uniqueTag('vi'), ['client', 'server']);
const viaKernel = new Topology(uniqueTag('ki'), ['client', 'server', 'router']);
let router: RouterProcess;

beforeAll(async () => {
  const indented = RULES.split('\n').map((line) => `  ${line}`).join('\n');
  router = await startRouterProcess(`control: /tmp/${viaVrouter.tag}.sock
interfaces:
${LINKS.map((l) => `  - { name: ${l.name}, netns: ${viaVrouter.ns(l.role)}, address: ${l.address}, peer: ${l.peer} }`).join('\n')}
rules: |
${indented}
`);
  setUpKernelRouter(viaKernel, 'router', LINKS, RULES);
});

afterAll(async () => {
  await router?.stop();
  viaVrouter.destroy();
  viaKernel.destroy();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

const vrouter = (...args: string[]): Run => spawnSync(process.execPath, [VROUTER_BIN, 'iptables', ...args, '--socket', router.controlSocket], { encoding: 'utf8', timeout: 20_000 });
const kernel = (...args: string[]): Run => viaKernel.exec('router', 'iptables', args);
/** The same command on both routers, where it must do the same. */
const both = (...args: string[]): { vrouter: Run; kernel: Run } => ({ vrouter: vrouter(...args), kernel: kernel(...args) });

/** What one command printed and its status, with the kernel's version prefix and help pointer made vrouter's. */
function outcome(run: Run): Run {
  const stderr = run.stderr.replace(/^iptables v[\d.]+ \(nf_tables\): +/gm, 'iptables: ').replace("Try `iptables -h' or 'iptables --help'", "Try `vrouter iptables --help'");
  return { status: run.status, stdout: run.stdout, stderr };
}

describe('vrouter iptables and the kernel iptables, side by side', () => {
  it('lists the same rules in the same text: -L -n -v --line-numbers, -L, -S', () => {
    for (const table of ['filter', 'nat']) {
      for (const flags of [['-L', '-n', '-v', '--line-numbers'], ['-L'], ['-S'], ['-L', 'lan-in', '2', '-v', '-x']]) {
        if (table === 'nat' && flags.includes('lan-in')) continue;
        const { vrouter: ours, kernel: theirs } = both('-t', table, ...flags);
        expect(theirs.status).toBe(0);
        expect(outcome(ours)).toEqual(outcome(theirs));
      }
    }
  });

  it('stops pings through FORWARD after -A ... -j DROP, lets them through after -D, and counts them', () => {
    for (const topology of [viaVrouter, viaKernel]) expect(pingOutcome(topology, 'client', '203.0.113.2')).toBe('answered');
    const appended = both('-A', 'FORWARD', '-p', 'icmp', '--icmp-type', 'echo-request', '-j', 'DROP');
    expect([appended.vrouter.status, appended.kernel.status]).toEqual([0, 0]);
    for (const topology of [viaVrouter, viaKernel]) expect(pingOutcome(topology, 'client', '203.0.113.2')).toBe('nothing');
    // One echo request dropped on each: the same line, counters included.
    const listed = both('-L', 'FORWARD', '3', '-v', '-n', '-x');
    expect(listed.vrouter.stdout).toBe(listed.kernel.stdout);
    expect(listed.vrouter.stdout).toMatch(/^ +1 +84 DROP +1 {4}-- /);
    const deleted = both('-D', 'FORWARD', '-p', 'icmp', '--icmp-type', 'echo-request', '-j', 'DROP');
    expect([deleted.vrouter.status, deleted.kernel.status]).toEqual([0, 0]);
    for (const topology of [viaVrouter, viaKernel]) expect(pingOutcome(topology, 'client', '203.0.113.2')).toBe('answered');
  });

  it('stops new TCP connections after -I FORWARD 1 ... -j DROP, and lets them through after -D FORWARD 1', async () => {
    /** Each router's client connecting to a fresh one-connection sink on the server. */
    const connect = async (): Promise<string[]> => {
      const sinks = await Promise.all([viaVrouter, viaKernel].map((topology) => startPeer(topology, 'server', ['tcp-sink', '5001'])));
      try {
        return [viaVrouter, viaKernel].map((topology) => String(runPeer(topology, 'client', ['tcp-connect', '203.0.113.2', '5001', '1500']).result));
      } finally {
        for (const sink of sinks) sink.child.kill();
      }
    };
    expect(await connect()).toEqual(['connected', 'connected']);
    const inserted = both('-I', 'FORWARD', '1', '-p', 'tcp', '--dport', '5001', '--syn', '-j', 'DROP');
    expect([inserted.vrouter.status, inserted.kernel.status]).toEqual([0, 0]);
    expect(await connect()).toEqual(['timeout', 'timeout']);
    const deleted = both('-D', 'FORWARD', '1');
    expect([deleted.vrouter.status, deleted.kernel.status]).toEqual([0, 0]);
    expect(await connect()).toEqual(['connected', 'connected']);
  });

  it('refuses what the kernel iptables refuses, with the same message and exit status, and changes nothing', () => {
    const before = vrouter('-S').stdout;
    for (const args of [
      ['-D', 'FORWARD', '-p', 'icmp', '-j', 'DROP'],
      ['-D', 'FORWARD', '9'],
      ['-I', 'lan-in', '7', '-j', 'ACCEPT'],
      ['-A', 'nope', '-j', 'ACCEPT'],
      ['-N', 'lan-in'],
      ['-X', 'lan-in'],
      ['-P', 'lan-in', 'DROP'],
      ['-E', 'nope', 'other'],
      ['-R', 'FORWARD', '1', '-s', '1.1.1.1,2.2.2.2', '-j', 'ACCEPT'],
      ['-S', '-n'],
      ['-L', 'FORWARD', '0'],
    ]) {
      const { vrouter: ours, kernel: theirs } = both(...args);
      expect(theirs.status).not.toBe(0);
      expect(outcome(ours)).toEqual(outcome(theirs));
    }
    expect(vrouter('-S').stdout).toBe(before);
  });

  it('keeps the rules iptables-restore --noflush does not name, and --test changes nothing', () => {
    const restore = (args: string[], input: string): { vrouter: Run; kernel: Run } => ({
      vrouter: spawnSync(process.execPath, [VROUTER_BIN, 'iptables-restore', ...args, '--socket', router.controlSocket], { input, encoding: 'utf8', timeout: 20_000 }),
      kernel: spawnSync('ip', ['netns', 'exec', viaKernel.ns('router'), 'iptables-restore', ...args], { input, encoding: 'utf8' }),
    });
    const added = restore(['--noflush'], '*filter\n-A lan-in -d 192.0.2.0/24 -j DROP\n-I FORWARD 2 -s 198.51.100.7 -j DROP\nCOMMIT\n');
    expect([added.vrouter.status, added.kernel.status]).toEqual([0, 0]);
    const tested = restore(['--test'], '*filter\n-F\nCOMMIT\n');
    expect([tested.vrouter.status, tested.kernel.status]).toEqual([0, 0]);
    for (const table of ['filter', 'nat']) {
      const listed = both('-t', table, '-S');
      expect(listed.vrouter.stdout).toBe(listed.kernel.stdout);
    }
    expect(vrouter('-S', 'lan-in').stdout).toContain('-A lan-in -d 192.0.2.0/24 -j DROP\n');
  });
});
