/**
 * The connections the `vrouter conntrack` tests list, filter and delete: the same flows, through
 * the same rules, that were run through a kernel router namespace on this machine to capture what
 * the real conntrack (v1.4.7) prints for them. Rules: MASQUERADE out of wan0, a DNAT of UDP 8080
 * on the router to 203.0.113.2:9000, CONNMARK mark 5 for UDP to port 9001.
 *
 *   A udp  10.0.1.2:40003 -> 203.0.113.2:9999   no answer         (SNAT)
 *   B udp  10.0.1.2:40002 -> 203.0.113.2:9001   answered, mark 5  (SNAT)
 *   C udp  10.0.1.2:40001 -> 10.0.1.1:8080      answered          (DNAT to 203.0.113.2:9000, SNAT)
 *   D icmp 10.0.1.2 -> 10.0.1.1 echo id 5803    the router answers (no NAT; both NAT steps ran)
 *   E udp  10.0.1.2:40000 -> 203.0.113.2:9000   answered          (SNAT)
 *   F tcp  10.0.1.2:41002 -> 203.0.113.2:5000   ESTABLISHED, ASSURED (SNAT)
 *   G icmp 10.0.1.2 -> 203.0.113.2 echo id 4827 answered          (SNAT)
 */
import { CommandSet } from '../../router/deploy/command-registry.ts';
import { registerConntrackCommands } from '../../router/deploy/conntrack-commands.ts';
import type { Conntrack } from '../../netfilter/conntrack/conntrack-entry.ts';
import { IcmpType } from '../../router/wire/icmp.ts';
import { TcpFlag } from '../../router/wire/tcp.ts';
import { icmpPacket, tcpPacket, udpPacket } from './packets.ts';
import { RouterBench, interfaceSpec } from './router-bench.ts';

const RULES = `*nat
-A PREROUTING -i lan0 -p udp --dport 8080 -j DNAT --to-destination 203.0.113.2:9000
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*mangle
-A PREROUTING -p udp --dport 9001 -j CONNMARK --set-mark 0x5
COMMIT
`;

export type FlowName = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G';

export function conntrackSite() {
  const clock = { ms: 1_000_000 };
  const bench = new RouterBench(
    { interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], rules: { text: RULES, origin: 'conntrack-site.rules', firstLine: 0 } },
    { now: () => clock.ms, helpers: [] },
  );
  const commands = new CommandSet();
  registerConntrackCommands(commands, bench.netfilter.conntrack);
  const udp = (src: string, sport: number, dst: string, dport: number): void => void bench.receive(udpPacket({ src, dst }, { srcPort: sport, dstPort: dport, payload: Buffer.from('hi') }));
  const echo = (src: string, dst: string, type: number, id: number): void => void bench.receive(icmpPacket({ src, dst }, { type, code: 0, rest: (id << 16) | 1 }));
  const tcp = (src: string, sport: number, dst: string, dport: number, seq: number, ack: number, flags: number): void =>
    void bench.receive(tcpPacket({ src, dst }, { srcPort: sport, dstPort: dport, seq, ack, flags, window: 64240 }));

  // In the order the kernel's entries were made (their ids follow it).
  echo('10.0.1.2', '203.0.113.2', IcmpType.ECHO_REQUEST, 4827);
  echo('203.0.113.2', '203.0.113.1', IcmpType.ECHO_REPLY, 4827);
  tcp('10.0.1.2', 41002, '203.0.113.2', 5000, 1000, 0, TcpFlag.SYN);
  tcp('203.0.113.2', 5000, '203.0.113.1', 41002, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK);
  tcp('10.0.1.2', 41002, '203.0.113.2', 5000, 1001, 5001, TcpFlag.ACK);
  udp('10.0.1.2', 40000, '203.0.113.2', 9000);
  udp('203.0.113.2', 9000, '203.0.113.1', 40000);
  udp('10.0.1.2', 40001, '10.0.1.1', 8080);
  udp('203.0.113.2', 9000, '203.0.113.1', 40001);
  udp('10.0.1.2', 40002, '203.0.113.2', 9001);
  udp('203.0.113.2', 9001, '203.0.113.1', 40002);
  echo('10.0.1.2', '10.0.1.1', IcmpType.ECHO_REQUEST, 5803);
  udp('10.0.1.2', 40003, '203.0.113.2', 9999);
  // Two seconds on: UDP and ICMP entries show 28, TCP 431998.
  clock.ms += 2000;

  const conntrack = bench.netfilter.conntrack;
  const call = (name: string, args: Record<string, unknown> = {}): unknown => commands.commands.get(name)!.handler(args, undefined as never);
  /** The flow an entry is, by its original tuple's ports or ICMP id. */
  const nameOf = (entry: Conntrack): FlowName => {
    const key = entry.tuples[0].srcPort;
    const names: Record<number, FlowName> = { 40003: 'A', 40002: 'B', 40001: 'C', 5803: 'D', 40000: 'E', 41002: 'F', 4827: 'G' };
    const name = names[key];
    if (!name) throw new Error(`an entry no flow of the site made: ${key}`);
    return name;
  };
  return { bench, clock, conntrack, commands, call, nameOf };
}
