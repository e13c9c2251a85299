/**
 * Where an interface's packets go: a TUN device, or an in-memory link in tests. Returns the bytes
 * written or a negative errno, and never throws (it is on the packet path).
 */
export interface PacketLink {
  write(packet: Uint8Array, offset: number, length: number): number;
}

/** The router's interfaces: one TUN each, living in a network namespace. */

export interface RouterInterface {
  /** Position in the router's interface list; also the index rules use internally. */
  readonly index: number;
  /** The name used in rules (`-i`/`-o`) and the device's name inside its namespace. */
  readonly name: string;
  readonly netns: string;
  /** The router's own address on this link, and the link's prefix. */
  readonly address: number;
  readonly prefixLength: number;
  /** The address configured on the namespace side of the TUN. */
  readonly peer: number;
  readonly mtu: number;
  device: PacketLink | null;
}
