/**
 * A TUN device as a Device: transmit writes one datagram to the fd; once a receiver is set, every
 * datagram the kernel side sends is read in batches and handed to it, as a view into the read
 * slab (valid until the receiver returns).
 *
 * With a virtio-net header (IFF_VNET_HDR) the header's offload metadata becomes PacketFlag bits
 * both ways: NEEDS_CSUM is CHECKSUM_PARTIAL, DATA_VALID is CHECKSUM_VERIFIED, GSO TCPV4/UDP_L4 a
 * super-packet with its gso_size. A partial checksum anywhere but in a TCP or UDP header right
 * behind the IPv4 header is finished here, so the path only meets the usual kind.
 *
 * A receiver that throws is a bug on the packet path: it costs that one packet, is reported
 * through `onFault`, and reading goes on.
 */
import { PacketFlag, type Device, type Receiver } from '../../core/device.ts';
import { partialChecksumOffset } from '../../path/software-gso.ts';
import { IPV4, IPV4_MIN_HEADER_LENGTH, IpProtocol } from '../../wire/ipv4.ts';
import { TCP } from '../../wire/tcp.ts';
import { UDP_HEADER_LENGTH } from '../../wire/udp.ts';
import {
  VIRTIO_NET_HDR_LENGTH,
  VirtioGso,
  VirtioNetFlag,
  completePartialChecksum,
  setVirtioCsumOffset,
  setVirtioCsumStart,
  setVirtioFlags,
  setVirtioGsoSize,
  setVirtioGsoType,
  setVirtioHdrLen,
  virtioCsumOffset,
  virtioCsumStart,
  virtioFlags,
  virtioGsoSize,
  virtioGsoType,
} from '../../wire/virtio-net.ts';
import { TunOffload, type TunDevice } from './tun-device.ts';

export interface TunPortEvents {
  /** A read failed (polling has stopped); `errno` is positive. */
  onReadError(errno: number): void;
  /** The receiver threw for one packet. */
  onFault(error: unknown): void;
}

const OFFLOAD_FLAGS = PacketFlag.CHECKSUM_PARTIAL | PacketFlag.GSO_TCPV4 | PacketFlag.GSO_UDP_L4 | PacketFlag.GSO_ECN;

export class TunPort implements Device {
  /** What the kernel agreed to send us (TUNSETOFFLOAD) is what we hand it back. */
  readonly offloads: number;
  private receiver: Receiver | null = null;
  private started = false;
  /** The virtio-net header of an offloaded write, filled per packet. */
  private readonly writeHeader = new Uint8Array(VIRTIO_NET_HDR_LENGTH);

  constructor(
    readonly tun: TunDevice,
    private readonly events: TunPortEvents,
  ) {
    this.offloads = packetOffloadsOf(tun.offloads);
  }

  get name(): string {
    return this.tun.name;
  }

  transmit(buf: Uint8Array, offset: number, length: number, _nextHop: number, flags: number = PacketFlag.NONE, gsoSize = 0): number {
    if ((flags & OFFLOAD_FLAGS) === 0 || this.tun.headerLength === 0) return this.tun.write(buf, offset, length);
    this.fillWriteHeader(buf, offset, flags, gsoSize);
    return this.tun.writeWithHeader(this.writeHeader, 0, buf, offset, length);
  }

  setReceiver(receiver: Receiver | null): void {
    this.receiver = receiver;
    if (receiver && !this.started) this.start();
  }

  close(): void {
    this.receiver = null;
    this.tun.close();
  }

  private fillWriteHeader(buf: Uint8Array, offset: number, flags: number, gsoSize: number): void {
    const header = this.writeHeader;
    const ipHeaderLength = (buf[offset]! & 0x0f) << 2;
    const tcp = buf[offset + IPV4.PROTOCOL] === IpProtocol.TCP;
    const l4HeaderLength = tcp ? (buf[offset + ipHeaderLength + TCP.DATA_OFFSET]! >>> 4) << 2 : UDP_HEADER_LENGTH;
    let gsoType: number = VirtioGso.NONE;
    if (flags & PacketFlag.GSO_TCPV4) gsoType = VirtioGso.TCPV4;
    else if (flags & PacketFlag.GSO_UDP_L4) gsoType = VirtioGso.UDP_L4;
    if (gsoType !== VirtioGso.NONE && flags & PacketFlag.GSO_ECN) gsoType |= VirtioGso.ECN;
    setVirtioFlags(header, 0, flags & PacketFlag.CHECKSUM_PARTIAL ? VirtioNetFlag.NEEDS_CSUM : 0);
    setVirtioGsoType(header, 0, gsoType);
    setVirtioHdrLen(header, 0, ipHeaderLength + l4HeaderLength);
    setVirtioGsoSize(header, 0, gsoType === VirtioGso.NONE ? 0 : gsoSize);
    setVirtioCsumStart(header, 0, ipHeaderLength);
    setVirtioCsumOffset(header, 0, partialChecksumOffset(buf[offset + IPV4.PROTOCOL]!));
  }

  private start(): void {
    this.started = true;
    const slotSize = this.tun.slotSize;
    const headerLength = this.tun.headerLength;
    this.tun.start((slab, lengths, count) => {
      if (count < 0) return this.events.onReadError(-count);
      for (let i = 0; i < count; i++) {
        const receiver = this.receiver;
        if (!receiver) return;
        const slot = i * slotSize;
        const start = slot + headerLength;
        const length = lengths[i]!;
        let flags: number = PacketFlag.NONE;
        let gsoSize = 0;
        if (headerLength !== 0) {
          flags = receivedFlags(slab, slot, start, length);
          if (flags & (PacketFlag.GSO_TCPV4 | PacketFlag.GSO_UDP_L4)) gsoSize = virtioGsoSize(slab, slot);
        }
        try {
          receiver(slab.subarray(start, start + length), flags, gsoSize);
        } catch (error) {
          this.events.onFault(error);
        }
      }
    });
  }
}

/** TunOffload flags the kernel granted, as the PacketFlag kinds a write may carry. */
export function packetOffloadsOf(tunOffloads: number): number {
  if ((tunOffloads & TunOffload.CSUM) === 0) return 0;
  let offloads: number = PacketFlag.CHECKSUM_PARTIAL;
  if (tunOffloads & TunOffload.TSO4) offloads |= PacketFlag.GSO_TCPV4 | PacketFlag.GSO_ECN;
  if (tunOffloads & TunOffload.USO4) offloads |= PacketFlag.GSO_UDP_L4;
  return offloads;
}

/**
 * The PacketFlag bits of the packet of `length` bytes at `start`, from the virtio-net header at
 * `header`. A TCPV6 or UFO super-packet keeps no GSO bits: the router, IPv4 only, drops the one
 * and takes the other for the large datagram it is (fragmenting it if it must).
 */
function receivedFlags(slab: Buffer, header: number, start: number, length: number): number {
  const virtio = virtioFlags(slab, header);
  let flags: number = virtio & VirtioNetFlag.DATA_VALID ? PacketFlag.CHECKSUM_VERIFIED : PacketFlag.NONE;
  if (virtio & VirtioNetFlag.NEEDS_CSUM) {
    const csumStart = virtioCsumStart(slab, header);
    const csumOffset = virtioCsumOffset(slab, header);
    if (isTransportChecksum(slab, start, length, csumStart, csumOffset)) flags |= PacketFlag.CHECKSUM_PARTIAL;
    else if (completePartialChecksum(slab, start, length, csumStart, csumOffset)) flags |= PacketFlag.CHECKSUM_VERIFIED;
  }
  const gsoType = virtioGsoType(slab, header);
  const gso = gsoType & ~VirtioGso.ECN;
  if (gso === VirtioGso.TCPV4) flags |= PacketFlag.GSO_TCPV4;
  else if (gso === VirtioGso.UDP_L4) flags |= PacketFlag.GSO_UDP_L4;
  else return flags;
  if (gsoType & VirtioGso.ECN) flags |= PacketFlag.GSO_ECN;
  return flags;
}

/** Whether a partial checksum sits in the TCP or UDP header right behind an IPv4 header. */
function isTransportChecksum(slab: Buffer, start: number, length: number, csumStart: number, csumOffset: number): boolean {
  if (length < IPV4_MIN_HEADER_LENGTH || slab[start]! >>> 4 !== 4) return false;
  if (csumStart !== (slab[start]! & 0x0f) << 2) return false;
  const field = partialChecksumOffset(slab[start + IPV4.PROTOCOL]!);
  return field >= 0 && csumOffset === field && csumStart + field + 2 <= length;
}
