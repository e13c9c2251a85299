/**
 * The kernel's bysource hash (nf_nat_bysource): for each source address, protocol and port that
 * was SNATed, the latest connection from it, so that the next connection from the same source gets
 * the same mapping (find_appropriate_src). Keyed by a number hashed from the three fields, with the
 * few entries that share a hash in a short array, so a new connection builds no string key.
 */
import type { Conntrack } from '../netfilter/conntrack/conntrack-entry.ts';
import { hashTupleFields } from '../netfilter/conntrack/tuple.ts';

export class SourceMappings {
  private readonly buckets = new Map<number, Conntrack[]>();

  /** The latest connection SNATed from this source, or null. */
  find(src: number, protocol: number, srcPort: number): Conntrack | null {
    const bucket = this.buckets.get(sourceHash(src, protocol, srcPort));
    if (!bucket) return null;
    for (let i = 0; i < bucket.length; i++) {
      if (sameSource(bucket[i]!, src, protocol, srcPort)) return bucket[i]!;
    }
    return null;
  }

  /** Records `entry` as the latest connection from its original source. */
  set(entry: Conntrack): void {
    const { src, protocol, srcPort } = entry.tuples[0];
    const hash = sourceHash(src, protocol, srcPort);
    const bucket = this.buckets.get(hash);
    if (!bucket) {
      this.buckets.set(hash, [entry]);
      return;
    }
    for (let i = 0; i < bucket.length; i++) {
      if (sameSource(bucket[i]!, src, protocol, srcPort)) {
        bucket[i] = entry;
        return;
      }
    }
    bucket.push(entry);
  }

  /** Forgets `entry` if it is still its source's latest connection. */
  delete(entry: Conntrack): void {
    const { src, protocol, srcPort } = entry.tuples[0];
    const hash = sourceHash(src, protocol, srcPort);
    const bucket = this.buckets.get(hash);
    if (!bucket) return;
    const at = bucket.indexOf(entry);
    if (at < 0) return;
    if (bucket.length === 1) this.buckets.delete(hash);
    else bucket.splice(at, 1);
  }
}

function sourceHash(src: number, protocol: number, srcPort: number): number {
  return hashTupleFields(src, 0, protocol, srcPort, 0);
}

function sameSource(entry: Conntrack, src: number, protocol: number, srcPort: number): boolean {
  const original = entry.tuples[0];
  return original.src === src && original.protocol === protocol && original.srcPort === srcPort;
}
