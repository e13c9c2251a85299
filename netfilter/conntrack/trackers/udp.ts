/**
 * UDP connection tracking, after the kernel's nf_conntrack_proto_udp.c.
 *
 * Unreplied: the short timeout. Replied: the short timeout still for the first two seconds of
 * the connection, then the stream timeout and ASSURED, so that a request and its single answer
 * (DNS) does not make an entry that outlives early drop.
 *
 * `entry.l4State` holds the end of those two seconds (ms on the conntrack clock), set by
 * `newConnection` as the kernel's udp_packet sets stream_ts on the unconfirmed entry.
 */
import { ipv4Dst, ipv4Src, IPV4_MIN_HEADER_LENGTH } from '../../../router/wire/ipv4.ts';
import { UdpProblem, udpChecksumValid, udpDstPort, udpSrcPort, validateUdp } from '../../../router/wire/udp.ts';
import type { Conntrack } from '../conntrack-entry.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from '../l4-tracker.ts';
import { CtEvent, Status } from '../status.ts';
import type { Tuple } from '../tuple.ts';
import type { StreamTimeouts } from './timeouts.ts';

const PROTOCOL_UDP = 17;
/** How old a replied connection must be before it counts as a stream. */
const STREAM_AFTER_MS = 2000;

export class UdpTracker implements L4Tracker {
  readonly protocol = PROTOCOL_UDP;
  readonly name = 'udp';
  readonly sumsChecksum = true;

  constructor(private readonly timeouts: StreamTimeouts) {}

  /**
   * udp_error: the header fits, its length field lies between 8 and the IP payload length, and a
   * non-zero checksum holds over the whole IP payload (a zero one means none was sent, RFC 768).
   */
  validate(packet: L4Packet, checkChecksum: boolean): boolean {
    const { buf, l4Offset: off } = packet;
    const length = Math.min(packet.l4Length, buf.length - off);
    if (!(off >= 0) || validateUdp(buf, off, length) !== UdpProblem.OK) return false;
    if (!checkChecksum) return true;
    if (off < IPV4_MIN_HEADER_LENGTH) return false;
    return udpChecksumValid(buf, off, length, ipv4Src(buf, 0), ipv4Dst(buf, 0));
  }

  /** The ports, the first 4 bytes. */
  readTuple(packet: L4Packet, tuple: Tuple): boolean {
    const { buf, l4Offset: off } = packet;
    if (!(off >= 0) || Math.min(packet.l4Length, buf.length - off) < 4) return false;
    tuple.srcPort = udpSrcPort(buf, off);
    tuple.dstPort = udpDstPort(buf, off);
    return true;
  }

  invertTuple(original: Tuple, reply: Tuple): boolean {
    reply.srcPort = original.dstPort;
    reply.dstPort = original.srcPort;
    return true;
  }

  newConnection(entry: Conntrack, _packet: L4Packet, now: number): boolean {
    entry.l4State = now + STREAM_AFTER_MS;
    return true;
  }

  /** nf_conntrack_udp_packet. */
  packet(entry: Conntrack, _packet: L4Packet, _direction: 0 | 1, now: number): TrackVerdict {
    let seconds = this.timeouts.unreplied;
    if (entry.status & Status.SEEN_REPLY && now > entry.l4State) {
      seconds = this.timeouts.replied;
      if (!(entry.status & Status.ASSURED)) {
        entry.status |= Status.ASSURED;
        entry.events |= CtEvent.ASSURED;
      }
    }
    if (!(entry.status & Status.FIXED_TIMEOUT)) entry.timeout = now + seconds * 1000;
    return TrackVerdict.ACCEPT;
  }

  stateName(_entry: Conntrack): string {
    return '';
  }

  formatTupleFields(tuple: Tuple): string {
    return `sport=${tuple.srcPort} dport=${tuple.dstPort} `;
  }
}
