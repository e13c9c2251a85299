/**
 * Connection tracking core (nf_conntrack_core.c): conntrack in at -200 on PRE_ROUTING and
 * LOCAL_OUT, helpers at 300 and confirmation at INT_MAX on POST_ROUTING and LOCAL_IN.
 *
 * - A packet is matched by tuple against confirmed entries; a miss makes a new, unconfirmed
 *   entry that lives only on the packet until confirm inserts it (so it is invisible to lookups
 *   and a packet dropped before confirm takes its entry with it).
 * - New connections fulfil expectations (RELATED, master link, EXPECTED) or get the helper the
 *   raw table's CT target asked for; helpers are never assigned by port unless configured.
 * - ICMP errors are matched by the tuple they quote and become RELATED.
 * - A full table early-drops non-ASSURED entries from the new tuple's bucket on, else refuses the
 *   packet; a refusal makes the collector's next pass evict what may go while the table is at 95%
 *   or more (gc_worker's early drop), so that a flood of connections nobody answers does not lock
 *   new ones out. ASSURED connections stay, unless their tracker says they are closing.
 */
import { Hook, Priority, Verdict, type HookOps, type HookPoint } from '../../router/core/hooks.ts';
import type { HelperRegistry } from '../helpers/helper-registry.ts';
import type { Packet } from '../../router/core/packet.ts';
import { DropReason } from '../../router/core/stats.ts';
import { RateLimitedLog } from '../../router/core/rate-limited-log.ts';
import { icmpIsError, icmpType } from '../../router/wire/icmp.ts';
import { IpProtocol, ipv4Dst, ipv4FragmentOffset, ipv4HeaderLength, ipv4Protocol, ipv4Src } from '../../router/wire/ipv4.ts';
import { Conntrack } from './conntrack-entry.ts';
import { ConntrackTable } from './conntrack-table.ts';
import { ExpectationTable } from './expectation-table.ts';
import { formatConnection, formatExpectation } from './format.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from './l4-tracker.ts';
import { CtEvent, CtInfo, Status, ctinfoDirection } from './status.ts';
import { Direction, Tuple } from './tuple.ts';

export const DEFAULT_CONNTRACK_MAX = 262144;
export const DEFAULT_CONNTRACK_BUCKETS = 65536;
/**
 * NF_CT_EVICTION_RANGE: the entries early drop looks at before it gives up. They are counted, not
 * the buckets (as the kernel's early_drop did before it took 8 buckets), because a table much
 * sparser than its buckets (conntrack max 2000 in 65536) has almost nothing in 8 of them.
 */
const EVICTION_RANGE = 8;
/**
 * The buckets one early drop walks at most to find them: four times what holds EVICTION_RANGE
 * entries on average in a full table, at least this many, at most all; so that a packet's cost
 * stays bounded however the table is sized (the kernel's old walk could go round the whole table).
 */
const EVICTION_MIN_BUCKETS = 1024;
const GC_INTERVAL_MS = 50;
/**
 * The conntrack clock ticks in jiffies of a HZ=250 kernel, so that a timeout just set reads back
 * as the whole number of seconds (an event right after a SYN shows 120, as the kernel's do).
 */
const JIFFY_MS = 4;
const jiffyClock = (): number => Math.floor(performance.now() / JIFFY_MS) * JIFFY_MS;
/**
 * What one collector tick may visit, so that a tick stays bounded whatever the table size (about
 * 1 ms idle and under 8 ms while everything expires, at a million entries here: see
 * scripts/conntrack-scale.ts) and never stalls the packet path for long, as the kernel's gc worker
 * bounds its runs. A big table takes more ticks for a full pass; lookups meanwhile treat expired
 * entries as gone, and a full table early-drops.
 */
export const GC_ENTRY_BUDGET = 2048;
export const GC_BUCKET_BUDGET = 8192;

export interface ConntrackOptions {
  trackers: ReadonlyMap<number, L4Tracker>;
  generic: L4Tracker;
  helpers: HelperRegistry;
  max?: number;
  buckets?: number;
  /** Assign helpers by port (the kernel's removed nf_conntrack_helper=1). Off: see README. */
  autoHelpers?: boolean;
  /** Verify L4 checksums on PRE_ROUTING (nf_conntrack_checksum). */
  checksum?: boolean;
  now?: () => number;
  log?: RateLimitedLog;
}

export type ConnectionEvent = 'NEW' | 'UPDATE' | 'DESTROY';
/**
 * `at`: the conntrack clock when the event happened, so that its timeout prints as it was then.
 * `bits`: the CtEvent bits the event carries (what ctnetlink puts in the message: PROTOINFO only
 * when the protocol state changed). `portid`: the control client whose request caused it (a
 * `conntrack -D` or `-F`), 0 when the packet path or the timer did.
 */
export type ConnectionListener = (event: ConnectionEvent, entry: Conntrack, at: number, bits: number, portid: number) => void;

export interface ConntrackCounters {
  /** Lookups that found a connection. */
  found: number;
  created: number;
  /** Packets passed untracked (ctstate INVALID), ICMP errors that match nothing among them. */
  invalid: number;
  /** ICMP packets refused: malformed, or errors quoting no connection (the kernel's `error`). */
  icmpErrors: number;
  /** Packets dropped by a tracker or by sequence adjustment. */
  dropped: number;
  /** Entries early-dropped to make room for a new one (`conntrack -S` early_drop). */
  earlyDropped: number;
  /** Entries the collector evicted while the table was under pressure. */
  evicted: number;
  /** New connections refused: the table was full and nothing could be early-dropped. */
  tableFull: number;
  /** Confirmations that clashed with an existing entry and were merged into it (UDP, GRE)... */
  clashResolved: number;
  /** ...or dropped (`conntrack -S` insert_failed). */
  insertFailed: number;
  /** Tuples NAT found already in use (nf_conntrack_tuple_taken: the kernel's `found`). */
  tupleTaken: number;
  helperFaults: number;
}

/** ctinfo as conntrack's -m conntrack --ctstate and the kernel's IP_CT_* name them. */
const CTINFO_NAMES: Readonly<Record<number, string>> = {
  [CtInfo.ESTABLISHED]: 'ESTABLISHED original',
  [CtInfo.RELATED]: 'RELATED original',
  [CtInfo.NEW]: 'NEW original',
  [CtInfo.ESTABLISHED_REPLY]: 'ESTABLISHED reply',
  [CtInfo.RELATED_REPLY]: 'RELATED reply',
};

export class ConntrackCore {
  readonly table: ConntrackTable;
  readonly expectations: ExpectationTable;
  readonly now: () => number;
  readonly counters: ConntrackCounters = {
    found: 0,
    created: 0,
    invalid: 0,
    icmpErrors: 0,
    dropped: 0,
    earlyDropped: 0,
    evicted: 0,
    tableFull: 0,
    clashResolved: 0,
    insertFailed: 0,
    tupleTaken: 0,
    helperFaults: 0,
  };
  readonly max: number;
  private readonly evictionBuckets: number;
  private readonly listeners = new Set<ConnectionListener>();
  private readonly trackers: ReadonlyMap<number, L4Tracker>;
  private readonly generic: L4Tracker;
  private readonly helpers: HelperRegistry;
  private readonly autoHelpers: boolean;
  private readonly checksum: boolean;
  private readonly log: RateLimitedLog;
  private readonly scratch = new Tuple();
  private readonly innerScratch = new Tuple();
  private readonly l4: L4Packet = { buf: Buffer.alloc(0), l4Offset: 0, l4Length: 0 };
  private gcTimer: NodeJS.Timeout | null = null;
  private gcCursor = 0;
  /** Buckets the collector still walks evicting: a whole round of them after a refusal for room. */
  private pressureBuckets = 0;
  /** The collector's tick: its clock, and the size at which it evicts (Infinity: it does not). */
  private gcNow = 0;
  private gcVisited = 0;
  private gcPressureFloor = Infinity;
  /** The early drop in progress: its clock, the entries it looked at and those it dropped. */
  private evictionNow = 0;
  private evictionChecked = 0;
  private evictionDropped = 0;
  /** Connection ids are per router, as each network namespace has its own. */
  private lastId = 0;

  constructor(options: ConntrackOptions) {
    this.trackers = options.trackers;
    this.generic = options.generic;
    this.helpers = options.helpers;
    this.max = options.max ?? DEFAULT_CONNTRACK_MAX;
    this.table = new ConntrackTable(options.buckets ?? DEFAULT_CONNTRACK_BUCKETS);
    const buckets = this.table.bucketCount;
    this.evictionBuckets = Math.min(buckets, Math.max(EVICTION_MIN_BUCKETS, Math.ceil((4 * EVICTION_RANGE * buckets) / this.max)));
    this.autoHelpers = options.autoHelpers ?? false;
    this.checksum = options.checksum ?? true;
    this.now = options.now ?? jiffyClock;
    this.log = options.log ?? new RateLimitedLog();
    this.expectations = new ExpectationTable(this.now);
  }

  hookOps(): HookOps[] {
    const track = (packet: Packet, hook: HookPoint): Verdict => this.track(packet, hook);
    const help = (packet: Packet): Verdict => this.help(packet);
    const confirm = (packet: Packet): Verdict => this.confirm(packet);
    const describe = (packet: Packet): string => this.describe(packet);
    return [
      { hook: Hook.PRE_ROUTING, priority: Priority.CONNTRACK, fn: track, name: 'conntrack-in', describe },
      { hook: Hook.LOCAL_OUT, priority: Priority.CONNTRACK, fn: track, name: 'conntrack-in', describe },
      { hook: Hook.POST_ROUTING, priority: Priority.CONNTRACK_HELPER, fn: help, name: 'conntrack-helper', describe },
      { hook: Hook.LOCAL_IN, priority: Priority.CONNTRACK_HELPER, fn: help, name: 'conntrack-helper', describe },
      { hook: Hook.POST_ROUTING, priority: Priority.CONNTRACK_CONFIRM, fn: confirm, name: 'conntrack-confirm', describe },
      { hook: Hook.LOCAL_IN, priority: Priority.CONNTRACK_CONFIRM, fn: confirm, name: 'conntrack-confirm', describe },
    ];
  }

  /** A traced packet's connection as `vrouter trace` shows it: ctinfo, id, the entry as -L lists it, its helper's expectations. */
  describe(packet: Packet): string {
    const entry = packet.conntrack;
    if (!entry) return packet.ctinfo === CtInfo.UNTRACKED ? 'untracked (invalid or NOTRACK)' : 'no connection';
    const now = this.now();
    const master = entry.master ? ` (expected by master id=${entry.master.id})` : '';
    const expectations = entry.expectations.map((expectation) => `; expects ${formatExpectation(expectation, now)}`).join('');
    const note = packet.traceNote ? `; ${packet.traceNote}` : '';
    return `${CTINFO_NAMES[packet.ctinfo] ?? packet.ctinfo} id=${entry.id}${entry.confirmed ? '' : ' unconfirmed'}${master} ${formatConnection(entry, now)}${note}${expectations}`;
  }

  subscribe(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the expiry collector (unref'd: it never keeps the process alive). */
  start(): void {
    this.gcTimer ??= setInterval(() => this.collect(), GC_INTERVAL_MS).unref();
  }

  stop(): void {
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.gcTimer = null;
  }

  trackerFor(protocol: number): L4Tracker {
    return this.trackers.get(protocol) ?? this.generic;
  }

  /** nf_conntrack_in. Never drops on its own account except for a full table or a tracker's DROP. */
  track(packet: Packet, hook: HookPoint): Verdict {
    if (packet.conntrack) return Verdict.ACCEPT;
    if (packet.ctTemplate?.notrack) {
      packet.ctinfo = CtInfo.UNTRACKED;
      return Verdict.ACCEPT;
    }
    const buf = packet.buf;
    // Defrag runs first; a fragment here means defrag was bypassed: leave it untracked (INVALID).
    if (ipv4FragmentOffset(buf, 0) !== 0) return this.invalid(packet);
    const protocol = ipv4Protocol(buf, 0);
    const l4 = this.l4;
    l4.buf = buf;
    l4.l4Offset = ipv4HeaderLength(buf, 0);
    l4.l4Length = buf.length - l4.l4Offset;
    const tracker = this.trackerFor(protocol);
    const checkChecksum = this.checksum && hook === Hook.PRE_ROUTING && !packet.checksumVerified;
    if (!tracker.validate(l4, checkChecksum)) return protocol === IpProtocol.ICMP ? this.icmpInvalid(packet) : this.invalid(packet);
    if (checkChecksum && tracker.sumsChecksum) packet.checksumVerified = true;
    if (protocol === IpProtocol.ICMP && icmpIsError(icmpType(buf, l4.l4Offset))) return this.trackIcmpError(packet, l4);
    const tuple = this.scratch;
    tuple.src = ipv4Src(buf, 0);
    tuple.dst = ipv4Dst(buf, 0);
    tuple.protocol = protocol;
    if (!tracker.readTuple(l4, tuple)) return this.invalid(packet);
    const now = this.now();
    for (let attempt = 0; attempt < 2; attempt++) {
      let entry: Conntrack;
      let direction: 0 | 1;
      const node = this.findLive(tuple, now);
      if (node) {
        entry = node.entry;
        direction = node.direction;
        // A helper reads (and NAT's half rewrites) each segment as the sender's stack made it:
        // the super-packet goes on in segments, each tracked on its own.
        if (entry.helper !== null && packet.gsoSize !== 0) return Verdict.SEGMENT;
        this.counters.found++;
      } else {
        const created = this.create(packet, tracker, tuple, l4, now);
        if (created === null) return this.invalid(packet);
        if (created === Verdict.DROP) return Verdict.DROP;
        entry = created;
        direction = Direction.ORIGINAL;
      }
      const verdict = tracker.packet(entry, l4, direction, now);
      if (verdict === TrackVerdict.RECREATE) {
        this.destroy(entry);
        continue;
      }
      if (verdict === TrackVerdict.DROP) {
        this.counters.dropped++;
        return Verdict.DROP;
      }
      if (verdict === TrackVerdict.INVALID) return this.invalid(packet);
      entry.lastPacketAt = now;
      // The tracker ended the connection (TCP: a reset before any reply): it goes now, and the
      // packet still passes with it.
      if (verdict === TrackVerdict.KILL) this.destroy(entry);
      if (direction === Direction.REPLY && !(entry.status & Status.SEEN_REPLY)) {
        entry.status |= Status.SEEN_REPLY;
        entry.events |= CtEvent.REPLY;
      }
      packet.conntrack = entry;
      packet.ctinfo =
        direction === Direction.REPLY
          ? CtInfo.ESTABLISHED_REPLY
          : entry.status & Status.SEEN_REPLY
            ? CtInfo.ESTABLISHED
            : entry.status & Status.EXPECTED
              ? CtInfo.RELATED
              : CtInfo.NEW;
      return Verdict.ACCEPT;
    }
    return this.invalid(packet);
  }

  /** The connection helper at priority 300: skipped for RELATED_REPLY and for ICMP errors. */
  help(packet: Packet): Verdict {
    const entry = packet.conntrack;
    if (!entry?.helper || packet.ctinfo === CtInfo.RELATED_REPLY) return Verdict.ACCEPT;
    if (ipv4Protocol(packet.buf, 0) !== entry.tuples[0].protocol) return Verdict.ACCEPT;
    const helper = entry.helper;
    let verdict: Verdict;
    try {
      verdict = helper.help(packet, entry, packet.ctinfo, ipv4HeaderLength(packet.buf, 0));
    } catch (error) {
      // A helper bug costs its own verdict, never the router.
      this.counters.helperFaults++;
      this.log.log(`helper-${helper.name}`, `helper ${helper.name} failed: ${(error as Error).message}`);
      verdict = helper.faultVerdict ?? Verdict.ACCEPT;
    }
    if (verdict === Verdict.DROP) packet.dropReason ??= DropReason.HELPER_DROP;
    return verdict;
  }

  /** __nf_conntrack_confirm: original-direction packets of a new entry insert it into the table. */
  confirm(packet: Packet): Verdict {
    const entry = packet.conntrack;
    if (!entry) return Verdict.ACCEPT;
    if (!entry.confirmed) {
      if (entry.dying) return Verdict.ACCEPT;
      if (packet.ctinfo !== CtInfo.NEW && packet.ctinfo !== CtInfo.RELATED) return Verdict.ACCEPT;
      const clash = this.findLive(entry.tuples[0]) ?? this.findLive(entry.tuples[1]);
      if (clash) return this.resolveClash(packet, entry, clash.entry);
      // As the kernel, which keeps an unconfirmed timeout relative and starts it at confirmation.
      const now = this.now();
      if (!(entry.status & Status.FIXED_TIMEOUT)) entry.timeout += now - entry.createdAt;
      entry.status |= Status.CONFIRMED;
      this.table.insert(entry);
      const bits = entry.events | (entry.master ? CtEvent.RELATED : CtEvent.NEW);
      entry.events = 0;
      this.emit('NEW', entry, now, bits, 0);
      return Verdict.ACCEPT;
    }
    if (entry.events) {
      const bits = entry.events;
      entry.events = 0;
      // One that ended on this packet has said so with its DESTROY: nothing after it, as
      // nf_ct_deliver_cached_events skips a dying connection. The packet's walk from conntrack
      // in to here takes no time on the kernel's clock.
      if (!entry.dying) this.emit('UPDATE', entry, entry.lastPacketAt || this.now(), bits, 0);
    }
    return Verdict.ACCEPT;
  }

  /**
   * nf_conntrack_attach: a packet the router makes about `about` (an ICMP error, a REJECT reset)
   * belongs to its connection, RELATED and in the other direction. This holds even for a first
   * packet dropped before confirmation, whose error a lookup at LOCAL_OUT would not find: so a
   * firewall dropping INVALID on OUTPUT still lets the router's time exceeded out, as the kernel does.
   */
  attach(made: Packet, about: Packet): void {
    const entry = about.conntrack;
    if (!entry) return;
    made.conntrack = entry;
    made.ctinfo = ctinfoDirection(about.ctinfo) === Direction.ORIGINAL ? CtInfo.RELATED_REPLY : CtInfo.RELATED;
  }

  /**
   * A packet whose entry was never confirmed is gone (dropped or stolen): its entry goes with it,
   * and so do expectations a helper already made for it.
   */
  packetDropped(packet: Packet): void {
    const entry = packet.conntrack;
    if (entry && !entry.confirmed && entry.expectations.length) this.expectations.removeMaster(entry);
  }

  /**
   * Removes a connection: from the table, with its expectations and helper state (DESTROY event).
   * `portid`: the control client that asked for it (`conntrack -D`), 0 for the router itself.
   */
  destroy(entry: Conntrack, portid = 0): void {
    if (entry.dying) return;
    entry.status |= Status.DYING;
    if (entry.confirmed) this.table.remove(entry);
    this.expectations.removeMaster(entry);
    entry.helper?.destroy?.(entry);
    if (entry.confirmed) this.emit('DESTROY', entry, this.now(), CtEvent.DESTROY, portid);
  }

  /** Every live confirmed entry. */
  list(): Conntrack[] {
    const now = this.now();
    return this.table.all().filter((entry) => entry.timeout > now || entry.status & Status.FIXED_TIMEOUT);
  }

  /** `conntrack -F` on behalf of control client `portid`. */
  flush(portid = 0): number {
    const entries = this.table.all();
    for (const entry of entries) this.destroy(entry, portid);
    return entries.length;
  }

  /**
   * One tick of the collector: buckets from where the last tick stopped, within the budgets. It
   * removes expired entries and, for a whole round of the table after a refusal for room, evicts
   * what may go (see `mayEvict`) while the table holds 95% of max or more (gc_worker's early drop:
   * max / 100 * 95, so none below 100). The kernel's pass ends at the table's last bucket; this
   * round ends where it began, so that all of the table is looked at whenever the refusal came.
   */
  collect(): void {
    const buckets = this.table.bucketCount;
    this.gcNow = this.now();
    this.gcVisited = 0;
    const floor = Math.floor(this.max / 100) * 95;
    for (let scanned = 0; scanned < GC_BUCKET_BUDGET && scanned < buckets && this.gcVisited < GC_ENTRY_BUDGET; scanned++) {
      this.gcPressureFloor = this.pressureBuckets > 0 && floor > 0 ? floor : Infinity;
      if (this.pressureBuckets > 0) this.pressureBuckets--;
      this.table.forEachInBucket(this.gcCursor, this.gcVisit);
      this.gcCursor = (this.gcCursor + 1) % buckets;
    }
    this.expectations.expire();
  }

  private readonly gcVisit = (entry: Conntrack): void => {
    this.gcVisited++;
    if (this.expired(entry, this.gcNow)) {
      this.destroy(entry);
    } else if (this.table.size >= this.gcPressureFloor && this.mayEvict(entry)) {
      this.destroy(entry);
      this.counters.evicted++;
    }
  };

  private expired(entry: Conntrack, now: number): boolean {
    return entry.timeout <= now && !(entry.status & Status.FIXED_TIMEOUT);
  }

  /** gc_worker_can_early_drop: anything not ASSURED, and what its tracker says is closing. */
  private mayEvict(entry: Conntrack): boolean {
    return !(entry.status & Status.ASSURED) || entry.tracker.canEarlyDrop?.(entry) === true;
  }

  private emit(event: ConnectionEvent, entry: Conntrack, at: number, bits: number, portid: number): void {
    for (const listener of this.listeners) listener(event, entry, at, bits, portid);
  }

  /** The kernel's -NF_ACCEPT: the packet passes with no connection (ctstate INVALID). */
  private invalid(packet: Packet): Verdict {
    this.counters.invalid++;
    packet.conntrack = null;
    return Verdict.ACCEPT;
  }

  /** An ICMP packet the ICMP checks refuse: INVALID, and counted as the kernel's `error`. */
  private icmpInvalid(packet: Packet): Verdict {
    this.counters.icmpErrors++;
    return this.invalid(packet);
  }

  /** A confirmed entry holding `tuple`, destroying it first if its time is up. */
  private findLive(tuple: Tuple, now = this.now()) {
    const node = this.table.find(tuple.src, tuple.dst, tuple.protocol, tuple.srcPort, tuple.dstPort);
    if (!node) return null;
    const entry = node.entry;
    if (this.expired(entry, now)) {
      this.destroy(entry);
      return null;
    }
    return node;
  }

  /** init_conntrack: a new unconfirmed entry, or null (refused: INVALID) or DROP (table full). */
  private create(packet: Packet, tracker: L4Tracker, tuple: Tuple, l4: L4Packet, now: number): Conntrack | null | typeof Verdict.DROP {
    const reply = new Tuple(tuple.dst, tuple.src, tuple.protocol);
    if (!tracker.invertTuple(tuple, reply)) return null;
    if (this.table.size >= this.max && !this.earlyDrop(tuple, now)) {
      this.counters.tableFull++;
      this.pressureBuckets = this.table.bucketCount;
      this.log.log('table-full', `conntrack table full (${this.max} entries): dropping packet`);
      return Verdict.DROP;
    }
    const entry = new Conntrack(tracker, tuple.clone(), reply, ++this.lastId);
    entry.createdAt = now;
    if (!tracker.newConnection(entry, l4, now)) return null;
    const expectation = this.expectations.take(tuple.src, tuple.dst, tuple.protocol, tuple.srcPort, tuple.dstPort);
    if (expectation) {
      entry.master = expectation.master;
      entry.status |= Status.EXPECTED;
      entry.helper = expectation.childHelper;
      expectation.onMatch?.(entry, expectation);
    } else {
      this.attachHelper(packet, entry);
    }
    this.counters.created++;
    return entry;
  }

  private attachHelper(packet: Packet, entry: Conntrack): void {
    const wanted = packet.ctTemplate?.helper;
    if (wanted) {
      const helper = this.helpers.get(wanted);
      if (helper && helper.protocol === entry.tuples[0].protocol) {
        entry.helper = helper;
        entry.status |= Status.HELPER;
      }
      return;
    }
    if (this.autoHelpers) entry.helper = this.helpers.byPort(entry.tuples[1].protocol, entry.tuples[1].srcPort);
  }

  /**
   * early_drop: from the new tuple's bucket on, until EVICTION_RANGE entries were looked at, the
   * first bucket holding non-ASSURED entries loses them all; expired entries met on the way go
   * too. True if that made room.
   */
  private earlyDrop(tuple: Tuple, now: number): boolean {
    let bucket = this.table.bucketOf(tuple.src, tuple.dst, tuple.protocol, tuple.srcPort, tuple.dstPort);
    this.evictionNow = now;
    this.evictionChecked = 0;
    this.evictionDropped = 0;
    for (let walked = 0; walked < this.evictionBuckets && this.evictionDropped === 0 && this.evictionChecked < EVICTION_RANGE; walked++) {
      this.table.forEachInBucket(bucket++, this.earlyDropVisit);
    }
    this.counters.earlyDropped += this.evictionDropped;
    return this.table.size < this.max;
  }

  private readonly earlyDropVisit = (entry: Conntrack): void => {
    this.evictionChecked++;
    if (this.expired(entry, this.evictionNow)) {
      this.destroy(entry);
    } else if (!(entry.status & Status.ASSURED)) {
      this.destroy(entry);
      this.evictionDropped++;
    }
  };

  /** nf_ct_resolve_clash: UDP and GRE take over an identical confirmed entry; others are dropped. */
  private resolveClash(packet: Packet, entry: Conntrack, existing: Conntrack): Verdict {
    const protocol = entry.tuples[0].protocol;
    const identical = existing.tuples[0].equals(entry.tuples[0]) && existing.tuples[1].equals(entry.tuples[1]);
    if ((protocol === IpProtocol.UDP || protocol === IpProtocol.GRE) && identical) {
      this.counters.clashResolved++;
      packet.conntrack = existing;
      return Verdict.ACCEPT;
    }
    this.counters.insertFailed++;
    this.packetDropped(packet);
    return Verdict.DROP;
  }

  /**
   * nf_conntrack_inet_error: the quoted datagram's tuple, inverted, must name a connection whose
   * destination in that direction is the error's destination; the error is then RELATED to it.
   */
  private trackIcmpError(packet: Packet, l4: L4Packet): Verdict {
    const buf = packet.buf;
    const innerAt = l4.l4Offset + 8;
    if (buf.length < innerAt + 20 || buf[innerAt]! >> 4 !== 4) return this.icmpInvalid(packet);
    const innerHeader = ipv4HeaderLength(buf, innerAt);
    if (innerHeader < 20 || ipv4FragmentOffset(buf, innerAt) !== 0) return this.icmpInvalid(packet);
    const innerProtocol = ipv4Protocol(buf, innerAt);
    const tracker = this.trackerFor(innerProtocol);
    const inner = this.innerScratch;
    inner.src = ipv4Src(buf, innerAt);
    inner.dst = ipv4Dst(buf, innerAt);
    inner.protocol = innerProtocol;
    const innerL4: L4Packet = { buf, l4Offset: innerAt + innerHeader, l4Length: buf.length - innerAt - innerHeader };
    if (innerProtocol === IpProtocol.ICMP && innerL4.l4Length >= 1 && icmpIsError(icmpType(buf, innerL4.l4Offset))) return this.icmpInvalid(packet);
    if (!tracker.readTuple(innerL4, inner)) return this.icmpInvalid(packet);
    const inverted = this.scratch.set(inner.dst, inner.src, innerProtocol, 0, 0);
    if (!tracker.invertTuple(inner, inverted)) return this.icmpInvalid(packet);
    const node = this.findLive(inverted);
    if (!node) return this.icmpInvalid(packet);
    const entry = node.entry;
    if (entry.tuples[node.direction].dst !== ipv4Dst(buf, 0)) return this.icmpInvalid(packet);
    packet.conntrack = entry;
    packet.ctinfo = node.direction === Direction.REPLY ? CtInfo.RELATED_REPLY : CtInfo.RELATED;
    return Verdict.ACCEPT;
  }
}

