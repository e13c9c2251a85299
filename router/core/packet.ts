/**
 * A packet in flight, the router's sk_buff: the IPv4 bytes plus what the path learns about them.
 *
 * `buf` may be a view into a TUN read slab that the next read batch overwrites, and the object
 * itself is reused by the router for the next packet it receives: anything that keeps a packet past
 * the synchronous walk (a QUEUE handler) keeps `detached()`, and anything that keeps only its bytes
 * (reassembly, a queued segment) copies them.
 *
 * The core carries netfilter's per-packet state without knowing it (as the kernel's skb->_nfct is
 * opaque to the IP layer): netfilter declares what the two slots hold by merging into
 * PacketConntrack and PacketCtTemplate (see netfilter/conntrack/conntrack-entry.ts and template.ts).
 */
import type { RouterInterface } from './interfaces.ts';
import type { DropReason } from './stats.ts';

/** The connection a packet belongs to; its members are declared by netfilter. */
export interface PacketConntrack {}
/** What a rule asked for the connection a packet opens; declared by netfilter. */
export interface PacketCtTemplate {}

export class Packet {
  /** The IPv4 packet starts at `buf[0]` and is `buf.length` bytes long (padding already trimmed). */
  buf: Buffer;
  inInterface: RouterInterface | null;
  outInterface: RouterInterface | null = null;
  /** Where the output interface sends it: the route's gateway, or the destination itself (0 until routed). */
  nextHop = 0;
  /** skb->mark, set and matched by rules. */
  mark = 0;
  /** The connection this packet belongs to and how (ctinfo), set by conntrack at -200. */
  conntrack: PacketConntrack | null = null;
  ctinfo = 0;
  /** Set by the raw table's CT target before conntrack runs: what a new connection gets. */
  ctTemplate: PacketCtTemplate | null = null;
  /** Largest fragment of a datagram that defrag reassembled: output refragments to this size. */
  fragMaxSize = 0;
  /** The transport checksum is known good (skb_csum_unnecessary): verified here or before us. */
  checksumVerified = false;
  /**
   * CHECKSUM_PARTIAL: the TCP/UDP checksum field holds only the pseudo-header sum, finished by
   * whoever sends the packet out (see PacketFlag). Rewrites of the pseudo-header (addresses, the
   * length) update that sum; rewrites of anything else leave it alone.
   */
  checksumPartial = false;
  /** A super-packet's PacketFlag GSO bits (GSO_TCPV4 or GSO_UDP_L4, maybe GSO_ECN); 0 for one packet. */
  gsoFlags = 0;
  /** A super-packet's segment payload size (skb_shinfo gso_size); 0 for one packet. */
  gsoSize = 0;
  /** Shared by every copy a capture or trace sees of this packet (in and out); 0 while nobody looks. */
  id = 0;
  /**
   * skb->nf_trace: set by `-j TRACE` or by a running `vrouter trace` whose filter took it; every
   * hook op and rule it meets then reports to the tracer.
   */
  traced = false;
  /** What a helper read or rewrote in a traced packet (`vrouter trace` shows it); null otherwise. */
  traceNote: string | null = null;
  /**
   * What decided a DROP verdict, as a trace names it (`filter:FORWARD:rule:2 -A FORWARD ... -j DROP`);
   * set by the hook op that dropped (a string made when the rules were loaded), null otherwise.
   */
  dropOrigin: string | null = null;
  /**
   * Set by a hook op just before it returns DROP for a reason of its own (NAT, seqadj, a helper),
   * so the drop is counted under that reason; a drop without one counts as `hook-drop`.
   */
  dropReason: DropReason | null = null;

  constructor(buf: Buffer, inInterface: RouterInterface | null) {
    this.buf = buf;
    this.inInterface = inInterface;
  }

  /**
   * Makes this object a fresh packet again, for the router's one reused received packet: every
   * field as the constructor leaves it.
   */
  reuse(buf: Buffer, inInterface: RouterInterface | null): this {
    this.buf = buf;
    this.inInterface = inInterface;
    this.outInterface = null;
    this.nextHop = 0;
    this.mark = 0;
    this.conntrack = null;
    this.ctinfo = 0;
    this.ctTemplate = null;
    this.fragMaxSize = 0;
    this.checksumVerified = false;
    this.checksumPartial = false;
    this.gsoFlags = 0;
    this.gsoSize = 0;
    this.id = 0;
    this.traced = false;
    this.traceNote = null;
    this.dropOrigin = null;
    this.dropReason = null;
    return this;
  }

  /**
   * A copy that may outlive the synchronous walk (a QUEUE handler keeps it): its own bytes, out of
   * the shared read slab, and its own object, since the router reuses this one for the next packet.
   */
  detached(): Packet {
    const copy = Object.assign(new Packet(this.buf, null), this);
    copy.buf = Buffer.from(this.buf);
    return copy;
  }
}
