/**
 * The kernel's martian rules (ip_route_input_slow, fib_validate_source) on the real packet path:
 * one of the router's own addresses as source is dropped whatever the destination, also with
 * MASQUERADE that would otherwise hide it; class E (240/4) is routed like any address.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../../router/core/stats.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { ipv4Src } from '../../../router/wire/ipv4.ts';
import { icmpPacket, ip, udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

function masqueradingRouter(): RouterBench {
  return new RouterBench({
    interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
    routes: [{ to: 0, prefixLength: 0, via: ip('203.0.113.2'), dev: 'wan0' }],
    rules: { text: '*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n', origin: 'martians.rules', firstLine: 0 },
  });
}

const udp = (src: string, dst: string): Buffer => udpPacket({ src, dst }, { srcPort: 4000, dstPort: 9999, payload: Buffer.from('probe') });
const echo = (src: string, dst: string): Buffer => icmpPacket({ src, dst }, { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x12340001, data: Buffer.alloc(8) });

describe('martian sources and destinations, as the kernel judges them', () => {
  it('drops an echo request to the router from its own address instead of answering it', () => {
    bench = masqueradingRouter();
    const { sent, drops } = bench.receive(echo('10.0.1.1', '10.0.1.1'), 'lan0');
    expect(sent).toEqual([]);
    expect(drops).toEqual([DropReason.MARTIAN_SOURCE]);
  });

  it.each(['10.0.1.1', '203.0.113.1'])('drops UDP from the router own address %s arriving on the LAN instead of masquerading it', (source) => {
    bench = masqueradingRouter();
    const { sent, drops, forwarded } = bench.receive(udp(source, '203.0.113.2'), 'lan0');
    expect({ sent, drops, forwarded }).toEqual({ sent: [], drops: [DropReason.MARTIAN_SOURCE], forwarded: false });
  });

  it('forwards a class E (240/4) source, masqueraded, as kernel 6.18 does', () => {
    bench = masqueradingRouter();
    const { sent, drops } = bench.receive(udp('240.0.0.1', '203.0.113.2'), 'lan0');
    expect(drops).toEqual([]);
    expect(sent.map((s) => [s.via, ipv4Src(s.buf, 0)])).toEqual([['wan0', ip('203.0.113.1')]]);
  });

  it('routes a class E destination along the default route, and still drops multicast and loopback ones', () => {
    bench = masqueradingRouter();
    expect(bench.receive(udp('10.0.1.2', '240.0.0.9')).sent.map((s) => s.via)).toEqual(['wan0']);
    expect(bench.receive(udp('10.0.1.2', '239.1.2.3')).drops).toEqual([DropReason.MARTIAN_DESTINATION]);
    expect(bench.receive(udp('10.0.1.2', '127.0.0.1')).drops).toEqual([DropReason.MARTIAN_DESTINATION]);
    expect(bench.receive(udp('224.0.0.5', '203.0.113.2'), 'lan0').drops).toEqual([DropReason.MARTIAN_SOURCE]);
  });
});
