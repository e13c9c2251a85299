/**
 * Tracing on the real packet path: a running trace picks packets with its filter, and for each
 * one hears every hook op with its priority and verdict (conntrack and NAT say what they did),
 * the TRACE lines of every rule it meets, and its fate; `-j TRACE` marks a packet by rule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PacketTracer } from '../../../router/core/observer.ts';
import { udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

const RULES = `*raw
-A PREROUTING -p udp --dport 7 -j TRACE
COMMIT
*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
-N checks
-A checks -p udp --dport 7 -j DROP
-A FORWARD -j checks
COMMIT
`;

let bench: RouterBench;
afterEach(() => bench?.close());

function traced(wants: (buf: Uint8Array) => boolean): { bench: RouterBench; lines: string[] } {
  const logged: string[] = [];
  bench = new RouterBench({ interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], rules: { text: RULES, origin: 'test.rules', firstLine: 0 } }, { logSink: (line) => logged.push(line) });
  const lines: string[] = [];
  const tracer: PacketTracer = { wants, line: (packet, text) => lines.push(`#${packet.id} ${text}`) };
  bench.router.tracer = tracer;
  return { bench, lines };
}

const udp = (dport: number): Buffer => udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 4000, dstPort: dport, payload: Buffer.from('x') });

describe('vrouter trace on the packet path', () => {
  it('follows a packet its filter picks through every hook op, the rules it meets, NAT and its fate', () => {
    const { lines } = traced((buf) => buf[9] === 17);
    bench.receive(udp(53));
    const steps = lines.map((line) => line.replace(/ (IN=\S*|tcp|udp|icmp) .*$/, ' …').replace(/(conntrack-\w+ \(-?\d+\) ACCEPT: \w+ \w+ id=1).*/, '$1'));
    expect(steps).toEqual([
      '#1 in lan0: …',
      // The bench's own observer op, first in PRE_ROUTING.
      '#1 PREROUTING test-observer (-2147483648) ACCEPT',
      '#1 PREROUTING defrag (-400) ACCEPT',
      '#1 TRACE: raw:PREROUTING:policy:2 …',
      '#1 PREROUTING iptables raw PREROUTING (-300) ACCEPT',
      '#1 PREROUTING conntrack-in (-200) ACCEPT: NEW original id=1',
      '#1 TRACE: nat:PREROUTING:policy:1 …',
      '#1 PREROUTING nat (-100) ACCEPT: no NAT (null binding), reply src=203.0.113.2 dst=10.0.1.2 sport=53 dport=4000',
      '#1 TRACE: filter:FORWARD:rule:1 …',
      '#1 TRACE: filter:checks:return:2 …',
      '#1 TRACE: filter:FORWARD:policy:2 …',
      '#1 FORWARD iptables filter FORWARD (0) ACCEPT',
      '#1 TRACE: nat:POSTROUTING:rule:1 …',
      '#1 POSTROUTING nat (100) ACCEPT: SNAT, reply src=203.0.113.2 dst=203.0.113.1 sport=53 dport=4000',
      '#1 POSTROUTING conntrack-helper (300) ACCEPT: NEW original id=1',
      '#1 POSTROUTING seqadj (301) ACCEPT',
      '#1 POSTROUTING conntrack-confirm (2147483647) ACCEPT: NEW original id=1',
      '#1 sent on wan0 to 203.0.113.2: …',
    ]);
    expect(lines[8]).toBe('#1 TRACE: filter:FORWARD:rule:1 IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=29 TOS=0x00 PREC=0x00 TTL=63 ID=4660 PROTO=UDP SPT=4000 DPT=53 LEN=9 ');
  });

  it('traces what -j TRACE marks, down to the rule that drops it, and nothing the filter leaves out', () => {
    const { lines } = traced(() => false);
    bench.receive(udp(53));
    expect(lines).toEqual([]);
    bench.receive(udp(7));
    expect(lines.map((line) => line.replace(/ IN=.*$/, ''))).toEqual([
      // The TRACE rule itself is not traced (it marks the packet as it runs); its chain's policy is.
      '#1 TRACE: raw:PREROUTING:policy:2',
      '#1 TRACE: nat:PREROUTING:policy:1',
      '#1 TRACE: filter:FORWARD:rule:1',
      '#1 TRACE: filter:checks:rule:1',
      '#1 FORWARD iptables filter FORWARD (0) DROP',
      '#1 dropped: hook-drop by filter:checks:rule:1 -A checks -p udp -m udp --dport 7 -j DROP',
    ]);
  });
});
