/**
 * Expectations (nf_conntrack_expect.c): created by helpers for the connections a master's payload
 * announces, matched against every new connection, one-shot unless PERMANENT, expiring after the
 * helper policy's timeout, and removed with their master. Creation follows the kernel's checks in
 * order: the master must have a helper; an identical expectation of the same master is replaced;
 * one that overlaps another is refused as busy; a full class evicts its oldest; a full table refuses.
 */
import type { Conntrack } from './conntrack-entry.ts';
import { Expectation, ExpectationFlag } from './expectation.ts';
import { hashTupleFields } from './tuple.ts';

/** nf_ct_expect_max's default for the default table size. */
export const DEFAULT_EXPECTATION_MAX = 4096;
/** max_expected 0 in a policy means this (the kernel's NF_CT_EXPECT_MAX_CNT). */
const UNLIMITED_PER_CLASS = 255;

export const ExpectResult = {
  OK: 0,
  /** The master has no helper (-EPERM). */
  NO_HELPER: 1,
  /** Overlaps another master's expectation (-EBUSY). */
  BUSY: 2,
  /** The class is full and nothing could be evicted (-EMFILE). */
  CLASS_FULL: 3,
  /** The global limit was reached ("expectation table full"). */
  TABLE_FULL: 4,
} as const;
export type ExpectResult = (typeof ExpectResult)[keyof typeof ExpectResult];

export type ExpectationEvent = 'NEW' | 'DESTROY';

/** `at`: the conntrack clock when the event happened, so that its timeout prints as it was then. */
export type ExpectationListener = (event: ExpectationEvent, expectation: Expectation, at: number) => void;

export class ExpectationTable {
  private readonly all = new Set<Expectation>();
  /**
   * The same expectations by what they all match exactly (destination address, protocol and
   * port: masks apply to the source only), as the kernel hashes them (nf_ct_expect_dst_hash), so a
   * new connection looks at the few that could match, not at every one; each list in creation order.
   */
  private readonly byTarget = new Map<number, Expectation[]>();
  private insertions = 0;
  private lastId = 0;
  /** Told of NEW and DESTROY, for `conntrack -E expect`. */
  private readonly listeners = new Set<ExpectationListener>();

  constructor(
    private readonly now: () => number,
    public max = DEFAULT_EXPECTATION_MAX,
  ) {}

  subscribe(listener: ExpectationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.all.size;
  }

  list(): Expectation[] {
    return [...this.all];
  }

  add(expectation: Expectation): ExpectResult {
    const master = expectation.master;
    if (!master.helper) return ExpectResult.NO_HELPER;
    // Only an expectation for the same destination can be replaced by this one or overlap it.
    const hash = targetHashOf(expectation);
    const rivals = this.byTarget.get(hash);
    for (const other of rivals ? [...rivals] : []) {
      if (other.master === master && other.expectClass === expectation.expectClass && sameTarget(other, expectation)) {
        this.remove(other);
        continue;
      }
      if (overlaps(other, expectation)) return ExpectResult.BUSY;
    }
    const policy = expectation.helper.policies[expectation.expectClass];
    if (policy) {
      const limit = policy.maxExpected || UNLIMITED_PER_CLASS;
      const sameClass = master.expectations.filter((e) => e.expectClass === expectation.expectClass);
      if (sameClass.length >= limit) {
        // Evict the oldest of the class (evict_oldest_expect); refuse if that did not make room.
        const oldest = sameClass.reduce((a, b) => (a.insertedAt <= b.insertedAt ? a : b));
        this.remove(oldest);
        if (sameClass.length - 1 >= limit) return ExpectResult.CLASS_FULL;
      }
    }
    if (this.all.size >= this.max) return ExpectResult.TABLE_FULL;
    expectation.insertedAt = ++this.insertions;
    expectation.id = ++this.lastId;
    const now = this.now();
    expectation.timeout = now + (policy?.timeout ?? 300) * 1000;
    this.all.add(expectation);
    const bucket = this.byTarget.get(hash);
    if (bucket) bucket.push(expectation);
    else this.byTarget.set(hash, [expectation]);
    master.expectations.push(expectation);
    for (const listener of this.listeners) listener('NEW', expectation, now);
    return ExpectResult.OK;
  }

  remove(expectation: Expectation): void {
    if (!this.all.delete(expectation)) return;
    const hash = targetHashOf(expectation);
    const bucket = this.byTarget.get(hash)!;
    if (bucket.length === 1) this.byTarget.delete(hash);
    else bucket.splice(bucket.indexOf(expectation), 1);
    const list = expectation.master.expectations;
    const at = list.indexOf(expectation);
    if (at >= 0) list.splice(at, 1);
    const now = this.now();
    for (const listener of this.listeners) listener('DESTROY', expectation, now);
  }

  /** All expectations a master created go with it. */
  removeMaster(master: Conntrack): void {
    for (const expectation of [...master.expectations]) this.remove(expectation);
  }

  /**
   * The expectation a new connection with this tuple fulfils (nf_ct_find_expectation): active,
   * not expired, with a confirmed and live master. A one-shot match is removed (without a
   * DESTROY for the child, as the kernel unlinks it).
   */
  take(src: number, dst: number, protocol: number, srcPort: number, dstPort: number): Expectation | null {
    const bucket = this.byTarget.get(targetHash(dst, protocol, dstPort));
    if (!bucket) return null;
    const now = this.now();
    for (let i = 0; i < bucket.length; i++) {
      const expectation = bucket[i]!;
      if (expectation.flags & ExpectationFlag.INACTIVE) continue;
      if (expectation.timeout <= now) continue;
      const want = expectation.tuple;
      if (want.dst !== dst || want.protocol !== protocol || want.dstPort !== dstPort) continue;
      if (((want.src ^ src) & expectation.mask.src) !== 0 || ((want.srcPort ^ srcPort) & expectation.mask.srcPort) !== 0) continue;
      const master = expectation.master;
      if (!master.confirmed || master.dying) continue;
      if (!(expectation.flags & ExpectationFlag.PERMANENT)) this.remove(expectation);
      return expectation;
    }
    return null;
  }

  /** Drops expired expectations; returns how many. */
  expire(): number {
    const now = this.now();
    let expired = 0;
    for (const expectation of [...this.all]) {
      if (expectation.timeout > now) continue;
      this.remove(expectation);
      expired++;
    }
    return expired;
  }

  /** Removes every expectation, as `conntrack -F expect` does. */
  flush(): number {
    const count = this.all.size;
    for (const expectation of [...this.all]) this.remove(expectation);
    return count;
  }
}

function targetHash(dst: number, protocol: number, dstPort: number): number {
  return hashTupleFields(0, dst, protocol, 0, dstPort);
}

function targetHashOf(expectation: Expectation): number {
  return targetHash(expectation.tuple.dst, expectation.tuple.protocol, expectation.tuple.dstPort);
}

function sameTarget(a: Expectation, b: Expectation): boolean {
  return a.tuple.equals(b.tuple) && a.mask.src === b.mask.src && a.mask.srcPort === b.mask.srcPort;
}

/** Two expectations overlap when one tuple could match both under the intersection of their masks. */
function overlaps(a: Expectation, b: Expectation): boolean {
  if (a.tuple.dst !== b.tuple.dst || a.tuple.protocol !== b.tuple.protocol || a.tuple.dstPort !== b.tuple.dstPort) return false;
  const srcMask = a.mask.src & b.mask.src;
  const portMask = a.mask.srcPort & b.mask.srcPort;
  return ((a.tuple.src ^ b.tuple.src) & srcMask) === 0 && ((a.tuple.srcPort ^ b.tuple.srcPort) & portMask) === 0;
}
