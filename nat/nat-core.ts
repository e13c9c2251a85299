/**
 * The NAT decision (nf_nat_core.c): taken once per connection and manip type, on its first packet,
 * and recorded in the conntrack entry by changing its reply tuple. Every later packet, in both
 * directions, is rewritten from the two tuples alone (see nat-manip.ts).
 *
 * Choosing the new tuple follows get_unique_tuple():
 *   1. SNAT: keep the connection's own source if it is in range and unused, else reuse the mapping
 *      an existing connection from the same source address and port got (endpoint-independent
 *      mapping), if still unused;
 *   2. pick the address in the range by the kernel's hash of the addresses (find_best_ips_proto),
 *      so that a client gets the public address the kernel would give it, and keeps it;
 *   3. keep the port if in range and unused, else search the range from an offset, at most 128
 *      tries and then halving, as the kernel does. DNAT without a port range never changes ports.
 */
import type { Conntrack } from '../netfilter/conntrack/conntrack-entry.ts';
import type { ConntrackCore } from '../netfilter/conntrack/conntrack-core.ts';
import { Status } from '../netfilter/conntrack/status.ts';
import { Tuple } from '../netfilter/conntrack/tuple.ts';
import { jhash2, reciprocalScale } from '../netfilter/jhash.ts';
import { IpProtocol } from '../router/wire/ipv4.ts';
import { NatRangeFlag, type NatRange } from './nat-range.ts';
import { SourceMappings } from './source-mappings.ts';

export const ManipType = { SRC: 0, DST: 1 } as const;
export type ManipType = (typeof ManipType)[keyof typeof ManipType];

const MAX_ATTEMPTS = 128;
const GRE = IpProtocol.GRE;

export function natStatusBit(manip: ManipType): number {
  return manip === ManipType.SRC ? Status.SRC_NAT : Status.DST_NAT;
}

export function natDoneBit(manip: ManipType): number {
  return manip === ManipType.SRC ? Status.SRC_NAT_DONE : Status.DST_NAT_DONE;
}

export function natInitialized(entry: Conntrack, manip: ManipType): boolean {
  return (entry.status & natDoneBit(manip)) !== 0;
}

export class NatCore {
  private readonly bySource = new SourceMappings();
  private readonly candidate = new Tuple();
  private readonly inverse = new Tuple();
  /** The source address as the kernel hashes it: four words, the last three always zero. */
  private readonly sourceWords = new Uint32Array(4);

  constructor(
    private readonly conntrack: ConntrackCore,
    private readonly random: () => number = Math.random,
  ) {
    conntrack.subscribe((event, entry) => {
      if (event === 'DESTROY' && entry.status & Status.SRC_NAT_DONE) this.bySource.delete(entry);
    });
  }

  /**
   * nf_nat_setup_info: binds `entry` for `manip` within `range`. False when no unique tuple could
   * be found (the packet is then dropped).
   */
  setup(entry: Conntrack, range: NatRange, manip: ManipType): boolean {
    if (natInitialized(entry, manip)) return true;
    // The original tuple as it looks after any manip already done (the inverse of the reply).
    const current = new Tuple();
    this.invert(entry, entry.tuples[1], current);
    const chosen = this.uniqueTuple(entry, current, range, manip);
    if (!chosen) return false;
    if (!chosen.equals(current)) {
      const reply = new Tuple();
      this.invert(entry, chosen, reply);
      entry.tuples[1] = reply;
      entry.status |= natStatusBit(manip);
    }
    if (manip === ManipType.SRC) this.bySource.set(entry);
    entry.status |= natDoneBit(manip);
    return true;
  }

  /** nf_nat_alloc_null_binding: keep the address, let the port move only if the tuple is taken. */
  setupNull(entry: Conntrack, manip: ManipType): boolean {
    const reply = entry.tuples[1];
    const address = manip === ManipType.SRC ? reply.dst : reply.src;
    return this.setup(entry, { flags: NatRangeFlag.MAP_IPS, minAddress: address, maxAddress: address, minPort: 0, maxPort: 0 }, manip);
  }

  /**
   * Whether another connection already uses `tuple` as its original direction (nf_nat_used_tuple);
   * a hit counts as `found` in `conntrack -S`, as nf_conntrack_tuple_taken's do.
   */
  used(tuple: Tuple, ignore: Conntrack): boolean {
    const reply = this.inverse;
    this.invert(ignore, tuple, reply);
    const node = this.conntrack.table.find(reply.src, reply.dst, reply.protocol, reply.srcPort, reply.dstPort);
    const taken = node !== null && node.entry !== ignore && !node.entry.dying;
    if (taken) this.conntrack.counters.tupleTaken++;
    return taken;
  }

  private invert(entry: Conntrack, tuple: Tuple, into: Tuple): void {
    into.set(tuple.dst, tuple.src, tuple.protocol, 0, 0);
    entry.tracker.invertTuple(tuple, into);
  }

  private uniqueTuple(entry: Conntrack, original: Tuple, range: NatRange, manip: ManipType): Tuple | null {
    const tuple = this.candidate.copyFrom(original);
    if (manip === ManipType.SRC && !(range.flags & NatRangeFlag.PROTO_RANDOM)) {
      if (inRange(tuple, range, manip)) {
        if (!this.used(tuple, entry)) return tuple.clone();
      } else if (this.appropriateSource(tuple, range) && !this.used(tuple, entry)) {
        return tuple.clone();
      }
    }
    tuple.copyFrom(original);
    this.bestAddress(tuple, range, manip);
    if (!(range.flags & NatRangeFlag.PROTO_RANDOM)) {
      if (range.flags & NatRangeFlag.PROTO_SPECIFIED) {
        if (portInRange(tuple, range, manip) && (range.minPort === range.maxPort || !this.used(tuple, entry))) return tuple.clone();
      } else if (!this.used(tuple, entry)) {
        return tuple.clone();
      }
    }
    return this.uniquePort(entry, tuple, range, manip) ? tuple.clone() : null;
  }

  /** find_appropriate_src: the mapping an existing connection from the same source got. */
  private appropriateSource(tuple: Tuple, range: NatRange): boolean {
    const previous = this.bySource.find(tuple.src, tuple.protocol, tuple.srcPort);
    if (!previous || previous.dying || !previous.confirmed) return false;
    const mapped = previous.tuples[1];
    const candidate = this.inverse.set(mapped.dst, tuple.dst, tuple.protocol, mapped.dstPort, tuple.dstPort);
    if (!inRange(candidate, range, ManipType.SRC)) return false;
    tuple.src = mapped.dst;
    tuple.srcPort = mapped.dstPort;
    return true;
  }

  /**
   * find_best_ips_proto: jhash2 over the source address as the kernel stores it (a 16-byte
   * nf_inet_addr: the IPv4 address, then three zero words), seeded with the destination address
   * (zone 0), or with 0 for --persistent; reciprocal_scale then maps the hash into the range.
   */
  private bestAddress(tuple: Tuple, range: NatRange, manip: ManipType): void {
    if (!(range.flags & NatRangeFlag.MAP_IPS)) return;
    let address = range.minAddress;
    if (range.maxAddress !== range.minAddress) {
      const persistent = (range.flags & NatRangeFlag.PERSISTENT) !== 0;
      this.sourceWords[0] = kernelWord(tuple.src);
      const hash = jhash2(this.sourceWords, 4, persistent ? 0 : kernelWord(tuple.dst));
      // A u32 distance, as in the kernel: the whole address space wraps to 0 and maps to minAddress.
      const distance = (range.maxAddress - range.minAddress + 1) >>> 0;
      address = (range.minAddress + reciprocalScale(hash, distance)) >>> 0;
    }
    if (manip === ManipType.SRC) tuple.src = address;
    else tuple.dst = address;
  }

  /** nf_nat_l4proto_unique_tuple: search the port (ICMP id, GRE key) range for an unused tuple. */
  private uniquePort(entry: Conntrack, tuple: Tuple, range: NatRange, manip: ManipType): boolean {
    const protocol = tuple.protocol;
    const specified = (range.flags & NatRangeFlag.PROTO_SPECIFIED) !== 0;
    let min = range.minPort;
    let size = range.maxPort - range.minPort + 1;
    if (protocol === IpProtocol.ICMP) {
      // The echo id is the "source port" whatever the manip type.
      if (!specified) {
        min = 0;
        size = 65536;
      }
      return this.search(entry, tuple, ManipType.SRC, min, size, true);
    }
    if (protocol === GRE) {
      if (!entry.master) return !this.used(tuple, entry);
      if (!specified) {
        min = 1;
        size = 65535;
      }
    } else if (protocol === IpProtocol.TCP || protocol === IpProtocol.UDP) {
      if (!specified) {
        // A destination's port is never changed without a range.
        if (manip === ManipType.DST) return !this.used(tuple, entry);
        // Keep privileged ports privileged, and below 512 below 512 (a loose convention).
        const current = tuple.srcPort;
        min = current < 512 ? 1 : current < 1024 ? 600 : 1024;
        size = current < 512 ? 511 : current < 1024 ? 424 : 64512;
      }
    } else {
      return !this.used(tuple, entry);
    }
    return this.search(entry, tuple, manip, min, size, manip !== ManipType.DST || (range.flags & NatRangeFlag.PROTO_RANDOM) !== 0);
  }

  /** Tries ports min..min+size-1 in `tuple`'s `port` (SRC: srcPort, DST: dstPort) from an offset. */
  private search(entry: Conntrack, tuple: Tuple, port: ManipType, min: number, size: number, randomStart: boolean): boolean {
    let offset = randomStart ? Math.floor(this.random() * 65536) : 0;
    let attempts = Math.min(size, MAX_ATTEMPTS);
    for (;;) {
      for (let i = 0; i < attempts; i++, offset++) {
        if (port === ManipType.SRC) tuple.srcPort = min + (offset % size);
        else tuple.dstPort = min + (offset % size);
        if (!this.used(tuple, entry)) return true;
      }
      if (attempts >= size || attempts < 16) return false;
      attempts >>= 1;
      offset = Math.floor(this.random() * 65536);
    }
  }
}

/**
 * An address as the kernel's jhash2 reads it: the network-order bytes loaded as one CPU word, on
 * a little-endian machine (x86, arm64), so 10.0.1.2 is 0x0201000a.
 */
function kernelWord(address: number): number {
  return (((address & 0xff) << 24) | ((address & 0xff00) << 8) | ((address >>> 8) & 0xff00) | (address >>> 24)) >>> 0;
}

function portInRange(tuple: Tuple, range: NatRange, manip: ManipType): boolean {
  const port = tuple.protocol === IpProtocol.ICMP || manip === ManipType.SRC ? tuple.srcPort : tuple.dstPort;
  return port >= range.minPort && port <= range.maxPort;
}

/** nf_nat_inet_in_range */
function inRange(tuple: Tuple, range: NatRange, manip: ManipType): boolean {
  if (range.flags & NatRangeFlag.MAP_IPS) {
    const address = manip === ManipType.SRC ? tuple.src : tuple.dst;
    if (address < range.minAddress || address > range.maxAddress) return false;
  }
  return !(range.flags & NatRangeFlag.PROTO_SPECIFIED) || portInRange(tuple, range, manip);
}
