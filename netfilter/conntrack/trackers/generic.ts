/**
 * The tracker for every protocol without its own (nf_conntrack_proto_generic.c): one connection
 * per address pair and protocol, no protocol words, one timeout.
 */
import type { Conntrack } from '../conntrack-entry.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from '../l4-tracker.ts';
import { Status } from '../status.ts';
import type { Tuple } from '../tuple.ts';

/** The kernel's generic l4proto registers as IPPROTO_RAW; it stands for any unknown protocol. */
const PROTOCOL_ANY = 255;

export class GenericTracker implements L4Tracker {
  readonly protocol = PROTOCOL_ANY;
  readonly name = 'unknown';
  readonly sumsChecksum = false;

  constructor(private readonly timeoutSeconds: number) {}

  validate(_packet: L4Packet, _checkChecksum: boolean): boolean {
    return true;
  }

  readTuple(_packet: L4Packet, tuple: Tuple): boolean {
    tuple.srcPort = 0;
    tuple.dstPort = 0;
    return true;
  }

  invertTuple(_original: Tuple, reply: Tuple): boolean {
    reply.srcPort = 0;
    reply.dstPort = 0;
    return true;
  }

  newConnection(_entry: Conntrack, _packet: L4Packet, _now: number): boolean {
    return true;
  }

  packet(entry: Conntrack, _packet: L4Packet, _direction: 0 | 1, now: number): TrackVerdict {
    if (!(entry.status & Status.FIXED_TIMEOUT)) entry.timeout = now + this.timeoutSeconds * 1000;
    return TrackVerdict.ACCEPT;
  }

  stateName(_entry: Conntrack): string {
    return '';
  }

  formatTupleFields(_tuple: Tuple): string {
    return '';
  }
}
