/**
 * The TCP state machine and the `conntrack -E` lines it makes, through vrouter and through the
 * kernel side by side, driven by exact segments: every way a connection can close (client FIN
 * first, server FIN first, the server's FIN carrying the ACK of the client's, simultaneous FINs,
 * FINs with data), an RST answering the SYN, an RST on an established connection until it
 * expires, a connection picked up in the middle, and a `conntrack -D`. Each case has its own client
 * port; the event lines of each must be the same on both routers, byte for byte (only the portid of
 * a `-D` differs: it is the requesting process). Then `conntrack -S` prints its lines alike.
 *
 * Scripted segments, not real sockets: which segments real endpoints send depends on the router's
 * latency (through a slower router the server's stack acks the client's FIN before its
 * application closes, so FIN_WAIT, CLOSE_WAIT, LAST_ACK; through the kernel its FIN often carries
 * that ACK, so FIN_WAIT, LAST_ACK), and each sequence is tracked here as the kernel tracks it.
 *
 * Segments are written by test/support/packets.ts and sent from raw IP sockets in the client and
 * server namespaces (one injector process that opens a socket in each by setns). The endpoints'
 * own kernels drop all TCP arriving there, so that only the scripted segments exist.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpFlag } from '../../router/wire/tcp.ts';
import { setUpKernelRouter, vrouterConfigOf } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN, startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { listenForEvents } from '../support/conntrack-events.ts';
import { tcpPacket } from '../support/packets.ts';

const CLIENT = '10.0.1.2';
const SERVER = '203.0.113.2';
const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
`;
const LINKS = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: `${CLIENT}/24` },
  { name: 'wan0', role: 'server', address: '203.0.113.1/24', peer: `${SERVER}/24` },
];

/** Sends [role, hex] items in order, `gap` ms apart, from a raw IP socket in each role's namespace. */
const INJECT_PY = `
import ctypes, json, os, socket, sys, time
plan = json.load(open(sys.argv[1]))
libc = ctypes.CDLL(None, use_errno=True)
sockets = {}
for role, ns in plan['namespaces'].items():
    fd = os.open('/run/netns/' + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), 'setns ' + ns)
    os.close(fd)
    sockets[role] = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for role, hexdata in plan['packets']:
    data = bytes.fromhex(hexdata)
    sockets[role].sendto(data, (socket.inet_ntoa(data[16:20]), 0))
    time.sleep(plan['gap'] / 1000)
`;

const { SYN, ACK, FIN, RST, PSH } = TcpFlag;
type Step = ['client' | 'server', number, number, number, number?];

/** A case: its client port and segments as [sender, seq, ack, flags, payload bytes]. */
function handshake(): Step[] {
  return [
    ['client', 1000, 0, SYN],
    ['server', 5000, 1001, SYN | ACK],
    ['client', 1001, 5001, ACK],
  ];
}

const CASES: Record<string, { port: number; steps: Step[] }> = {
  'client FIN, server ACK, server FIN, client ACK': {
    port: 41001,
    steps: [...handshake(), ['client', 1001, 5001, FIN | ACK], ['server', 5001, 1002, ACK], ['server', 5001, 1002, FIN | ACK], ['client', 1002, 5002, ACK]],
  },
  'client FIN, server FIN carrying the ACK, client ACK': {
    port: 41002,
    steps: [...handshake(), ['client', 1001, 5001, FIN | ACK], ['server', 5001, 1002, FIN | ACK], ['client', 1002, 5002, ACK]],
  },
  'server FIN, client ACK, client FIN, server ACK': {
    port: 41003,
    steps: [...handshake(), ['server', 5001, 1001, FIN | ACK], ['client', 1001, 5002, ACK], ['client', 1001, 5002, FIN | ACK], ['server', 5002, 1002, ACK]],
  },
  'simultaneous FINs, then both ACKs': {
    port: 41004,
    steps: [...handshake(), ['client', 1001, 5001, FIN | ACK], ['server', 5001, 1001, FIN | ACK], ['client', 1002, 5002, ACK], ['server', 5002, 1002, ACK]],
  },
  'FINs with data': {
    port: 41005,
    steps: [
      ...handshake(),
      ['client', 1001, 5001, FIN | PSH | ACK, 100],
      ['server', 5001, 1102, ACK],
      ['server', 5001, 1102, FIN | PSH | ACK, 50],
      ['client', 1102, 5052, ACK],
    ],
  },
  'server FIN carrying data and the ACK of the client FIN': {
    port: 41006,
    steps: [...handshake(), ['client', 1001, 5001, FIN | ACK], ['server', 5001, 1002, FIN | PSH | ACK, 50], ['client', 1002, 5052, ACK]],
  },
  'RST answering the SYN': {
    port: 41007,
    steps: [
      ['client', 1000, 0, SYN],
      ['server', 0, 1001, RST | ACK],
    ],
  },
  'RST on an established connection, then expiry': {
    port: 41008,
    steps: [...handshake(), ['client', 1001, 5001, RST]],
  },
  'picked up in the middle': {
    port: 41009,
    steps: [
      ['client', 1001, 5001, ACK],
      ['server', 5001, 1001, ACK],
      ['client', 1001, 5001, ACK],
    ],
  },
};
const DELETED_PORT = 41010;

function packetsOf(port: number, steps: Step[]): [string, string][] {
  return steps.map(([from, seq, ack, flags, payload]) => {
    const [src, dst, srcPort, dstPort] = from === 'client' ? [CLIENT, SERVER, port, 80] : [SERVER, CLIENT, 80, port];
    const buf = tcpPacket({ src, dst }, { srcPort, dstPort, seq, ack, flags, window: 64240, ...(payload ? { payload: new Uint8Array(payload).fill(0x61) } : {}) });
    return [from, buf.toString('hex')];
  });
}

const dir = mkdtempSync(join(tmpdir(), 'vrouter-tcp-events-'));
const injector = join(dir, 'inject.py');
const viaVrouter = new Topology(uniqueTag('ve'), ['client', 'server']);
const viaKernel = new Topology(uniqueTag('ke'), ['client', 'server', 'router']);
let router: RouterProcess;

beforeAll(async () => {
  writeFileSync(injector, INJECT_PY);
  router = await startRouterProcess(vrouterConfigOf(viaVrouter, LINKS, RULES));
  setUpKernelRouter(viaKernel, 'router', LINKS, RULES);
  for (const topology of [viaVrouter, viaKernel]) {
    for (const role of ['client', 'server']) expect(topology.exec(role, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '-j', 'DROP']).status).toBe(0);
  }
});

afterAll(async () => {
  await router?.stop();
  viaVrouter.destroy();
  viaKernel.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const linesOf = (output: string): string[] => output.split('\n').filter((line) => line.trim());

/** `conntrack -E` on either router, once it reports; `stop` returns its lines. */
async function watch(topology: Topology): Promise<{ stop: () => Promise<string[]> }> {
  if (topology === viaVrouter) {
    const listener = await listenForEvents(router.controlSocket);
    return {
      stop: async () => {
        await listener.stop();
        return linesOf(listener.stdout());
      },
    };
  }
  const child = topology.spawn('router', 'conntrack', ['-E']);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.resume();
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // conntrack-tools says nothing when it has subscribed: it is listening once a SYN sent now shows
  // up (each probe on a port of its own: a repeated SYN makes no event).
  for (let probe = 40900; !output.includes(' sport=') && probe < 40950; probe++) {
    inject(topology, packetsOf(probe, [['client', 1000, 0, SYN]]));
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    stop: async () => {
      // conntrack-tools writes to a pipe through stdio buffers: SIGINT makes it flush and exit.
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return linesOf(output);
    },
  };
}

function inject(topology: Topology, packets: [string, string][]): void {
  const plan = join(dir, `${topology.tag}.json`);
  writeFileSync(plan, JSON.stringify({ namespaces: { client: topology.ns('client'), server: topology.ns('server') }, packets, gap: 40 }));
  const run = spawnSync('python3', [injector, plan], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`injector: exit ${run.status}: ${run.stderr}`);
}

/** `conntrack -D` of the client port, by conntrack-tools on the kernel or the vrouter CLI. */
function deleteByPort(topology: Topology, port: number): void {
  const args = ['-D', '-p', 'tcp', '--sport', String(port)];
  const run =
    topology === viaVrouter
      ? spawnSync(process.execPath, [VROUTER_BIN, 'conntrack', ...args, '--socket', router.controlSocket], { encoding: 'utf8' })
      : spawnSync('ip', ['netns', 'exec', topology.ns('router'), 'conntrack', ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`conntrack -D: exit ${run.status}: ${run.stderr}`);
}

/** Lists the connections: on the kernel, the dump also reaps the expired ones (their DESTROY). */
function list(topology: Topology): void {
  if (topology === viaKernel) spawnSync('ip', ['netns', 'exec', topology.ns('router'), 'conntrack', '-L'], { encoding: 'utf8' });
}

async function run(topology: Topology): Promise<string[]> {
  const events = await watch(topology);
  inject(topology, [...Object.values(CASES).flatMap(({ port, steps }) => packetsOf(port, steps)), ...packetsOf(DELETED_PORT, handshake())]);
  deleteByPort(topology, DELETED_PORT);
  // The RST's CLOSE lasts 10 s.
  await new Promise((resolve) => setTimeout(resolve, 11_000));
  list(topology);
  await new Promise((resolve) => setTimeout(resolve, 300));
  return events.stop();
}

describe('TCP events, vrouter and kernel side by side', () => {
  let lines: { vrouter: string[]; kernel: string[] };

  beforeAll(async () => {
    const [vrouter, kernel] = await Promise.all([run(viaVrouter), run(viaKernel)]);
    lines = { vrouter: vrouter!, kernel: kernel! };
    console.info(`conntrack -E lines: ${JSON.stringify(lines, null, 1)}`);
  }, 150_000);

  const ofPort = (all: string[], port: number): string[] => all.filter((line) => line.includes(` sport=${port} `));
  /**
   * Ours, where a line differs from the kernel's only by the kernel's timeout being a second
   * lower, replaced by the kernel's: on a loaded machine a jiffy may pass between the kernel's
   * refresh and its event, which then reads 119.996 s as 119.
   */
  const alignedTimeouts = (ours: string[], kernel: string[]): string[] =>
    ours.map((line, i) => {
      const split = (text: string | undefined) => /^(\s*\[\w+\] \w+ +\d+ )(\d+)( .*)$/.exec(text ?? '');
      const [mine, theirs] = [split(line), split(kernel[i])];
      return mine && theirs && mine[1] === theirs[1] && mine[3] === theirs[3] && Number(theirs[2]) === Number(mine[2]) - 1 ? kernel[i]! : line;
    });

  for (const [name, { port }] of Object.entries(CASES)) {
    it(`${name}: the same lines as the kernel`, () => {
      expect(ofPort(lines.kernel, port).length, 'the kernel reported it').toBeGreaterThan(0);
      expect(alignedTimeouts(ofPort(lines.vrouter, port), ofPort(lines.kernel, port))).toEqual(ofPort(lines.kernel, port));
    });
  }

  it('the reported case: the server FIN carrying the ACK of the client FIN is LAST_ACK (30 s)', () => {
    const shape = (line: string): string => /^ *\[(\w+)\] tcp +6 (?:(\d+) )?(\w+) /.exec(line)!.slice(1).join(' ');
    expect(ofPort(lines.kernel, 41002).map(shape)).toContain('UPDATE 30 LAST_ACK');
    expect(ofPort(lines.vrouter, 41002).map(shape)).toContain('UPDATE 30 LAST_ACK');
  });

  it('conntrack -D: the DESTROY names the requesting process, as conntrack-tools prints it', () => {
    // The portid is the process's, and the timeout left depends on when -D ran. conntrack-tools
    // adds progname= only if the requesting process is still alive when it prints the event.
    const portid = (line: string): string => line.replace(/portid=\d+( progname=\S+)?$/, 'portid=N').replace(/^\[DESTROY\] tcp {6}6 \d+ /, '[DESTROY] tcp      6 T ');
    const destroyed = (all: string[]) => ofPort(all, DELETED_PORT).filter((line) => line.startsWith('[DESTROY]'));
    expect(destroyed(lines.kernel)).toHaveLength(1);
    expect(destroyed(lines.kernel)[0]).toMatch(/ \[USERSPACE\] portid=\d+( progname=\S+)?$/);
    expect(destroyed(lines.vrouter).map(portid)).toEqual(destroyed(lines.kernel).map(portid));
    expect(alignedTimeouts(ofPort(lines.vrouter, DELETED_PORT), ofPort(lines.kernel, DELETED_PORT)).map(portid)).toEqual(ofPort(lines.kernel, DELETED_PORT).map(portid));
  });

  it('conntrack -S: the kernel\'s statistics line, field for field', () => {
    const shape = (line: string): string => line.replace(/=\d+/g, '=N');
    const kernel = spawnSync('ip', ['netns', 'exec', viaKernel.ns('router'), 'conntrack', '-S'], { encoding: 'utf8' }).stdout.split('\n')[0]!;
    const ours = spawnSync(process.execPath, [VROUTER_BIN, 'conntrack', '-S', '--socket', router.controlSocket], { encoding: 'utf8' }).stdout.split('\n');
    expect(kernel).toMatch(/^cpu=0 {3}\tfound=/);
    expect(ours.map(shape)).toEqual([shape(kernel), '']);
  });
});
