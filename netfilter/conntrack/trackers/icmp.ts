/**
 * ICMP connection tracking, after the kernel's nf_conntrack_proto_icmp.c.
 *
 * Only the query messages are connections: echo, timestamp, information and address mask
 * requests open one, and the matching reply type is the reply tuple. The tuple keeps the query
 * identifier in `srcPort` and `(type << 8) | code` in `dstPort`.
 *
 * Errors (destination unreachable, time exceeded, ...) belong to the connection of the datagram
 * they quote (RELATED): the core finds it with `icmpErrorInnerOffset` and `icmpQuotedL4`, which
 * do what nf_conntrack_icmpv4_error and nf_ct_get_tuplepr do before the lookup.
 */
import { internetChecksum } from '../../../router/wire/checksum.ts';
import {
  ICMP_HEADER_LENGTH,
  icmpCode,
  icmpEchoId,
  icmpIsError,
  icmpIsQueryRequest,
  icmpReplyTypeOf,
  icmpType,
  IcmpType,
} from '../../../router/wire/icmp.ts';
import { IPV4_MIN_HEADER_LENGTH, ipv4FragmentOffset, ipv4HeaderLength } from '../../../router/wire/ipv4.ts';
import type { Conntrack } from '../conntrack-entry.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from '../l4-tracker.ts';
import { Status } from '../status.ts';
import type { Tuple } from '../tuple.ts';

const PROTOCOL_ICMP = 1;
/** NR_ICMP_TYPES: higher types are unknown and, per RFC 1122 3.2.2, not tracked. */
const HIGHEST_KNOWN_TYPE = IcmpType.ADDRESS_MASK_REPLY;

/** The type that answers `type` or is answered by it (the kernel's invmap), -1 for others. */
function pairedType(type: number): number {
  switch (type) {
    case IcmpType.ECHO_REPLY:
      return IcmpType.ECHO_REQUEST;
    case IcmpType.TIMESTAMP_REPLY:
      return IcmpType.TIMESTAMP_REQUEST;
    case IcmpType.INFO_REPLY:
      return IcmpType.INFO_REQUEST;
    case IcmpType.ADDRESS_MASK_REPLY:
      return IcmpType.ADDRESS_MASK_REQUEST;
    default:
      return icmpReplyTypeOf(type);
  }
}

export class IcmpTracker implements L4Tracker {
  readonly protocol = PROTOCOL_ICMP;
  readonly name = 'icmp';
  readonly sumsChecksum = true;

  constructor(private readonly timeoutSeconds: number) {}

  /** nf_conntrack_icmpv4_error's checks: the 8-byte header, the checksum, a known type. */
  validate(packet: L4Packet, checkChecksum: boolean): boolean {
    const { buf, l4Offset: off } = packet;
    const length = Math.min(packet.l4Length, buf.length - off);
    if (!(off >= 0) || length < ICMP_HEADER_LENGTH) return false;
    if (checkChecksum && internetChecksum(buf, off, length) !== 0) return false;
    return icmpType(buf, off) <= HIGHEST_KNOWN_TYPE;
  }

  /** icmp_pkt_to_tuple: the 8-byte header (the identifier is read whatever the type). */
  readTuple(packet: L4Packet, tuple: Tuple): boolean {
    const { buf, l4Offset: off } = packet;
    if (!(off >= 0) || Math.min(packet.l4Length, buf.length - off) < ICMP_HEADER_LENGTH) return false;
    tuple.srcPort = icmpEchoId(buf, off);
    tuple.dstPort = (icmpType(buf, off) << 8) | icmpCode(buf, off);
    return true;
  }

  /** Requests and replies invert to each other with the same code and identifier. */
  invertTuple(original: Tuple, reply: Tuple): boolean {
    const type = pairedType(original.dstPort >>> 8);
    if (type < 0) return false;
    reply.srcPort = original.srcPort;
    reply.dstPort = (type << 8) | (original.dstPort & 0xff);
    return true;
  }

  /** nf_conntrack_icmp_packet's valid_new: only a query request opens a connection. */
  newConnection(entry: Conntrack, _packet: L4Packet, _now: number): boolean {
    return icmpIsQueryRequest(entry.tuples[0].dstPort >>> 8);
  }

  /**
   * Every packet extends the entry by the ICMP timeout; the first reply does not end it, so that
   * duplicate replies still match (and conntrackd is spared the churn).
   */
  packet(entry: Conntrack, _packet: L4Packet, _direction: 0 | 1, now: number): TrackVerdict {
    if (!(entry.status & Status.FIXED_TIMEOUT)) entry.timeout = now + this.timeoutSeconds * 1000;
    return TrackVerdict.ACCEPT;
  }

  stateName(_entry: Conntrack): string {
    return '';
  }

  formatTupleFields(tuple: Tuple): string {
    return `type=${tuple.dstPort >>> 8} code=${tuple.dstPort & 0xff} id=${tuple.srcPort} `;
  }
}

/**
 * Where the IPv4 header quoted by an ICMP error starts in `packet.buf`, or -1 if the message is
 * not an error type or is shorter than its 8-byte header.
 */
export function icmpErrorInnerOffset(packet: L4Packet): number {
  const { buf, l4Offset: off } = packet;
  if (!(off >= 0) || Math.min(packet.l4Length, buf.length - off) < ICMP_HEADER_LENGTH) return -1;
  return icmpIsError(icmpType(buf, off)) ? off + ICMP_HEADER_LENGTH : -1;
}

/**
 * Points `inner` at the L4 header of the datagram quoted at `ipOffset` (from
 * icmpErrorInnerOffset), for the inner protocol's `readTuple`; its protocol, source and destination
 * are the quoted header's bytes 9, 12 and 16. False, as ipv4_get_l4proto, when the quoted IPv4
 * header is cut short, is a fragment other than the first (no L4 header to read) or claims a
 * header length past the end of the message.
 */
export function icmpQuotedL4(packet: L4Packet, ipOffset: number, inner: L4Packet): boolean {
  const buf = packet.buf;
  const end = Math.min(packet.l4Offset + packet.l4Length, buf.length);
  if (!(ipOffset >= 0) || end - ipOffset < IPV4_MIN_HEADER_LENGTH) return false;
  if (ipv4FragmentOffset(buf, ipOffset) !== 0) return false;
  const l4Offset = ipOffset + ipv4HeaderLength(buf, ipOffset);
  if (l4Offset > end) return false;
  inner.buf = buf;
  inner.l4Offset = l4Offset;
  inner.l4Length = end - l4Offset;
  return true;
}
