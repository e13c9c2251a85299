import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import { IpProtocol } from '../../../router/wire/ipv4.ts';
import { fillTcpChecksum, tcpChecksumValid } from '../../../router/wire/tcp.ts';
import { fillUdpChecksum, udpChecksumValid } from '../../../router/wire/udp.ts';
import {
  VIRTIO_NET_HDR,
  VIRTIO_NET_HDR_LENGTH,
  VirtioGso,
  VirtioNetFlag,
  clearVirtioNetHeader,
  completePartialChecksum,
  emitVirtioNetHeader,
  parseVirtioNetHeader,
  partialChecksumSeed,
  setVirtioCsumOffset,
  setVirtioCsumStart,
  setVirtioFlags,
  setVirtioGsoSize,
  setVirtioGsoType,
  setVirtioHdrLen,
  virtioCsumOffset,
  virtioCsumStart,
  virtioDataValid,
  virtioFlags,
  virtioGsoEcn,
  virtioGsoProtocol,
  virtioGsoSize,
  virtioGsoType,
  virtioHdrLen,
  virtioNeedsChecksum,
} from '../../../router/wire/virtio-net.ts';
import { KERNEL_TCP_SEGMENTS_PARTIAL, KERNEL_UDP_SEGMENTS_PARTIAL } from './gso-vectors.ts';
import { changedBytes, embed, hex } from './vectors.ts';

// Read from a TUN with TSO and USO granted (test/unit/tun/gso-kernel.test.ts), Linux 6.18: the
// header and the IPv4 + TCP/UDP headers behind it.
// A TCP stream 10.77.1.2:32928 -> 10.77.2.2:5001: NEEDS_CSUM, GSO_TCPV4, hdr_len 52, gso_size
// 1448, csum_start 20, csum_offset 16; IPv4 total length 7292, TCP checksum field 0x340c.
const KERNEL_TSO = hex(
  '01013400a805140010000000' +
    '45001c7c84134000400682cb0a4d01020a4d0202' +
    '80a013898a02574d2980b1298018003f340c00000101080a611e566299ffb281',
);
// A UDP_SEGMENT send of 3584 bytes in 1000-byte segments: GSO_UDP_L4, hdr_len 28, gso_size 1000,
// csum_start 20, csum_offset 6; UDP length 3592, checksum field 0x25b7.
const KERNEL_USO = hex('01051c00e803140006000000' + '45000e1c84d000004011d0630a4d01020a4d0202' + 'b117138b0e0825b7');

describe('virtio-net header accessors on headers the kernel wrote', () => {
  for (const off of [0, 7]) {
    it(`read a TSO header (at offset ${off})`, () => {
      const buf = embed(KERNEL_TSO, off);
      expect(virtioFlags(buf, off)).toBe(VirtioNetFlag.NEEDS_CSUM);
      expect(virtioNeedsChecksum(buf, off)).toBe(true);
      expect(virtioDataValid(buf, off)).toBe(false);
      expect(virtioGsoType(buf, off)).toBe(VirtioGso.TCPV4);
      expect(virtioGsoProtocol(buf, off)).toBe(VirtioGso.TCPV4);
      expect(virtioGsoEcn(buf, off)).toBe(false);
      expect(virtioHdrLen(buf, off)).toBe(52);
      expect(virtioGsoSize(buf, off)).toBe(1448);
      expect(virtioCsumStart(buf, off)).toBe(20);
      expect(virtioCsumOffset(buf, off)).toBe(16);
    });
  }

  it('read a USO header', () => {
    expect(parseVirtioNetHeader(KERNEL_USO, 0)).toEqual({
      flags: VirtioNetFlag.NEEDS_CSUM,
      gsoType: VirtioGso.UDP_L4,
      hdrLen: 28,
      gsoSize: 1000,
      csumStart: 20,
      csumOffset: 6,
    });
  });

  it('the ECN bit is part of the type byte but not of the protocol', () => {
    const buf = Buffer.from(KERNEL_TSO.subarray(0, VIRTIO_NET_HDR_LENGTH));
    setVirtioGsoType(buf, 0, VirtioGso.TCPV4 | VirtioGso.ECN);
    expect(buf[VIRTIO_NET_HDR.GSO_TYPE]).toBe(0x81);
    expect(virtioGsoType(buf, 0)).toBe(0x81);
    expect(virtioGsoProtocol(buf, 0)).toBe(VirtioGso.TCPV4);
    expect(virtioGsoEcn(buf, 0)).toBe(true);
  });
});

describe('virtio-net header setters', () => {
  it('write little-endian and only their own bytes', () => {
    const setters: [(b: Uint8Array, o: number, v: number) => void, number, number[]][] = [
      [setVirtioFlags, VirtioNetFlag.DATA_VALID, [0]],
      [setVirtioGsoType, VirtioGso.UDP_L4, [1]],
      [setVirtioHdrLen, 0x0102, [2, 3]],
      [setVirtioGsoSize, 0x0304, [4, 5]],
      [setVirtioCsumStart, 0x0506, [6, 7]],
      [setVirtioCsumOffset, 0x0708, [8, 9]],
    ];
    for (const [set, value, bytes] of setters) {
      const before = embed(Buffer.alloc(VIRTIO_NET_HDR_LENGTH), 3);
      const after = Buffer.from(before);
      set(after, 3, value);
      expect(changedBytes(before, after)).toEqual(bytes.map((b) => b + 3));
      if (bytes.length === 2) expect([after[3 + bytes[0]!], after[3 + bytes[1]!]]).toEqual([value & 0xff, value >>> 8]);
    }
  });

  it('emit writes what parse reads, num_buffers 0, and reproduces the kernel bytes', () => {
    for (const vector of [KERNEL_TSO, KERNEL_USO]) {
      const buf = Buffer.alloc(VIRTIO_NET_HDR_LENGTH, 0xee);
      expect(emitVirtioNetHeader(parseVirtioNetHeader(vector, 0), buf, 0)).toBe(VIRTIO_NET_HDR_LENGTH);
      expect(buf.toString('hex')).toBe(vector.subarray(0, VIRTIO_NET_HDR_LENGTH).toString('hex'));
    }
  });

  it('clear leaves the no-offload header: all twelve bytes zero, nothing around them', () => {
    const buf = embed(KERNEL_TSO.subarray(0, VIRTIO_NET_HDR_LENGTH), 5);
    clearVirtioNetHeader(buf, 5);
    expect([...buf.subarray(5, 5 + VIRTIO_NET_HDR_LENGTH)]).toEqual(new Array(VIRTIO_NET_HDR_LENGTH).fill(0));
    expect(buf[4]).toBe(0xa5);
    expect(buf[5 + VIRTIO_NET_HDR_LENGTH]).toBe(0xa5);
  });
});

describe('NEEDS_CSUM: the seed and its completion', () => {
  it("the seed is what the kernel's TCP and UDP senders leave in the checksum field", () => {
    const tcp = KERNEL_TSO.subarray(VIRTIO_NET_HDR_LENGTH);
    expect(partialChecksumSeed(tcp.readUInt32BE(12), tcp.readUInt32BE(16), IpProtocol.TCP, 7292 - 20)).toBe(0x340c);
    expect(tcp.readUInt16BE(36)).toBe(0x340c);
    const udp = KERNEL_USO.subarray(VIRTIO_NET_HDR_LENGTH);
    expect(partialChecksumSeed(udp.readUInt32BE(12), udp.readUInt32BE(16), IpProtocol.UDP, 3592)).toBe(0x25b7);
  });

  it('completing the segments the kernel left seeded gives valid checksums, equal to computing them afresh', () => {
    for (const [vectors, protocol] of [[KERNEL_TCP_SEGMENTS_PARTIAL, IpProtocol.TCP], [KERNEL_UDP_SEGMENTS_PARTIAL, IpProtocol.UDP]] as const) {
      for (const vector of vectors) {
        const frame = hex(vector);
        const start = virtioCsumStart(frame, 0);
        const offset = virtioCsumOffset(frame, 0);
        const packet = Buffer.from(frame.subarray(VIRTIO_NET_HDR_LENGTH));
        const src = packet.readUInt32BE(12);
        const dst = packet.readUInt32BE(16);
        const l4Length = packet.length - start;
        expect(packet.readUInt16BE(start + offset)).toBe(partialChecksumSeed(src, dst, protocol, l4Length));

        const fresh = Buffer.from(packet);
        if (protocol === IpProtocol.TCP) fillTcpChecksum(fresh, start, l4Length, src, dst);
        else fillUdpChecksum(fresh, start, l4Length, src, dst);
        expect(completePartialChecksum(packet, 0, packet.length, start, offset)).toBe(true);
        expect(packet.toString('hex')).toBe(fresh.toString('hex'));
        if (protocol === IpProtocol.TCP) expect(tcpChecksumValid(packet, start, l4Length, src, dst)).toBe(true);
        else expect(udpChecksumValid(packet, start, l4Length, src, dst)).toBe(true);
      }
    }
  });

  it('works at an offset inside a larger buffer and ignores bytes past the packet', () => {
    const packet = hex(KERNEL_TCP_SEGMENTS_PARTIAL[2]!).subarray(VIRTIO_NET_HDR_LENGTH);
    const buf = embed(packet, 11);
    expect(completePartialChecksum(buf, 11, packet.length, 20, 16)).toBe(true);
    expect(tcpChecksumValid(buf, 31, packet.length - 20, packet.readUInt32BE(12), packet.readUInt32BE(16))).toBe(true);
    expect(buf[11 + packet.length]).toBe(0xa5);
  });

  it('a sum that completes to 0 is stored as 0xffff, as skb_checksum_help does', () => {
    // A UDP datagram whose last payload word is chosen so the one's complement sum is 0xffff.
    const packet = hex(KERNEL_UDP_SEGMENTS_PARTIAL[2]!).subarray(VIRTIO_NET_HDR_LENGTH);
    const buf = Buffer.from(packet);
    const last = buf.length - 2;
    buf.writeUInt16BE(0, last);
    const without = internetChecksum(buf, 20, buf.length - 20); // ~sum with the last word 0
    buf.writeUInt16BE(without, last); // now the sum is 0xffff: the checksum would be 0
    expect(internetChecksum(buf, 20, buf.length - 20)).toBe(0);
    expect(completePartialChecksum(buf, 0, buf.length, 20, 6)).toBe(true);
    expect(buf.readUInt16BE(26)).toBe(0xffff);
    expect(udpChecksumValid(buf, 20, buf.length - 20, buf.readUInt32BE(12), buf.readUInt32BE(16))).toBe(true);
  });

  it('refuses a start or field outside the packet and touches nothing', () => {
    const packet = hex(KERNEL_TCP_SEGMENTS_PARTIAL[0]!).subarray(VIRTIO_NET_HDR_LENGTH);
    for (const [start, offset] of [[packet.length, 0], [20, packet.length - 21], [packet.length - 1, 0]] as const) {
      const buf = Buffer.from(packet);
      expect(completePartialChecksum(buf, 0, buf.length, start, offset)).toBe(false);
      expect(buf.equals(packet)).toBe(true);
    }
  });
});
