/**
 * A stateful firewall through vrouter and through the kernel, with the same rules:
 * FORWARD DROP, ESTABLISHED,RELATED accepted, NEW only from lan0. Outcomes must match each other
 * and what such a firewall promises; then conntrack -L/-E and iptables-save -c are checked.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpKernelRouter, vrouterConfigOf } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN, startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { listenForEvents } from '../support/conntrack-events.ts';
import { pingOutcome, runPeer, startPeer } from '../support/peers.ts';

const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
`;

const LINKS = [
  { name: 'lan0', role: 'client', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'wan0', role: 'server', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

const viaVrouter = new Topology(uniqueTag('vs'), ['client', 'server']);
const viaKernel = new Topology(uniqueTag('ks'), ['client', 'server', 'router']);
let router: RouterProcess;

beforeAll(async () => {
  router = await startRouterProcess(vrouterConfigOf(viaVrouter, LINKS, RULES));
  setUpKernelRouter(viaKernel, 'router', LINKS, RULES);
});

afterAll(async () => {
  await router?.stop();
  viaVrouter.destroy();
  viaKernel.destroy();
});

/** The same checks on either router; each outcome is a short word so the two can be compared. */
async function outcomes(topology: Topology): Promise<Record<string, string>> {
  const ping = (from: string, to: string, size = 56): string =>
    topology.exec(from, 'ping', ['-c', '1', '-W', '1', '-s', String(size), to]).status === 0 ? 'answered' : 'no answer';
  const sink = await startPeer(topology, 'server', ['tcp-sink', '5001']);
  const echo = await startPeer(topology, 'server', ['udp-echo', '5002']);
  const inbound = await startPeer(topology, 'client', ['tcp-sink', '5003']);
  const result = {
    'client pings server': ping('client', '203.0.113.2'),
    // Fragments: defragmented for conntrack, refragmented on the way out.
    'client pings server with 4000 bytes': ping('client', '203.0.113.2', 4000),
    'client TCP to server': String(runPeer(topology, 'client', ['tcp-connect', '203.0.113.2', '5001', '2000']).result),
    'client UDP to server': JSON.stringify(runPeer(topology, 'client', ['udp-ask', '203.0.113.2', '5002', 'hi', '2000'])),
    'client UDP to a closed port': JSON.stringify(runPeer(topology, 'client', ['udp-ask', '203.0.113.2', '5999', 'hi', '2000'])),
    'server pings client': ping('server', '10.0.1.2'),
    'server TCP to client': String(runPeer(topology, 'server', ['tcp-connect', '10.0.1.2', '5003', '1500']).result),
  };
  for (const peer of [sink, echo, inbound]) peer.child.kill();
  return result;
}

const EXPECTED = {
  'client pings server': 'answered',
  'client pings server with 4000 bytes': 'answered',
  'client TCP to server': 'connected',
  'client UDP to server': JSON.stringify({ reply: 'hi' }),
  // The port unreachable is RELATED to the outbound flow, so it gets back through FORWARD DROP.
  'client UDP to a closed port': JSON.stringify({ error: 'ECONNREFUSED' }),
  'server pings client': 'no answer',
  'server TCP to client': 'timeout',
};

/** conntrack -L lines with the numbers that differ between runs (timeouts, ephemeral ports, ids) blanked. */
function shapes(lines: string[]): string[] {
  return lines
    .map((line) =>
      line
        .replace(/^(\w+\s+\d+) \d+ /, '$1 T ')
        .replace(/port=\d{5}/g, 'port=E')
        .replace(/ id=\d+/g, ' id=I'),
    )
    .sort();
}

describe('stateful firewall, vrouter and kernel side by side', () => {
  let vrouterOutcomes: Record<string, string>;
  let kernelOutcomes: Record<string, string>;

  it('lets out what lan0 starts and the replies and errors related to it, and nothing else in', async () => {
    kernelOutcomes = await outcomes(viaKernel);
    vrouterOutcomes = await outcomes(viaVrouter);
    expect(kernelOutcomes).toEqual(EXPECTED);
    expect(vrouterOutcomes).toEqual(kernelOutcomes);
  });

  it('lists the connections as the kernel does', async () => {
    const kernelLines = spawnSync('ip', ['netns', 'exec', viaKernel.ns('router'), 'conntrack', '-L'], { encoding: 'utf8' }).stdout.trim().split('\n');
    const ours = (await controlCall(router.controlSocket, 'conntrack-list', {})) as string[];
    expect(ours.find((line) => line.includes('dport=5001'))).toMatch(
      /^tcp {6}6 \d+ (ESTABLISHED|FIN_WAIT|CLOSE_WAIT|LAST_ACK|TIME_WAIT|CLOSE) src=10\.0\.1\.2 dst=203\.0\.113\.2 sport=\d+ dport=5001 src=203\.0\.113\.2 dst=10\.0\.1\.2 sport=5001 dport=\d+ \[ASSURED\] mark=0 use=1$/,
    );
    // The TCP state at this moment depends on timing; compare everything else line by line.
    const withoutTcpState = (lines: string[]): string[] => shapes(lines).map((line) => line.replace(/^(tcp +6 T )[A-Z_]+ /, '$1S '));
    expect(withoutTcpState(ours)).toEqual(withoutTcpState(kernelLines));
  });

  it('prints NEW and UPDATE events for a new connection, as conntrack -E does', async () => {
    const events = await listenForEvents(router.controlSocket);
    const sink = await startPeer(viaVrouter, 'server', ['tcp-sink', '5011']);
    runPeer(viaVrouter, 'client', ['tcp-send', '203.0.113.2', '5011', '1000']);
    await sink.lines;
    await new Promise((resolve) => setTimeout(resolve, 300));
    await events.stop();
    const lines = events.stdout().split('\n').filter((line) => line.includes('dport=5011'));
    expect(lines[0]).toMatch(/^ {4}\[NEW\] tcp {6}6 120 SYN_SENT src=10\.0\.1\.2 dst=203\.0\.113\.2 sport=\d+ dport=5011 \[UNREPLIED\] src=203\.0\.113\.2 dst=10\.0\.1\.2 sport=5011 dport=\d+$/);
    expect(lines[1]).toMatch(/^ \[UPDATE\] tcp {6}6 60 SYN_RECV src=10\.0\.1\.2 .* dport=\d+$/);
    expect(lines[2]).toMatch(/^ \[UPDATE\] tcp {6}6 432000 ESTABLISHED src=10\.0\.1\.2 .* \[ASSURED\]$/);
  });

  it('moves the rule counters shown by iptables-save -c', async () => {
    const counters = async (): Promise<number> => {
      const saved = (await controlCall(router.controlSocket, 'iptables-save', { counters: true })) as string;
      const line = saved.split('\n').find((l) => l.includes('--ctstate RELATED,ESTABLISHED'))!;
      return Number(/^\[(\d+):\d+\]/.exec(line)![1]);
    };
    const before = await counters();
    expect(viaVrouter.exec('client', 'ping', ['-c', '3', '-i', '0.2', '203.0.113.2']).status).toBe(0);
    // Three echo replies come back as ESTABLISHED (the requests after the first too).
    expect((await counters()) - before).toBeGreaterThanOrEqual(5);
  });
});

async function loadRules(rules: string): Promise<void> {
  await controlCall(router.controlSocket, 'iptables-restore', { text: rules, origin: 'stateful-firewall test' });
  execFileSync('ip', ['netns', 'exec', viaKernel.ns('router'), 'iptables-restore'], { input: rules });
}

describe('packets the router makes about a forwarded packet, through the OUTPUT chain', () => {
  // As nf_ct_attach: an ICMP error or a REJECT reset carries the connection of the packet it is
  // about, as RELATED in the reply direction. That holds for a connection's very first packet too,
  // which is never confirmed, so a lookup at LOCAL_OUT would not find it (the packet would be INVALID).
  const onlyRelatedOut = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
-A FORWARD -p tcp --dport 5999 -j REJECT --reject-with tcp-reset
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -m conntrack --ctstate NEW -j ACCEPT
-A OUTPUT -m conntrack --ctstate RELATED --ctdir REPLY -j ACCEPT
COMMIT
`;

  it('are RELATED to the connection even about its first packet, as in the kernel', async () => {
    const run = (topology: Topology): Record<string, string> => ({
      'TTL 1 on a new connection': pingOutcome(topology, 'client', '203.0.113.2', { id: 4001, ttl: 1 }),
      'a ping through': pingOutcome(topology, 'client', '203.0.113.2', { id: 4002 }),
      'then TTL 1 on that connection': pingOutcome(topology, 'client', '203.0.113.2', { id: 4002, ttl: 1 }),
      // The echo reply is ESTABLISHED, not RELATED: OUTPUT drops it.
      'a ping to the router': pingOutcome(topology, 'client', '10.0.1.1', { id: 4003 }),
      'TCP to a rejected port': String(runPeer(topology, 'client', ['tcp-connect', '203.0.113.2', '5999', '1500']).result),
    });
    try {
      await loadRules(onlyRelatedOut);
      const results = { kernel: run(viaKernel), vrouter: run(viaVrouter) };
      console.info(`router-made packets: ${JSON.stringify(results)}`);
      const expected = {
        'TTL 1 on a new connection': 'Time to live exceeded from 10.0.1.1',
        'a ping through': 'answered',
        'then TTL 1 on that connection': 'Time to live exceeded from 10.0.1.1',
        'a ping to the router': 'nothing',
        'TCP to a rejected port': 'ECONNREFUSED',
      };
      expect(results).toEqual({ kernel: expected, vrouter: expected });
    } finally {
      await loadRules(RULES);
    }
  });
});

describe('the tools over the control socket', () => {
  const vrouter = (...args: string[]) => spawnSync(process.execPath, [VROUTER_BIN, ...args, '--socket', router.controlSocket], { encoding: 'utf8', timeout: 20_000 });

  it('counts, deletes by filter and flushes connections as conntrack -C/-D/-F do', () => {
    expect(viaVrouter.exec('client', 'ping', ['-c', '1', '-W', '1', '203.0.113.2']).status).toBe(0);
    const before = Number(vrouter('conntrack', '-C').stdout);
    expect(before).toBeGreaterThan(0);
    const deleted = vrouter('conntrack', '-D', '-p', 'icmp');
    expect(deleted.status).toBe(0);
    expect(deleted.stdout).toMatch(/^icmp {5}1 \d+ src=10\.0\.1\.2 dst=203\.0\.113\.2 type=8 code=0 id=\d+ src=203\.0\.113\.2 dst=10\.0\.1\.2 type=0 code=0 id=\d+ mark=0 use=1$/m);
    expect(deleted.stderr).toMatch(/\d+ flow entries have been deleted\./);
    expect(vrouter('conntrack', '-L', '-p', 'icmp').stdout).toBe('');
    const json = JSON.parse(vrouter('conntrack', '-L', '-o', 'json').stdout) as { protocol: string }[];
    expect(json.length).toBe(Number(vrouter('conntrack', '-C').stdout));
    expect(vrouter('conntrack', '-F').stderr).toContain('connection tracking table has been emptied.');
    expect(vrouter('conntrack', '-C').stdout.trim()).toBe('0');
  });

  it('replaces the rules atomically with iptables-restore, and refuses a bad file keeping the old rules', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vrouter-rules-'));
    try {
      const bad = join(dir, 'bad.rules');
      writeFileSync(bad, '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p tcp --dport 22 -j ACCEPT\n-A FORWARD -m frobnicate -j DROP\nCOMMIT\n');
      const before = vrouter('iptables-save').stdout;
      const refused = vrouter('iptables-restore', bad);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain(`${bad}:4:`);
      expect(refused.stderr).toContain('frobnicate');
      expect(vrouter('iptables-save').stdout.replace(/^#.*\n/gm, '')).toBe(before.replace(/^#.*\n/gm, ''));
      const good = join(dir, 'good.rules');
      writeFileSync(good, '*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i lan0 -p icmp -j ACCEPT\nCOMMIT\n');
      expect(vrouter('iptables-restore', good).status).toBe(0);
      expect(vrouter('iptables-save').stdout).toContain('-A FORWARD -i lan0 -p icmp -j ACCEPT');
      // Now only ping may start from the LAN.
      expect(viaVrouter.exec('client', 'ping', ['-c', '1', '-W', '1', '203.0.113.2']).status).toBe(0);
      expect(runPeer(viaVrouter, 'client', ['tcp-connect', '203.0.113.2', '5001', '1000']).result).toBe('timeout');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
