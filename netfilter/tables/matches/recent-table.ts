/**
 * `-m recent` lists (xt_recent's recent_table): per name, at most RECENT_LIST_MAX addresses, each
 * with its last TTL and a ring of timestamps (jiffies). When the list is full, a new address evicts
 * the least recently seen one, as the kernel's LRU does, so memory stays bounded whatever the
 * traffic. One list serves every rule naming it, across tables and reloads: a list lives as long
 * as a loaded rule names it (the kernel refcounts it the same way).
 *
 * The packet path only reads and writes typed arrays: an address is found through an open
 * addressing hash (linear probing, backward-shift deletion); the LRU order is an index-linked list.
 * An entry slot's timestamp ring is allocated the first time the slot is used, once per slot,
 * never again (as conntrack allocates once per connection).
 */

/** The kernel's ip_list_tot default: addresses one list remembers. */
export const RECENT_LIST_MAX = 100;
/** XT_RECENT_MAX_NSTAMPS less one: the largest --hitcount kernel 6.18 accepts. */
export const RECENT_MAX_HITCOUNT = 65535;
/** Timestamps an entry keeps when no rule of the list asks for a hitcount. */
const DEFAULT_STAMPS = 32;
/** Hash slots: a power of two, a bit over twice the entries, so probe runs stay short. */
const SLOTS = 256;
const EMPTY = -1;
/** Index of the LRU list's head/tail sentinel in the prev/next arrays. */
const LRU = RECENT_LIST_MAX;

/** Timestamps a rule needs: as recent_mt_check sizes a list, roundup_pow_of_two(hitcount), else 32. */
export function stampsFor(hitcount: number): number {
  if (hitcount === 0) return DEFAULT_STAMPS;
  let stamps = 1;
  while (stamps < hitcount) stamps *= 2;
  return stamps;
}

function home(address: number): number {
  return Math.imul(address, 0x9e3779b1) >>> 24;
}

export class RecentList {
  /** A power of two; 0 until a loaded rule sizes the list. */
  private stampCount = 0;
  private readonly addresses = new Uint32Array(RECENT_LIST_MAX);
  private readonly ttls = new Uint8Array(RECENT_LIST_MAX);
  /** Where the next timestamp goes (the kernel's index) and how many are valid (nstamps). */
  private readonly nextStamp = new Uint32Array(RECENT_LIST_MAX);
  private readonly validStamps = new Uint32Array(RECENT_LIST_MAX);
  private readonly stamps: (Float64Array | null)[] = new Array<Float64Array | null>(RECENT_LIST_MAX).fill(null);
  private readonly slots = new Int16Array(SLOTS).fill(EMPTY);
  private readonly prev = new Int16Array(RECENT_LIST_MAX + 1);
  private readonly next = new Int16Array(RECENT_LIST_MAX + 1);
  private readonly free = new Int16Array(RECENT_LIST_MAX);
  private freeCount = 0;
  private count = 0;

  constructor(readonly name: string) {
    this.flush();
  }

  get size(): number {
    return this.count;
  }

  /** Grows the rings to `stamps` for a rule that counts more hits; as the kernel, that empties the list. */
  ensureStamps(stamps: number): void {
    if (stamps <= this.stampCount) return;
    this.stampCount = stamps;
    this.stamps.fill(null);
    this.flush();
  }

  /** recent_entry_lookup: the entry for `address`, or -1; a TTL of 0 on either side matches any. */
  find(address: number, ttl: number): number {
    for (let slot = home(address); ; slot = (slot + 1) & (SLOTS - 1)) {
      const entry = this.slots[slot]!;
      if (entry === EMPTY) return -1;
      if (this.addresses[entry] !== address) continue;
      const seen = this.ttls[entry]!;
      return ttl === 0 || seen === 0 || ttl === seen ? entry : -1;
    }
  }

  /** recent_entry_init: a new entry seen now, evicting the least recently seen one when full. */
  add(address: number, ttl: number, now: number): void {
    if (this.count >= RECENT_LIST_MAX) this.remove(this.next[LRU]!);
    const entry = this.free[--this.freeCount]!;
    let ring = this.stamps[entry];
    if (!ring) ring = this.stamps[entry] = new Float64Array(this.stampCount);
    ring[0] = now;
    this.validStamps[entry] = 1;
    this.nextStamp[entry] = 1;
    this.addresses[entry] = address;
    this.ttls[entry] = ttl;
    let slot = home(address);
    while (this.slots[slot] !== EMPTY) slot = (slot + 1) & (SLOTS - 1);
    this.slots[slot] = entry;
    this.linkTail(entry);
    this.count++;
  }

  /** recent_entry_update: one more timestamp (the oldest overwritten), the TTL seen, most recent in LRU order. */
  touch(entry: number, ttl: number, now: number): void {
    const index = this.nextStamp[entry]! & (this.stampCount - 1);
    this.stamps[entry]![index] = now;
    this.nextStamp[entry] = index + 1;
    if (index + 1 > this.validStamps[entry]!) this.validStamps[entry] = index + 1;
    this.ttls[entry] = ttl;
    this.unlink(entry);
    this.linkTail(entry);
  }

  /** The --rcheck/--update test: `hitcount` timestamps (any one, for 0) not before `since` (-Infinity without --seconds). */
  hits(entry: number, since: number, hitcount: number): boolean {
    const ring = this.stamps[entry]!;
    let hits = 0;
    for (let i = 0, n = this.validStamps[entry]!; i < n; i++) {
      if (since > ring[i]!) continue;
      if (hitcount === 0 || ++hits >= hitcount) return true;
    }
    return false;
  }

  /** --reap (recent_entry_reap): the least recently seen entry goes if its last timestamp is before `since`, unless it is `keep`. */
  reap(since: number, keep: number): void {
    const oldest = this.next[LRU]!;
    if (oldest === LRU || oldest === keep) return;
    const last = this.stamps[oldest]![this.nextStamp[oldest]! - 1]!;
    if (since > last) this.remove(oldest);
  }

  remove(entry: number): void {
    let hole = home(this.addresses[entry]!);
    while (this.slots[hole] !== entry) hole = (hole + 1) & (SLOTS - 1);
    // Backward shift: pull later members of the probe run into the hole unless their home lies after it.
    for (let slot = (hole + 1) & (SLOTS - 1); this.slots[slot] !== EMPTY; slot = (slot + 1) & (SLOTS - 1)) {
      const wanted = home(this.addresses[this.slots[slot]!]!);
      const between = hole <= slot ? hole < wanted && wanted <= slot : hole < wanted || wanted <= slot;
      if (between) continue;
      this.slots[hole] = this.slots[slot]!;
      hole = slot;
    }
    this.slots[hole] = EMPTY;
    this.unlink(entry);
    this.free[this.freeCount++] = entry;
    this.count--;
  }

  private flush(): void {
    this.slots.fill(EMPTY);
    this.prev[LRU] = LRU;
    this.next[LRU] = LRU;
    for (let i = 0; i < RECENT_LIST_MAX; i++) this.free[i] = RECENT_LIST_MAX - 1 - i;
    this.freeCount = RECENT_LIST_MAX;
    this.count = 0;
  }

  private linkTail(entry: number): void {
    const last = this.prev[LRU]!;
    this.next[last] = entry;
    this.prev[entry] = last;
    this.next[entry] = LRU;
    this.prev[LRU] = entry;
  }

  private unlink(entry: number): void {
    const before = this.prev[entry]!;
    const after = this.next[entry]!;
    this.next[before] = after;
    this.prev[after] = before;
  }
}

/** A rule's use of a list: which, and how many timestamps it needs kept. */
export interface RecentUse {
  readonly list: RecentList;
  readonly stamps: number;
}

/**
 * The router's lists by name. A text being parsed gets the registered list of a name or a new one
 * that only becomes registered when that text is applied, so a text that fails (or is only
 * checked) changes no list; `retain` makes the registry exactly the lists the loaded rules use.
 */
export class RecentTables {
  private registered = new Map<string, RecentList>();
  private pending = new Map<string, RecentList>();

  /** Starts a parse: lists the previous parse made and nobody applied are forgotten. */
  beginParse(): void {
    this.pending = new Map();
  }

  list(name: string): RecentList {
    const known = this.registered.get(name) ?? this.pending.get(name);
    if (known) return known;
    const made = new RecentList(name);
    this.pending.set(name, made);
    return made;
  }

  /** After an apply: the lists `uses` name, each with rings for the largest hitcount of its rules. */
  retain(uses: Iterable<RecentUse>): void {
    const next = new Map<string, RecentList>();
    const stamps = new Map<RecentList, number>();
    for (const use of uses) {
      next.set(use.list.name, use.list);
      stamps.set(use.list, Math.max(stamps.get(use.list) ?? 0, use.stamps));
    }
    for (const [list, count] of stamps) list.ensureStamps(count);
    this.registered = next;
  }

  /** The list of that name the loaded rules use, or null. */
  get(name: string): RecentList | null {
    return this.registered.get(name) ?? null;
  }
}
