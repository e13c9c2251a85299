import { describe, expect, it } from 'vitest';
import { buildTcpReset } from '../../../router/path/tcp-reset.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { IPV4_FLAG_DF, IPV4_FLAG_MF, IpProtocol, ipv4Dst, ipv4FlagsFragment, ipv4Ident, ipv4Src, ipv4Tos, ipv4TotalLength, ipv4Ttl, validateIpv4, Ipv4Problem } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpAck, tcpChecksumValid, tcpDstPort, tcpFlags, tcpHeaderLength, tcpSeq, tcpSrcPort, tcpWindow } from '../../../router/wire/tcp.ts';
import { CaptureLink, ip, rawPacket, tcpPacket, udpPacket } from '../../support/packets.ts';

const CLIENT = { src: '10.0.1.2', dst: '203.0.113.2', tos: 0x10, ident: 99 };
const segment = (flags: number, payload?: Buffer, seq = 0xfffffff0, ack = 0x01020304): Buffer =>
  tcpPacket(CLIENT, { srcPort: 40000, dstPort: 22, seq, ack, flags, window: 4096, ...(payload ? { payload } : {}) });

describe('buildTcpReset (nf_send_reset)', () => {
  it('answers a SYN with RST|ACK acking seq + 1, from the segment destination, TTL 64, DF, ID 0, TOS 0', () => {
    const reset = buildTcpReset(segment(TcpFlag.SYN))!;
    expect(validateIpv4(reset, 0, reset.length)).toBe(Ipv4Problem.OK);
    expect([ipv4Src(reset, 0), ipv4Dst(reset, 0)]).toEqual([ip('203.0.113.2'), ip('10.0.1.2')]);
    expect([ipv4Ttl(reset, 0), ipv4FlagsFragment(reset, 0), ipv4Ident(reset, 0), ipv4Tos(reset, 0), ipv4TotalLength(reset, 0)]).toEqual([64, IPV4_FLAG_DF, 0, 0, 40]);
    expect([tcpSrcPort(reset, 20), tcpDstPort(reset, 20), tcpHeaderLength(reset, 20), tcpWindow(reset, 20)]).toEqual([22, 40000, 20, 0]);
    expect(tcpFlags(reset, 20)).toBe(TcpFlag.RST | TcpFlag.ACK);
    expect([tcpSeq(reset, 20), tcpAck(reset, 20)]).toEqual([0, 0xfffffff1]);
    expect(tcpChecksumValid(reset, 20, 20, ip('203.0.113.2'), ip('10.0.1.2'))).toBe(true);
  });

  it('counts payload, SYN and FIN into the ack, wrapping at 2^32', () => {
    const reset = buildTcpReset(segment(TcpFlag.SYN | TcpFlag.FIN | TcpFlag.PSH, Buffer.alloc(20)))!;
    expect(tcpAck(reset, 20)).toBe((0xfffffff0 + 22) % 2 ** 32);
  });

  it('answers a segment with ACK by a bare RST whose seq is that ack', () => {
    const reset = buildTcpReset(segment(TcpFlag.ACK | TcpFlag.PSH, Buffer.from('data')))!;
    expect(tcpFlags(reset, 20)).toBe(TcpFlag.RST);
    expect([tcpSeq(reset, 20), tcpAck(reset, 20)]).toEqual([0x01020304, 0]);
  });

  it('gives nothing for a reset, a bad checksum, a later fragment, a cut-short header or another protocol', () => {
    const badChecksum = segment(TcpFlag.SYN);
    badChecksum[badChecksum.length - 1] ^= 0xff;
    expect(buildTcpReset(segment(TcpFlag.RST))).toBeNull();
    expect(buildTcpReset(segment(TcpFlag.RST | TcpFlag.ACK))).toBeNull();
    expect(buildTcpReset(badChecksum)).toBeNull();
    expect(buildTcpReset(rawPacket({ ...CLIENT, flagsFragment: 3 }, IpProtocol.TCP, Buffer.alloc(24)))).toBeNull();
    expect(buildTcpReset(rawPacket(CLIENT, IpProtocol.TCP, Buffer.alloc(12)))).toBeNull();
    expect(buildTcpReset(udpPacket(CLIENT, { srcPort: 1, dstPort: 2 }))).toBeNull();
    expect(buildTcpReset(Buffer.alloc(10))).toBeNull();
  });

  it('answers a first fragment whose checksum holds: only a non-zero offset rules a segment out', () => {
    const first = tcpPacket({ ...CLIENT, flagsFragment: IPV4_FLAG_MF }, { srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1, payload: Buffer.alloc(8) });
    expect(tcpAck(buildTcpReset(first)!, 20)).toBe(1 + 8 + 1);
  });
});

describe('buildTcpReset against the router local delivery', () => {
  it('builds the very bytes the router sends for segments to its own address', () => {
    const lan = new CaptureLink();
    const built = buildRouter({ interfaces: [{ name: 'lan0', address: ip('10.0.1.1'), prefixLength: 24, mtu: 1500 }] });
    const router = built.router;
    const link = router.interfaces[0]!;
    router.attach(link, lan);
    const toRouter = { src: '10.0.1.2', dst: '10.0.1.1', ident: 7 };
    const segments = [
      tcpPacket(toRouter, { srcPort: 5000, dstPort: 80, seq: 123, ack: 0, flags: TcpFlag.SYN, window: 100 }),
      tcpPacket(toRouter, { srcPort: 5000, dstPort: 80, seq: 124, ack: 999, flags: TcpFlag.ACK | TcpFlag.PSH, window: 100, payload: Buffer.from('GET /') }),
      tcpPacket(toRouter, { srcPort: 5001, dstPort: 81, seq: 0xffffffff, ack: 0, flags: TcpFlag.FIN, window: 0, payload: Buffer.from('z') }),
    ];
    for (const buf of segments) {
      router.receive(link, Buffer.from(buf));
      expect(lan.take()).toEqual([buildTcpReset(buf)]);
    }
    built.close();
  });
});
