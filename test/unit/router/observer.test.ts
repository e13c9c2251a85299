/**
 * What a capture or trace is told by the packet path: each datagram in and out under one packet
 * id (through NAT too), each drop with the rule or policy that decided it; and the hook-drops
 * counted by that origin for `vrouter stats`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import type { PacketObserver } from '../../../router/core/observer.ts';
import { DropReason } from '../../../router/core/stats.ts';
import { ipv4Src } from '../../../router/wire/ipv4.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

const RULES = `*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -p udp --dport 7 -j DROP
-A FORWARD -i lan0 -p udp --dport 53 -j ACCEPT
COMMIT
`;

class Recorder implements PacketObserver {
  readonly events: string[] = [];
  received(link: RouterInterface, buf: Uint8Array, id: number): void {
    this.events.push(`in ${link.name} #${id} from ${formatIpv4Address(ipv4Src(Buffer.from(buf.buffer, buf.byteOffset, buf.length), 0))}`);
  }
  transmitted(link: RouterInterface, buf: Uint8Array, id: number): void {
    this.events.push(`out ${link.name} #${id} from ${formatIpv4Address(ipv4Src(Buffer.from(buf.buffer, buf.byteOffset, buf.length), 0))}`);
  }
  dropped(link: RouterInterface | null, _buf: Uint8Array, id: number, reason: DropReason, origin: string | null): void {
    this.events.push(`drop ${link?.name ?? '-'} #${id} reason ${reason} by ${origin}`);
  }
}

let bench: RouterBench;
afterEach(() => bench?.close());

const udp = (dport: number): Buffer => udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 4000 + dport, dstPort: dport, payload: Buffer.from('x') });

describe('the packet observer and drop origins', () => {
  it('sees a packet in and out under one id across NAT, and each drop with the rule or policy that decided it', () => {
    bench = new RouterBench({ interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], rules: { text: RULES, origin: 'test.rules', firstLine: 0 } });
    const recorder = new Recorder();
    bench.router.observer = recorder;
    bench.receive(udp(53));
    bench.receive(udp(7));
    bench.receive(udp(9));
    bench.receive(Buffer.alloc(3, 0x45), 'lan0');
    expect(recorder.events).toEqual([
      'in lan0 #1 from 10.0.1.2',
      'out wan0 #1 from 203.0.113.1',
      'in lan0 #2 from 10.0.1.2',
      `drop lan0 #2 reason ${DropReason.HOOK_DROP} by filter:FORWARD:rule:1 -A FORWARD -p udp -m udp --dport 7 -j DROP`,
      'in lan0 #3 from 10.0.1.2',
      `drop lan0 #3 reason ${DropReason.HOOK_DROP} by filter:FORWARD:policy:3 DROP`,
      'in lan0 #4 from 0.0.0.0',
      `drop lan0 #4 reason ${DropReason.TRUNCATED} by null`,
    ]);
    expect(bench.router.stats.hookDropsByOrigin()).toEqual({
      'filter:FORWARD:rule:1 -A FORWARD -p udp -m udp --dport 7 -j DROP': 1,
      'filter:FORWARD:policy:3 DROP': 1,
    });
  });

  it('numbers nothing while nobody looks', () => {
    bench = new RouterBench({ interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')] });
    expect(bench.receive(udp(53)).packet!.id).toBe(0);
  });
});
