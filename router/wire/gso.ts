/**
 * Software segmentation of IPv4 super-packets, as the kernel's GSO does it when a super-packet
 * meets a device that cannot take it whole (net/ipv4/af_inet.c inet_gso_segment, with
 * net/ipv4/tcp_offload.c tcp_gso_segment or net/ipv4/udp_offload.c __udp_gso_segment).
 *
 * A super-packet is one IPv4 header and one TCP or UDP header in front of up to 64 KiB of
 * payload, with the segment payload size (gso_size, the MSS) beside it in the virtio-net header
 * (virtio-net.ts). Segment i carries payload bytes [i * gsoSize, (i + 1) * gsoSize) behind copies
 * of the headers, in which:
 *   - IPv4: the total length is the segment's; the identification is the first one plus i (mod
 *     2^16), whether or not DF is set: the kernel keeps it fixed only for SKB_GSO_TCP_FIXEDID,
 *     which GRO sets and a virtio-net header cannot carry; the header checksum is recomputed.
 *     Options are copied to every segment.
 *   - TCP (GSO_TCPV4): the sequence number advances by gsoSize per segment; FIN and PSH stay
 *     only on the last segment, CWR only on the first (the kernel keeps CWR on all for AccECN,
 *     which virtio cannot say either); every other field, options and urgent pointer included,
 *     is copied.
 *   - UDP (GSO_UDP_L4, USO): the length field is the segment's. Each segment is a datagram of its
 *     own (no IP fragmentation: that is GSO_UDP, UFO, which this does not do).
 *   - The transport checksum is either complete (GsoChecksum.FULL, for an egress that takes
 *     finished packets; UDP's computed 0 goes out as 0xffff) or left as the segment's
 *     pseudo-header seed (GsoChecksum.PARTIAL, for an egress that finishes NEEDS_CSUM packets
 *     itself), which is what the kernel leaves in CHECKSUM_PARTIAL segments.
 * A super-packet whose payload fits in one segment comes out as one packet under the same rules.
 *
 * The segmenter parses a super-packet once (begin) and then writes any segment, headers only or
 * whole, into any buffer the caller gives: it allocates nothing. Headers-only output lets a
 * caller send the payload straight from the super-packet with writev; the checksum is computed
 * over the source payload either way.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { onesComplementSum, pseudoHeaderSum } from './checksum.ts';
import {
  IPV4,
  IPV4_FLAG_MF,
  IPV4_FRAGMENT_OFFSET_MASK,
  IPV4_MIN_HEADER_LENGTH,
  IpProtocol,
  fillIpv4HeaderChecksum,
  ipv4FlagsFragment,
  ipv4HeaderLength,
  ipv4TotalLength,
  ipv4Version,
} from './ipv4.ts';
import { TCP, TCP_MIN_HEADER_LENGTH, TcpFlag, tcpHeaderLength } from './tcp.ts';
import { UDP, UDP_HEADER_LENGTH } from './udp.ts';
import { VirtioGso } from './virtio-net.ts';

export const GsoChecksum = { FULL: 0, PARTIAL: 1 } as const;

/** Why begin() refused a super-packet: negative, so a count and a problem share one number. */
export const GsoProblem = {
  /** Not TCPV4 or UDP_L4 (TCPV6 and UFO are not segmented here). */
  UNSUPPORTED_TYPE: -1,
  /** The buffer ends inside the headers, or before the IPv4 total length. */
  TRUNCATED: -2,
  /** Not version 4, or an IHL below 5. */
  BAD_IPV4: -3,
  /** The IPv4 protocol is not the one the GSO type names. */
  PROTOCOL_MISMATCH: -4,
  /** A TCP data offset below 5. */
  BAD_TCP_HEADER: -5,
  /** A fragment cannot be a super-packet. */
  FRAGMENT: -6,
  ZERO_GSO_SIZE: -7,
} as const;

export const GSO_PROBLEM_NAMES: Readonly<Record<number, string>> = {
  [GsoProblem.UNSUPPORTED_TYPE]: 'gso-unsupported-type',
  [GsoProblem.TRUNCATED]: 'gso-truncated',
  [GsoProblem.BAD_IPV4]: 'gso-bad-ipv4',
  [GsoProblem.PROTOCOL_MISMATCH]: 'gso-protocol-mismatch',
  [GsoProblem.BAD_TCP_HEADER]: 'gso-bad-tcp-header',
  [GsoProblem.FRAGMENT]: 'gso-fragment',
  [GsoProblem.ZERO_GSO_SIZE]: 'gso-zero-gso-size',
};

const EMPTY = new Uint8Array(0);
const FIN_PSH = TcpFlag.FIN | TcpFlag.PSH;

/** Buffer's memcpy works on any Uint8Array and, unlike set(subarray()), makes no view. */
const copyBytes = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;

export class GsoSegmenter {
  /** Segments of the current super-packet; 0 before begin() succeeds. */
  count = 0;
  /** IPv4 plus transport header bytes: the same in every segment. */
  headerLength = 0;

  private src: Uint8Array = EMPTY;
  private at = 0;
  private ipHeaderLength = 0;
  private protocol = 0;
  private payloadStart = 0;
  private payloadEnd = 0;
  private gsoSize = 0;
  private firstIdent = 0;
  private firstSeq = 0;
  private tcpFlags = 0;
  private srcAddress = 0;
  private dstAddress = 0;

  /**
   * Parses the super-packet at `off` (its IPv4 header; `length` bytes are there, padding past the
   * total length ignored). Returns the number of segments, or a negative GsoProblem. `gsoType` may
   * carry the ECN bit: the CWR rule applies to every TCP super-packet anyway. The buffer must not
   * change until the last segment is written.
   */
  begin(src: Uint8Array, off: number, length: number, gsoType: number, gsoSize: number): number {
    this.count = 0;
    const type = gsoType & ~VirtioGso.ECN;
    let protocol: number;
    if (type === VirtioGso.TCPV4) protocol = IpProtocol.TCP;
    else if (type === VirtioGso.UDP_L4) protocol = IpProtocol.UDP;
    else return GsoProblem.UNSUPPORTED_TYPE;
    if (gsoSize <= 0) return GsoProblem.ZERO_GSO_SIZE;
    if (length < IPV4_MIN_HEADER_LENGTH) return GsoProblem.TRUNCATED;
    const ipHeaderLength = ipv4HeaderLength(src, off);
    if (ipv4Version(src, off) !== 4 || ipHeaderLength < IPV4_MIN_HEADER_LENGTH) return GsoProblem.BAD_IPV4;
    const totalLength = ipv4TotalLength(src, off);
    if (totalLength > length || totalLength < ipHeaderLength) return GsoProblem.TRUNCATED;
    if (src[off + IPV4.PROTOCOL] !== protocol) return GsoProblem.PROTOCOL_MISMATCH;
    if ((ipv4FlagsFragment(src, off) & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET_MASK)) !== 0) return GsoProblem.FRAGMENT;
    const l4 = off + ipHeaderLength;
    let l4HeaderLength = UDP_HEADER_LENGTH;
    if (protocol === IpProtocol.TCP) {
      if (totalLength - ipHeaderLength < TCP_MIN_HEADER_LENGTH) return GsoProblem.TRUNCATED;
      l4HeaderLength = tcpHeaderLength(src, l4);
      if (l4HeaderLength < TCP_MIN_HEADER_LENGTH) return GsoProblem.BAD_TCP_HEADER;
    }
    if (totalLength - ipHeaderLength < l4HeaderLength) return GsoProblem.TRUNCATED;

    this.src = src;
    this.at = off;
    this.ipHeaderLength = ipHeaderLength;
    this.headerLength = ipHeaderLength + l4HeaderLength;
    this.protocol = protocol;
    this.payloadStart = off + this.headerLength;
    this.payloadEnd = off + totalLength;
    this.gsoSize = gsoSize;
    this.firstIdent = readU16(src, off + IPV4.IDENT);
    this.srcAddress = readU32(src, off + IPV4.SRC);
    this.dstAddress = readU32(src, off + IPV4.DST);
    if (protocol === IpProtocol.TCP) {
      this.firstSeq = readU32(src, l4 + TCP.SEQ);
      this.tcpFlags = src[l4 + TCP.FLAGS];
    }
    const payload = this.payloadEnd - this.payloadStart;
    this.count = payload <= gsoSize ? 1 : Math.ceil(payload / gsoSize);
    return this.count;
  }

  /** Where segment i's payload starts in the super-packet's buffer. */
  payloadOffset(i: number): number {
    return this.payloadStart + i * this.gsoSize;
  }

  payloadLength(i: number): number {
    return Math.min(this.gsoSize, this.payloadEnd - this.payloadOffset(i));
  }

  segmentLength(i: number): number {
    return this.headerLength + this.payloadLength(i);
  }

  /** Writes segment i's IPv4 and transport headers (headerLength bytes) at `off` of `dst`. */
  writeHeaders(i: number, dst: Uint8Array, off: number, checksum: number): number {
    const src = this.src;
    const payloadOffset = this.payloadOffset(i);
    const payloadLength = this.payloadLength(i);
    const l4Length = this.headerLength - this.ipHeaderLength + payloadLength;
    copyBytes.call(src, dst, off, this.at, this.at + this.headerLength);

    writeU16(dst, off + IPV4.TOTAL_LENGTH, this.headerLength + payloadLength);
    writeU16(dst, off + IPV4.IDENT, (this.firstIdent + i) & 0xffff);
    fillIpv4HeaderChecksum(dst, off);

    const l4 = off + this.ipHeaderLength;
    let checksumField: number;
    if (this.protocol === IpProtocol.TCP) {
      writeU32(dst, l4 + TCP.SEQ, (this.firstSeq + i * this.gsoSize) >>> 0);
      let flags = this.tcpFlags;
      if (i < this.count - 1) flags &= ~FIN_PSH;
      if (i > 0) flags &= ~TcpFlag.CWR;
      dst[l4 + TCP.FLAGS] = flags;
      checksumField = l4 + TCP.CHECKSUM;
    } else {
      writeU16(dst, l4 + UDP.LENGTH, l4Length);
      checksumField = l4 + UDP.CHECKSUM;
    }

    const seed = pseudoHeaderSum(this.srcAddress, this.dstAddress, this.protocol, l4Length);
    if (checksum === GsoChecksum.PARTIAL) {
      writeU16(dst, checksumField, seed);
    } else {
      writeU16(dst, checksumField, 0);
      const headerSum = onesComplementSum(dst, l4, this.headerLength - this.ipHeaderLength, seed);
      const sum = onesComplementSum(src, payloadOffset, payloadLength, headerSum);
      const value = ~sum & 0xffff;
      writeU16(dst, checksumField, this.protocol === IpProtocol.UDP && value === 0 ? 0xffff : value);
    }
    return this.headerLength;
  }

  /** Writes segment i whole (headers and payload) at `off` of `dst`; returns its length. */
  writeSegment(i: number, dst: Uint8Array, off: number, checksum: number): number {
    this.writeHeaders(i, dst, off, checksum);
    const payloadOffset = this.payloadOffset(i);
    const payloadLength = this.payloadLength(i);
    copyBytes.call(this.src, dst, off + this.headerLength, payloadOffset, payloadOffset + payloadLength);
    return this.headerLength + payloadLength;
  }
}
