/**
 * `npm run bench`: forwarding throughput, measured side by side in one run, on the same client and
 * server namespaces and addresses, through these routers:
 *   - vrouter (this project, TUN devices, full packet path with its hook points), once with no
 *     rules and once as a stateful firewall with MASQUERADE (conntrack, NAT, filter on every packet);
 *   - a lab of two such routers in one process, one behind the other (double NAT): the second
 *     router adds no I/O, only its packet path, which this row measures against the one above;
 *   - the NAT router again with a live capture of all its interfaces running (to /dev/null);
 *   - a plain C forwarder that copies packets between two TUNs without parsing them (the ceiling
 *     for a TUN-based router that moves one packet per read and write, compiled here from
 *     scripts/bench/c-forwarder.c);
 *   - the same C forwarder with offload (IFF_VNET_HDR, TUNSETOFFLOAD CSUM|TSO4|TSO6): TCP moves
 *     as 64 KiB super-packets, the ceiling for a TUN router that keeps them whole;
 *   - the Linux kernel forwarding between veths in a router namespace.
 * Each gets an iperf3 TCP stream and a 64-byte UDP flood; the figures, iperf3's TCP retransmits,
 * and the ratios against both C forwarders and the kernel are printed.
 * Options: --seconds N (per measurement, default 5), --rounds N (default 1; the best round counts),
 * --prefix P (namespace name prefix, default bn, so runs beside other namespace users stay apart),
 * --only NAME,NAME (just those rows, e.g. --only 'vrouter+nat,vrouter 2nat'; ratios need their bases).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setUpKernelRouter } from './kernel-router.ts';
import { Topology, uniqueTag } from './netns-topology.ts';
import { VROUTER_BIN, startRouterProcess } from './router-process.ts';
import { ensurePrograms } from './system-packages.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT = { address: '10.0.1.2/24', router: '10.0.1.1/24' };
const SERVER = { address: '203.0.113.2/24', router: '203.0.113.1/24' };
const SERVER_IP = '203.0.113.2';

interface Figures {
  tcpGbps: number;
  tcpRetransmits: number;
  udpPps: number;
}

/** Brings up one forwarder between the topology's client and server; returns its teardown. */
type Forwarder = (topology: Topology) => Promise<() => Promise<void>>;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

/** A stateful firewall and MASQUERADE: conntrack, NAT and the filter table on every packet. */
const NAT_FIREWALL_RULES = `rules: |
  *nat
  -A POSTROUTING -o wan0 -j MASQUERADE
  COMMIT
  *filter
  :FORWARD DROP [0:0]
  -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  -A FORWARD -i lan0 -j ACCEPT
  COMMIT
`;

function vrouter(extraConfig = ''): Forwarder {
  return async (topology) => {
    const router = await startRouterProcess(`control: /tmp/${topology.tag}.sock
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: ${CLIENT.router}, peer: ${CLIENT.address} }
  - { name: wan0, netns: ${topology.ns('server')}, address: ${SERVER.router}, peer: ${SERVER.address} }
${extraConfig}`);
    return async () => void (await router.stop());
  };
}

/**
 * The NAT router with a live capture of every interface running (`vrouter capture -w /dev/null`):
 * what looking costs while someone looks.
 */
function capturing(): Forwarder {
  return async (topology) => {
    const stop = await vrouter(NAT_FIREWALL_RULES)(topology);
    const capture = spawn(process.execPath, [VROUTER_BIN, 'capture', '--socket', `/tmp/${topology.tag}.sock`, '-w', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForLine(capture, 'listening', 'stderr');
    return async () => {
      capture.kill('SIGINT');
      await new Promise((resolve) => capture.once('exit', resolve));
      await stop();
    };
  };
}

/** Two stateful-firewall MASQUERADE routers in one process, client -> home -> cgn -> server. */
function doubleNat(): Forwarder {
  const firewall = (lan: string, wan: string): string => `|
      *nat
      -A POSTROUTING -o ${wan} -j MASQUERADE
      COMMIT
      *filter
      :FORWARD DROP [0:0]
      -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A FORWARD -i ${lan} -j ACCEPT
      COMMIT`;
  return async (topology) => {
    const router = await startRouterProcess(`name: ${topology.tag}
control: /tmp/${topology.tag}.sock
hosts:
  client: { segment: lan, address: ${CLIENT.address}, gateway: ${CLIENT.router.split('/')[0]}, netns: ${topology.ns('client')} }
  server: { segment: wan, address: ${SERVER.address}, gateway: ${SERVER.router.split('/')[0]}, netns: ${topology.ns('server')} }
routers:
  home:
    interfaces:
      - { name: lan0, segment: lan, address: ${CLIENT.router} }
      - { name: wan0, segment: carrier, address: 100.64.0.2/24 }
    routes: [ { to: default, via: 100.64.0.1 } ]
    rules: ${firewall('lan0', 'wan0')}
  cgn:
    interfaces:
      - { name: in0, segment: carrier, address: 100.64.0.1/24 }
      - { name: wan0, segment: wan, address: ${SERVER.router} }
    rules: ${firewall('in0', 'wan0')}
`);
    return async () => void (await router.stop());
  };
}

function cForwarder(binary: string, offload: boolean): Forwarder {
  return async (topology) => {
    const a = `cf${process.pid}a`;
    const b = `cf${process.pid}b`;
    const child = spawn(binary, [...(offload ? ['--offload'] : []), a, b], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForLine(child, 'ready');
    for (const [name, role, address] of [[a, 'client', CLIENT.address], [b, 'server', SERVER.address]] as const) {
      const ns = topology.ns(role);
      ip(['link', 'set', name, 'netns', ns]);
      ip(['-n', ns, 'addr', 'add', address, 'dev', name]);
      ip(['-n', ns, 'link', 'set', name, 'up']);
      ip(['-n', ns, 'route', 'replace', 'default', 'dev', name]);
    }
    return async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    };
  };
}

const kernel: Forwarder = async (topology) => {
  setUpKernelRouter(topology, 'router', [
    { name: 'lan0', role: 'client', address: CLIENT.router, peer: CLIENT.address },
    { name: 'wan0', role: 'server', address: SERVER.router, peer: SERVER.address },
  ]);
  return async () => undefined;
};

function waitForLine(child: ChildProcess, word: string, stream: 'stdout' | 'stderr' = 'stdout'): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`no "${word}" from ${child.spawnfile}`)), 10_000);
    child[stream]!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (output.includes(word)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${child.spawnfile} exited with ${code}`)));
  });
}

function iperf(topology: Topology, args: string[], seconds: number): Record<string, any> {
  const result = topology.exec('client', 'iperf3', ['-c', SERVER_IP, '-t', String(seconds), '-J', ...args], (seconds + 20) * 1000);
  const report = JSON.parse(result.stdout) as Record<string, any>;
  if (report.error) throw new Error(`iperf3 ${args.join(' ')}: ${report.error}`);
  return report;
}

async function measure(name: string, forwarder: Forwarder, seconds: number, prefix: string): Promise<Figures> {
  const topology = new Topology(uniqueTag(prefix), ['client', 'server', 'router']);
  let teardown: (() => Promise<void>) | null = null;
  try {
    teardown = await forwarder(topology);
    const server = topology.spawn('server', 'iperf3', ['-s']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ping = topology.exec('client', 'ping', ['-c', '1', '-W', '2', SERVER_IP]);
    if (ping.status !== 0) throw new Error(`${name}: no connectivity before measuring:\n${ping.stdout}`);
    const tcp = iperf(topology, [], seconds);
    const udp = iperf(topology, ['-u', '-l', '64', '-b', '0'], seconds);
    server.kill();
    const sum = udp.end.sum as { packets: number; lost_packets: number; seconds: number };
    return {
      tcpGbps: (tcp.end.sum_received.bits_per_second as number) / 1e9,
      tcpRetransmits: (tcp.end.sum_sent.retransmits as number | undefined) ?? 0,
      udpPps: (sum.packets - sum.lost_packets) / sum.seconds,
    };
  } finally {
    if (teardown) await teardown();
    topology.destroy();
  }
}

const BASES = ['c-forwarder', 'c-offload', 'kernel', 'vrouter+nat'] as const;

/** The best figures of each router, and each as a ratio of every base (the retransmits of the best TCP round). */
function printTable(rows: [string, Figures][]): void {
  const figures = new Map(rows);
  const ratios = (value: (f: Figures) => number, f: Figures) =>
    BASES.map((base) => (figures.has(base) ? (value(f) / value(figures.get(base)!)).toFixed(2) : '-').padStart(9)).join('');
  const baseHeads = ['vs C', 'vs C+off', 'vs kern', 'vs 1nat'].map((head) => head.padStart(9)).join('');
  console.log(`\n${'router'.padEnd(12)} ${'TCP Gbit/s'.padStart(11)} ${'retr'.padStart(6)}${baseHeads} ${'UDP 64B pps'.padStart(12)}${baseHeads}`);
  for (const [name, f] of rows) {
    console.log(
      `${name.padEnd(12)} ${f.tcpGbps.toFixed(3).padStart(11)} ${String(f.tcpRetransmits).padStart(6)}${ratios((x) => x.tcpGbps, f)} ${Math.round(f.udpPps).toString().padStart(12)}${ratios((x) => x.udpPps, f)}`,
    );
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root: it creates network namespaces and TUN devices');
  ensurePrograms({ ip: 'iproute2', ping: 'iputils-ping', iperf3: 'iperf3', cc: 'gcc' });
  const seconds = option('--seconds', 5);
  const rounds = option('--rounds', 1);
  const prefixAt = process.argv.indexOf('--prefix');
  const prefix = prefixAt < 0 ? 'bn' : process.argv[prefixAt + 1]!;
  if (!/^[a-z]{1,4}$/.test(prefix)) throw new Error(`--prefix must be 1 to 4 lowercase letters, got ${JSON.stringify(prefix)}`);
  const build = mkdtempSync(join(tmpdir(), 'vrouter-bench-'));
  try {
    const binary = join(build, 'c-forwarder');
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', binary, join(HERE, 'bench/c-forwarder.c')], { stdio: 'inherit' });
    const forwarders: [string, Forwarder][] = [
      ['vrouter', vrouter()],
      ['vrouter+nat', vrouter(NAT_FIREWALL_RULES)],
      ['vrouter 2nat', doubleNat()],
      ['vrouter+cap', capturing()],
      ['c-forwarder', cForwarder(binary, false)],
      ['c-offload', cForwarder(binary, true)],
      ['kernel', kernel],
    ];
    const onlyAt = process.argv.indexOf('--only');
    const only = onlyAt < 0 ? null : process.argv[onlyAt + 1]!.split(',');
    if (only) {
      const unknown = only.filter((name) => !forwarders.some(([known]) => known === name));
      if (unknown.length) throw new Error(`--only: no row ${unknown.join(', ')} (rows: ${forwarders.map(([name]) => name).join(', ')})`);
      forwarders.splice(0, forwarders.length, ...forwarders.filter(([name]) => only.includes(name)));
    }
    const best = new Map<string, Figures>();
    for (let round = 1; round <= rounds; round++) {
      for (const [name, forwarder] of forwarders) {
        const figures = await measure(name, forwarder, seconds, prefix);
        console.log(
          `round ${round} ${name.padEnd(12)} TCP ${figures.tcpGbps.toFixed(3)} Gbit/s (${figures.tcpRetransmits} retransmits)   UDP 64 B ${Math.round(figures.udpPps)} packets/s delivered`,
        );
        const previous = best.get(name);
        best.set(name, {
          tcpGbps: Math.max(previous?.tcpGbps ?? 0, figures.tcpGbps),
          tcpRetransmits: previous && previous.tcpGbps > figures.tcpGbps ? previous.tcpRetransmits : figures.tcpRetransmits,
          udpPps: Math.max(previous?.udpPps ?? 0, figures.udpPps),
        });
      }
    }
    printTable(forwarders.map(([name]) => [name, best.get(name)!]));
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
});
