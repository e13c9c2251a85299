/**
 * The IPv4 packet path, shaped like the kernel's (ip_rcv -> ip_route_input -> ip_forward /
 * ip_local_deliver -> ip_output), with the five netfilter hooks where the kernel has them:
 *
 *   receive -> PRE_ROUTING -> route -+-> LOCAL_IN -> local delivery
 *                                    +-> FORWARD -> POST_ROUTING -> output (fragment) -> link
 *   router-originated -> LOCAL_OUT -> route -> POST_ROUTING -> output
 *
 * Nothing here throws for a bad packet: it is dropped and counted by reason, or answered with the
 * ICMP error the kernel would send.
 */
import { HOOK_NAMES, HookRegistry, Hook, VERDICT_NAMES, Verdict, runChain, type ChainResult, type HookOps, type HookPoint, type QueueHandler } from '../core/hooks.ts';
import { formatIpv4Address, networkOf } from '../core/addresses.ts';
import { fragmentIpv4 } from './fragmentation.ts';
import { IcmpRateLimiter } from './icmp-rate-limit.ts';
import { buildIcmpError, mayAnswerWithError } from './icmp-messages.ts';
import { buildTcpReset } from './tcp-reset.ts';
import { GSO_FLAGS, NO_NEIGHBOUR, PacketFlag, type Device } from '../core/device.ts';
import type { RouterInterface } from '../core/interfaces.ts';
import { LocalDelivery } from './local-delivery.ts';
import { GSO_KINDS, SoftwareGso, finishPartialChecksum, gsoMatchesHeaders, gsoSegmentLength } from './software-gso.ts';
import type { PacketObserver, PacketTracer } from '../core/observer.ts';
import { Packet } from '../core/packet.ts';
import type { RoutingTable } from './routing-table.ts';
import { Counter, DropReason, InterfaceCounter, RouterStats, dropReasonName } from '../core/stats.ts';
import { IcmpType, IcmpUnreachableCode } from '../wire/icmp.ts';
import {
  Ipv4Problem,
  decrementIpv4Ttl,
  IpProtocol,
  ipv4DontFragment,
  ipv4Dst,
  ipv4HeaderLength,
  ipv4Protocol,
  ipv4Src,
  ipv4TotalLength,
  ipv4Ttl,
  validateIpv4,
} from '../wire/ipv4.ts';

const IPV4_PROBLEM_DROP: Readonly<Record<number, DropReason>> = {
  [Ipv4Problem.TRUNCATED]: DropReason.TRUNCATED,
  [Ipv4Problem.BAD_VERSION]: DropReason.IPV4_BAD_VERSION,
  [Ipv4Problem.BAD_HEADER_LENGTH]: DropReason.IPV4_BAD_HEADER_LENGTH,
  [Ipv4Problem.BAD_TOTAL_LENGTH]: DropReason.IPV4_BAD_TOTAL_LENGTH,
  [Ipv4Problem.BAD_CHECKSUM]: DropReason.IPV4_BAD_CHECKSUM,
};

const LIMITED_BROADCAST = 0xffffffff;
const EMPTY = Buffer.alloc(0);

export interface RouterOptions {
  icmpLimiter?: IcmpRateLimiter;
  /** [0, 1): seeds the IP identification counter. */
  random?: () => number;
}

export class Router {
  readonly hooks = new HookRegistry();
  readonly stats: RouterStats;
  readonly icmpLimiter: IcmpRateLimiter;
  /** Receives QUEUEd packets; without one they are dropped, as the kernel does with no listener. */
  queueHandler: QueueHandler | null = null;
  /** Told about every packet dropped after the hooks saw it (conntrack frees unconfirmed entries). */
  onDrop: ((packet: Packet) => void) | null = null;
  /**
   * nf_ct_attach: gives a packet the router makes about another one (an ICMP error, a reset) that
   * packet's connection, before LOCAL_OUT. Set by conntrack.
   */
  attachConntrack: ((made: Packet, about: Packet) => void) | null = null;
  /** A capture looking at every packet; null while nobody looks. */
  observer: PacketObserver | null = null;
  /** A `vrouter trace` choosing packets to follow; null while nobody traces. */
  tracer: PacketTracer | null = null;
  private readonly local: LocalDelivery;
  /** Numbers the packets an observer sees (a capture's packet ids), per router. */
  private lastPacketId = 0;
  private readonly chainResult: ChainResult = { verdict: Verdict.ACCEPT, stoppedAt: 0 };
  /** The IP identification of the next datagram the router originates (per router, as per namespace). */
  private ipIdent: number;
  /** Cuts super-packets that cannot leave whole (egress and MTU fallback). */
  private readonly softwareGso = new SoftwareGso();
  /** The received packet, reused (see receive); in use while `receivedInWalk`. */
  private readonly received = new Packet(EMPTY, null);
  private receivedInWalk = false;

  constructor(
    readonly interfaces: readonly RouterInterface[],
    readonly routes: RoutingTable,
    options: RouterOptions = {},
  ) {
    this.stats = new RouterStats(interfaces.length);
    this.icmpLimiter = options.icmpLimiter ?? new IcmpRateLimiter();
    this.ipIdent = Math.floor((options.random ?? Math.random)() * 0x10000) & 0xffff;
    this.local = new LocalDelivery(this);
  }

  /** A fresh IP identification for a datagram this router originates. */
  nextIpIdent(): number {
    this.ipIdent = (this.ipIdent + 1) & 0xffff;
    return this.ipIdent;
  }

  /** Attaches `device` to `link`: what it receives enters the router on that interface. */
  attach(link: RouterInterface, device: Device): void {
    link.device = device;
    device.setReceiver((buf, flags, gsoSize) => this.receive(link, buf, flags, gsoSize));
  }

  /** Stops background timers; the router can be garbage-collected afterwards. */
  close(): void {
    this.local.close();
  }

  register(ops: HookOps): void {
    this.hooks.register(ops);
  }

  unregister(ops: HookOps): boolean {
    return this.hooks.unregister(ops);
  }

  /**
   * A datagram read from `inInterface`, with its PacketFlag bits and a super-packet's segment
   * size. `buf` may be a view into a read slab (see Packet).
   */
  receive(inInterface: RouterInterface, buf: Buffer, flags: number = PacketFlag.NONE, gsoSize = 0): void {
    this.stats.count(Counter.RECEIVED);
    this.stats.countInterface(inInterface.index, InterfaceCounter.RX_PACKETS);
    this.stats.countInterface(inInterface.index, InterfaceCounter.RX_BYTES, buf.length);
    const observer = this.observer;
    const id = observer === null ? 0 : ++this.lastPacketId;
    if (observer !== null) observer.received(inInterface, buf, id);
    const refused = receiveProblem(buf);
    if (refused !== ADMITTED) {
      this.stats.drop(refused);
      this.stats.countInterface(inInterface.index, InterfaceCounter.RX_DROPPED);
      if (observer !== null) observer.dropped(inInterface, buf, id, refused, null);
      return;
    }
    const totalLength = ipv4TotalLength(buf, 0);
    // Link padding beyond the datagram is not part of it (ip_rcv's pskb_trim_rcsum).
    const view = totalLength < buf.length ? buf.subarray(0, totalLength) : buf;
    // One object for every received packet; a packet received while another is still walking
    // (a router that answers itself) gets its own.
    const reused = !this.receivedInWalk;
    const packet = reused ? this.received.reuse(view, inInterface) : new Packet(view, inInterface);
    // A partial checksum is the sender's own, not yet written: nothing to verify (skb_csum_unnecessary).
    packet.checksumPartial = (flags & PacketFlag.CHECKSUM_PARTIAL) !== 0;
    packet.checksumVerified = (flags & (PacketFlag.CHECKSUM_VERIFIED | PacketFlag.CHECKSUM_PARTIAL)) !== 0;
    if ((flags & GSO_KINDS) !== 0) {
      if (!gsoMatchesHeaders(buf, flags, gsoSize)) {
        this.stats.drop(DropReason.GSO_MALFORMED);
        this.stats.countInterface(inInterface.index, InterfaceCounter.RX_DROPPED);
        if (observer !== null) observer.dropped(inInterface, buf, id, DropReason.GSO_MALFORMED, null);
        return;
      }
      this.stats.count(Counter.SUPER_PACKETS_RECEIVED);
      packet.gsoFlags = flags & GSO_FLAGS;
      packet.gsoSize = gsoSize;
    }
    packet.id = id;
    if (this.tracer !== null) this.maybeTrace(packet, `in ${inInterface.name}`);
    if (!reused) return this.runHook(Hook.PRE_ROUTING, packet, 0);
    this.receivedInWalk = true;
    try {
      this.runHook(Hook.PRE_ROUTING, packet, 0);
    } finally {
      this.receivedInWalk = false;
    }
  }

  /**
   * A datagram the router itself originates (ICMP replies and errors, TCP resets); `about` is the
   * packet it answers when it belongs to that packet's connection (errors and resets).
   */
  sendLocal(buf: Buffer, about: Packet | null = null): void {
    this.stats.count(Counter.SENT_LOCAL);
    const packet = new Packet(buf, null);
    if (this.observer !== null) packet.id = ++this.lastPacketId;
    if (this.tracer !== null) this.maybeTrace(packet, 'made by the router');
    if (about) this.attachConntrack?.(packet, about);
    // As ip_route_output before LOCAL_OUT: the OUTPUT chain already knows the egress interface.
    const route = this.routes.lookup(ipv4Dst(buf, 0));
    if (!route) return this.stats.drop(DropReason.NO_ROUTE);
    packet.outInterface = route.outInterface;
    packet.nextHop = route.gateway || ipv4Dst(buf, 0);
    this.runHook(Hook.LOCAL_OUT, packet, 0);
  }

  /** Sends the ICMP error the kernel's icmp_send() would send about `original`, if any. */
  sendIcmpError(original: Packet, type: number, code: number, rest = 0): void {
    const buf = original.buf;
    if (!mayAnswerWithError(buf)) return;
    const destination = ipv4Src(buf, 0);
    if (!this.icmpLimiter.allow(type, code, destination)) {
      this.stats.count(Counter.ICMP_ERRORS_RATE_LIMITED);
      return;
    }
    const source = this.errorSourceAddress(original, destination);
    if (source === 0) return;
    this.stats.count(Counter.ICMP_ERRORS_SENT);
    // About a super-packet, the error quotes its first segment, as if it had come in segments.
    const quotedLength = original.gsoSize !== 0 ? Math.min(buf.length, gsoSegmentLength(buf, original.gsoFlags, original.gsoSize)) : buf.length;
    this.sendLocal(buildIcmpError(buf, type, code, rest, source, this.nextIpIdent(), quotedLength), original);
  }

  /** Answers a TCP segment with the reset REJECT --reject-with tcp-reset sends (none for a reset). */
  sendTcpReset(original: Packet): void {
    const reset = buildTcpReset(original.buf, original.checksumVerified);
    if (reset) this.sendLocal(reset, original);
  }

  /** The interface owning `address` as the router's own address, or null. */
  localInterface(address: number): RouterInterface | null {
    const interfaces = this.interfaces;
    for (let i = 0; i < interfaces.length; i++) if (interfaces[i]!.address === address) return interfaces[i]!;
    return null;
  }

  /**
   * Walks `hook`'s chain from op `start` and, on ACCEPT, moves the packet on to the next stage.
   * A packet keeps the chain array it started with even if ops are (un)registered meanwhile.
   */
  private runHook(hook: HookPoint, packet: Packet, start: number, chain = this.hooks.chain(hook)): void {
    const result = packet.traced ? this.runTraced(hook, packet, start, chain) : runChain(chain, start, packet, hook, this.chainResult);
    switch (result.verdict) {
      case Verdict.ACCEPT:
        return this.afterHook(hook, packet);
      case Verdict.DROP:
        this.stats.dropByOp(packet.dropOrigin ?? chain[result.stoppedAt]!.name);
        return this.dropPacket(packet, packet.dropReason ?? DropReason.HOOK_DROP);
      case Verdict.STOLEN:
        return;
      case Verdict.QUEUE:
        return this.queue(hook, packet, chain, result.stoppedAt);
      case Verdict.SEGMENT:
        return this.segmentAt(hook, packet, chain, result.stoppedAt);
    }
  }

  /**
   * An op asked for the super-packet in segments: each is cut in software (checksums finished)
   * and walks on from that op as a packet of its own, in order. Rare (a helper's connection), so
   * each segment gets its own buffer: its walk may keep it.
   */
  private segmentAt(hook: HookPoint, packet: Packet, chain: readonly HookOps[], stoppedAt: number): void {
    const gso = this.softwareGso;
    const count = packet.gsoSize === 0 ? 0 : gso.begin(packet.buf, 0, packet.buf.length, packet.gsoFlags, packet.gsoSize);
    if (count <= 0) return this.dropPacket(packet, DropReason.GSO_MALFORMED);
    this.stats.count(Counter.SUPER_PACKETS_SEGMENTED);
    if (packet.traced) this.traceLine(packet, `cut into ${count} segments in software for ${chain[stoppedAt]!.name}`);
    for (let i = 0; i < count; i++) {
      const length = gso.segment(i, false);
      const segment = new Packet(Buffer.from(gso.buffer.subarray(0, length)), packet.inInterface);
      segment.outInterface = packet.outInterface;
      segment.nextHop = packet.nextHop;
      segment.mark = packet.mark;
      segment.ctTemplate = packet.ctTemplate;
      segment.checksumVerified = true;
      segment.id = packet.id;
      segment.traced = packet.traced;
      this.runHook(hook, segment, stoppedAt, chain);
    }
  }

  private queue(hook: HookPoint, packet: Packet, chain: readonly HookOps[], stoppedAt: number): void {
    const handler = this.queueHandler;
    if (!handler) return this.dropPacket(packet, DropReason.QUEUE_NO_HANDLER);
    const kept = packet.detached();
    let settled = false;
    handler(kept, hook, (verdict) => {
      if (settled) return;
      settled = true;
      if (verdict === Verdict.ACCEPT) this.runHook(hook, kept, stoppedAt + 1, chain);
      else if (verdict === Verdict.REPEAT) this.runHook(hook, kept, stoppedAt, chain);
      else if (verdict === Verdict.DROP) this.dropPacket(kept, DropReason.HOOK_DROP);
    });
  }

  /** Starts following `packet` if the running trace wants it: numbers it and says where it came from. */
  private maybeTrace(packet: Packet, from: string): void {
    const tracer = this.tracer!;
    if (!tracer.wants(packet.buf)) return;
    packet.traced = true;
    if (packet.id === 0) packet.id = ++this.lastPacketId;
    tracer.line(packet, `${from}: ${describeDatagram(packet.buf)}`);
  }

  /** One line about a traced packet to the running trace, if any; numbers a packet `-j TRACE` marked. */
  traceLine(packet: Packet, text: string): void {
    if (this.tracer === null) return;
    if (packet.id === 0) packet.id = ++this.lastPacketId;
    this.tracer.line(packet, text);
  }

  private runTraced(hook: HookPoint, packet: Packet, start: number, chain: readonly HookOps[]): ChainResult {
    return runChain(chain, start, packet, hook, this.chainResult, (ops, verdict) => {
      const detail = ops.describe ? ops.describe(packet) : '';
      this.traceLine(packet, `${HOOK_NAMES[hook]} ${ops.name} (${ops.priority}) ${VERDICT_NAMES[verdict]}${detail ? `: ${detail}` : ''}`);
    });
  }

  private dropPacket(packet: Packet, reason: DropReason): void {
    if (packet.traced) this.traceLine(packet, `dropped: ${dropReasonName(reason)}${packet.dropOrigin ? ` by ${packet.dropOrigin}` : ''}`);
    this.stats.drop(reason);
    if (packet.inInterface !== null) this.stats.countInterface(packet.inInterface.index, InterfaceCounter.RX_DROPPED);
    if (this.observer !== null) this.observer.dropped(packet.inInterface ?? packet.outInterface, packet.buf, packet.id, reason, packet.dropOrigin);
    this.onDrop?.(packet);
  }

  private afterHook(hook: HookPoint, packet: Packet): void {
    switch (hook) {
      case Hook.PRE_ROUTING:
        return this.routeInput(packet);
      case Hook.LOCAL_IN:
        if (packet.traced) this.traceLine(packet, 'delivered to the router');
        return this.local.deliver(packet);
      case Hook.FORWARD:
        return this.runHook(Hook.POST_ROUTING, packet, 0);
      case Hook.LOCAL_OUT:
        return this.routeOutput(packet);
      case Hook.POST_ROUTING:
        return this.output(packet);
    }
  }

  /** ip_route_input: to the router itself, or forward along the longest matching route. */
  private routeInput(packet: Packet): void {
    const buf = packet.buf;
    const destination = ipv4Dst(buf, 0);
    // fib_validate_source: one of our own addresses as source is martian, whatever the destination.
    if (this.localInterface(ipv4Src(buf, 0))) return this.dropPacket(packet, DropReason.MARTIAN_SOURCE);
    if (this.localInterface(destination)) return this.runHook(Hook.LOCAL_IN, packet, 0);
    if (this.isBroadcast(destination)) {
      // icmp_echo_ignore_broadcasts is on by default and the router serves nothing else.
      return this.dropPacket(packet, DropReason.LOCAL_CONSUMED);
    }
    if (isMartianDestination(destination)) return this.dropPacket(packet, DropReason.MARTIAN_DESTINATION);
    const route = this.routes.lookup(destination);
    if (!route) {
      this.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.NET);
      return this.dropPacket(packet, DropReason.NO_ROUTE);
    }
    packet.nextHop = route.gateway || destination;
    this.forward(packet, route.outInterface);
  }

  /** ip_forward: TTL and MTU are checked before the FORWARD hook, as the kernel does. */
  private forward(packet: Packet, outInterface: RouterInterface): void {
    const buf = packet.buf;
    if (ipv4Ttl(buf, 0) <= 1) {
      this.sendIcmpError(packet, IcmpType.TIME_EXCEEDED, 0);
      return this.dropPacket(packet, DropReason.TTL_EXCEEDED);
    }
    // ip_exceeds_mtu: a reassembled datagram is judged by the fragments it came in, a
    // super-packet by its segments (skb_gso_validate_network_len).
    const tooBig = packet.fragMaxSize ? packet.fragMaxSize > outInterface.mtu : wireLength(packet) > outInterface.mtu;
    if (tooBig && ipv4DontFragment(buf, 0)) {
      this.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.FRAGMENTATION_NEEDED, outInterface.mtu);
      return this.dropPacket(packet, DropReason.FRAGMENTATION_NEEDED);
    }
    decrementIpv4Ttl(buf, 0);
    packet.outInterface = outInterface;
    this.stats.count(Counter.FORWARDED);
    this.runHook(Hook.FORWARD, packet, 0);
  }

  /** Routes again after LOCAL_OUT, since a DNAT there may have changed the destination. */
  private routeOutput(packet: Packet): void {
    const destination = ipv4Dst(packet.buf, 0);
    const route = this.routes.lookup(destination);
    if (!route) return this.dropPacket(packet, DropReason.NO_ROUTE);
    packet.outInterface = route.outInterface;
    packet.nextHop = route.gateway || destination;
    this.runHook(Hook.POST_ROUTING, packet, 0);
  }

  /**
   * ip_finish_output: a super-packet leaves whole where the egress takes it and its segments fit,
   * else in segments; a partial checksum is finished where the egress cannot; what does not fit
   * the egress MTU is fragmented. Then the link.
   */
  private output(packet: Packet): void {
    const outInterface = packet.outInterface!;
    const buf = packet.buf;
    // A datagram defrag reassembled leaves in fragments no larger than those it came in.
    const mtu = packet.fragMaxSize && packet.fragMaxSize < outInterface.mtu ? packet.fragMaxSize : outInterface.mtu;
    const offloads = outInterface.device?.offloads ?? 0;
    if (packet.gsoSize !== 0 && ((packet.gsoFlags & GSO_KINDS & ~offloads) !== 0 || gsoSegmentLength(buf, packet.gsoFlags, packet.gsoSize) > mtu)) {
      return this.outputSegments(packet, mtu, offloads);
    }
    // Past here a super-packet leaves whole; anything else partial is finished if it is to be
    // fragmented or the egress cannot finish it.
    if (packet.checksumPartial && packet.gsoSize === 0 && (buf.length > mtu || (offloads & PacketFlag.CHECKSUM_PARTIAL) === 0)) {
      finishPartialChecksum(buf, 0, buf.length);
      packet.checksumPartial = false;
    }
    if (packet.gsoSize !== 0 || buf.length <= mtu) {
      if (packet.traced) this.traceLine(packet, `sent on ${outInterface.name} to ${formatIpv4Address(packet.nextHop)}: ${describeDatagram(buf)}${packet.gsoSize ? ` gso_size=${packet.gsoSize}` : ''}`);
      const flags = (packet.checksumPartial ? PacketFlag.CHECKSUM_PARTIAL : packet.checksumVerified ? PacketFlag.CHECKSUM_VERIFIED : PacketFlag.NONE) | packet.gsoFlags;
      if (this.transmit(outInterface, buf, packet.nextHop, flags, packet.id, packet.gsoSize) === NO_NEIGHBOUR) {
        // arp_error_report: the kernel answers a datagram whose neighbour never resolves.
        this.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.HOST);
      }
      return;
    }
    if (ipv4DontFragment(buf, 0) && !packet.fragMaxSize) {
      // Grown past the MTU after the forward check (a helper's rewrite) or originated too large.
      this.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.FRAGMENTATION_NEEDED, outInterface.mtu);
      return this.dropPacket(packet, DropReason.FRAGMENTATION_NEEDED);
    }
    const fragments = this.fragment(outInterface, buf, mtu, packet.nextHop, packet.id);
    if (packet.traced) this.traceLine(packet, `sent on ${outInterface.name} to ${formatIpv4Address(packet.nextHop)} in ${fragments} fragments of at most ${mtu} bytes: ${describeDatagram(buf)}`);
  }

  private fragment(outInterface: RouterInterface, buf: Buffer, mtu: number, nextHop: number, id: number): number {
    const fragments = fragmentIpv4(buf, mtu, (fragment) => this.transmit(outInterface, fragment, nextHop, PacketFlag.NONE, id, 0));
    this.stats.count(Counter.FRAGMENTS_CREATED, fragments);
    return fragments;
  }

  /**
   * ip_finish_output_gso: the segments of a super-packet the egress cannot take whole, each one
   * fragmented in turn if it is still over the MTU (DF clear: the forward check passed it).
   */
  private outputSegments(packet: Packet, mtu: number, offloads: number): void {
    const outInterface = packet.outInterface!;
    const gso = this.softwareGso;
    const count = gso.begin(packet.buf, 0, packet.buf.length, packet.gsoFlags, packet.gsoSize);
    if (count <= 0) return this.dropPacket(packet, DropReason.GSO_MALFORMED);
    this.stats.count(Counter.SUPER_PACKETS_SEGMENTED);
    const partial = (offloads & PacketFlag.CHECKSUM_PARTIAL) !== 0 && gsoSegmentLength(packet.buf, packet.gsoFlags, packet.gsoSize) <= mtu;
    const flags = partial ? PacketFlag.CHECKSUM_PARTIAL : PacketFlag.CHECKSUM_VERIFIED;
    if (packet.traced) this.traceLine(packet, `sent on ${outInterface.name} to ${formatIpv4Address(packet.nextHop)} in ${count} segments cut in software: ${describeDatagram(packet.buf)} gso_size=${packet.gsoSize}`);
    for (let i = 0; i < count; i++) {
      const length = gso.segment(i, partial);
      // The segmenter's buffer is reused per segment: a view of it, never kept past transmit.
      const segment = gso.buffer.subarray(0, length);
      if (length > mtu) this.fragment(outInterface, segment, mtu, packet.nextHop, packet.id);
      else if (this.transmit(outInterface, segment, packet.nextHop, flags, packet.id, 0) === NO_NEIGHBOUR) {
        this.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.HOST);
        return;
      }
    }
  }

  /** Hands `buf` to the link; returns what the device returned (NO_NEIGHBOUR is worth an answer). */
  private transmit(outInterface: RouterInterface, buf: Uint8Array, nextHop: number, flags: number, packetId: number, gsoSize: number): number {
    const observer = this.observer;
    // A datagram defrag rebuilt, or one made before the observer came, is numbered here.
    if (observer !== null) observer.transmitted(outInterface, buf, packetId === 0 ? ++this.lastPacketId : packetId);
    const device = outInterface.device;
    if (!device || !outInterface.up) {
      this.stats.drop(DropReason.INTERFACE_DOWN);
      this.stats.countInterface(outInterface.index, InterfaceCounter.TX_ERRORS);
      return 0;
    }
    const result = device.transmit(buf, 0, buf.length, nextHop, flags, gsoSize);
    if (result >= 0) {
      this.stats.countInterface(outInterface.index, InterfaceCounter.TX_PACKETS);
      this.stats.countInterface(outInterface.index, InterfaceCounter.TX_BYTES, buf.length);
      return result;
    }
    this.stats.drop(result === NO_NEIGHBOUR ? DropReason.NO_NEIGHBOUR : DropReason.WRITE_FAILED);
    this.stats.countInterface(outInterface.index, InterfaceCounter.TX_ERRORS);
    return result;
  }

  /** icmp_send's source: the address the datagram was sent to if that is ours, else the egress one. */
  private errorSourceAddress(original: Packet, destination: number): number {
    const originalDestination = ipv4Dst(original.buf, 0);
    if (this.localInterface(originalDestination)) return originalDestination;
    const route = this.routes.lookup(destination);
    if (route) return route.outInterface.address;
    return original.inInterface?.address ?? 0;
  }

  private isBroadcast(destination: number): boolean {
    if (destination === LIMITED_BROADCAST) return true;
    const interfaces = this.interfaces;
    for (let i = 0; i < interfaces.length; i++) {
      const link = interfaces[i]!;
      const hostBits = ~0 >>> link.prefixLength;
      if (((networkOf(link.address, link.prefixLength) | hostBits) >>> 0) === destination) return true;
    }
    return false;
  }
}

/** The length the MTU checks judge: a super-packet's segment length, else the datagram's. */
function wireLength(packet: Packet): number {
  return packet.gsoSize !== 0 ? gsoSegmentLength(packet.buf, packet.gsoFlags, packet.gsoSize) : packet.buf.length;
}

/** A DropReason, or ADMITTED: ip_rcv's header checks, then the martian sources. */
const ADMITTED = -1;
function receiveProblem(buf: Buffer): DropReason | typeof ADMITTED {
  if (buf.length === 0) return DropReason.TRUNCATED;
  if (buf[0]! >> 4 !== 4) return DropReason.NOT_IPV4;
  const problem = validateIpv4(buf, 0, buf.length);
  if (problem !== Ipv4Problem.OK) return IPV4_PROBLEM_DROP[problem] ?? DropReason.TRUNCATED;
  if (isMartianSource(ipv4Src(buf, 0))) return DropReason.MARTIAN_SOURCE;
  return ADMITTED;
}

/**
 * ip_route_input_slow's martian sources: 0/8, loopback, multicast and the limited broadcast. The
 * rest of class E (240/4) is not: kernel 6.18 forwards it.
 */
function isMartianSource(address: number): boolean {
  const first = address >>> 24;
  return first === 0 || first === 127 || (first >= 224 && first < 240) || address === LIMITED_BROADCAST;
}

/**
 * Martian destinations: 0/8, loopback, and multicast (the router does no multicast routing). The
 * limited broadcast is taken as a broadcast before, and class E is routed like any address.
 */
function isMartianDestination(address: number): boolean {
  const first = address >>> 24;
  return first === 0 || first === 127 || (first >= 224 && first < 240);
}

/** A traced datagram in one line: addresses, protocol and ports (tcpdump's gist). */
function describeDatagram(buf: Buffer): string {
  const protocol = ipv4Protocol(buf, 0);
  const l4 = ipv4HeaderLength(buf, 0);
  const name = protocol === IpProtocol.TCP ? 'tcp' : protocol === IpProtocol.UDP ? 'udp' : protocol === IpProtocol.ICMP ? 'icmp' : `proto ${protocol}`;
  const ports = (protocol === IpProtocol.TCP || protocol === IpProtocol.UDP) && buf.length >= l4 + 4 ? ` sport=${buf.readUInt16BE(l4)} dport=${buf.readUInt16BE(l4 + 2)}` : '';
  return `${name} src=${formatIpv4Address(ipv4Src(buf, 0))} dst=${formatIpv4Address(ipv4Dst(buf, 0))}${ports} len=${buf.length} ttl=${ipv4Ttl(buf, 0)}`;
}
