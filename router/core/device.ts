/**
 * What a router interface or a lab host attaches through (smoltcp's phy::Device idea): a TUN
 * device in a namespace, a port of an in-process segment, or a test link. One interface for both
 * directions: the owner calls `transmit`, and the device hands what it receives to the receiver
 * it was given. Capture and impairments are wrappers or observers of devices, never code inside
 * the packet path.
 *
 * Both directions are on the packet path: nothing here throws.
 */

/**
 * Takes one received IPv4 datagram with its PacketFlag bits and, for a super-packet, its segment
 * payload size (`gsoSize`, 0 otherwise). `buf` may be a view into a read slab that is reused once
 * the call returns: a receiver that keeps the bytes copies them.
 */
export type Receiver = (buf: Buffer, flags: number, gsoSize: number) => void;

/**
 * What a device knows about a datagram beyond its bytes, both ways (the kernel's skb->ip_summed
 * and skb_shinfo's gso_type):
 * - CHECKSUM_VERIFIED: its transport checksum is known good, so conntrack need not sum it again
 *   (the kernel said DATA_VALID, or a router in this process verified it and NAT since kept it
 *   valid incrementally).
 * - CHECKSUM_PARTIAL: its TCP or UDP checksum field holds only the pseudo-header sum (virtio
 *   NEEDS_CSUM, the sender's checksum offload); whoever sends it out finishes it, the sum
 *   starting at the transport header. Such a packet counts as verified, as in the kernel.
 * - GSO_TCPV4 / GSO_UDP_L4: a super-packet, one set of headers in front of the payload of
 *   several segments of `gsoSize` bytes each (TSO, USO); always CHECKSUM_PARTIAL too. GSO_ECN:
 *   its TCP segments carry CWR.
 */
export const PacketFlag = {
  NONE: 0,
  CHECKSUM_VERIFIED: 1,
  CHECKSUM_PARTIAL: 2,
  GSO_TCPV4: 4,
  GSO_UDP_L4: 8,
  GSO_ECN: 16,
} as const;

/** The GSO bits of a PacketFlag set. */
export const GSO_FLAGS = PacketFlag.GSO_TCPV4 | PacketFlag.GSO_UDP_L4 | PacketFlag.GSO_ECN;

/** -EHOSTUNREACH: what a device returns for a next hop nobody on its link owns. */
export const NO_NEIGHBOUR = -113;

export interface Device {
  /**
   * Sends one IPv4 datagram, `length` bytes at `offset`, towards `nextHop` (the route's gateway,
   * or the destination on a connected route), with its PacketFlag bits (and `gsoSize` for a
   * super-packet; only kinds named in `offloads` are ever sent). A TUN ignores the next hop:
   * the kernel behind it is the only neighbour. Returns the bytes taken or a negative errno: NO_NEIGHBOUR when nobody on
   * the link owns the next hop (where the kernel's ARP would fail). The bytes may be reused as
   * soon as this returns: a device that sends later copies them.
   */
  transmit(buf: Uint8Array, offset: number, length: number, nextHop: number, flags?: number, gsoSize?: number): number;
  /** Where received datagrams go from now on; null stops delivery. */
  setReceiver(receiver: Receiver | null): void;
  /**
   * The PacketFlag kinds it takes as they are (CHECKSUM_PARTIAL, GSO_TCPV4, GSO_UDP_L4; the
   * kernel's NETIF_F_HW_CSUM and NETIF_F_TSO/GSO_UDP_L4 features). Missing or 0: the router
   * finishes checksums and segments super-packets in software before handing them over.
   */
  readonly offloads?: number;
}
