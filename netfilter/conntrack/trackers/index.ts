/**
 * The registry of L4 trackers: built explicitly from the configuration, one per protocol number,
 * with `genericTracker` for protocols that have none (nf_ct_l4proto_find). Nothing registers
 * itself on import.
 *
 * What the core does with them, per packet, in the kernel's nf_conntrack_in order:
 *   1. `validate` (error()); false: INVALID, stop.
 *   2. fill the tuple's addresses and protocol, then `readTuple`; false: INVALID, stop.
 *   3. look the tuple up. Not found: `invertTuple` for the reply tuple (false: INVALID), then
 *      `newConnection` (false: INVALID, no entry).
 *   4. `packet` with the direction, found or new. INVALID / DROP: the packet is untracked /
 *      dropped; RECREATE: kill the entry and start again at 3; ACCEPT: tracked, and only now
 *      does a reply set SEEN_REPLY; KILL: tracked, and the entry is deleted at once (TCP: an RST
 *      before any reply).
 */
import { GreKeymap } from '../gre-keymap.ts';
import type { L4Tracker } from '../l4-tracker.ts';
import { GenericTracker } from './generic.ts';
import { GreTracker } from './gre.ts';
import { IcmpTracker } from './icmp.ts';
import { DEFAULT_TIMEOUTS, resolveTimeouts, type TimeoutOverrides } from './timeouts.ts';
import { TcpTracker, type TcpTrackerOptions } from './tcp.ts';
import { UdpTracker } from './udp.ts';

export interface TrackerOptions {
  /** Seconds, overriding the kernel's sysctl defaults; checked here (RangeError on a bad value). */
  timeouts?: TimeoutOverrides;
  /** nf_conntrack_tcp_loose, _be_liberal, _max_retrans, _ignore_invalid_rst, and seqadj's offset. */
  tcp?: Partial<TcpTrackerOptions>;
  /** The keymap the PPTP helper fills; a new one if not given (reachable as GreTracker.keymap). */
  greKeymap?: GreKeymap;
}

/** TCP, UDP, ICMP and GRE trackers keyed by IP protocol number. */
export function createTrackers(options: TrackerOptions = {}): Map<number, L4Tracker> {
  const timeouts = resolveTimeouts(options.timeouts);
  const trackers: L4Tracker[] = [
    new TcpTracker(timeouts.tcp, options.tcp),
    new UdpTracker(timeouts.udp),
    new IcmpTracker(timeouts.icmp),
    new GreTracker(timeouts.gre, options.greKeymap ?? new GreKeymap()),
  ];
  return new Map(trackers.map((tracker) => [tracker.protocol, tracker]));
}

/** For protocols with no tracker of their own, with the configured `generic` timeout. */
export function createGenericTracker(options: TrackerOptions = {}): L4Tracker {
  return new GenericTracker(resolveTimeouts(options.timeouts).generic);
}

/** The generic tracker with the kernel's default timeout (600 s). */
export const genericTracker: L4Tracker = new GenericTracker(DEFAULT_TIMEOUTS.generic);
