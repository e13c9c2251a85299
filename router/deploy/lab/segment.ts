/**
 * A simulated link between router interfaces and hosts of a lab (a bridge, in the kernel's
 * version of the lab). Every member can reach every other directly:
 *
 *   - a router sends with its route's next hop: the member owning that address gets the packet;
 *   - a host's TUN is L3 (no ARP), so for a host the segment delivers by destination: to the member
 *     owning that address, else to the host's gateway;
 *   - a next hop nobody owns on the sender's own subnet gets NO_NEIGHBOUR, as ARP would fail;
 *   - a segment with exactly two members is otherwise point to point: a next hop beyond the
 *     sender's subnet goes to the other end (the one-router config's TUN links, where the peer
 *     namespace may route further itself);
 *   - traffic between two hosts goes host to host, never through a router.
 *
 * Delivery into a router from another router is queued and drained after the current call stack
 * (a microtask), so one router's hook walk never runs inside another's. Delivery into a host is a
 * TUN write, and from a host into a router a direct call: neither can re-enter a walk. With
 * impairments every packet is copied and leaves when the Impairment plan says.
 */
import { networkOf } from '../../core/addresses.ts';
import { NO_NEIGHBOUR, PacketFlag, type Device, type Receiver } from '../../core/device.ts';
import { ALL_OFFLOADS, GSO_KINDS, SoftwareGso, finishPartialChecksum } from '../../path/software-gso.ts';
import { Impairment, NO_IMPAIRMENT, impairs, type ImpairmentSettings } from './impairment.ts';
import { Scheduler } from './scheduler.ts';

export const MemberKind = { ROUTER: 0, HOST: 1 } as const;
export type MemberKind = (typeof MemberKind)[keyof typeof MemberKind];

export interface SegmentCounters {
  packets: number;
  bytes: number;
  /** No member owns the next hop (the kernel would fail ARP). */
  noNeighbour: number;
  /** Not an IPv4 datagram a host's destination can be read from. */
  malformed: number;
}

export class SegmentMember {
  /** Where delivered packets go (the router's receive, or a write into the host's TUN). */
  receiver: Receiver | null = null;
  /** A router interface's prefix length, to tell its connected subnet; 0 for hosts. */
  prefixLength = 0;
  /** Its device went away (the host's namespace was deleted): nothing is delivered to it. */
  gone = false;
  /** The PacketFlag offloads delivery to it may carry: a router takes all, a host what its TUN takes. */
  offloads: number = ALL_OFFLOADS;

  constructor(
    readonly segment: Segment,
    /** `router:interface` or `host:interface`, as captures and errors name it. */
    readonly name: string,
    readonly kind: MemberKind,
    readonly address: number,
    /** A host's default gateway on this segment (0: none); unused for routers. */
    readonly gateway: number,
  ) {}
}

/**
 * The Device a router interface is attached through. It takes every offload: the segment
 * finishes checksums and cuts super-packets itself where a member or an impairment needs it.
 */
export class SegmentPort implements Device {
  readonly offloads = ALL_OFFLOADS;

  constructor(readonly member: SegmentMember) {}

  transmit(buf: Uint8Array, offset: number, length: number, nextHop: number, flags: number = PacketFlag.NONE, gsoSize = 0): number {
    return this.member.segment.send(this.member, buf, offset, length, nextHop, flags, gsoSize);
  }

  setReceiver(receiver: Receiver | null): void {
    this.member.receiver = receiver;
  }
}

/** What watches a segment's host ports while a capture runs (null otherwise): each datagram a host sends, and each one delivered to it. */
export interface HostPortObserver {
  hostSent(member: SegmentMember, buf: Uint8Array, offset: number, length: number): void;
  hostReceived(member: SegmentMember, buf: Uint8Array, offset: number, length: number): void;
}

export interface SegmentOptions {
  impairment?: Partial<ImpairmentSettings>;
  /** Seeded in labs, so that impairments repeat. */
  random?: () => number;
  scheduler?: Scheduler;
  /** A receiver threw (a bug on the packet path): the packet is lost, the segment goes on. */
  onFault?: (error: unknown) => void;
}

interface Queued {
  member: SegmentMember;
  buf: Buffer;
  flags: number;
  gsoSize: number;
}

export class Segment {
  readonly members: SegmentMember[] = [];
  readonly counters: SegmentCounters = { packets: 0, bytes: 0, noNeighbour: 0, malformed: 0 };
  /** A capture looking at the host ports; null while nobody looks. */
  observer: HostPortObserver | null = null;
  readonly impairment: Impairment;
  private readonly owners = new Map<number, SegmentMember>();
  private readonly queue: Queued[] = [];
  private draining = false;
  private impaired: boolean;
  private readonly departures = new Float64Array(2);
  /** Cuts super-packets for impairments (which work per packet) and for members that cannot take them. */
  private readonly softwareGso = new SoftwareGso();

  private readonly scheduler: Scheduler;
  private readonly onFault: (error: unknown) => void;

  constructor(
    readonly name: string,
    options: SegmentOptions = {},
  ) {
    const settings = { ...NO_IMPAIRMENT, ...options.impairment };
    this.impairment = new Impairment(settings, options.random ?? Math.random);
    this.impaired = impairs(settings);
    this.scheduler = options.scheduler ?? new Scheduler();
    this.onFault = options.onFault ?? ((error) => process.stderr.write(`vrouter: segment ${name}: ${(error as Error).stack ?? String(error)}\n`));
  }

  /** Changes impairments at runtime (`vrouter link`); packets already waiting keep their times. */
  configure(settings: Partial<ImpairmentSettings>): ImpairmentSettings {
    Object.assign(this.impairment.settings, settings);
    this.impaired = impairs(this.impairment.settings);
    return { ...this.impairment.settings };
  }

  /** A router interface with `address`; attach the returned port with `router.attach`. */
  attachRouter(name: string, address: number, prefixLength = 32): SegmentPort {
    const member = this.addMember(name, MemberKind.ROUTER, address, 0);
    member.prefixLength = prefixLength;
    return new SegmentPort(member);
  }

  /**
   * A host interface whose packets come from `device` (its TUN): what the host sends enters the
   * segment, what the segment delivers to it is written to the device.
   */
  attachHost(name: string, address: number, gateway: number, device: Device): SegmentMember {
    const member = this.addMember(name, MemberKind.HOST, address, gateway);
    member.offloads = device.offloads ?? 0;
    member.receiver = (buf, flags, gsoSize) => {
      if (this.observer !== null) this.observer.hostReceived(member, buf, 0, buf.length);
      device.transmit(buf, 0, buf.length, 0, flags, gsoSize);
    };
    device.setReceiver((buf, flags, gsoSize) => {
      if (this.observer !== null) this.observer.hostSent(member, buf, 0, buf.length);
      this.send(member, buf, 0, buf.length, this.hostNextHop(member, buf), flags, gsoSize);
    });
    return member;
  }

  /**
   * `member`'s device is gone: nothing more is delivered to it. Returns the router left alone on
   * the segment by it (no one else can be reached through that interface any more), if any.
   */
  memberGone(member: SegmentMember): SegmentMember | null {
    member.gone = true;
    member.receiver = null;
    const live = this.members.filter((other) => !other.gone);
    return live.length === 1 && live[0]!.kind === MemberKind.ROUTER ? live[0]! : null;
  }

  ownerOf(address: number): SegmentMember | null {
    return this.owners.get(address) ?? null;
  }

  /**
   * Sends from `from` towards `nextHop`, with its PacketFlag offloads (and a super-packet's
   * segment size); returns the bytes taken (the link takes what it drops).
   */
  send(from: SegmentMember, buf: Uint8Array, offset: number, length: number, nextHop: number, flags: number = PacketFlag.NONE, gsoSize = 0): number {
    this.counters.packets++;
    this.counters.bytes += length;
    const to = this.target(from, nextHop);
    if (!to) {
      this.counters.noNeighbour++;
      return NO_NEIGHBOUR;
    }
    if ((flags & GSO_KINDS) !== 0 && (this.impaired || (flags & GSO_KINDS & ~to.offloads) !== 0)) {
      this.sendSegments(from, to, buf, offset, length, flags, gsoSize);
      return length;
    }
    if ((flags & PacketFlag.CHECKSUM_PARTIAL) !== 0 && (to.offloads & PacketFlag.CHECKSUM_PARTIAL) === 0) {
      finishPartialChecksum(buf, offset, length);
      flags = PacketFlag.CHECKSUM_VERIFIED;
    }
    this.pass(from, to, buf, offset, length, flags, gsoSize);
    return length;
  }

  /** A datagram (or whole super-packet) onto the wire: now, or as the impairments say. */
  private pass(from: SegmentMember, to: SegmentMember, buf: Uint8Array, offset: number, length: number, flags: number, gsoSize: number): void {
    if (!this.impaired) return this.deliverNow(from, to, buf, offset, length, flags, gsoSize);
    const now = this.scheduler.clock.now();
    const copies = this.impairment.plan(length, now, this.departures);
    for (let i = 0; i < copies; i++) {
      const copy = Buffer.from(buf.subarray(offset, offset + length));
      const at = this.departures[i]!;
      this.scheduler.at(at, () => {
        this.impairment.delivered();
        this.deliverQueued(to, copy, flags, gsoSize);
      });
    }
  }

  /** A super-packet that cannot cross whole: its segments, each one a datagram of the link's. */
  private sendSegments(from: SegmentMember, to: SegmentMember, buf: Uint8Array, offset: number, length: number, flags: number, gsoSize: number): void {
    const gso = this.softwareGso;
    const count = gso.begin(buf, offset, length, flags, gsoSize);
    if (count <= 0) {
      this.counters.malformed++;
      return;
    }
    const partial = (to.offloads & PacketFlag.CHECKSUM_PARTIAL) !== 0;
    const segmentFlags = partial ? PacketFlag.CHECKSUM_PARTIAL : PacketFlag.CHECKSUM_VERIFIED;
    for (let i = 0; i < count; i++) this.pass(from, to, gso.buffer, 0, gso.segment(i, partial), segmentFlags, 0);
  }

  /** Drops what waits (the lab is going down). */
  close(): void {
    this.queue.length = 0;
    this.scheduler.clear();
  }

  private addMember(name: string, kind: MemberKind, address: number, gateway: number): SegmentMember {
    if (this.owners.has(address)) throw new Error(`segment ${this.name}: address of ${name} is already used by ${this.owners.get(address)!.name}`);
    const member = new SegmentMember(this, name, kind, address, gateway);
    this.members.push(member);
    this.owners.set(address, member);
    return member;
  }

  private target(from: SegmentMember, nextHop: number): SegmentMember | null {
    const owner = this.owners.get(nextHop);
    if (owner) return owner === from ? null : owner;
    const members = this.members;
    if (members.length !== 2 || onSubnetOf(from, nextHop)) return null;
    return members[0] === from ? members[1]! : members[0]!;
  }

  /** Where a host's packet goes: the member owning its destination, else the host's gateway. */
  private hostNextHop(host: SegmentMember, buf: Buffer): number {
    if (buf.length < 20 || buf[0]! >> 4 !== 4) {
      this.counters.malformed++;
      return 0;
    }
    const destination = buf.readUInt32BE(16);
    // What a host sends to itself out of its TUN (a raw injection) is meant for the link: its gateway.
    const owner = this.owners.get(destination);
    return owner && owner !== host ? destination : host.gateway;
  }

  private deliverNow(from: SegmentMember, to: SegmentMember, buf: Uint8Array, offset: number, length: number, flags: number, gsoSize: number): void {
    const receiver = to.receiver;
    if (!receiver) return;
    if (from.kind === MemberKind.ROUTER && to.kind === MemberKind.ROUTER) {
      // Not inside the sender's hook walk: after it, in order.
      this.queue.push({ member: to, buf: Buffer.from(buf.subarray(offset, offset + length)), flags, gsoSize });
      if (!this.draining) {
        this.draining = true;
        queueMicrotask(() => this.drain());
      }
      return;
    }
    receiver(offset === 0 && length === buf.length && Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset + offset, length), flags, gsoSize);
  }

  /** Delivery outside any caller's stack: a fault must end here, not in the event loop. */
  private deliverQueued(member: SegmentMember, buf: Buffer, flags: number, gsoSize: number): void {
    try {
      member.receiver?.(buf, flags, gsoSize);
    } catch (error) {
      this.onFault(error);
    }
  }

  private drain(): void {
    // Packets queued while draining (a reply, the next hop) are delivered in the same drain.
    for (let i = 0; i < this.queue.length; i++) {
      const { member, buf, flags, gsoSize } = this.queue[i]!;
      this.deliverQueued(member, buf, flags, gsoSize);
    }
    this.queue.length = 0;
    this.draining = false;
  }
}

/** Whether `address` is on the connected subnet of a router member (hosts have none: 0). */
function onSubnetOf(member: SegmentMember, address: number): boolean {
  const prefixLength = member.prefixLength;
  return prefixLength !== 0 && networkOf(member.address, prefixLength) === networkOf(address, prefixLength);
}
