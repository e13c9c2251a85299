/**
 * A tracked connection (struct nf_conn): both tuples, status bits, the timeout, protocol state,
 * and what helpers, expectations and NAT hang on it. Entries are allocated once per connection;
 * per-packet work only reads and updates fields.
 */
import type { ConntrackHelper } from '../helpers/helper.ts';
import type { Expectation } from './expectation.ts';
import type { L4Tracker } from './l4-tracker.ts';
import type { SeqAdjustWay } from './seqadj.ts';
import { Status } from './status.ts';
import { Direction, Tuple } from './tuple.ts';

/** One of the entry's two places in the hash table (nf_conntrack_tuple_hash). */
export interface TupleHashNode {
  readonly entry: Conntrack;
  readonly direction: Direction;
  next: TupleHashNode | null;
}

export class Conntrack {
  /** [ORIGINAL, REPLY]; NAT rewrites the reply tuple before confirmation. */
  readonly tuples: [Tuple, Tuple];
  status = 0;
  /** Absolute expiry time in ms on the conntrack clock. */
  timeout = 0;
  /** When the first packet was tracked; confirmation counts the timeout from then on. */
  createdAt = 0;
  /** When the latest packet was tracked: its UPDATE event is reported as of then. */
  lastPacketAt = 0;
  /** Protocol state owned by the entry's tracker (TCP: its state index); trackers may keep more in l4Data. */
  l4State = 0;
  l4Data: unknown = null;
  mark = 0;
  helper: ConntrackHelper | null = null;
  /** The helper's per-connection state (e.g. FTP's newline sequence numbers). */
  helperData: unknown = null;
  /** Set on a connection created from an expectation. */
  master: Conntrack | null = null;
  /** Related connections in the table whose master this is: each holds a reference (`use=`). */
  childrenInTable = 0;
  /** Expectations this connection created as a master; removed with it. */
  readonly expectations: Expectation[] = [];
  readonly hashNodes: [TupleHashNode, TupleHashNode];
  /** CtEvent bits gathered while a packet is processed; delivered (and cleared) by the core. */
  events = 0;
  /** Per direction, set once a helper changed a TCP payload's length (see seqadj.ts). */
  seqAdjust: [SeqAdjustWay, SeqAdjustWay] | null = null;

  constructor(
    readonly tracker: L4Tracker,
    original: Tuple,
    reply: Tuple,
    /** Unique within the router that tracks it (conntrack -o id); 0 for entries made outside a core. */
    readonly id = 0,
  ) {
    this.tuples = [original, reply];
    this.hashNodes = [
      { entry: this, direction: Direction.ORIGINAL, next: null },
      { entry: this, direction: Direction.REPLY, next: null },
    ];
  }

  hasStatus(bits: number): boolean {
    return (this.status & bits) === bits;
  }

  /** The kernel's reference count as `conntrack -L` prints it (`use=`): the table's, and each child's. */
  get references(): number {
    return 1 + this.childrenInTable;
  }

  get confirmed(): boolean {
    return (this.status & Status.CONFIRMED) !== 0;
  }

  get dying(): boolean {
    return (this.status & Status.DYING) !== 0;
  }
}

// What a packet's conntrack slot holds (the core carries it opaquely: see router/core/packet.ts).
declare module '../../router/core/packet.ts' {
  interface PacketConntrack extends Conntrack {}
}
