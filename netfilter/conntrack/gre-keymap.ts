/**
 * The GRE keymap (nf_ct_gre_keymap in the kernel's nf_conntrack_proto_gre.c).
 *
 * An enhanced GRE (PPTP) header carries only the call ID of the peer it is sent to, which becomes
 * the tuple's destination key. The source key, the sender's own call ID, is not on the wire: the
 * PPTP helper learns both call IDs from the control connection and records, per direction, the
 * GRE tuple it expects (addresses and destination key) together with its source key. The GRE
 * tracker looks the source key up here for every version 1 packet; with no entry it is 0.
 *
 * Entries belong to the control connection that made them (at most one per direction, as the
 * kernel's keymap[dir] slots) and go with it: the helper calls `destroy` when the call ends or
 * the control connection dies.
 */
import type { Conntrack } from './conntrack-entry.ts';
import { hashTupleFields, type Direction, type Tuple } from './tuple.ts';

const PROTOCOL_GRE = 47;

interface KeymapEntry {
  readonly src: number;
  readonly dst: number;
  readonly dstKey: number;
  readonly srcKey: number;
}

function bucketOf(src: number, dst: number, dstKey: number): number {
  return hashTupleFields(src, dst, PROTOCOL_GRE, 0, dstKey);
}

export class GreKeymap {
  /** Buckets in insertion order, so the first match is the oldest, as the kernel's list. */
  private readonly byTuple = new Map<number, KeymapEntry[]>();
  private readonly byMaster = new Map<Conntrack, [KeymapEntry | null, KeymapEntry | null]>();

  /**
   * nf_ct_gre_keymap_add: records `tuple` (src, dst, srcPort = source key, dstPort = destination
   * key) for `master`'s `direction`. True if recorded, or if that slot already holds the same
   * addresses and destination key (a retransmitted control message); false if the slot holds
   * another one.
   */
  add(master: Conntrack, direction: Direction, tuple: Tuple): boolean {
    let slots = this.byMaster.get(master);
    const existing = slots?.[direction] ?? null;
    if (existing !== null) {
      return existing.src === tuple.src && existing.dst === tuple.dst && existing.dstKey === tuple.dstPort;
    }
    const entry: KeymapEntry = { src: tuple.src, dst: tuple.dst, dstKey: tuple.dstPort, srcKey: tuple.srcPort };
    if (slots === undefined) {
      slots = [null, null];
      this.byMaster.set(master, slots);
    }
    slots[direction] = entry;
    const bucket = bucketOf(entry.src, entry.dst, entry.dstKey);
    const list = this.byTuple.get(bucket);
    if (list === undefined) this.byTuple.set(bucket, [entry]);
    else list.push(entry);
    return true;
  }

  /** nf_ct_gre_keymap_destroy: forgets both of `master`'s entries. */
  destroy(master: Conntrack): void {
    const slots = this.byMaster.get(master);
    if (slots === undefined) return;
    this.byMaster.delete(master);
    for (const entry of slots) {
      if (entry === null) continue;
      const bucket = bucketOf(entry.src, entry.dst, entry.dstKey);
      const list = this.byTuple.get(bucket);
      if (list === undefined) continue;
      const at = list.indexOf(entry);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.byTuple.delete(bucket);
    }
  }

  /** gre_keymap_lookup: the source key recorded for these addresses and destination key, else 0. */
  lookup(src: number, dst: number, dstKey: number): number {
    const list = this.byTuple.get(bucketOf(src, dst, dstKey));
    if (list !== undefined) {
      for (const entry of list) {
        if (entry.src === src && entry.dst === dst && entry.dstKey === dstKey) return entry.srcKey;
      }
    }
    return 0;
  }

  /** Entries held, both directions counted. */
  get size(): number {
    let count = 0;
    for (const list of this.byTuple.values()) count += list.length;
    return count;
  }
}
