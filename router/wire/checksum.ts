/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * The checksum is the 16-bit one's complement of the one's complement sum of the data taken as
 * big-endian 16-bit words (an odd trailing byte is padded with a zero byte on the right). One's
 * complement addition is ordinary addition with the carries out of bit 15 added back in ("end
 * around carry"), so a sum can be accumulated in a wide integer and folded once at the end.
 *
 * TCP and UDP also cover the IPv4 pseudo-header (RFC 793 section 3.1, RFC 768):
 *
 *    0      7 8     15 16    23 24    31
 *   +--------+--------+--------+--------+
 *   |          source address           |
 *   +--------+--------+--------+--------+
 *   |        destination address        |
 *   +--------+--------+--------+--------+
 *   |  zero  |protocol|   TCP/UDP length |
 *   +--------+--------+--------+--------+
 */
import { readU16, writeU16 } from './bytes.ts';

/** IPPROTO_UDP, spelled out here because ipv4.ts imports this module. */
const PROTOCOL_UDP = 17;

/** A double holds any sum we build exactly (well past 2^32, where `>>> 16` would break). */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

export function onesComplementSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return fold(sum);
}

export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~onesComplementSum(buf, off, len, initial) & 0xffff;
}

export function pseudoHeaderSum(src: number, dst: number, protocol: number, l4Length: number): number {
  return fold((src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Length);
}

/**
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it never turns a correct 0x0000 into
 * 0xffff: the inner sum is 0 only if all three terms are, which a real header cannot produce.
 */
export function checksumReplace16(checksum: number, oldWord: number, newWord: number): number {
  return ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** A 32-bit field (an address, a sequence number) is two words, replaced in one sum. */
export function checksumReplace32(checksum: number, oldValue: number, newValue: number): number {
  return (
    ~fold(
      (~checksum & 0xffff) +
        (~oldValue >>> 16) +
        (~oldValue & 0xffff) +
        (newValue >>> 16) +
        (newValue & 0xffff),
    ) & 0xffff
  );
}

export function updateChecksumField16(
  buf: Uint8Array,
  checksumOffset: number,
  oldWord: number,
  newWord: number,
): void {
  writeU16(buf, checksumOffset, checksumReplace16(readU16(buf, checksumOffset), oldWord, newWord));
}

export function updateChecksumField32(
  buf: Uint8Array,
  checksumOffset: number,
  oldValue: number,
  newValue: number,
): void {
  writeU16(buf, checksumOffset, checksumReplace32(readU16(buf, checksumOffset), oldValue, newValue));
}

/**
 * RFC 768: a transmitted 0 means the sender computed no checksum, so it must stay 0; a computed 0
 * is sent as 0xffff, its other one's complement spelling (the kernel's CSUM_MANGLED_0).
 */
export function updateUdpChecksumField16(
  buf: Uint8Array,
  checksumOffset: number,
  oldWord: number,
  newWord: number,
): void {
  const checksum = readU16(buf, checksumOffset);
  if (checksum === 0) return;
  writeU16(buf, checksumOffset, checksumReplace16(checksum, oldWord, newWord) || 0xffff);
}

export function updateUdpChecksumField32(
  buf: Uint8Array,
  checksumOffset: number,
  oldValue: number,
  newValue: number,
): void {
  const checksum = readU16(buf, checksumOffset);
  if (checksum === 0) return;
  writeU16(buf, checksumOffset, checksumReplace32(checksum, oldValue, newValue) || 0xffff);
}

/**
 * The checksum over the pseudo-header and `l4Len` bytes at `l4Off`, as they are: with the checksum
 * field zeroed this is the value to store; over a packet with a correct checksum it is 0 (TCP) or
 * 0xffff (UDP, by the zero rule: check a UDP packet with udpChecksumValid instead).
 */
export function transportChecksum(
  buf: Uint8Array,
  l4Off: number,
  l4Len: number,
  src: number,
  dst: number,
  protocol: number,
): number {
  const checksum = internetChecksum(buf, l4Off, l4Len, pseudoHeaderSum(src, dst, protocol, l4Len));
  return protocol === PROTOCOL_UDP && checksum === 0 ? 0xffff : checksum;
}
