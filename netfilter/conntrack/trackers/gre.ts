/**
 * GRE connection tracking, after the kernel's nf_conntrack_proto_gre.c.
 *
 * Version 1 (PPTP's enhanced GRE, RFC 2637 section 4.1, protocol 0x880B): the destination key is
 * the header's call ID and the source key comes from the GreKeymap the PPTP helper fills (0 if it
 * has no entry). Version 0 and anything else that is not version 1: both keys 0, one connection
 * per address pair, like the generic tracker. A version 1 header of another protocol is not
 * tracked. The kernel has no error() for GRE, so `validate` refuses nothing.
 *
 * Timeouts: unreplied and replied ("stream"), the configured ones for every GRE connection. The
 * PPTP helper's longer ones (600 s / 18000 s) never take effect on the kernel: its expectation
 * callback sets them before the first packet, and gre_packet then initialises an unconfirmed
 * connection's timeouts from the sysctls, so kernel 6.18 shows 30 s / 180 s on a call's GRE too.
 * A replied connection is ASSURED at once.
 */
import { GRE, GRE_MIN_HEADER_LENGTH, GRE_PROTOCOL_PPP, greProtocol, greV1CallId, greVersion } from '../../../router/wire/gre.ts';
import type { Conntrack } from '../conntrack-entry.ts';
import type { GreKeymap } from '../gre-keymap.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from '../l4-tracker.ts';
import { CtEvent, Status } from '../status.ts';
import type { Tuple } from '../tuple.ts';
import type { StreamTimeouts } from './timeouts.ts';

const PROTOCOL_GRE = 47;
/** Up to and including the version 1 call ID. */
const V1_KEY_END = GRE.V1_CALL_ID + 2;

export class GreTracker implements L4Tracker {
  readonly protocol = PROTOCOL_GRE;
  readonly name = 'gre';
  readonly sumsChecksum = false;

  constructor(
    private readonly timeouts: StreamTimeouts,
    /** Shared with the PPTP helper, which fills it. */
    readonly keymap: GreKeymap,
  ) {}

  validate(_packet: L4Packet, _checkChecksum: boolean): boolean {
    return true;
  }

  /**
   * gre_pkt_to_tuple. The keymap lookup needs the tuple's addresses, so the caller fills them
   * first. Reads at most the first 8 bytes; shorter headers get keys 0, as in the kernel.
   */
  readTuple(packet: L4Packet, tuple: Tuple): boolean {
    const { buf, l4Offset: off } = packet;
    const length = Math.min(packet.l4Length, buf.length - off);
    tuple.srcPort = 0;
    tuple.dstPort = 0;
    if (!(off >= 0) || length < GRE_MIN_HEADER_LENGTH || greVersion(buf, off) !== 1) return true;
    if (length < V1_KEY_END) return true;
    if (greProtocol(buf, off) !== GRE_PROTOCOL_PPP) return false;
    tuple.dstPort = greV1CallId(buf, off);
    tuple.srcPort = this.keymap.lookup(tuple.src, tuple.dst, tuple.dstPort);
    return true;
  }

  invertTuple(original: Tuple, reply: Tuple): boolean {
    reply.srcPort = original.dstPort;
    reply.dstPort = original.srcPort;
    return true;
  }

  newConnection(_entry: Conntrack, _packet: L4Packet, _now: number): boolean {
    return true;
  }

  /** nf_conntrack_gre_packet. */
  packet(entry: Conntrack, _packet: L4Packet, _direction: 0 | 1, now: number): TrackVerdict {
    let seconds = this.timeouts.unreplied;
    if (entry.status & Status.SEEN_REPLY) {
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

  /** As conntrack prints GRE keys: lower-case hex without padding. */
  formatTupleFields(tuple: Tuple): string {
    return `srckey=0x${tuple.srcPort.toString(16)} dstkey=0x${tuple.dstPort.toString(16)} `;
  }
}
