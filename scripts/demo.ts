/**
 * `npm run demo`: vrouter between a client and a server namespace. Shows ping across and to the
 * router, an ICMP error from the router, a TCP transfer through it, and the router's counters,
 * then removes everything it made. Needs root (namespaces, TUN).
 */
import { Topology, uniqueTag } from './netns-topology.ts';
import { startRouterProcess, type RouterProcess } from './router-process.ts';
import { ensurePrograms } from './system-packages.ts';
import { controlCall } from '../router/control-client.ts';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const PEER = join(dirname(fileURLToPath(import.meta.url)), 'traffic-peer.mjs');

function show(title: string, text: string): void {
  console.log(`\n== ${title}\n${text.trim()}`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo needs root: it creates network namespaces and TUN devices');
  ensurePrograms({ ip: 'iproute2', ping: 'iputils-ping' });
  const topology = new Topology(uniqueTag('demo'), ['client', 'server']);
  let router: RouterProcess | null = null;
  try {
    const socket = `/tmp/${topology.tag}.sock`;
    const config = `control: ${socket}
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('server')}, address: 203.0.113.1/24, peer: 203.0.113.2/24, mtu: 1500 }
`;
    show('router config', config);
    router = await startRouterProcess(config);
    show('router', router.output());
    show('client$ ping -c 3 203.0.113.2 (the server, through the router)', topology.exec('client', 'ping', ['-c', '3', '-i', '0.2', '203.0.113.2']).stdout);
    show('client$ ping -c 1 203.0.113.1 (the router\'s far address)', topology.exec('client', 'ping', ['-c', '1', '203.0.113.1']).stdout);
    show('client$ ping -c 1 -t 1 203.0.113.2 (TTL runs out at the router)', topology.exec('client', 'ping', ['-c', '1', '-t', '1', '203.0.113.2']).stdout);
    const sink = topology.spawn('server', process.execPath, [PEER, 'tcp-sink', '5001']);
    let received = '';
    sink.stdout!.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sent = topology.exec('client', process.execPath, [PEER, 'tcp-send', '203.0.113.2', '5001', '1048576']).stdout;
    await new Promise((resolve) => sink.once('exit', resolve));
    show('TCP: 1 MiB from client to server', `client sent     ${sent.trim()}\nserver received ${received.split('\n').filter((l) => l.includes('sha256')).join('')}`);
    show('vrouter stats', JSON.stringify(await controlCall(socket, 'stats'), null, 2));
  } finally {
    if (router) await router.stop();
    topology.destroy();
    console.log('\n== cleaned up: router stopped, namespaces removed');
  }
}

main().catch((error: unknown) => {
  console.error(`demo: ${(error as Error).message}`);
  process.exit(1);
});
