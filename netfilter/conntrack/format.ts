/**
 * Connections and expectations as conntrack-tools prints them (libnetfilter_conntrack's default
 * output, checked against `conntrack -L/-E` on the kernel of this machine):
 *
 *   tcp      6 431999 ESTABLISHED src=... dst=... sport=.. dport=.. src=... [ASSURED] mark=0 use=1
 *       [NEW] udp      17 30 src=... dst=... sport=.. dport=.. [UNREPLIED] src=...
 *   300 proto=6 src=... dst=... sport=0 dport=N mask-src=... mask-dst=... sport=0 dport=65535 master-src=... class=0 helper=ftp
 *
 * Event lines say what the ctnetlink message carries: no use=, mark= only when set; the protocol
 * state only when the event changed it (PROTOINFO) or ends the connection; a DESTROY has no
 * helper= and no timeout once it is 0 (expired); ` [USERSPACE] portid=N` when a control client's
 * request caused it, as conntrack-tools prints the sender of the message.
 *
 * `-o extended` puts the layer 3 protocol first (`ipv4     2 `), `-o id` ends the entry with `id=N`
 * (after use=, before [USERSPACE]); `-o timestamp` is the time the tool printed the event, in front
 * of the line (eventTimestamp). Expectation lines take neither extended nor id.
 */
import { formatIpv4Address } from '../../router/core/addresses.ts';
import type { ConntrackCounters } from './conntrack-core.ts';
import type { Conntrack } from './conntrack-entry.ts';
import type { Expectation } from './expectation.ts';
import { CtEvent, Status } from './status.ts';
import type { Tuple } from './tuple.ts';

export type EventKind = 'NEW' | 'UPDATE' | 'DESTROY';

/** What `-o extended` and `-o id` add to a connection's line. */
export interface LineOptions {
  extended?: boolean;
  id?: boolean;
}

/** libnetfilter_conntrack's `%-8s %u ` of the layer 3 protocol: only IPv4 here (AF_INET is 2). */
const LAYER3 = `${'ipv4'.padEnd(8)} 2 `;

function tupleText(entry: Conntrack, tuple: Tuple): string {
  return `src=${formatIpv4Address(tuple.src)} dst=${formatIpv4Address(tuple.dst)} ${entry.tracker.formatTupleFields(tuple)}`;
}

/** Seconds left as the kernel reports them (truncated), never negative. */
export function secondsLeft(deadline: number, now: number): number {
  return Math.max(0, Math.floor((deadline - now) / 1000));
}

/**
 * [Layer 3 protocol,] protocol name and number, timeout (unless `withTimeout` is false), state
 * (unless `withState` is false), tuples, flags.
 */
function connectionBody(entry: Conntrack, now: number, options: LineOptions, withTimeout = true, withState = true): string {
  const tracker = entry.tracker;
  let line = `${options.extended ? LAYER3 : ''}${tracker.name.padEnd(8)} ${entry.tuples[0].protocol} `;
  if (withTimeout) line += `${secondsLeft(entry.timeout, now)} `;
  const state = withState ? tracker.stateName(entry) : '';
  if (state) line += `${state} `;
  line += tupleText(entry, entry.tuples[0]);
  if (!(entry.status & Status.SEEN_REPLY)) line += '[UNREPLIED] ';
  line += tupleText(entry, entry.tuples[1]);
  if (entry.status & Status.ASSURED) line += '[ASSURED] ';
  return line;
}

/**
 * One line of `conntrack -L` (and -D, -G). `extraReferences`: references the request itself holds
 * (the kernel counts the one its lookup for `-G` takes: use=2 for an entry -L shows with use=1).
 */
export function formatConnection(entry: Conntrack, now: number, options: LineOptions = {}, extraReferences = 0): string {
  let line = `${connectionBody(entry, now, options)}mark=${entry.mark} `;
  if (entry.helper) line += `helper=${entry.helper.name} `;
  line += `use=${entry.references + extraReferences}`;
  return options.id ? `${line} id=${entry.id}` : line;
}

/**
 * One line of `conntrack -E`: the event right-aligned in 9 columns, as conntrack prints it.
 * `bits`: the CtEvent bits of the event; `portid`: the control client that caused it, or 0.
 */
export function formatConnectionEvent(kind: EventKind, entry: Conntrack, now: number, bits: number, portid: number, options: LineOptions = {}): string {
  const destroy = kind === 'DESTROY';
  const body = destroy
    ? connectionBody(entry, now, options, secondsLeft(entry.timeout, now) > 0, true)
    : connectionBody(entry, now, options, true, (bits & CtEvent.PROTOINFO) !== 0);
  let line = `${`[${kind}]`.padStart(9)} ${body}`;
  if (entry.mark) line += `mark=${entry.mark} `;
  if (entry.helper && !destroy) line += `helper=${entry.helper.name} `;
  if (options.id) line += `id=${entry.id} `;
  line = line.trimEnd();
  return portid ? `${line} [USERSPACE] portid=${portid}` : line;
}

/**
 * What `-o timestamp` puts in front of an event (and of an expectation `-L expect` lists): the wall
 * clock when the tool printed it, and a tab. conntrack-tools zero-pads the microseconds of
 * connection events (`[%-.8ld.%-.6ld]`) but left-justifies those of expectations in six columns
 * (`[%-8ld.%-6ld]`): `[1796226798.12549 ]`, as the conntrack 1.4.7 here prints them.
 */
export function eventTimestamp(microsecondsSinceEpoch: number, table: 'conntrack' | 'expect'): string {
  const seconds = String(Math.floor(microsecondsSinceEpoch / 1e6));
  const micros = String(Math.floor(microsecondsSinceEpoch % 1e6));
  return table === 'conntrack' ? `[${seconds.padStart(8, '0')}.${micros.padStart(6, '0')}]\t` : `[${seconds.padEnd(8)}.${micros.padEnd(6)}]\t`;
}

function expectationBody(expectation: Expectation, now: number): string {
  const t = expectation.tuple;
  const mask = expectation.mask;
  const master = expectation.master.tuples[0];
  return (
    `${secondsLeft(expectation.timeout, now)} proto=${t.protocol} ` +
    `src=${formatIpv4Address(t.src)} dst=${formatIpv4Address(t.dst)} ${portFields(t.protocol, t.srcPort, t.dstPort)}` +
    // The destination address and port always match exactly: their mask is all ones.
    `mask-src=${formatIpv4Address(mask.src)} mask-dst=255.255.255.255 ${portFields(t.protocol, mask.srcPort, 0xffff)}` +
    `master-src=${formatIpv4Address(master.src)} master-dst=${formatIpv4Address(master.dst)} ${portFields(master.protocol, master.srcPort, master.dstPort)}` +
    `class=${expectation.expectClass} helper=${expectation.helper.name}`
  );
}

/** GRE expectations print keys, the others ports. */
function portFields(protocol: number, sport: number, dport: number): string {
  if (protocol === 47) return `srckey=0x${sport.toString(16)} dstkey=0x${dport.toString(16)} `;
  return `sport=${sport} dport=${dport} `;
}

/** One line of `conntrack -L expect`. */
export function formatExpectation(expectation: Expectation, now: number): string {
  return expectationBody(expectation, now);
}

/** One line of `conntrack -E expect`. */
export function formatExpectationEvent(kind: 'NEW' | 'DESTROY', expectation: Expectation, now: number): string {
  return `${`[${kind}]`.padStart(9)} ${expectationBody(expectation, now)}`;
}

/**
 * `conntrack -S`: the kernel's per-CPU statistics, one "CPU" here. What each field counts, as on
 * the kernel: found, tuples NAT found taken; invalid, packets left untracked other than ICMP's
 * (whose refusals count under error alone); insert, connections added from user space (never);
 * insert_failed, clashes dropped on confirmation; drop, packets dropped for conntrack's own reasons
 * (no room, a clash, a tracker or sequence adjustment); early_drop, entries dropped to make room;
 * clash_resolve, clashes merged; search_restart and chaintoolong, never (no resizing, no chain cap).
 */
export function formatStatistics(counters: ConntrackCounters): string[] {
  const fields = {
    found: counters.tupleTaken,
    invalid: counters.invalid - counters.icmpErrors,
    insert: 0,
    insert_failed: counters.insertFailed,
    drop: counters.tableFull + counters.insertFailed + counters.dropped,
    early_drop: counters.earlyDropped,
    error: counters.icmpErrors,
    search_restart: 0,
    clash_resolve: counters.clashResolved,
    chaintoolong: 0,
  };
  let line = `${'cpu=0'.padEnd(8)}\t`;
  for (const [name, value] of Object.entries(fields)) line += `${name}=${value} `;
  return [line];
}

/** The same entry as data, for `-o json`. */
export function connectionJson(entry: Conntrack, now: number): Record<string, unknown> {
  const tuple = (t: Tuple): Record<string, unknown> => ({
    src: formatIpv4Address(t.src),
    dst: formatIpv4Address(t.dst),
    protocol: t.protocol,
    sport: t.srcPort,
    dport: t.dstPort,
  });
  return {
    id: entry.id,
    protocol: entry.tracker.name,
    timeout: secondsLeft(entry.timeout, now),
    state: entry.tracker.stateName(entry) || null,
    original: tuple(entry.tuples[0]),
    reply: tuple(entry.tuples[1]),
    status: Object.entries(Status)
      .filter(([, bit]) => entry.status & bit)
      .map(([name]) => name),
    mark: entry.mark,
    helper: entry.helper?.name ?? null,
    master: entry.master ? tuple(entry.master.tuples[0]) : null,
  };
}

/** One event as data, for `-E -o json`: the entry with the event and the requesting client. */
export function connectionEventJson(kind: EventKind, entry: Conntrack, now: number, portid: number): Record<string, unknown> {
  return { event: kind, ...connectionJson(entry, now), ...(portid ? { portid } : {}) };
}

export function expectationJson(expectation: Expectation, now: number): Record<string, unknown> {
  const t = expectation.tuple;
  return {
    timeout: secondsLeft(expectation.timeout, now),
    protocol: t.protocol,
    tuple: { src: formatIpv4Address(t.src), dst: formatIpv4Address(t.dst), sport: t.srcPort, dport: t.dstPort },
    mask: { src: formatIpv4Address(expectation.mask.src), sport: expectation.mask.srcPort },
    master: connectionJson(expectation.master, now).original,
    class: expectation.expectClass,
    helper: expectation.helper.name,
  };
}
