/**
 * Connection tuples (nf_conntrack_tuple): what identifies one direction of a connection.
 *
 * The two protocol words are interpreted per protocol, as in the kernel's union:
 *   TCP/UDP: srcPort/dstPort are the ports;
 *   ICMP:    srcPort is the echo (query) identifier, dstPort is (type << 8) | code;
 *   GRE:     srcPort/dstPort are the 16-bit keys (PPTP call ids);
 *   others:  both 0.
 */
export class Tuple {
  constructor(
    public src = 0,
    public dst = 0,
    public protocol = 0,
    public srcPort = 0,
    public dstPort = 0,
  ) {}

  set(src: number, dst: number, protocol: number, srcPort: number, dstPort: number): this {
    this.src = src;
    this.dst = dst;
    this.protocol = protocol;
    this.srcPort = srcPort;
    this.dstPort = dstPort;
    return this;
  }

  copyFrom(other: Tuple): this {
    return this.set(other.src, other.dst, other.protocol, other.srcPort, other.dstPort);
  }

  equals(other: Tuple): boolean {
    return this.src === other.src && this.dst === other.dst && this.protocol === other.protocol && this.srcPort === other.srcPort && this.dstPort === other.dstPort;
  }

  clone(): Tuple {
    return new Tuple(this.src, this.dst, this.protocol, this.srcPort, this.dstPort);
  }
}

/** Both directions of a connection, indexed by Direction. */
export const Direction = { ORIGINAL: 0, REPLY: 1 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** A 32-bit hash of a tuple's fields (FNV-1a over the words, then a final avalanche). */
export function hashTupleFields(src: number, dst: number, protocol: number, srcPort: number, dstPort: number): number {
  let h = 0x811c9dc5;
  h = Math.imul(h ^ src, 0x01000193);
  h = Math.imul(h ^ dst, 0x01000193);
  h = Math.imul(h ^ ((srcPort << 16) | dstPort), 0x01000193);
  h = Math.imul(h ^ protocol, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export function hashTuple(tuple: Tuple): number {
  return hashTupleFields(tuple.src, tuple.dst, tuple.protocol, tuple.srcPort, tuple.dstPort);
}
