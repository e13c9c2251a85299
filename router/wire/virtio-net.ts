/**
 * The virtio-net header in front of every packet on a TUN opened with IFF_VNET_HDR: struct
 * virtio_net_hdr_v1 of include/uapi/linux/virtio_net.h (the virtio 1.x layout, bit for bit the
 * legacy virtio_net_hdr_mrg_rxbuf).
 *
 *    0               1               2               3
 *    0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 *   +---------------+---------------+-------------------------------+
 *   |     Flags     |   GSO type    |         Header length         |
 *   +---------------+---------------+-------------------------------+
 *   |           GSO size            |        Checksum start         |
 *   +-------------------------------+-------------------------------+
 *   |        Checksum offset        |          Num buffers          |
 *   +-------------------------------+-------------------------------+
 *
 * The 16-bit fields are little-endian: the TUN addon sets TUNSETVNETLE, so this holds on every
 * host (the kernel's default is the host's own order). Offsets count from the first byte of the
 * IP header: a TUN has no link-layer header.
 *
 * - Flags: NEEDS_CSUM: the transport checksum is not computed; the field at checksum start +
 *   checksum offset holds only the pseudo-header sum, and the one's complement of the sum from
 *   checksum start to the end of the packet belongs there (see completePartialChecksum).
 *   DATA_VALID (kernel to reader only): the checksum was already verified.
 * - GSO type: NONE for one packet, else a super-packet of several segments that share headers:
 *   TCPV4, UDP (IPv4 fragmentation, UFO; no longer made by Linux), TCPV6, UDP_L4 (UDP
 *   segmentation, USO, IPv4 or IPv6), with ECN or'ed in when the TCP segments carry CWR.
 * - Header length: IP plus transport header bytes (a hint; the headers themselves say).
 * - GSO size: payload bytes per segment (the MSS); the last segment may carry fewer.
 * - Num buffers: for merged receive buffers; the TUN driver neither reads nor writes it.
 */
import { onesComplementSum, pseudoHeaderSum } from './checksum.ts';
import { writeU16 } from './bytes.ts';

export const VIRTIO_NET_HDR = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
  NUM_BUFFERS: 10,
} as const;

/** sizeof(struct virtio_net_hdr_v1): what the TUN addon asks for with TUNSETVNETHDRSZ. */
export const VIRTIO_NET_HDR_LENGTH = 12;

export const VirtioNetFlag = { NEEDS_CSUM: 1, DATA_VALID: 2 } as const;

export const VirtioGso = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5, ECN: 0x80 } as const;

function readU16LE(buf: Uint8Array, i: number): number {
  return buf[i] | (buf[i + 1] << 8);
}

function writeU16LE(buf: Uint8Array, i: number, value: number): void {
  buf[i] = value;
  buf[i + 1] = value >>> 8;
}

export function virtioFlags(buf: Uint8Array, off: number): number {
  return buf[off + VIRTIO_NET_HDR.FLAGS];
}

export function setVirtioFlags(buf: Uint8Array, off: number, flags: number): void {
  buf[off + VIRTIO_NET_HDR.FLAGS] = flags;
}

export function virtioNeedsChecksum(buf: Uint8Array, off: number): boolean {
  return (buf[off + VIRTIO_NET_HDR.FLAGS] & VirtioNetFlag.NEEDS_CSUM) !== 0;
}

export function virtioDataValid(buf: Uint8Array, off: number): boolean {
  return (buf[off + VIRTIO_NET_HDR.FLAGS] & VirtioNetFlag.DATA_VALID) !== 0;
}

/** The whole byte, the ECN bit included. */
export function virtioGsoType(buf: Uint8Array, off: number): number {
  return buf[off + VIRTIO_NET_HDR.GSO_TYPE];
}

export function setVirtioGsoType(buf: Uint8Array, off: number, gsoType: number): void {
  buf[off + VIRTIO_NET_HDR.GSO_TYPE] = gsoType;
}

/** The GSO type without the ECN bit: NONE, TCPV4, UDP, TCPV6 or UDP_L4. */
export function virtioGsoProtocol(buf: Uint8Array, off: number): number {
  return buf[off + VIRTIO_NET_HDR.GSO_TYPE] & ~VirtioGso.ECN;
}

export function virtioGsoEcn(buf: Uint8Array, off: number): boolean {
  return (buf[off + VIRTIO_NET_HDR.GSO_TYPE] & VirtioGso.ECN) !== 0;
}

export function virtioHdrLen(buf: Uint8Array, off: number): number {
  return readU16LE(buf, off + VIRTIO_NET_HDR.HDR_LEN);
}

export function setVirtioHdrLen(buf: Uint8Array, off: number, value: number): void {
  writeU16LE(buf, off + VIRTIO_NET_HDR.HDR_LEN, value);
}

export function virtioGsoSize(buf: Uint8Array, off: number): number {
  return readU16LE(buf, off + VIRTIO_NET_HDR.GSO_SIZE);
}

export function setVirtioGsoSize(buf: Uint8Array, off: number, value: number): void {
  writeU16LE(buf, off + VIRTIO_NET_HDR.GSO_SIZE, value);
}

export function virtioCsumStart(buf: Uint8Array, off: number): number {
  return readU16LE(buf, off + VIRTIO_NET_HDR.CSUM_START);
}

export function setVirtioCsumStart(buf: Uint8Array, off: number, value: number): void {
  writeU16LE(buf, off + VIRTIO_NET_HDR.CSUM_START, value);
}

export function virtioCsumOffset(buf: Uint8Array, off: number): number {
  return readU16LE(buf, off + VIRTIO_NET_HDR.CSUM_OFFSET);
}

export function setVirtioCsumOffset(buf: Uint8Array, off: number, value: number): void {
  writeU16LE(buf, off + VIRTIO_NET_HDR.CSUM_OFFSET, value);
}

/** All zero: one packet, checksums complete. What TunDevice.write sends. */
export function clearVirtioNetHeader(buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + VIRTIO_NET_HDR_LENGTH);
}

export interface VirtioNetRepr {
  /** VirtioNetFlag bits. */
  flags: number;
  /** VirtioGso, the ECN bit included. */
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function parseVirtioNetHeader(buf: Uint8Array, off: number): VirtioNetRepr {
  return {
    flags: virtioFlags(buf, off),
    gsoType: virtioGsoType(buf, off),
    hdrLen: virtioHdrLen(buf, off),
    gsoSize: virtioGsoSize(buf, off),
    csumStart: virtioCsumStart(buf, off),
    csumOffset: virtioCsumOffset(buf, off),
  };
}

/** Writes all 12 bytes (num buffers 0); returns the length. */
export function emitVirtioNetHeader(repr: VirtioNetRepr, buf: Uint8Array, off: number): number {
  setVirtioFlags(buf, off, repr.flags);
  setVirtioGsoType(buf, off, repr.gsoType);
  setVirtioHdrLen(buf, off, repr.hdrLen);
  setVirtioGsoSize(buf, off, repr.gsoSize);
  setVirtioCsumStart(buf, off, repr.csumStart);
  setVirtioCsumOffset(buf, off, repr.csumOffset);
  writeU16LE(buf, off + VIRTIO_NET_HDR.NUM_BUFFERS, 0);
  return VIRTIO_NET_HDR_LENGTH;
}

/**
 * The seed a NEEDS_CSUM packet carries in its transport checksum field: the pseudo-header sum
 * (folded, not complemented) for `l4Length` bytes of `protocol` from `src` to `dst`, as the
 * kernel's tcp_v4_send_check and udp4_hwcsum leave it for the device to finish. A super-packet's
 * seed covers its whole length; a segment's, its own.
 */
export function partialChecksumSeed(src: number, dst: number, protocol: number, l4Length: number): number {
  return pseudoHeaderSum(src, dst, protocol, l4Length);
}

/**
 * Finishes a NEEDS_CSUM packet as the kernel's skb_checksum_help does: the one's complement of
 * the sum over [csumStart, packetLength) (the seed in the field included) goes at csumStart +
 * csumOffset, a computed 0 as 0xffff. `off` is where the packet (its IP header) starts. Returns
 * false, touching nothing, when the field would not lie inside the packet.
 */
export function completePartialChecksum(
  buf: Uint8Array,
  off: number,
  packetLength: number,
  csumStart: number,
  csumOffset: number,
): boolean {
  const field = csumStart + csumOffset;
  if (csumStart >= packetLength || field + 2 > packetLength) return false;
  const sum = onesComplementSum(buf, off + csumStart, packetLength - csumStart);
  writeU16(buf, off + field, ~sum & 0xffff || 0xffff);
  return true;
}
