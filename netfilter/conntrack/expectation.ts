/**
 * An expectation (struct nf_conntrack_expect): a connection a helper predicts from a master's
 * payload, matched by tuple under a mask, so that it is RELATED when it arrives.
 */
import type { ConntrackHelper } from '../helpers/helper.ts';
import type { Conntrack } from './conntrack-entry.ts';
import { Tuple } from './tuple.ts';

export const ExpectationFlag = {
  /** Stays after a match (NF_CT_EXPECT_PERMANENT). */
  PERMANENT: 1 << 0,
  /** Not matched until activated (NF_CT_EXPECT_INACTIVE). */
  INACTIVE: 1 << 1,
  /** Created from userspace (NF_CT_EXPECT_USERSPACE). */
  USERSPACE: 1 << 2,
} as const;

/** Tuple fields that must match; a 0 mask word is a wildcard. */
export interface TupleMask {
  src: number;
  srcPort: number;
  /** The destination address, protocol and destination port always match exactly. */
}

export class Expectation {
  /** Given by the table when the expectation is added; unique within its router. */
  id = 0;
  /** Absolute expiry on the conntrack clock. */
  timeout = 0;
  /** Insertion order within the master, for evicting the oldest of a class. */
  insertedAt = 0;
  /** For NAT helpers: the direction of the master the expected connection goes (exp->dir). */
  natDirection: 0 | 1 = 0;
  /** For NAT helpers: the port announced in the payload before rewriting (exp->saved_proto). */
  savedPort = 0;

  constructor(
    readonly master: Conntrack,
    readonly tuple: Tuple,
    readonly mask: TupleMask,
    /** Index into the helper's expectation policies (the kernel's class). */
    readonly expectClass: number,
    /** The helper that created it, for policies and for `helper=` in listings. */
    readonly helper: ConntrackHelper,
    public flags = 0,
    /** A helper for the expected connection (ftp/pptp children get none). */
    readonly childHelper: ConntrackHelper | null = null,
    /** Runs when a connection matches, before it is confirmed (NAT uses it to follow the master). */
    readonly onMatch: ((child: Conntrack, expectation: Expectation) => void) | null = null,
  ) {}

  /** Whether `tuple` is what this expectation waits for (nf_ct_tuple_mask_cmp). */
  matches(tuple: Tuple): boolean {
    const mask = this.mask;
    const want = this.tuple;
    return (
      tuple.dst === want.dst &&
      tuple.protocol === want.protocol &&
      tuple.dstPort === want.dstPort &&
      ((tuple.src ^ want.src) & mask.src) === 0 &&
      ((tuple.srcPort ^ want.srcPort) & mask.srcPort) === 0
    );
  }
}
