// Software segmentation against the kernel's (vectors captured from Linux, gso-vectors.ts; the
// live comparison is test/unit/tun/gso-kernel.test.ts) and against segments built one by one from
// the rules with the emit functions, which share no code with the segmenter.
import { describe, expect, it } from 'vitest';
import { internetChecksum, pseudoHeaderSum } from '../../../router/wire/checksum.ts';
import { GSO_PROBLEM_NAMES, GsoChecksum, GsoProblem, GsoSegmenter } from '../../../router/wire/gso.ts';
import {
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IpProtocol,
  decrementIpv4Ttl,
  emitIpv4Header,
  ipv4FlagsFragment,
  ipv4HeaderLength,
  ipv4Ident,
  ipv4Tos,
  ipv4TotalLength,
  ipv4Ttl,
  validateIpv4,
} from '../../../router/wire/ipv4.ts';
import {
  TcpFlag,
  emitTcp,
  tcpAck,
  tcpChecksumValid,
  tcpDstPort,
  tcpFlags,
  tcpHeaderLength,
  tcpSeq,
  tcpSrcPort,
  tcpUrgent,
  tcpWindow,
} from '../../../router/wire/tcp.ts';
import { emitUdp, udpChecksumValid, udpDstPort, udpSrcPort } from '../../../router/wire/udp.ts';
import {
  VIRTIO_NET_HDR_LENGTH,
  VirtioGso,
  completePartialChecksum,
  partialChecksumSeed,
  virtioGsoSize,
  virtioGsoType,
} from '../../../router/wire/virtio-net.ts';
import {
  KERNEL_TCP_SEGMENTS_FULL,
  KERNEL_TCP_SEGMENTS_PARTIAL,
  KERNEL_UDP_SEGMENTS_FULL,
  KERNEL_UDP_SEGMENTS_PARTIAL,
  TCP_SUPER_FULL,
  TCP_SUPER_PARTIAL,
  UDP_SUPER_FULL,
  UDP_SUPER_PARTIAL,
} from './gso-vectors.ts';
import { CLIENT, SERVER, embed, hex } from './vectors.ts';

/** Every segment, whole, each in its own buffer. */
function segmentAll(packet: Uint8Array, off: number, gsoType: number, gsoSize: number, checksum: number): Buffer[] {
  const segmenter = new GsoSegmenter();
  const count = segmenter.begin(packet, off, packet.length - off, gsoType, gsoSize);
  expect(count).toBeGreaterThan(0);
  return Array.from({ length: count }, (_, i) => {
    const out = Buffer.alloc(segmenter.segmentLength(i));
    expect(segmenter.writeSegment(i, out, 0, checksum)).toBe(out.length);
    return out;
  });
}

describe('GsoSegmenter against segments Linux made', () => {
  const cases = [
    ['TCPv4, complete checksums', TCP_SUPER_FULL, KERNEL_TCP_SEGMENTS_FULL, GsoChecksum.FULL],
    ['TCPv4, seeded checksums', TCP_SUPER_PARTIAL, KERNEL_TCP_SEGMENTS_PARTIAL, GsoChecksum.PARTIAL],
    ['UDP_L4, complete checksums', UDP_SUPER_FULL, KERNEL_UDP_SEGMENTS_FULL, GsoChecksum.FULL],
    ['UDP_L4, seeded checksums', UDP_SUPER_PARTIAL, KERNEL_UDP_SEGMENTS_PARTIAL, GsoChecksum.PARTIAL],
  ] as const;
  for (const [name, superPacket, kernel, checksum] of cases) {
    it(name, () => {
      const frame = hex(superPacket);
      const packet = Buffer.from(frame.subarray(VIRTIO_NET_HDR_LENGTH));
      decrementIpv4Ttl(packet, 0); // the kernel forwarded it
      const ours = segmentAll(packet, 0, virtioGsoType(frame, 0), virtioGsoSize(frame, 0), checksum);
      expect(ours.map((s) => s.toString('hex'))).toEqual(kernel.map((k) => k.slice(2 * VIRTIO_NET_HDR_LENGTH)));
    });
  }
});

/** A small deterministic generator, so a failing case can be replayed. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x100000000;
  };
}

interface TcpCase {
  ident: number;
  flagsFragment: number;
  tos: number;
  ipOptions?: Uint8Array;
  seq: number;
  flags: number;
  tcpOptions?: Uint8Array;
  urgent: number;
  payload: Uint8Array;
  mss: number;
}

/** Options are padded to 4 bytes. */
function tcpLength(c: TcpCase): number {
  return 20 + (((c.tcpOptions?.length ?? 0) + 3) & ~3) + c.payload.length;
}

function tcpSuper(c: TcpCase, at = 0): Buffer {
  const ihl = 20 + (c.ipOptions?.length ?? 0);
  const buf = Buffer.alloc(at + ihl + tcpLength(c), 0xa5);
  emitIpv4Header(
    { src: CLIENT, dst: SERVER, protocol: IpProtocol.TCP, ttl: 63, tos: c.tos, ident: c.ident, flagsFragment: c.flagsFragment, options: c.ipOptions, payloadLength: tcpLength(c) },
    buf,
    at,
  );
  emitTcp({ srcPort: 1234, dstPort: 80, seq: c.seq, ack: 0xdeadbeef, flags: c.flags, window: 4321, urgent: c.urgent, options: c.tcpOptions, payload: c.payload }, buf, at + ihl, CLIENT, SERVER);
  return buf;
}

/** Segment i built from scratch by the rules in gso.ts's header comment. */
function tcpReference(c: TcpCase): Buffer[] {
  const count = Math.max(1, Math.ceil(c.payload.length / c.mss));
  return Array.from({ length: count }, (_, i) => {
    const payload = c.payload.subarray(i * c.mss, (i + 1) * c.mss);
    let flags = c.flags;
    if (i !== count - 1) flags &= ~(TcpFlag.FIN | TcpFlag.PSH);
    if (i !== 0) flags &= ~TcpFlag.CWR;
    return tcpSuper({ ...c, ident: (c.ident + i) % 65536, seq: (c.seq + i * c.mss) % 2 ** 32, flags, payload });
  });
}

function randomTcpCase(random: () => number): TcpCase {
  const payload = Buffer.alloc(1 + Math.floor(random() * 9000));
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
  const ipOptions = random() < 0.3 ? Buffer.from([1, 1, 1, 1, 1, 1, 1, 0].slice(0, 4 * (1 + Math.floor(random() * 2)))) : undefined;
  const tcpOptions = random() < 0.6 ? Buffer.from('0101080a11223344556677880101', 'hex').subarray(0, random() < 0.5 ? 12 : 14) : undefined;
  return {
    ident: random() < 0.2 ? 0xffff - Math.floor(random() * 3) : Math.floor(random() * 65536),
    flagsFragment: random() < 0.7 ? IPV4_FLAG_DF : 0,
    tos: Math.floor(random() * 256),
    ipOptions,
    seq: random() < 0.2 ? 0xffffffff - Math.floor(random() * 5000) : Math.floor(random() * 2 ** 32),
    flags: TcpFlag.ACK | (Math.floor(random() * 256) & (TcpFlag.FIN | TcpFlag.PSH | TcpFlag.CWR | TcpFlag.ECE | TcpFlag.URG)),
    tcpOptions,
    urgent: Math.floor(random() * 65536),
    payload,
    mss: 1 + Math.floor(random() * 2000),
  };
}

describe('GsoSegmenter against the rules, TCPv4', () => {
  it('200 random super-packets: ids, sequence numbers, flags, lengths and checksums as the rules say', () => {
    const random = lcg(11);
    for (let n = 0; n < 200; n++) {
      const c = randomTcpCase(random);
      const expected = tcpReference(c);
      const ours = segmentAll(tcpSuper(c), 0, VirtioGso.TCPV4, c.mss, GsoChecksum.FULL);
      expect(ours.length, `case ${n}`).toBe(expected.length);
      for (let i = 0; i < ours.length; i++) expect(ours[i]!.toString('hex'), `case ${n} segment ${i}`).toBe(expected[i]!.toString('hex'));
    }
  });

  it('each segment is a valid packet that keeps every other field of the super-packet', () => {
    const c = randomTcpCase(lcg(5));
    const superPacket = tcpSuper({ ...c, payload: Buffer.alloc(5000, 7), mss: 1448 });
    const ihl = ipv4HeaderLength(superPacket, 0);
    for (const segment of segmentAll(superPacket, 0, VirtioGso.TCPV4 | VirtioGso.ECN, 1448, GsoChecksum.FULL)) {
      expect(validateIpv4(segment, 0, segment.length)).toBe(0);
      expect(ipv4TotalLength(segment, 0)).toBe(segment.length);
      expect(ipv4Ttl(segment, 0)).toBe(63);
      expect(ipv4Tos(segment, 0)).toBe(c.tos);
      expect(ipv4FlagsFragment(segment, 0)).toBe(c.flagsFragment);
      expect(tcpChecksumValid(segment, ihl, segment.length - ihl, CLIENT, SERVER)).toBe(true);
      expect([tcpSrcPort(segment, ihl), tcpDstPort(segment, ihl), tcpAck(segment, ihl), tcpWindow(segment, ihl), tcpUrgent(segment, ihl)]).toEqual([
        1234, 80, 0xdeadbeef, 4321, c.urgent,
      ]);
      expect(segment.subarray(ihl + 20, ihl + tcpHeaderLength(segment, ihl)).equals(superPacket.subarray(ihl + 20, ihl + tcpHeaderLength(superPacket, ihl)))).toBe(true);
    }
  });

  it('FIN and PSH only on the last segment, CWR only on the first, the rest on all', () => {
    const all = TcpFlag.ACK | TcpFlag.PSH | TcpFlag.FIN | TcpFlag.CWR | TcpFlag.ECE | TcpFlag.URG;
    const superPacket = tcpSuper({ ident: 1, flagsFragment: IPV4_FLAG_DF, tos: 0, seq: 1, flags: all, urgent: 0, payload: Buffer.alloc(30), mss: 10 });
    const flags = segmentAll(superPacket, 0, VirtioGso.TCPV4, 10, GsoChecksum.FULL).map((s) => tcpFlags(s, 20));
    expect(flags).toEqual([all & ~(TcpFlag.FIN | TcpFlag.PSH), all & ~(TcpFlag.FIN | TcpFlag.PSH | TcpFlag.CWR), all & ~TcpFlag.CWR]);
  });

  it('identification and sequence numbers wrap', () => {
    const superPacket = tcpSuper({ ident: 0xffff, flagsFragment: 0, tos: 0, seq: 0xfffffff0, flags: TcpFlag.ACK, urgent: 0, payload: Buffer.alloc(48), mss: 16 });
    const segments = segmentAll(superPacket, 0, VirtioGso.TCPV4, 16, GsoChecksum.FULL);
    expect(segments.map((s) => ipv4Ident(s, 0))).toEqual([0xffff, 0, 1]);
    expect(segments.map((s) => tcpSeq(s, 20))).toEqual([0xfffffff0, 0, 0x10]);
  });

  it('a payload that fits one segment comes out as one packet with a complete checksum', () => {
    const c: TcpCase = { ident: 5, flagsFragment: IPV4_FLAG_DF, tos: 0, seq: 9, flags: TcpFlag.ACK | TcpFlag.FIN | TcpFlag.CWR, urgent: 0, payload: Buffer.alloc(1000, 3), mss: 1000 };
    const superPacket = tcpSuper(c);
    const seeded = Buffer.from(superPacket);
    seeded.writeUInt16BE(partialChecksumSeed(CLIENT, SERVER, IpProtocol.TCP, tcpLength(c)), 36);
    const [only, ...rest] = segmentAll(seeded, 0, VirtioGso.TCPV4, 1000, GsoChecksum.FULL);
    expect(rest).toEqual([]);
    expect(only!.toString('hex')).toBe(superPacket.toString('hex'));
  });
});

describe('GsoSegmenter against the rules, UDP_L4', () => {
  it('100 random super-packets: each segment a datagram with its own length, id and checksum', () => {
    const random = lcg(23);
    for (let n = 0; n < 100; n++) {
      const payload = Buffer.alloc(1 + Math.floor(random() * 6000));
      for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
      const mss = 1 + Math.floor(random() * 1500);
      const ident = Math.floor(random() * 65536);
      const flagsFragment = random() < 0.5 ? IPV4_FLAG_DF : 0;
      const datagram = (body: Uint8Array, id: number): Buffer => {
        const buf = Buffer.alloc(28 + body.length);
        emitIpv4Header({ src: CLIENT, dst: SERVER, protocol: IpProtocol.UDP, ttl: 64, ident: id, flagsFragment, payloadLength: 8 + body.length }, buf, 0);
        emitUdp({ srcPort: 53, dstPort: 3333, payload: body }, buf, 20, CLIENT, SERVER);
        return buf;
      };
      const count = Math.ceil(payload.length / mss);
      const expected = Array.from({ length: count }, (_, i) => datagram(payload.subarray(i * mss, (i + 1) * mss), (ident + i) % 65536));
      const ours = segmentAll(datagram(payload, ident), 0, VirtioGso.UDP_L4, mss, GsoChecksum.FULL);
      expect(ours.map((s) => s.toString('hex')), `case ${n}`).toEqual(expected.map((s) => s.toString('hex')));
      for (const s of ours) {
        expect(udpChecksumValid(s, 20, s.length - 20, CLIENT, SERVER)).toBe(true);
        expect([udpSrcPort(s, 20), udpDstPort(s, 20)]).toEqual([53, 3333]);
      }
    }
  });

  it('a segment whose checksum computes to 0 carries 0xffff', () => {
    const datagram = (word: number): Buffer => {
      const buf = Buffer.alloc(28 + 4);
      emitIpv4Header({ src: CLIENT, dst: SERVER, protocol: IpProtocol.UDP, ttl: 64, payloadLength: 12 }, buf, 0);
      emitUdp({ srcPort: 1, dstPort: 2, payload: Buffer.from([0, 0, word >>> 8, word & 0xff]) }, buf, 20, CLIENT, SERVER);
      return buf;
    };
    // The second segment's checksum is ~(S + word): with word = ~S (its checksum at word 0) it is 0.
    const word = segmentAll(datagram(0), 0, VirtioGso.UDP_L4, 2, GsoChecksum.FULL)[1]!.readUInt16BE(26);
    const second = segmentAll(datagram(word), 0, VirtioGso.UDP_L4, 2, GsoChecksum.FULL)[1]!;
    expect(second.readUInt16BE(26)).toBe(0xffff);
    expect(udpChecksumValid(second, 20, 10, CLIENT, SERVER)).toBe(true);
    second.writeUInt16BE(0, 26);
    expect(internetChecksum(second, 20, 10, pseudoHeaderSum(CLIENT, SERVER, IpProtocol.UDP, 10))).toBe(0); // it computes to 0
  });
});

describe('GsoSegmenter modes and placement', () => {
  const c = randomTcpCase(lcg(99));
  const mss = 700;

  it('seeded segments complete to the full ones', () => {
    const superPacket = tcpSuper({ ...c, mss });
    const full = segmentAll(superPacket, 0, VirtioGso.TCPV4, mss, GsoChecksum.FULL);
    const partial = segmentAll(superPacket, 0, VirtioGso.TCPV4, mss, GsoChecksum.PARTIAL);
    const ihl = ipv4HeaderLength(superPacket, 0);
    for (let i = 0; i < full.length; i++) {
      const segment = partial[i]!;
      expect(segment.readUInt16BE(ihl + 16)).toBe(partialChecksumSeed(CLIENT, SERVER, IpProtocol.TCP, segment.length - ihl));
      expect(completePartialChecksum(segment, 0, segment.length, ihl, 16)).toBe(true);
      expect(segment.toString('hex')).toBe(full[i]!.toString('hex'));
    }
  });

  it('headers alone, with the payload ranges, make the same segments (for writev from the super-packet)', () => {
    const superPacket = tcpSuper({ ...c, mss });
    const segmenter = new GsoSegmenter();
    const count = segmenter.begin(superPacket, 0, superPacket.length, VirtioGso.TCPV4, mss);
    const whole = segmentAll(superPacket, 0, VirtioGso.TCPV4, mss, GsoChecksum.FULL);
    let next = segmenter.headerLength;
    for (let i = 0; i < count; i++) {
      const headers = Buffer.alloc(segmenter.headerLength);
      expect(segmenter.writeHeaders(i, headers, 0, GsoChecksum.FULL)).toBe(segmenter.headerLength);
      expect(segmenter.payloadOffset(i)).toBe(next);
      const payload = superPacket.subarray(next, next + segmenter.payloadLength(i));
      next += payload.length;
      expect(Buffer.concat([headers, payload]).toString('hex')).toBe(whole[i]!.toString('hex'));
    }
    expect(next).toBe(superPacket.length);
  });

  it('reads at any offset and writes at any offset, touching nothing around the segment', () => {
    const reference = segmentAll(tcpSuper({ ...c, mss }), 0, VirtioGso.TCPV4, mss, GsoChecksum.FULL);
    for (const [from, to] of [[1, 0], [3, 5], [8, 7], [13, 2]] as const) {
      const superPacket = tcpSuper({ ...c, mss }, from);
      const segmenter = new GsoSegmenter();
      expect(segmenter.begin(superPacket, from, superPacket.length - from, VirtioGso.TCPV4, mss)).toBe(reference.length);
      for (let i = 0; i < reference.length; i++) {
        const out = embed(Buffer.alloc(segmenter.segmentLength(i)), to);
        segmenter.writeSegment(i, out, to, GsoChecksum.FULL);
        expect(out.subarray(to, to + reference[i]!.length).toString('hex'), `from ${from} to ${to} segment ${i}`).toBe(reference[i]!.toString('hex'));
        expect(out[to - 1] ?? 0xa5).toBe(0xa5);
        expect(out[to + reference[i]!.length]).toBe(0xa5);
      }
    }
  });

  it('one segmenter serves one super-packet after another', () => {
    const segmenter = new GsoSegmenter();
    const tcp = tcpSuper({ ...c, mss });
    const udp = hex(UDP_SUPER_FULL).subarray(VIRTIO_NET_HDR_LENGTH);
    expect(segmenter.begin(tcp, 0, tcp.length, VirtioGso.TCPV4, mss)).toBeGreaterThan(0);
    expect(segmenter.begin(udp, 0, udp.length, VirtioGso.UDP_L4, 50)).toBe(3);
    const out = Buffer.alloc(segmenter.segmentLength(2));
    segmenter.writeSegment(2, out, 0, GsoChecksum.FULL);
    expect(udpChecksumValid(out, 20, out.length - 20, out.readUInt32BE(12), out.readUInt32BE(16))).toBe(true);
    expect(segmenter.begin(udp, 0, 10, VirtioGso.UDP_L4, 50)).toBe(GsoProblem.TRUNCATED);
    expect(segmenter.count).toBe(0);
  });
});

describe('GsoSegmenter refuses what it cannot segment', () => {
  const tcp = tcpSuper({ ident: 1, flagsFragment: IPV4_FLAG_DF, tos: 0, seq: 1, flags: TcpFlag.ACK, urgent: 0, payload: Buffer.alloc(100), mss: 40 });
  const udp = hex(UDP_SUPER_FULL).subarray(VIRTIO_NET_HDR_LENGTH);
  const edited = (from: Buffer, edit: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(from);
    edit(b);
    return b;
  };
  const cases: [string, Buffer, number, number, number, number][] = [
    ['TCPv6', tcp, tcp.length, VirtioGso.TCPV6, 40, GsoProblem.UNSUPPORTED_TYPE],
    ['UFO', udp, udp.length, VirtioGso.UDP, 40, GsoProblem.UNSUPPORTED_TYPE],
    ['no GSO', tcp, tcp.length, VirtioGso.NONE, 40, GsoProblem.UNSUPPORTED_TYPE],
    ['gso_size 0', tcp, tcp.length, VirtioGso.TCPV4, 0, GsoProblem.ZERO_GSO_SIZE],
    ['shorter than an IPv4 header', tcp, 19, VirtioGso.TCPV4, 40, GsoProblem.TRUNCATED],
    ['shorter than the total length', tcp, tcp.length - 1, VirtioGso.TCPV4, 40, GsoProblem.TRUNCATED],
    ['total length inside the TCP header', edited(tcp, (b) => b.writeUInt16BE(30, 2)), tcp.length, VirtioGso.TCPV4, 40, GsoProblem.TRUNCATED],
    ['IPv6', edited(tcp, (b) => (b[0] = 0x65)), tcp.length, VirtioGso.TCPV4, 40, GsoProblem.BAD_IPV4],
    ['IHL 4', edited(tcp, (b) => (b[0] = 0x44)), tcp.length, VirtioGso.TCPV4, 40, GsoProblem.BAD_IPV4],
    ['TCPV4 on UDP', udp, udp.length, VirtioGso.TCPV4, 40, GsoProblem.PROTOCOL_MISMATCH],
    ['UDP_L4 on TCP', tcp, tcp.length, VirtioGso.UDP_L4, 40, GsoProblem.PROTOCOL_MISMATCH],
    ['TCP data offset 4', edited(tcp, (b) => (b[32] = 0x40)), tcp.length, VirtioGso.TCPV4, 40, GsoProblem.BAD_TCP_HEADER],
    ['a first fragment', edited(tcp, (b) => b.writeUInt16BE(IPV4_FLAG_MF, 6)), tcp.length, VirtioGso.TCPV4, 40, GsoProblem.FRAGMENT],
    ['a later fragment', edited(tcp, (b) => b.writeUInt16BE(8, 6)), tcp.length, VirtioGso.TCPV4, 40, GsoProblem.FRAGMENT],
  ];
  for (const [name, packet, length, type, size, problem] of cases) {
    it(`${name}: ${GSO_PROBLEM_NAMES[problem]}`, () => {
      const segmenter = new GsoSegmenter();
      expect(segmenter.begin(packet, 0, length, type, size)).toBe(problem);
      expect(segmenter.count).toBe(0);
    });
  }
});
