/**
 * The entry filters `conntrack -L/-D/-E/-G` take, already parsed by the CLI into plain values (they
 * cross the control socket as JSON). What each means is what conntrack-tools 1.4.7 and its
 * libnetfilter_conntrack make of it, checked against them on the kernel of this machine:
 *
 * - `-s/-d ADDRESS[/PREFIX]`: the original source / destination within the network; `-r/-q`: the
 *   reply source / destination, exactly (conntrack refuses a prefix there).
 * - `--src-nat [ADDRESS[:PORT]]`: the connection was source-NATed: the SNAT step ran
 *   (SRC_NAT_DONE) and the reply's destination address, or its destination port, differs from the
 *   original source's; with ADDRESS (and PORT), the reply's destination is that address (and port).
 *   `--dst-nat` the same for DNAT with the reply's source. As in libnetfilter_conntrack the "port"
 *   is the tuple's 16-bit protocol field, so an ICMP echo, whose reply destination holds its
 *   type and code and whose original source holds its id, counts as port-translated both ways.
 *   `--any-nat`: either one. `--src-nat --dst-nat`: both.
 * - `-u FLAGS`: `(status & mask) == value`. For -L the kernel filters the dump with the mask the
 *   CLI built (the flags, or only the negated and UNREPLIED ones when any are given); -D and -E
 *   filter in conntrack itself, which checks only that `value`'s flags are set: the CLI sends mask
 *   = value for them.
 * - `-m MARK[/MASK]`: `(mark & mask) == value`.
 */
import type { Conntrack } from './conntrack-entry.ts';
import { Status } from './status.ts';

/** A network: the address and the mask of its prefix (0xffffffff for one address). */
export interface AddressMatch {
  address: number;
  mask: number;
}

/** `(field & mask) == value`, for -m and -u. */
export interface MaskedValue {
  value: number;
  mask: number;
}

/** The address (and port) a connection was NATed to; neither: any NATed connection. */
export interface NatMatch {
  address?: number;
  port?: number;
}

export interface ConntrackFilter {
  protocol?: number;
  origSrc?: AddressMatch;
  origDst?: AddressMatch;
  replySrc?: number;
  replyDst?: number;
  origSrcPort?: number;
  origDstPort?: number;
  replySrcPort?: number;
  replyDstPort?: number;
  /** Protocol state name, e.g. ESTABLISHED. */
  state?: string;
  mark?: MaskedValue;
  status?: MaskedValue;
  srcNat?: NatMatch;
  dstNat?: NatMatch;
  /** --any-nat: SNAT or DNAT to the address given. */
  anyNat?: NatMatch;
}

export function matchesFilter(entry: Conntrack, filter: ConntrackFilter): boolean {
  const [original, reply] = entry.tuples;
  if (filter.protocol !== undefined && filter.protocol !== original.protocol) return false;
  if (filter.origSrc && !inNetwork(original.src, filter.origSrc)) return false;
  if (filter.origDst && !inNetwork(original.dst, filter.origDst)) return false;
  if (filter.replySrc !== undefined && filter.replySrc !== reply.src) return false;
  if (filter.replyDst !== undefined && filter.replyDst !== reply.dst) return false;
  if (filter.origSrcPort !== undefined && filter.origSrcPort !== original.srcPort) return false;
  if (filter.origDstPort !== undefined && filter.origDstPort !== original.dstPort) return false;
  if (filter.replySrcPort !== undefined && filter.replySrcPort !== reply.srcPort) return false;
  if (filter.replyDstPort !== undefined && filter.replyDstPort !== reply.dstPort) return false;
  if (filter.state !== undefined && filter.state !== entry.tracker.stateName(entry)) return false;
  if (filter.mark && !masked(entry.mark, filter.mark)) return false;
  if (filter.status && !masked(entry.status, filter.status)) return false;
  if (filter.anyNat) return sourceNated(entry, filter.anyNat) || destinationNated(entry, filter.anyNat);
  if (filter.srcNat && !sourceNated(entry, filter.srcNat)) return false;
  if (filter.dstNat && !destinationNated(entry, filter.dstNat)) return false;
  return true;
}

function inNetwork(address: number, network: AddressMatch): boolean {
  return ((address & network.mask) >>> 0) === ((network.address & network.mask) >>> 0);
}

function masked(field: number, match: MaskedValue): boolean {
  return ((field & match.mask) >>> 0) === match.value >>> 0;
}

/** The reply goes to another address or port than the original came from: SNAT (or masquerade). */
function sourceNated(entry: Conntrack, match: NatMatch): boolean {
  if (!(entry.status & Status.SRC_NAT_DONE)) return false;
  const [original, reply] = entry.tuples;
  return natedTo(reply.dst !== original.src, reply.dstPort !== original.srcPort, reply.dst, reply.dstPort, match);
}

/** The reply comes from another address or port than the original went to: DNAT. */
function destinationNated(entry: Conntrack, match: NatMatch): boolean {
  if (!(entry.status & Status.DST_NAT_DONE)) return false;
  const [original, reply] = entry.tuples;
  return natedTo(reply.src !== original.dst, reply.srcPort !== original.dstPort, reply.src, reply.srcPort, match);
}

function natedTo(addressChanged: boolean, portChanged: boolean, address: number, port: number, match: NatMatch): boolean {
  if (match.address === undefined && match.port === undefined) return addressChanged || portChanged;
  if (match.address !== undefined && !(addressChanged && address === match.address)) return false;
  if (match.port !== undefined && !(portChanged && port === match.port)) return false;
  return true;
}
