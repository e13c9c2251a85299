/**
 * Connects capture sessions to a running lab: registers every router interface (`home:wan0`) and
 * host port (`laptop:eth0`) with each session, and puts observers on the routers and segments
 * while at least one session runs, none otherwise (capturing costs nothing when off).
 *
 * Packet ids: a router numbers the packets it sees; the hub makes them unique in the file by the
 * router's place in the lab (ordinal * 2^32 + id), so the copy that came in and the copy that
 * went out share one id, and two routers never share one. Host ports have no router packet: each
 * copy a host sends or receives gets an id of its own. A dropped packet is written once more, as
 * it was when dropped, on the interface it came in by, with a comment naming what dropped it.
 */
import type { RouterInterface } from '../../core/interfaces.ts';
import type { PacketObserver } from '../../core/observer.ts';
import { dropReasonName, type DropReason } from '../../core/stats.ts';
import type { Router } from '../../path/router.ts';
import { MemberKind, type HostPortObserver, type Segment, type SegmentMember } from '../lab/segment.ts';
import { CaptureDirection, type CaptureSession } from './capture-session.ts';

export interface CaptureRouter {
  name: string;
  router: Router;
  /** Per interface (by index): what its IDB description says (address, segment). */
  descriptions: readonly string[];
}

const ROUTER_ID_SPAN = 2 ** 32;

interface Attached {
  session: CaptureSession;
  /** Per router ordinal, per interface index: the session's interface id, or -1 when not captured. */
  routerPorts: Int32Array[];
  hostPorts: Map<SegmentMember, number>;
}

export class CaptureHub implements HostPortObserver {
  private readonly attached: Attached[] = [];
  private readonly observers: PacketObserver[];
  private hostPacketIds = 0;

  constructor(
    private readonly routers: readonly CaptureRouter[],
    private readonly segments: readonly Segment[],
  ) {
    this.observers = routers.map((_, ordinal) => this.routerObserver(ordinal));
  }

  /** Every interface name a capture can select (`router:interface`, `host:interface`). */
  interfaceNames(): string[] {
    return [...this.routers.flatMap((r) => r.router.interfaces.map((link) => `${r.name}:${link.name}`)), ...this.hostMembers().map((m) => m.name)];
  }

  /**
   * Starts feeding `session` (already holding its sink, filter and selectors); `routerName`
   * limits it to one router's interfaces. It stops by itself when the session ends.
   */
  start(session: CaptureSession, routerName: string | null = null): void {
    const routerPorts = this.routers.map((r) => {
      const ids = new Int32Array(r.router.interfaces.length).fill(-1);
      if (routerName === null || routerName === r.name) {
        for (const link of r.router.interfaces) ids[link.index] = session.addInterface(`${r.name}:${link.name}`, r.descriptions[link.index] ?? '');
      }
      return ids;
    });
    const hostPorts = new Map<SegmentMember, number>();
    if (routerName === null) for (const member of this.hostMembers()) hostPorts.set(member, session.addInterface(member.name, `host port on segment ${member.segment.name}`));
    const entry: Attached = { session, routerPorts, hostPorts };
    this.attached.push(entry);
    if (this.attached.length === 1) this.observe(true);
    void session.done.then(() => {
      this.attached.splice(this.attached.indexOf(entry), 1);
      if (this.attached.length === 0) this.observe(false);
    });
  }

  /** Ends every session (the lab is going down). */
  closeAll(): Promise<unknown> {
    return Promise.all(this.attached.map((entry) => entry.session.close()));
  }

  private observe(on: boolean): void {
    this.routers.forEach((r, ordinal) => (r.router.observer = on ? this.observers[ordinal]! : null));
    for (const segment of this.segments) segment.observer = on ? this : null;
  }

  private hostMembers(): SegmentMember[] {
    return this.segments.flatMap((segment) => segment.members.filter((member) => member.kind === MemberKind.HOST));
  }

  private routerObserver(ordinal: number): PacketObserver {
    const base = ordinal * ROUTER_ID_SPAN;
    const attached = this.attached;
    const write = (link: RouterInterface, direction: CaptureDirection, buf: Uint8Array, id: number, comment?: string): void => {
      for (let i = 0; i < attached.length; i++) {
        const port = attached[i]!.routerPorts[ordinal]![link.index]!;
        if (port >= 0) attached[i]!.session.packetAt(port, direction, base + id, buf, 0, buf.length, comment);
      }
    };
    return {
      received: (link, buf, id) => write(link, CaptureDirection.INBOUND, buf, id),
      transmitted: (link, buf, id) => write(link, CaptureDirection.OUTBOUND, buf, id),
      dropped: (link: RouterInterface | null, buf: Uint8Array, id: number, reason: DropReason, origin: string | null) => {
        if (link) write(link, CaptureDirection.INBOUND, buf, id, origin ? `dropped by ${origin}` : `dropped: ${dropReasonName(reason)}`);
      },
    };
  }

  hostSent(member: SegmentMember, buf: Uint8Array, offset: number, length: number): void {
    this.writeHost(member, CaptureDirection.OUTBOUND, buf, offset, length);
  }

  hostReceived(member: SegmentMember, buf: Uint8Array, offset: number, length: number): void {
    this.writeHost(member, CaptureDirection.INBOUND, buf, offset, length);
  }

  private writeHost(member: SegmentMember, direction: CaptureDirection, buf: Uint8Array, offset: number, length: number): void {
    const id = this.routers.length * ROUTER_ID_SPAN + ++this.hostPacketIds;
    for (let i = 0; i < this.attached.length; i++) {
      const port = this.attached[i]!.hostPorts.get(member);
      if (port !== undefined) this.attached[i]!.session.packetAt(port, direction, id, buf, offset, length);
    }
  }
}
