/**
 * Two routers built in one process, as a lab builds them, share nothing: each numbers its own
 * connections and expectations from 1, keeps its own tables and counters.
 */
import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';
import { tcpPacket } from '../../support/packets.ts';

const spec = {
  interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
  rules: { text: '*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n', origin: 'test', firstLine: 0 },
};

const syn = (sport: number): Buffer => tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: sport, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1000 });

describe('routers in one process', () => {
  it('number connections per router, keep their own tables and counters', () => {
    const a = new RouterBench(spec, { now: () => 1_000_000 });
    const b = new RouterBench(spec, { now: () => 1_000_000 });
    a.receive(syn(40000));
    a.receive(syn(40001));
    b.receive(syn(50000));
    const ids = (bench: RouterBench): number[] => bench.netfilter.conntrack.list().map((entry) => entry.id).sort();
    expect(ids(a)).toEqual([1, 2]);
    expect(ids(b)).toEqual([1]);
    expect(a.router.stats.get(0)).toBe(2);
    expect(b.router.stats.get(0)).toBe(1);
    expect(b.netfilter.conntrack.list().map((entry) => entry.tuples[0].srcPort)).toEqual([50000]);
    a.close();
    b.close();
  });
});
