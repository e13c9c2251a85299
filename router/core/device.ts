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
 * Takes one received IPv4 datagram. `buf` may be a view into a read slab that is reused once the
 * call returns: a receiver that keeps the bytes copies them.
 */
export type Receiver = (buf: Buffer, flags: number) => void;

/**
 * What a device knows about a datagram beyond its bytes, both ways (the kernel's skb->ip_summed):
 * CHECKSUM_VERIFIED says its transport checksum is known good, so conntrack need not sum it again
 * (a router in this process verified it, and NAT since kept it valid incrementally).
 */
export const PacketFlag = {
  NONE: 0,
  CHECKSUM_VERIFIED: 1,
} as const;

/** -EHOSTUNREACH: what a device returns for a next hop nobody on its link owns. */
export const NO_NEIGHBOUR = -113;

export interface Device {
  /**
   * Sends one IPv4 datagram, `length` bytes at `offset`, towards `nextHop` (the route's gateway,
   * or the destination on a connected route), with its PacketFlag bits. A TUN ignores the next hop: the kernel behind it is
   * the only neighbour. Returns the bytes taken or a negative errno: NO_NEIGHBOUR when nobody on
   * the link owns the next hop (where the kernel's ARP would fail). The bytes may be reused as
   * soon as this returns: a device that sends later copies them.
   */
  transmit(buf: Uint8Array, offset: number, length: number, nextHop: number, flags?: number): number;
  /** Where received datagrams go from now on; null stops delivery. */
  setReceiver(receiver: Receiver | null): void;
}
