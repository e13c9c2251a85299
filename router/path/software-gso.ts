/**
 * The fallback where a super-packet cannot go on whole (the kernel's skb_gso_segment before
 * dev_hard_start_xmit): an egress without the offload, a segment length over a smaller MTU with DF
 * clear, a link whose impairments work per packet, or a helper that reads payloads. The segments
 * are cut by wire/gso.ts exactly as the kernel cuts them, one at a time into a reused buffer.
 */
import { GSO_FLAGS, PacketFlag } from '../core/device.ts';
import { GsoChecksum, GsoSegmenter } from '../wire/gso.ts';
import { IPV4, IPV4_FLAG_MF, IPV4_FRAGMENT_OFFSET_MASK, IpProtocol, ipv4FlagsFragment } from '../wire/ipv4.ts';
import { TCP } from '../wire/tcp.ts';
import { UDP, UDP_HEADER_LENGTH } from '../wire/udp.ts';
import { VirtioGso, completePartialChecksum } from '../wire/virtio-net.ts';

/** The two kinds of super-packet (without the ECN bit). */
export const GSO_KINDS = PacketFlag.GSO_TCPV4 | PacketFlag.GSO_UDP_L4;
/** Every offload a device may take: what an in-process router receives as it is. */
export const ALL_OFFLOADS = PacketFlag.CHECKSUM_PARTIAL | GSO_FLAGS;
const MAX_IPV4_PACKET = 65535;

/** The virtio-net GSO type the segmenter takes for PacketFlag GSO bits. */
function virtioGsoTypeOf(gsoFlags: number): number {
  const type = gsoFlags & PacketFlag.GSO_TCPV4 ? VirtioGso.TCPV4 : gsoFlags & PacketFlag.GSO_UDP_L4 ? VirtioGso.UDP_L4 : VirtioGso.NONE;
  return gsoFlags & PacketFlag.GSO_ECN ? type | VirtioGso.ECN : type;
}

/**
 * Whether the GSO bits fit the datagram: the transport the kind names, not a fragment, a segment
 * size (virtio_net_hdr_to_skb and the GSO callbacks refuse the rest). `buf` holds a valid IPv4
 * header.
 */
export function gsoMatchesHeaders(buf: Uint8Array, gsoFlags: number, gsoSize: number): boolean {
  if (gsoSize <= 0) return false;
  const protocol = buf[IPV4.PROTOCOL];
  if (gsoFlags & PacketFlag.GSO_TCPV4 ? protocol !== IpProtocol.TCP : protocol !== IpProtocol.UDP) return false;
  return (ipv4FlagsFragment(buf, 0) & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET_MASK)) === 0;
}

/**
 * skb_gso_network_seglen: the IPv4 length of each full segment (headers plus gso_size), which the
 * MTU and DF checks use instead of the super-packet's length.
 */
export function gsoSegmentLength(buf: Uint8Array, gsoFlags: number, gsoSize: number): number {
  const ipHeaderLength = (buf[0]! & 0x0f) << 2;
  const l4HeaderLength = gsoFlags & PacketFlag.GSO_TCPV4 ? (buf[ipHeaderLength + TCP.DATA_OFFSET]! >>> 4) << 2 : UDP_HEADER_LENGTH;
  return ipHeaderLength + l4HeaderLength + gsoSize;
}

/** Where a partial checksum's field sits in the transport header: TCP's or UDP's; -1 for any other protocol. */
export function partialChecksumOffset(protocol: number): number {
  return protocol === IpProtocol.TCP ? TCP.CHECKSUM : protocol === IpProtocol.UDP ? UDP.CHECKSUM : -1;
}

/**
 * skb_checksum_help: writes the TCP or UDP checksum a partial datagram (at `offset`, `length`
 * bytes) left to its sender's device, for an egress that cannot finish it.
 */
export function finishPartialChecksum(buf: Uint8Array, offset: number, length: number): boolean {
  const field = partialChecksumOffset(buf[offset + IPV4.PROTOCOL]!);
  return field >= 0 && completePartialChecksum(buf, offset, length, (buf[offset]! & 0x0f) << 2, field);
}

export class SoftwareGso {
  /** Where each segment is written; valid until the next `segment` call. */
  readonly buffer = Buffer.allocUnsafe(MAX_IPV4_PACKET);
  private readonly segmenter = new GsoSegmenter();

  /**
   * Parses the super-packet of `length` bytes at `offset`; returns its number of segments, or a
   * negative number when its headers cannot be segmented (then nothing is sent).
   */
  begin(buf: Uint8Array, offset: number, length: number, gsoFlags: number, gsoSize: number): number {
    return this.segmenter.begin(buf, offset, length, virtioGsoTypeOf(gsoFlags), gsoSize);
  }

  /**
   * Writes segment `i` into `buffer` and returns its length: checksum finished, or left as the
   * segment's pseudo-header sum when `partial` (for an egress that finishes it).
   */
  segment(i: number, partial: boolean): number {
    return this.segmenter.writeSegment(i, this.buffer, 0, partial ? GsoChecksum.PARTIAL : GsoChecksum.FULL);
  }
}
