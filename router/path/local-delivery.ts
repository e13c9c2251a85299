/**
 * What the router does with datagrams addressed to itself (ip_local_deliver). It runs no services:
 * it reassembles fragments, answers ICMP echo requests, resets TCP, and answers UDP with "port
 * unreachable" and any other protocol with "protocol unreachable", as a Linux host with no
 * listening sockets does. Segments with bad checksums are dropped silently, as the kernel does;
 * one already verified, or whose checksum its sender left partial, is not summed again.
 */
import { DEFAULT_TTL } from './icmp-messages.ts';
import { Packet } from '../core/packet.ts';
import { Ipv4Reassembler, ReassemblyResult } from '../wire/ipv4-reassembly.ts';
import type { Router } from './router.ts';
import { Counter, DropReason } from '../core/stats.ts';
import { ICMP, IcmpProblem, IcmpType, IcmpUnreachableCode, fillIcmpChecksum, icmpType, validateIcmp } from '../wire/icmp.ts';
import {
  IPV4_MIN_HEADER_LENGTH,
  IpProtocol,
  emitIpv4Header,
  ipv4Dst,
  ipv4HeaderLength,
  ipv4IsFragment,
  ipv4Protocol,
  ipv4Src,
  ipv4Tos,
} from '../wire/ipv4.ts';
import { TcpProblem, tcpChecksumValid, validateTcp } from '../wire/tcp.ts';
import { buildTcpReset } from './tcp-reset.ts';
import { UdpProblem, udpChecksumValid, udpLength, validateUdp } from '../wire/udp.ts';

/** ICMP time exceeded code 1: fragment reassembly time exceeded. */
const REASSEMBLY_TIME_EXCEEDED = 1;
const EXPIRY_SWEEP_MS = 1000;

export class LocalDelivery {
  private readonly reassembler = new Ipv4Reassembler();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly router: Router) {}

  deliver(packet: Packet): void {
    if (ipv4IsFragment(packet.buf, 0)) return this.reassemble(packet);
    const buf = packet.buf;
    const headerLength = ipv4HeaderLength(buf, 0);
    const l4Length = buf.length - headerLength;
    this.router.stats.count(Counter.DELIVERED_LOCAL);
    switch (ipv4Protocol(buf, 0)) {
      case IpProtocol.ICMP:
        return this.icmp(packet, headerLength, l4Length);
      case IpProtocol.TCP:
        return this.tcp(packet, headerLength, l4Length);
      case IpProtocol.UDP:
        if (validateUdp(buf, headerLength, l4Length) !== UdpProblem.OK || (!packet.checksumVerified && !udpChecksumValid(buf, headerLength, udpLength(buf, headerLength), ipv4Src(buf, 0), ipv4Dst(buf, 0)))) {
          return this.router.stats.drop(DropReason.LOCAL_L4_MALFORMED);
        }
        this.router.stats.drop(DropReason.LOCAL_UNSERVED);
        return this.router.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.PORT);
      default:
        this.router.stats.drop(DropReason.LOCAL_UNSERVED);
        return this.router.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.PROTOCOL);
    }
  }

  /** Stops the expiry timer (on shutdown). */
  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  private reassemble(packet: Packet): void {
    const result = this.reassembler.add(packet.buf);
    if (result === ReassemblyResult.COMPLETE) {
      const whole = new Packet(this.reassembler.completed!.packet, packet.inInterface);
      return this.deliver(whole);
    }
    if (result !== ReassemblyResult.PENDING) return this.router.stats.drop(DropReason.REASSEMBLY_FAILED);
    this.sweepTimer ??= setInterval(() => this.sweep(), EXPIRY_SWEEP_MS).unref();
  }

  private sweep(): void {
    this.reassembler.expire((first) => {
      this.router.stats.drop(DropReason.REASSEMBLY_TIMEOUT);
      this.router.sendIcmpError(new Packet(first, null), IcmpType.TIME_EXCEEDED, REASSEMBLY_TIME_EXCEEDED);
    });
    if (this.reassembler.size === 0) this.close();
  }

  private icmp(packet: Packet, at: number, length: number): void {
    const buf = packet.buf;
    if (validateIcmp(buf, at, length) !== IcmpProblem.OK) return this.router.stats.drop(DropReason.LOCAL_L4_MALFORMED);
    if (icmpType(buf, at) !== IcmpType.ECHO_REQUEST) return this.router.stats.drop(DropReason.LOCAL_CONSUMED);
    // icmp_echo: the same identifier, sequence and data back, from the address that was pinged.
    const reply = Buffer.allocUnsafe(IPV4_MIN_HEADER_LENGTH + length);
    emitIpv4Header(
      { src: ipv4Dst(buf, 0), dst: ipv4Src(buf, 0), protocol: IpProtocol.ICMP, ttl: DEFAULT_TTL, tos: ipv4Tos(buf, 0), ident: this.router.nextIpIdent(), payloadLength: length },
      reply,
      0,
    );
    buf.copy(reply, IPV4_MIN_HEADER_LENGTH, at, at + length);
    reply[IPV4_MIN_HEADER_LENGTH + ICMP.TYPE] = IcmpType.ECHO_REPLY;
    reply[IPV4_MIN_HEADER_LENGTH + ICMP.CODE] = 0;
    fillIcmpChecksum(reply, IPV4_MIN_HEADER_LENGTH, length);
    this.router.stats.count(Counter.ECHO_REPLIES_SENT);
    this.router.sendLocal(reply);
  }

  /** tcp_v4_send_reset: no listener here, so every segment but a reset is answered with one. */
  private tcp(packet: Packet, at: number, length: number): void {
    const buf = packet.buf;
    if (validateTcp(buf, at, length) !== TcpProblem.OK || (!packet.checksumVerified && !tcpChecksumValid(buf, at, length, ipv4Src(buf, 0), ipv4Dst(buf, 0)))) {
      return this.router.stats.drop(DropReason.LOCAL_L4_MALFORMED);
    }
    this.router.stats.drop(DropReason.LOCAL_UNSERVED);
    const reset = buildTcpReset(buf, true);
    if (reset) this.router.sendLocal(reset);
  }
}
