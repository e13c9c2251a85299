/** Builds whole IPv4 datagrams for tests from small descriptions, with the project's own emitters. */
import type { Device, Receiver } from '../../router/core/device.ts';
import { parseIpv4Address } from '../../router/core/addresses.ts';
import { emitIcmp, type IcmpRepr } from '../../router/wire/icmp.ts';
import { emitIpv4Header, IpProtocol, type Ipv4Repr } from '../../router/wire/ipv4.ts';
import { emitTcp, tcpLengthOf, type TcpRepr } from '../../router/wire/tcp.ts';
import { emitUdp, udpLengthOf, type UdpRepr } from '../../router/wire/udp.ts';

export const ip = (text: string): number => parseIpv4Address(text);

export interface Ipv4Description {
  src: string;
  dst: string;
  ttl?: number;
  ident?: number;
  flagsFragment?: number;
  tos?: number;
  options?: Uint8Array;
}

function ipv4(description: Ipv4Description, protocol: number, payloadLength: number): { buf: Buffer; at: number; repr: Ipv4Repr } {
  const repr: Ipv4Repr = {
    src: ip(description.src),
    dst: ip(description.dst),
    protocol,
    ttl: description.ttl ?? 64,
    ident: description.ident ?? 0x1234,
    flagsFragment: description.flagsFragment ?? 0,
    tos: description.tos ?? 0,
    payloadLength,
    ...(description.options ? { options: description.options } : {}),
  };
  const headerLength = 20 + (description.options?.length ?? 0);
  const buf = Buffer.alloc(headerLength + payloadLength);
  emitIpv4Header(repr, buf, 0);
  return { buf, at: headerLength, repr };
}

export function icmpPacket(description: Ipv4Description, icmp: IcmpRepr): Buffer {
  const length = 8 + (icmp.data?.length ?? 0);
  const { buf, at } = ipv4(description, IpProtocol.ICMP, length);
  emitIcmp(icmp, buf, at);
  return buf;
}

export function udpPacket(description: Ipv4Description, udp: UdpRepr): Buffer {
  const { buf, at, repr } = ipv4(description, IpProtocol.UDP, udpLengthOf(udp));
  emitUdp(udp, buf, at, repr.src, repr.dst);
  return buf;
}

export function tcpPacket(description: Ipv4Description, tcp: TcpRepr): Buffer {
  const { buf, at, repr } = ipv4(description, IpProtocol.TCP, tcpLengthOf(tcp));
  emitTcp(tcp, buf, at, repr.src, repr.dst);
  return buf;
}

export function rawPacket(description: Ipv4Description, protocol: number, payload: Uint8Array): Buffer {
  const { buf, at } = ipv4(description, protocol, payload.length);
  buf.set(payload, at);
  return buf;
}

/**
 * A test device: records what is transmitted through it (copies), the next hop it was sent to, and
 * its PacketFlag bits and segment size; it takes the PacketFlag offloads it is given (none by default).
 */
export class CaptureLink implements Device {
  readonly sent: Buffer[] = [];
  readonly nextHops: number[] = [];
  readonly flags: number[] = [];
  readonly gsoSizes: number[] = [];
  receiver: Receiver | null = null;
  constructor(readonly offloads = 0) {}
  transmit(packet: Uint8Array, offset: number, length: number, nextHop: number, flags = 0, gsoSize = 0): number {
    this.sent.push(Buffer.from(packet.subarray(offset, offset + length)));
    this.nextHops.push(nextHop);
    this.flags.push(flags);
    this.gsoSizes.push(gsoSize);
    return length;
  }
  setReceiver(receiver: Receiver | null): void {
    this.receiver = receiver;
  }
  take(): Buffer[] {
    this.flags.length = 0;
    this.gsoSizes.length = 0;
    return this.sent.splice(0);
  }
}
