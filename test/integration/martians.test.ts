/**
 * Martians beside the kernel: the same probes, injected with a raw socket from the client (so the
 * client's own stack does not refuse the source), through vrouter and through a kernel router
 * with the same addresses and MASQUERADE, and what each side's host namespace then received:
 *   - an echo request to the router from the router's own address (the kernel: martian, dropped);
 *   - UDP from either of the router's own addresses, to the server (martian, not masqueraded);
 *   - UDP to the server subnet's network address (nobody owns it: no ARP answer, so the kernel
 *     drops it and says host unreachable);
 *   - UDP from a class E (240/4) source (kernel 6.18 forwards it).
 * Only the namespaces made here and the router's addresses are destinations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpKernelRouter, type KernelLink, vrouterConfigOf } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';

const RULES = '*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n';
const LINKS: KernelLink[] = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'wan0', role: 'server', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

/** Prints, as JSON, the IPv4 packets `iface` received (not sent) within the given seconds. */
const LISTEN_PY = `
import json, socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind((sys.argv[1], 0x0800))
s.settimeout(0.2)
print('listening', flush=True)
seen, end = [], time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING or len(data) < 28:
        continue
    header = (data[0] & 15) * 4
    p = {'src': socket.inet_ntoa(data[12:16]), 'dst': socket.inet_ntoa(data[16:20]), 'proto': data[9]}
    if data[9] == 17:
        p['dport'] = struct.unpack('!H', data[header + 2:header + 4])[0]
    if data[9] == 1:
        p['type'], p['code'] = data[header], data[header + 1]
        if data[header] == 3:
            inner = header + 8 + (data[header + 8] & 15) * 4
            p['about_dport'] = struct.unpack('!H', data[inner + 2:inner + 4])[0]
    seen.append(p)
print(json.dumps(seen), flush=True)
`;

/** Sends each probe with IP_HDRINCL: SRC DST udp DPORT | SRC DST echo. */
const SEND_PY = `
import socket, struct, sys
def checksum(b):
    if len(b) % 2: b += b'\\0'
    total = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while total >> 16: total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for probe in sys.argv[1:]:
    src, dst, kind, *rest = probe.split(',')
    if kind == 'udp':
        body, proto = struct.pack('!HHHH', 4000, int(rest[0]), 13, 0) + b'probe', 17
    else:
        icmp = struct.pack('!BBHHH', 8, 0, 0, 0x1111, 1) + b'martian!'
        body, proto = icmp[:2] + struct.pack('!H', checksum(icmp)) + icmp[4:], 1
    header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(header + body, (dst, 0))
`;

interface Seen {
  src: string;
  dst: string;
  proto: number;
  dport?: number;
  type?: number;
  code?: number;
  about_dport?: number;
}

function listen(topology: Topology, role: string, seconds: number): { ready: Promise<void>; seen: Promise<Seen[]> } {
  const child = topology.spawn(role, 'python3', ['-c', LISTEN_PY, role === 'client' ? 'lan0' : 'wan0', String(seconds)]);
  let out = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('listening')) markReady();
  });
  const seen = new Promise<Seen[]>((resolve) => child.once('exit', () => resolve(JSON.parse(out.split('\n')[1] || '[]') as Seen[])));
  return { ready, seen };
}

/** What each probe came to, as the client's and the server's namespaces saw it. */
async function probe(topology: Topology): Promise<Record<string, string>> {
  // The kernel answers an unresolved neighbour after its ARP probes give up (about 3 s).
  const client = listen(topology, 'client', 5);
  const server = listen(topology, 'server', 5);
  await Promise.all([client.ready, server.ready]);
  const sent = topology.exec('client', 'python3', ['-c', SEND_PY, '10.0.1.1,10.0.1.1,echo', '10.0.1.1,203.0.113.2,udp,9001', '203.0.113.1,203.0.113.2,udp,9002', '10.0.1.2,203.0.113.0,udp,9003', '240.0.0.1,203.0.113.2,udp,9005']);
  expect(sent.stderr).toBe('');
  const [toClient, toServer] = await Promise.all([client.seen, server.seen]);
  const atServer = (port: number): string => toServer.filter((p) => p.dport === port).map((p) => `${p.src} > ${p.dst}`).join(', ') || 'nothing';
  return {
    'echo request from the router own address': toClient.filter((p) => p.type === 0).map((p) => `reply ${p.src} > ${p.dst}`).join(', ') || 'no reply',
    'UDP from the router LAN address, at the server': atServer(9001),
    'UDP from the router WAN address, at the server': atServer(9002),
    'UDP to the network address, at the server': toServer.filter((p) => p.dst === '203.0.113.0').length ? 'arrived' : 'nothing',
    'UDP to the network address, back at the client': toClient.filter((p) => p.about_dport === 9003).map((p) => `ICMP ${p.type}/${p.code}`).join(', ') || 'nothing',
    'UDP from 240.0.0.1, at the server': atServer(9005),
  };
}

const ours = new Topology(uniqueTag('vm'), ['client', 'server']);
const kernel = new Topology(uniqueTag('km'), ['client', 'server', 'router']);
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

describe('martians, vrouter and kernel side by side', () => {
  it('drops the router own addresses as source and what nobody owns, forwards class E, as the kernel does', async () => {
    const [kernelOutcomes, ourOutcomes] = [await probe(kernel), await probe(ours)];
    expect(kernelOutcomes).toEqual({
      'echo request from the router own address': 'no reply',
      'UDP from the router LAN address, at the server': 'nothing',
      'UDP from the router WAN address, at the server': 'nothing',
      'UDP to the network address, at the server': 'nothing',
      'UDP to the network address, back at the client': 'ICMP 3/1',
      'UDP from 240.0.0.1, at the server': '203.0.113.1 > 203.0.113.2',
    });
    expect(ourOutcomes).toEqual(kernelOutcomes);
  }, 30_000);
});
