/**
 * The confirmed-connection table: one hash table holding both directions' tuples of every entry,
 * chained through the entries' own TupleHashNodes (no allocation per insert or lookup).
 *
 * Expiry has no timer per entry: lookups treat an expired entry as gone, and a collector walks the
 * buckets a bounded number of entries per tick (the kernel's gc_worker idea), so a tick's cost is
 * bounded whatever the size of the table.
 */
import type { Conntrack, TupleHashNode } from './conntrack-entry.ts';
import { hashTuple, hashTupleFields } from './tuple.ts';

export class ConntrackTable {
  private readonly buckets: (TupleHashNode | null)[];
  private readonly mask: number;
  private entries = 0;

  constructor(bucketCount: number) {
    let size = 1;
    while (size < bucketCount) size <<= 1;
    this.buckets = new Array<TupleHashNode | null>(size).fill(null);
    this.mask = size - 1;
  }

  get size(): number {
    return this.entries;
  }

  get bucketCount(): number {
    return this.buckets.length;
  }

  bucketOf(src: number, dst: number, protocol: number, srcPort: number, dstPort: number): number {
    return hashTupleFields(src, dst, protocol, srcPort, dstPort) & this.mask;
  }

  /** The node whose tuple equals the given fields, expired or not. */
  find(src: number, dst: number, protocol: number, srcPort: number, dstPort: number): TupleHashNode | null {
    let node: TupleHashNode | null = this.buckets[this.bucketOf(src, dst, protocol, srcPort, dstPort)]!;
    while (node) {
      const t = node.entry.tuples[node.direction];
      if (t.src === src && t.dst === dst && t.srcPort === srcPort && t.dstPort === dstPort && t.protocol === protocol) return node;
      node = node.next;
    }
    return null;
  }

  insert(entry: Conntrack): void {
    for (const node of entry.hashNodes) {
      const bucket = hashTuple(entry.tuples[node.direction]) & this.mask;
      node.next = this.buckets[bucket]!;
      this.buckets[bucket] = node;
    }
    this.entries++;
    if (entry.master) entry.master.childrenInTable++;
  }

  remove(entry: Conntrack): void {
    for (const node of entry.hashNodes) {
      const bucket = hashTuple(entry.tuples[node.direction]) & this.mask;
      let link = this.buckets[bucket]!;
      if (link === node) {
        this.buckets[bucket] = node.next;
      } else {
        while (link && link.next !== node) link = link.next!;
        if (link) link.next = node.next;
      }
      node.next = null;
    }
    this.entries--;
    if (entry.master) entry.master.childrenInTable--;
  }

  /** Calls `visit` for each entry whose original-direction node is in `bucket`. */
  forEachInBucket(bucket: number, visit: (entry: Conntrack) => void): void {
    let node: TupleHashNode | null = this.buckets[bucket & this.mask]!;
    while (node) {
      const next: TupleHashNode | null = node.next;
      if (node.direction === 0) visit(node.entry);
      node = next;
    }
  }

  /** Every entry, in bucket order; a snapshot, so visiting may delete. */
  all(): Conntrack[] {
    const result: Conntrack[] = [];
    for (let bucket = 0; bucket < this.buckets.length; bucket++) this.forEachInBucket(bucket, (entry) => result.push(entry));
    return result;
  }
}
