/**
 * The entry filters `conntrack -L/-D/-E` take (-p, -s, -d, -r, -q, --sport, --dport,
 * --reply-port-src, --reply-port-dst, --state, -m), already parsed by the CLI into plain values.
 */
import type { Conntrack } from './conntrack-entry.ts';

export interface ConntrackFilter {
  protocol?: number;
  origSrc?: number;
  origDst?: number;
  replySrc?: number;
  replyDst?: number;
  origSrcPort?: number;
  origDstPort?: number;
  replySrcPort?: number;
  replyDstPort?: number;
  /** Protocol state name, e.g. ESTABLISHED. */
  state?: string;
  mark?: number;
}

export function matchesFilter(entry: Conntrack, filter: ConntrackFilter): boolean {
  const [original, reply] = entry.tuples;
  const checks: [number | string | undefined, number | string][] = [
    [filter.protocol, original.protocol],
    [filter.origSrc, original.src],
    [filter.origDst, original.dst],
    [filter.replySrc, reply.src],
    [filter.replyDst, reply.dst],
    [filter.origSrcPort, original.srcPort],
    [filter.origDstPort, original.dstPort],
    [filter.replySrcPort, reply.srcPort],
    [filter.replyDstPort, reply.dstPort],
    [filter.state, entry.tracker.stateName(entry)],
    [filter.mark, entry.mark],
  ];
  return checks.every(([wanted, actual]) => wanted === undefined || wanted === actual);
}
