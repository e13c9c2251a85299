/**
 * One running capture (a `vrouter capture`, or a `capture:` file): what the router and the lab
 * call with each packet they see. It owns a pcapng writer over a sink, the interfaces registered
 * with it, the filter, the `--count` limit and the time source.
 *
 * Per packet (`packet`/`packetAt`): an ended check, an interface lookup, the filter, and one Enhanced
 * Packet Block encoded straight into the sink's buffer. No exception, and no allocation for a
 * packet that fills its buffer (`packet`); a packet at an offset (`packetAt`) costs one small
 * view to copy from (TypedArray.set has no source range), and a stream sink one view per block.
 *
 *   - Interfaces: `addInterface(name, description)` registers one (`home:wan0`) and returns the id
 *     the caller passes with its packets. It writes the interface's IDB at once (IDBs may follow
 *     packets of other interfaces), unless `-i` selectors leave it out: then its packets are not
 *     written. A selector is a full name (`home:wan0`) or an interface name (`wan0`, on any router).
 *   - Filter: each copy of a packet is matched on its own bytes, as tcpdump does on each interface,
 *     except that a copy whose packet id matched recently is written too: a packet the filter
 *     chose on the way in is followed out after NAT rewrote its addresses (the reply to it is only
 *     followed from where it first matches).
 *   - `--count N`: after N packets are written the session ends itself (reason 'count').
 *   - Lost packets: when the sink's reader is behind, packets are not written; the next block of
 *     the same interface says how many with epb_dropcount, and `dropped` counts them.
 *   - End: `close()` (reason 'stopped'), the count, or the sink ending (its reader went away:
 *     'closed'; a write failed: 'error'). `done` resolves once the sink has let go of everything;
 *     `onEnd` is called then, once.
 */
import type { CaptureFilter, PacketPredicate } from './capture-filter.ts';
import { systemCaptureClock, TimestampHalves, type CaptureClock } from './capture-clock.ts';
import type { CaptureSink } from './capture-sink.ts';
import { PcapngWriter, USER_APPLICATION } from './pcapng-writer.ts';
import type { CaptureDirection } from './pcapng.ts';

export { CaptureDirection } from './pcapng.ts';

export type CaptureEndReason = 'count' | 'stopped' | 'closed' | 'error';

export interface CaptureEnd {
  reason: CaptureEndReason;
  /** For 'error': what failed. */
  message: string;
}

export interface CaptureSessionOptions {
  sink: CaptureSink;
  /** Default: the system clock. */
  clock?: CaptureClock;
  /** Default: every packet. */
  filter?: CaptureFilter | null;
  /** End after this many packets are written; 0 or absent: no limit. */
  count?: number;
  /** `-i` selectors; empty or absent: every interface. */
  interfaces?: readonly string[];
  /** Called once when the session has ended and its sink is closed. */
  onEnd?: (end: CaptureEnd) => void;
  /** The SHB's shb_userappl. */
  userApplication?: string;
}

/** Packet ids whose copies are followed after a match: a few walks' worth. */
const FOLLOWED_IDS = 32;
const NOT_INTERFACE = -1;

export class CaptureSession {
  /** Packets offered on selected interfaces. */
  seen = 0;
  /** Packets written. */
  written = 0;
  /** Packets matched but not written because the sink's reader was behind. */
  dropped = 0;
  /** Resolves when the session has ended and its sink has let go. */
  readonly done: Promise<CaptureEnd>;

  private readonly writer: PcapngWriter;
  private readonly sink: CaptureSink;
  private readonly clock: CaptureClock;
  private readonly time: TimestampHalves;
  private readonly matches: PacketPredicate | null;
  private readonly count: number;
  private readonly selectors: readonly string[];
  private readonly usedSelectors = new Set<string>();
  private readonly onEnd: ((end: CaptureEnd) => void) | undefined;
  /** Per registered interface: its interface id in the file, or NOT_INTERFACE when not selected. */
  private readonly fileIds: number[] = [];
  private readonly names: string[] = [];
  /** Per file interface: packets lost since its last block. */
  private readonly lost: number[] = [];
  private readonly followed = new Float64Array(FOLLOWED_IDS).fill(-1);
  private followedNext = 0;
  private endState: CaptureEnd | null = null;
  private resolveDone!: (end: CaptureEnd) => void;

  constructor(options: CaptureSessionOptions) {
    this.sink = options.sink;
    this.clock = options.clock ?? systemCaptureClock();
    this.time = new TimestampHalves(this.clock.originNs);
    this.matches = options.filter && options.filter.text !== '' ? options.filter.matches : null;
    this.count = options.count ?? 0;
    if (!Number.isSafeInteger(this.count) || this.count < 0) {
      throw new RangeError(`capture count ${this.count} is not a whole number >= 0`);
    }
    this.selectors = options.interfaces ?? [];
    this.onEnd = options.onEnd;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (this.sink.ended) this.end({ reason: 'closed', message: '' });
    this.sink.onEnd((reason, message) => {
      // A sink that ends by itself: its reader went away, or a write failed (the headers' too).
      if (reason !== 'stopped') this.end({ reason, message });
    });
    this.writer = new PcapngWriter(this.sink, options.userApplication ?? USER_APPLICATION);
  }

  get ended(): boolean {
    return this.endState !== null;
  }

  /** How the session ended, or null while it runs. */
  get endedBy(): CaptureEnd | null {
    return this.endState;
  }

  /**
   * Registers `name` (`router:interface`, `host:interface`) and returns the id to pass with its
   * packets. The same name again returns the same id.
   */
  addInterface(name: string, description = ''): number {
    const known = this.names.indexOf(name);
    if (known >= 0) return known;
    const id = this.names.length;
    this.names.push(name);
    if (this.selected(name) && !this.ended) {
      this.fileIds.push(this.writer.addInterface(name, description));
      this.lost.push(0);
    } else {
      this.fileIds.push(NOT_INTERFACE);
    }
    return id;
  }

  /** The id `name` was registered with, or -1. */
  interfaceId(name: string): number {
    return this.names.indexOf(name);
  }

  /** The `-i` selectors that no registered interface matched (for "no such interface" errors). */
  unmatchedSelectors(): string[] {
    return this.selectors.filter((selector) => !this.usedSelectors.has(selector));
  }

  /** A whole datagram in `buf`. See packetAt. */
  packet(interfaceId: number, direction: CaptureDirection, packetId: number, buf: Uint8Array, comment?: string): void {
    this.packetAt(interfaceId, direction, packetId, buf, 0, buf.length, comment);
  }

  /**
   * One copy of a packet: `length` bytes at `offset`, seen on the interface registered as
   * `interfaceId`, coming in or going out, with the packet id shared by every copy of the same
   * packet (a safe integer), and for a dropped packet a comment naming what dropped it. The bytes
   * are copied before this returns.
   */
  packetAt(
    interfaceId: number,
    direction: CaptureDirection,
    packetId: number,
    buf: Uint8Array,
    offset: number,
    length: number,
    comment?: string,
  ): void {
    if (this.endState !== null) return;
    const fileId = this.fileIds[interfaceId];
    if (fileId === undefined || fileId === NOT_INTERFACE) return;
    this.seen++;
    if (this.matches !== null) {
      if (this.matches(buf, offset, length)) this.follow(packetId);
      else if (!this.isFollowed(packetId)) return;
    }
    this.time.set(this.clock.elapsedNs());
    const lost = this.lost[fileId]!;
    const time = this.time;
    if (!this.writer.writePacket(fileId, direction, packetId, time.high, time.low, buf, offset, length, comment, lost)) {
      // An ended sink has told its listener already; otherwise the reader is behind.
      if (!this.sink.ended) {
        this.lost[fileId] = lost + 1;
        this.dropped++;
      }
      return;
    }
    this.lost[fileId] = 0;
    this.written++;
    if (this.written === this.count) this.end({ reason: 'count', message: '' });
  }

  /** Stops the capture: flushes and closes the sink. Resolves with how it ended. */
  close(): Promise<CaptureEnd> {
    this.end({ reason: 'stopped', message: '' });
    return this.done;
  }

  private end(end: CaptureEnd): void {
    if (this.endState !== null) return;
    this.endState = end;
    void this.sink.close().then(() => {
      this.resolveDone(end);
      this.onEnd?.(end);
    });
  }

  private selected(name: string): boolean {
    if (this.selectors.length === 0) return true;
    const colon = name.indexOf(':');
    const interfacePart = colon >= 0 ? name.slice(colon + 1) : name;
    let selected = false;
    for (const selector of this.selectors) {
      if (selector === name || selector === interfacePart) {
        this.usedSelectors.add(selector);
        selected = true;
      }
    }
    return selected;
  }

  private follow(packetId: number): void {
    if (this.isFollowed(packetId)) return;
    this.followed[this.followedNext] = packetId;
    this.followedNext = (this.followedNext + 1) % FOLLOWED_IDS;
  }

  private isFollowed(packetId: number): boolean {
    const followed = this.followed;
    for (let i = 0; i < FOLLOWED_IDS; i++) if (followed[i] === packetId) return true;
    return false;
  }
}
