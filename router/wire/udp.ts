/**
 * UDP header (RFC 768).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------------------------------+-------------------------------+
 *   |          Source Port          |       Destination Port        |
 *   +-------------------------------+-------------------------------+
 *   |            Length             |           Checksum            |
 *   +-------------------------------+-------------------------------+
 *   |                          data ...                             |
 *   +---------------------------------------------------------------+
 *
 * Length counts header and data. The checksum covers the pseudo-header (see checksum.ts), header
 * and data; 0 means the sender computed none, so a computed 0 is sent as 0xffff.
 */
import { readU16, writeU16 } from './bytes.ts';
import { internetChecksum, pseudoHeaderSum, transportChecksum } from './checksum.ts';

/** IPPROTO_UDP; ipv4.ts has it as IpProtocol.UDP, kept local so this module stands alone. */
const PROTOCOL_UDP = 17;

export const UDP = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

export const UDP_HEADER_LENGTH = 8;

export function udpSrcPort(buf: Uint8Array, off: number): number {
  return readU16(buf, off + UDP.SRC_PORT);
}

export function setUdpSrcPort(buf: Uint8Array, off: number, port: number): void {
  writeU16(buf, off + UDP.SRC_PORT, port);
}

export function udpDstPort(buf: Uint8Array, off: number): number {
  return readU16(buf, off + UDP.DST_PORT);
}

export function setUdpDstPort(buf: Uint8Array, off: number, port: number): void {
  writeU16(buf, off + UDP.DST_PORT, port);
}

export function udpLength(buf: Uint8Array, off: number): number {
  return readU16(buf, off + UDP.LENGTH);
}

export function setUdpLength(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + UDP.LENGTH, value);
}

export function udpChecksum(buf: Uint8Array, off: number): number {
  return readU16(buf, off + UDP.CHECKSUM);
}

export function setUdpChecksum(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + UDP.CHECKSUM, value);
}

export const UdpProblem = { OK: 0, TRUNCATED: 1, BAD_LENGTH: 2 } as const;

export const UDP_PROBLEM_NAMES: readonly string[] = ['ok', 'udp-truncated', 'udp-bad-length'];

/**
 * The kernel's __udp4_lib_rcv checks: the header fits, and its length field is at least the header
 * and no more than the `len` bytes the IP payload holds (both are its "short packet").
 */
export function validateUdp(buf: Uint8Array, off: number, len: number): number {
  if (len < UDP_HEADER_LENGTH) return UdpProblem.TRUNCATED;
  const length = udpLength(buf, off);
  if (length < UDP_HEADER_LENGTH || length > len) return UdpProblem.BAD_LENGTH;
  return UdpProblem.OK;
}

/** True for a correct checksum and for a 0 field (no checksum); `len` is the UDP length. */
export function udpChecksumValid(buf: Uint8Array, off: number, len: number, src: number, dst: number): boolean {
  if (udpChecksum(buf, off) === 0) return true;
  return internetChecksum(buf, off, len, pseudoHeaderSum(src, dst, PROTOCOL_UDP, len)) === 0;
}

/** Computes the checksum over the `len`-byte datagram and stores it (never 0, see above). */
export function fillUdpChecksum(buf: Uint8Array, off: number, len: number, src: number, dst: number): void {
  setUdpChecksum(buf, off, 0);
  setUdpChecksum(buf, off, transportChecksum(buf, off, len, src, dst, PROTOCOL_UDP));
}

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
}

/** Header and payload: the value of the length field. */
export function udpLengthOf(repr: UdpRepr): number {
  return UDP_HEADER_LENGTH + (repr.payload ? repr.payload.length : 0);
}

/** Writes header and payload with the checksum for `src` -> `dst`; returns the length. */
export function emitUdp(repr: UdpRepr, buf: Uint8Array, off: number, src: number, dst: number): number {
  const length = udpLengthOf(repr);
  setUdpSrcPort(buf, off, repr.srcPort);
  setUdpDstPort(buf, off, repr.dstPort);
  setUdpLength(buf, off, length);
  if (repr.payload) buf.set(repr.payload, off + UDP_HEADER_LENGTH);
  fillUdpChecksum(buf, off, length, src, dst);
  return length;
}
