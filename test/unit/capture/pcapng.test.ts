/**
 * pcapng blocks byte for byte, against vectors written out by hand from draft-ietf-opsawg-pcapng
 * (the version in IETF-OPSAWG-WG/draft-ietf-opsawg-pcap, March 2026): the general block layout
 * and trailing length of 3.1, the option TLVs with 32-bit padding and opt_endofopt of 3.5, zero
 * padding of 3.6.2, little-endian numbers announced by the byte-order magic (3.6.1, 4.1), the SHB
 * of 4.1, the IDB of 4.2 (LinkType, SnapLen, if_name 2, if_description 3, if_tsresol 9), the EPB
 * of 4.3 (timestamp high word first, captured/original length, epb_flags 2, epb_dropcount 4,
 * epb_packetid 5) and the direction bits of the flags word in 4.3.1 (01 inbound, 10 outbound).
 */
import { describe, expect, it } from 'vitest';
import {
  CaptureDirection,
  PCAPNG_SNAP_LENGTH,
  encodeEnhancedPacket,
  encodeInterfaceDescription,
  encodeSectionHeader,
  enhancedPacketLength,
  utf8OptionLength,
} from '../../../router/deploy/capture/pcapng.ts';
import { PcapngWriter } from '../../../router/deploy/capture/pcapng-writer.ts';
import { MemorySink, hex } from './support.ts';

// Section Header Block, 44 bytes: type 0a0d0d0a, length 0x2c, magic 0x1a2b3c4d written
// little-endian, version 1.0, section length -1, shb_userappl (4) "vrouter" (7 bytes + 1 pad),
// opt_endofopt, length again.
const SHB = hex(`
  0a0d0d0a 2c000000
  4d3c2b1a 0100 0000 ffffffff ffffffff
  0400 0700 76726f75 74657200
  0000 0000
  2c000000`);

// Interface Description Block, 60 bytes: LINKTYPE_RAW 101 (0x65), reserved 0, snaplen 65535,
// if_name (2) "home:wan0" (9 + 3 pad), if_description (3) "uplink" (6 + 2 pad),
// if_tsresol (9) = 9, one byte + 3 pad: nanoseconds.
const IDB_WAN = hex(`
  01000000 3c000000
  6500 0000 ffff0000
  0200 0900 686f6d65 3a77616e 30000000
  0300 0600 75706c69 6e6b0000
  0900 0100 09000000
  0000 0000
  3c000000`);

// The same without a description: 40 bytes, name "a:b" (3 + 1 pad).
const IDB_BARE = hex(`
  01000000 28000000
  6500 0000 ffff0000
  0200 0300 613a6200
  0900 0100 09000000
  0000 0000
  28000000`);

// A 29-byte UDP datagram 10.0.0.1:1024 -> 10.0.0.2:53 carrying "x" (the checksums do not matter here).
const UDP_29 = hex('4500001d12340000401100000a0000010a000002' + '0400003500090000' + '78');

// Enhanced Packet Block, 88 bytes: interface 1, timestamp 1700000000123456789 ns =
// 0x17979cfe_3d85cd15 (high word first, each little-endian), captured = original = 29, the
// packet + 3 zero bytes, epb_flags (2) = 1 (inbound), epb_packetid (5) = 0x1_00000002 as a
// little-endian u64 (low word first).
const EPB_INBOUND = hex(`
  06000000 58000000
  01000000 fe9c9717 15cd853d 1d000000 1d000000
  4500001d 12340000 40110000 0a000001 0a000002 04000035 00090000 78000000
  0200 0400 01000000
  0500 0800 02000000 01000000
  0000 0000
  58000000`);

// A 28-byte ICMP echo request 192.168.1.10 -> 203.0.113.5 (no padding needed).
const ICMP_28 = hex('4500001c0001000040010000c0a8010acb007105' + '0800f7ff00000000');
const COMMENT = 'dropped: filter:FORWARD:rule 2 (DROP)';

// Enhanced Packet Block, 140 bytes: interface 0, timestamp 1 s (high 0, low 0x3b9aca00), a
// 28-byte packet (no padding), epb_flags = 2 (outbound), epb_packetid 7, epb_dropcount (4) 3,
// opt_comment (1) of 37 bytes + 3 pad.
const EPB_DROPPED = hex(`
  06000000 8c000000
  00000000 00000000 00ca9a3b 1c000000 1c000000
  4500001c 00010000 40010000 c0a8010a cb007105 0800f7ff 00000000
  0200 0400 02000000
  0500 0800 07000000 00000000
  0400 0800 03000000 00000000
  0100 2500 64726f70 7065643a 2066696c 7465723a 464f5257 4152443a 72756c65 20322028 44524f50 29000000
  0000 0000
  8c000000`);

/** Fills with 0xee first, so an unwritten byte (padding included) would show. */
function encodeInto(length: number, encode: (buf: Buffer, at: number) => number, at = 0): { buf: Buffer; written: number } {
  const buf = Buffer.alloc(at + length + 8, 0xee);
  const written = encode(buf, at);
  return { buf: buf.subarray(at, at + written), written };
}

describe('pcapng blocks', () => {
  it('encodes a Section Header Block', () => {
    const { buf, written } = encodeInto(SHB.length, (b, at) => encodeSectionHeader(b, at, 'vrouter'), 3);
    expect(written).toBe(44);
    expect(buf.toString('hex')).toBe(SHB.toString('hex'));
  });

  it('leaves shb_userappl out when there is no application name', () => {
    const { buf } = encodeInto(32, (b, at) => encodeSectionHeader(b, at, ''));
    expect(buf.toString('hex')).toBe(hex('0a0d0d0a 20000000 4d3c2b1a 0100 0000 ffffffff ffffffff 00000000 20000000').toString('hex'));
  });

  it('encodes an Interface Description Block with name, description and nanosecond resolution', () => {
    const { buf, written } = encodeInto(IDB_WAN.length, (b, at) => encodeInterfaceDescription(b, at, 'home:wan0', 'uplink'), 5);
    expect(written).toBe(60);
    expect(buf.toString('hex')).toBe(IDB_WAN.toString('hex'));
  });

  it('leaves if_description out when there is none', () => {
    const { buf } = encodeInto(IDB_BARE.length, (b, at) => encodeInterfaceDescription(b, at, 'a:b', ''));
    expect(buf.toString('hex')).toBe(IDB_BARE.toString('hex'));
  });

  it('encodes an inbound Enhanced Packet Block with padding and a 64-bit packet id', () => {
    const length = enhancedPacketLength(29, CaptureDirection.INBOUND, 0, 0);
    expect(length).toBe(88);
    const { buf } = encodeInto(length, (b, at) =>
      encodeEnhancedPacket(b, at, 1, 0x17979cfe, 0x3d85cd15, UDP_29, 0, 29, CaptureDirection.INBOUND, 0x1_0000_0002, 0, undefined, 0),
    );
    expect(buf.toString('hex')).toBe(EPB_INBOUND.toString('hex'));
  });

  it('encodes an outbound Enhanced Packet Block with a drop count and a comment', () => {
    expect(ICMP_28.length).toBe(28);
    const commentBytes = utf8OptionLength(COMMENT);
    expect(commentBytes).toBe(37);
    const { buf } = encodeInto(140, (b, at) =>
      encodeEnhancedPacket(b, at, 0, 0, 1_000_000_000, ICMP_28, 0, 28, CaptureDirection.OUTBOUND, 7, 3, COMMENT, commentBytes),
    );
    expect(buf.toString('hex')).toBe(EPB_DROPPED.toString('hex'));
  });

  it('takes the packet from an offset inside a larger buffer', () => {
    const big = Buffer.concat([Buffer.alloc(11, 0xa5), UDP_29, Buffer.alloc(5, 0xa5)]);
    const { buf } = encodeInto(88, (b, at) =>
      encodeEnhancedPacket(b, at, 1, 0x17979cfe, 0x3d85cd15, big, 11, 29, CaptureDirection.INBOUND, 0x1_0000_0002, 0, undefined, 0),
    );
    expect(buf.toString('hex')).toBe(EPB_INBOUND.toString('hex'));
  });

  it('writes no epb_flags when the direction is not known', () => {
    const { buf } = encodeInto(80, (b, at) =>
      encodeEnhancedPacket(b, at, 0, 0, 0, UDP_29, 0, 29, CaptureDirection.UNKNOWN, 0, 0, undefined, 0),
    );
    // 8 + 20 + 32 + packet id 12 + end 4 + 4.
    expect(buf.length).toBe(80);
    expect(buf.subarray(60, 76).toString('hex')).toBe(hex('0500 0800 00000000 00000000 0000 0000').toString('hex'));
  });

  it('cuts a packet longer than the snap length and keeps its original length', () => {
    const huge = Buffer.alloc(70_000, 0x45);
    const length = enhancedPacketLength(PCAPNG_SNAP_LENGTH, CaptureDirection.INBOUND, 0, 0);
    const buf = Buffer.alloc(length);
    expect(encodeEnhancedPacket(buf, 0, 0, 0, 0, huge, 0, huge.length, CaptureDirection.INBOUND, 1, 0, undefined, 0)).toBe(length);
    expect(buf.readUInt32LE(20)).toBe(65535);
    expect(buf.readUInt32LE(24)).toBe(70_000);
    expect(buf.readUInt32LE(length - 4)).toBe(length);
  });

  it('cuts a comment longer than an option can hold at a character boundary', () => {
    const comment = 'é'.repeat(40_000); // 80 000 bytes of two-byte characters
    const bytes = utf8OptionLength(comment);
    expect(bytes).toBe(65534);
    const length = enhancedPacketLength(29, CaptureDirection.INBOUND, 0, bytes);
    const buf = Buffer.alloc(length);
    encodeEnhancedPacket(buf, 0, 0, 0, 0, UDP_29, 0, 29, CaptureDirection.INBOUND, 1, 0, comment, bytes);
    const at = 8 + 20 + 32 + 8 + 12;
    expect(buf.readUInt16LE(at)).toBe(1);
    expect(buf.readUInt16LE(at + 2)).toBe(65534);
    expect(buf.toString('utf8', at + 4, at + 4 + 65534)).toBe('é'.repeat(32_767));
  });
});

describe('PcapngWriter', () => {
  it('writes the SHB, numbers IDBs in order, and lets an IDB come after packets', () => {
    const sink = new MemorySink();
    const writer = new PcapngWriter(sink);
    expect(writer.addInterface('a:b', '')).toBe(0);
    expect(writer.addInterface('home:wan0', 'uplink')).toBe(1);
    expect(writer.writePacket(1, CaptureDirection.INBOUND, 0x1_0000_0002, 0x17979cfe, 0x3d85cd15, UDP_29, 0, 29)).toBe(true);
    expect(writer.addInterface('a:b', '')).toBe(2);
    expect(writer.writePacket(0, CaptureDirection.OUTBOUND, 7, 0, 1_000_000_000, ICMP_28, 0, 28, COMMENT, 3)).toBe(true);
    expect(sink.bytes().toString('hex')).toBe(Buffer.concat([SHB, IDB_BARE, IDB_WAN, EPB_INBOUND, IDB_BARE, EPB_DROPPED]).toString('hex'));
  });

  it('reports a packet block the sink does not take, but always writes the headers', () => {
    const sink = new MemorySink();
    sink.behind = true;
    const writer = new PcapngWriter(sink);
    writer.addInterface('a:b', '');
    expect(writer.writePacket(0, CaptureDirection.INBOUND, 1, 0, 0, UDP_29, 0, 29)).toBe(false);
    expect(sink.bytes().toString('hex')).toBe(Buffer.concat([SHB, IDB_BARE]).toString('hex'));
  });
});
