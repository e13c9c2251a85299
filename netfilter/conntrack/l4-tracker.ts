/**
 * One connection tracker per L4 protocol (nf_conntrack_l4proto), each in its own file behind this
 * interface. A tracker reads the L4 header in place (no parsing into objects), owns the
 * protocol's state kept on the entry, and sets the entry's timeout. Trackers hold no clock: the
 * caller passes `now` (ms on the conntrack clock) to every call that needs the time.
 */
import type { Conntrack } from './conntrack-entry.ts';
import type { Tuple } from './tuple.ts';

/** What a tracker says about one packet of a known or new connection. */
export const TrackVerdict = {
  /** Tracked: the packet belongs to the connection. */
  ACCEPT: 1,
  /** Not valid for this connection: the packet passes untracked (ctstate INVALID), as the kernel's -NF_ACCEPT. */
  INVALID: 0,
  /** Invalid and to be dropped (-NF_DROP). */
  DROP: -1,
  /** The packet reopens a closed connection: kill the old entry and track the packet afresh (-NF_REPEAT). */
  RECREATE: 2,
  /**
   * Tracked, and the connection ends with it (nf_ct_kill_acct, then NF_ACCEPT): the packet passes
   * as part of the connection, which the core deletes at once, its timeout left as it was.
   */
  KILL: 3,
} as const;
export type TrackVerdict = (typeof TrackVerdict)[keyof typeof TrackVerdict];

/** Everything a tracker gets about the packet: the IPv4 datagram and where its L4 header is. */
export interface L4Packet {
  buf: Buffer;
  /** Offset of the L4 header in buf. */
  l4Offset: number;
  /** Bytes from l4Offset to the end of the datagram. */
  l4Length: number;
}

export interface L4Tracker {
  readonly protocol: number;
  /** As conntrack -L prints it: "tcp", "udp", "icmp", "gre", "unknown". */
  readonly name: string;
  /**
   * The protocol's error() checks (tcp_error, udp_error, nf_conntrack_icmpv4_error's header and
   * type checks), run on every packet before the tuple is read and looked up: the header fits,
   * its length fields agree with `l4Length`, TCP's flag combination is one the kernel accepts
   * and, when `checkChecksum` (nf_conntrack_checksum on a packet arriving at PRE_ROUTING), the
   * transport checksum holds. The IPv4 header must start at `buf[0]`: TCP and UDP take the
   * pseudo-header addresses from it. False means the packet is INVALID: it is not tracked, and
   * neither `readTuple` nor `packet` sees it.
   */
  validate(packet: L4Packet, checkChecksum: boolean): boolean;
  /** Whether `validate` sums the transport checksum when asked (TCP, UDP, ICMP). */
  readonly sumsChecksum: boolean;
  /**
   * Reads the protocol words of the tuple from the L4 header. False when the header is too short
   * to hold them: such a packet cannot be tracked (it passes as INVALID).
   */
  readTuple(packet: L4Packet, tuple: Tuple): boolean;
  /** Fills the reply direction's protocol words; false if this tuple has no inverse (e.g. ICMP errors). */
  invertTuple(original: Tuple, reply: Tuple): boolean;
  /**
   * Checks the packet that would open a new connection and sets the entry's initial protocol
   * state. False refuses it (it passes as INVALID and no entry is made), e.g. a TCP segment
   * without SYN when mid-stream pickup is off, or an ICMP type that is not a query.
   */
  newConnection(entry: Conntrack, packet: L4Packet, now: number): boolean;
  /**
   * Updates protocol state for a packet travelling in `direction` (0 original, 1 reply) and
   * sets `entry.timeout` (absolute, in ms of the conntrack clock) unless the entry has FIXED_TIMEOUT.
   */
  packet(entry: Conntrack, packet: L4Packet, direction: 0 | 1, now: number): TrackVerdict;
  /**
   * l4proto->can_early_drop: whether an ASSURED connection may still be evicted when the table is
   * under pressure (TCP: once it is closing). Absent: never (non-ASSURED ones always may).
   */
  canEarlyDrop?(entry: Conntrack): boolean;
  /** Protocol state name for conntrack -L (TCP "ESTABLISHED"); "" where the protocol shows none. */
  stateName(entry: Conntrack): string;
  /** Extra tuple fields for conntrack -L after the addresses, e.g. "sport=1 dport=2 " or "type=8 code=0 id=5 ". */
  formatTupleFields(tuple: Tuple): string;
}
