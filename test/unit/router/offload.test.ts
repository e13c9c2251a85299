/**
 * Super-packets and partial checksums through the packet path (router built by the composition
 * root): TSO super-packets go through NAT whole where the egress takes them, are cut in software
 * where it does not or where their segments do not fit, and a partial checksum is moved only by
 * pseudo-header rewrites and finished where the egress cannot finish it.
 */
import { describe, expect, it } from 'vitest';
import { PacketFlag } from '../../../router/core/device.ts';
import { Counter, DropReason } from '../../../router/core/stats.ts';
import { ALL_OFFLOADS } from '../../../router/path/software-gso.ts';
import { internetChecksum, pseudoHeaderSum } from '../../../router/wire/checksum.ts';
import { ipv4Ident, ipv4Src, ipv4TotalLength, IPV4_FLAG_DF, validateIpv4, Ipv4Problem } from '../../../router/wire/ipv4.ts';
import { TCP, TcpFlag, tcpChecksumValid, tcpSeq } from '../../../router/wire/tcp.ts';
import { completePartialChecksum } from '../../../router/wire/virtio-net.ts';
import { ip, tcpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';
import { CLIENT, Session } from '../ftp/session.ts';
import { ftpBench } from '../ftp/bench.ts';

const TSO = PacketFlag.CHECKSUM_PARTIAL | PacketFlag.GSO_TCPV4;
const MASQUERADE = { text: '*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n', origin: 'test', firstLine: 0 };

function natRouter(offloads: number, wanMtu = 1500): RouterBench {
  return new RouterBench(
    { interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24', wanMtu)], rules: MASQUERADE },
    {},
    offloads,
  );
}

/** `buf` with its TCP checksum left as the sender's offload leaves it: the pseudo-header sum only. */
function partial(buf: Buffer): Buffer {
  buf.writeUInt16BE(pseudoHeaderSum(buf.readUInt32BE(12), buf.readUInt32BE(16), 6, buf.length - 20), 20 + TCP.CHECKSUM);
  return buf;
}

function tcp(payload: Buffer, options: { seq?: number; flags?: number; df?: boolean; sport?: number } = {}): Buffer {
  return tcpPacket(
    { src: '10.0.1.2', dst: '203.0.113.2', flagsFragment: options.df === false ? 0 : IPV4_FLAG_DF },
    { srcPort: options.sport ?? 40000, dstPort: 5001, seq: options.seq ?? 1000, ack: 1, flags: options.flags ?? TcpFlag.ACK, window: 65535, ...(payload.length ? { payload } : {}) },
  );
}

/** A connection through the router (handshake), so data finds an established entry. */
function connect(bench: RouterBench, sport = 40000): void {
  bench.receive(partial(tcp(Buffer.alloc(0), { seq: 999, flags: TcpFlag.SYN, sport })), null, PacketFlag.CHECKSUM_PARTIAL);
  const synAck = tcpPacket({ src: '203.0.113.2', dst: '203.0.113.1' }, { srcPort: 5001, dstPort: sport, seq: 4999, ack: 1000, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535 });
  bench.receive(synAck, 'wan0');
}

const PAYLOAD = Buffer.from(Array.from({ length: 14_000 }, (_, i) => (i * 7) & 0xff));

describe('a TSO super-packet through MASQUERADE', () => {
  it('leaves whole to an egress that takes offload, its partial checksum moved to the new source only', () => {
    const bench = natRouter(ALL_OFFLOADS);
    connect(bench);
    const { sent, drops } = bench.receive(partial(tcp(PAYLOAD)), null, TSO, 1400);
    expect(drops).toEqual([]);
    expect(sent).toHaveLength(1);
    const out = sent[0]!;
    expect(out).toMatchObject({ via: 'wan0', flags: TSO, gsoSize: 1400 });
    expect(ipv4Src(out.buf, 0)).toBe(ip('203.0.113.1'));
    expect(out.buf.readUInt16BE(20 + TCP.CHECKSUM)).toBe(pseudoHeaderSum(ip('203.0.113.1'), ip('203.0.113.2'), 6, out.buf.length - 20));
    // Finished as the kernel behind the TUN finishes it, the checksum is right for the rewritten segment.
    expect(completePartialChecksum(out.buf, 0, out.buf.length, 20, TCP.CHECKSUM)).toBe(true);
    expect(tcpChecksumValid(out.buf, 20, out.buf.length - 20, ip('203.0.113.1'), ip('203.0.113.2'))).toBe(true);
    expect(bench.router.stats.get(Counter.SUPER_PACKETS_RECEIVED)).toBe(1);
    expect(bench.router.stats.get(Counter.SUPER_PACKETS_SEGMENTED)).toBe(0);
    // Conntrack took the whole payload into its window: the next super-packet is in window too.
    expect(bench.receive(partial(tcp(PAYLOAD, { seq: 1000 + PAYLOAD.length })), null, TSO, 1400).sent).toHaveLength(1);
    expect(bench.netfilter.conntrack!.counters.invalid).toBe(0);
  });

  it('is cut in software for an egress without offload: segments as the kernel makes them, checksums finished', () => {
    const bench = natRouter(0);
    connect(bench);
    const original = tcp(PAYLOAD, { flags: TcpFlag.ACK | TcpFlag.PSH });
    const ident = ipv4Ident(original, 0);
    const { sent, drops } = bench.receive(partial(original), null, TSO, 1400);
    expect(drops).toEqual([]);
    expect(sent).toHaveLength(10);
    sent.forEach((out, i) => {
      expect(out.flags & (PacketFlag.CHECKSUM_PARTIAL | PacketFlag.GSO_TCPV4)).toBe(0);
      expect(out.gsoSize).toBe(0);
      expect(validateIpv4(out.buf, 0, out.buf.length)).toBe(Ipv4Problem.OK);
      expect(ipv4TotalLength(out.buf, 0)).toBe(1440);
      expect(ipv4Ident(out.buf, 0)).toBe((ident + i) & 0xffff);
      expect(ipv4Src(out.buf, 0)).toBe(ip('203.0.113.1'));
      expect(tcpSeq(out.buf, 20)).toBe(1000 + i * 1400);
      expect(out.buf[20 + TCP.FLAGS]! & TcpFlag.PSH).toBe(i === 9 ? TcpFlag.PSH : 0);
      expect(tcpChecksumValid(out.buf, 20, 1420, ip('203.0.113.1'), ip('203.0.113.2'))).toBe(true);
    });
    expect(Buffer.concat(sent.map((out) => out.buf.subarray(40)))).toEqual(PAYLOAD);
    expect(bench.router.stats.get(Counter.SUPER_PACKETS_SEGMENTED)).toBe(1);
  });

  it('with DF, is refused by its segment size towards a smaller MTU, the error quoting the first segment', () => {
    const bench = natRouter(ALL_OFFLOADS, 1400);
    connect(bench);
    const { sent, drops } = bench.receive(partial(tcp(PAYLOAD)), null, TSO, 1400);
    expect(drops).toEqual([DropReason.FRAGMENTATION_NEEDED]);
    expect(sent).toHaveLength(1);
    const error = sent[0]!.buf;
    expect(sent[0]!.via).toBe('lan0');
    expect(error[20]).toBe(3);
    expect(error[21]).toBe(4);
    expect(error.readUInt16BE(26)).toBe(1400);
    // The quoted header is the first segment's: its length, a checksum that fits it.
    expect(ipv4TotalLength(error, 28)).toBe(1440);
    expect(internetChecksum(error, 28, 20)).toBe(0);
  });

  it('passes a super-packet whose segments fit the MTU, and cuts and fragments it when they do not and DF is clear', () => {
    const fits = natRouter(ALL_OFFLOADS, 1440);
    connect(fits);
    expect(fits.receive(partial(tcp(PAYLOAD)), null, TSO, 1400).sent).toHaveLength(1);
    const narrow = natRouter(ALL_OFFLOADS, 1000);
    connect(narrow);
    const { sent, drops } = narrow.receive(partial(tcp(PAYLOAD, { df: false })), null, TSO, 1400);
    expect(drops).toEqual([]);
    // Ten segments of 1440 bytes, each in two fragments, checksums finished before fragmenting.
    expect(sent).toHaveLength(20);
    expect(narrow.router.stats.get(Counter.FRAGMENTS_CREATED)).toBe(20);
    expect(sent.every((out) => out.buf.length <= 1000 && out.flags === PacketFlag.NONE)).toBe(true);
    const first = Buffer.concat([sent[0]!.buf, sent[1]!.buf.subarray(20)]);
    first.writeUInt16BE(1440, 2);
    expect(tcpChecksumValid(first, 20, 1420, ip('203.0.113.1'), ip('203.0.113.2'))).toBe(true);
  });

  it('is dropped when its GSO metadata does not fit its headers', () => {
    const bench = natRouter(ALL_OFFLOADS);
    expect(bench.receive(partial(tcp(PAYLOAD)), null, PacketFlag.CHECKSUM_PARTIAL | PacketFlag.GSO_UDP_L4, 1400).drops).toEqual([DropReason.GSO_MALFORMED]);
    expect(bench.receive(partial(tcp(PAYLOAD)), null, TSO, 0).drops).toEqual([DropReason.GSO_MALFORMED]);
  });
});

describe('a partial checksum', () => {
  it('is not verified by conntrack, and is finished for an egress that cannot finish it', () => {
    const bench = natRouter(0);
    const syn = partial(tcp(Buffer.alloc(0), { seq: 999, flags: TcpFlag.SYN }));
    const { sent, packet } = bench.receive(syn, null, PacketFlag.CHECKSUM_PARTIAL);
    expect(bench.netfilter.conntrack!.counters.invalid).toBe(0);
    expect(packet!.conntrack).not.toBeNull();
    expect(sent).toHaveLength(1);
    expect(tcpChecksumValid(sent[0]!.buf, 20, 20, ip('203.0.113.1'), ip('203.0.113.2'))).toBe(true);
    // The same bytes without the flag are a bad checksum, which conntrack counts as invalid.
    bench.receive(partial(tcp(Buffer.alloc(0), { seq: 999, flags: TcpFlag.SYN, sport: 40001 })));
    expect(bench.netfilter.conntrack!.counters.invalid).toBe(1);
  });

  it('leaves partial to an egress that finishes it, with only the pseudo-header rewrite summed in', () => {
    const bench = natRouter(ALL_OFFLOADS);
    const { sent } = bench.receive(partial(tcp(Buffer.from('hello'), { seq: 999, flags: TcpFlag.SYN })), null, PacketFlag.CHECKSUM_PARTIAL);
    expect(sent[0]!.flags).toBe(PacketFlag.CHECKSUM_PARTIAL);
    const out = sent[0]!.buf;
    completePartialChecksum(out, 0, out.length, 20, TCP.CHECKSUM);
    expect(tcpChecksumValid(out, 20, out.length - 20, ip('203.0.113.1'), ip('203.0.113.2'))).toBe(true);
  });
});

describe('a super-packet on a connection with a helper', () => {
  it('is read by the FTP helper segment by segment, and NAT rewrites the PORT in its own segment', () => {
    const b = ftpBench({ snat: { inside: '10.0.1.0/24', to: '203.0.113.1' } });
    const s = new Session(b, { clientSeenAs: '203.0.113.1' }).login();
    const first = 'NOOP 12345678901234\r\n';
    const second = 'PORT 10,0,1,2,18,67\r\n';
    expect(first.length).toBe(second.length);
    const superPacket = partial(
      tcpPacket(
        { src: '10.0.1.2', dst: '203.0.113.2' },
        { srcPort: s.clientPort, dstPort: 21, seq: s.next[CLIENT], ack: s.acked[CLIENT], flags: TcpFlag.ACK | TcpFlag.PSH, window: 65535, payload: Buffer.from(first + second) },
      ),
    );
    const { sent, drops } = b.bench.receive(superPacket, null, TSO, first.length);
    expect(drops).toEqual([]);
    expect(sent.map((out) => out.buf.subarray(40).toString())).toEqual([first, 'PORT 203,0,113,1,18,67\r\n']);
    expect(tcpSeq(sent[1]!.buf, 20)).toBe((s.next[CLIENT] + first.length) >>> 0);
    for (const out of sent) expect(tcpChecksumValid(out.buf, 20, out.buf.length - 20, ip('203.0.113.1'), ip('203.0.113.2'))).toBe(true);
    expect(b.router.stats.get(Counter.SUPER_PACKETS_SEGMENTED)).toBe(1);
    expect(b.core.expectations.size).toBe(1);
  });
});
