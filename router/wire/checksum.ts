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

/**
 * 32- and 16-bit views over whole ArrayBuffers, made once per buffer: summing native words is
 * several times faster than assembling them from bytes, and a TUN read slab is one buffer for its
 * life, so the view is found, not made, per packet.
 */
interface WordViews {
  u32: Uint32Array;
  u16: Uint16Array;
}
const wordViews = new WeakMap<ArrayBufferLike, WordViews>();
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Below this, finding a view costs more than it saves. */
const WORD_PATH_MIN = 64;

function viewsOf(buffer: ArrayBufferLike): WordViews {
  let views = wordViews.get(buffer);
  if (!views) {
    views = { u32: new Uint32Array(buffer, 0, buffer.byteLength >>> 2), u16: new Uint16Array(buffer, 0, buffer.byteLength >>> 1) };
    wordViews.set(buffer, views);
  }
  return views;
}

export function onesComplementSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  const start = buf.byteOffset + off;
  if (len >= WORD_PATH_MIN && (start & 1) === 0 && LITTLE_ENDIAN) return nativeWordSum(buf, start, off, len, initial);
  let sum = initial;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return fold(sum);
}

/**
 * One's complement addition is associative over any word size and byte order independent
 * (RFC 1071 section 2): sum native little-endian 32-bit words (16-bit ones when only 2-aligned)
 * in doubles, fold to 16 bits, and swap the two bytes once to get the big-endian sum.
 */
function nativeWordSum(buf: Uint8Array, start: number, off: number, len: number, initial: number): number {
  const views = viewsOf(buf.buffer);
  let a = 0;
  let b = 0;
  let done: number;
  if ((start & 3) === 0) {
    const words = views.u32;
    const first = start >>> 2;
    const last = first + (len >>> 2);
    let w = first;
    for (; w + 1 < last; w += 2) {
      a += words[w]!;
      b += words[w + 1]!;
    }
    if (w < last) a += words[w]!;
    done = (len >>> 2) << 2;
  } else {
    const words = views.u16;
    const first = start >>> 1;
    const last = first + (len >>> 1);
    let w = first;
    for (; w + 1 < last; w += 2) {
      a += words[w]!;
      b += words[w + 1]!;
    }
    if (w < last) a += words[w]!;
    done = (len >>> 1) << 1;
  }
  let sum = fold(a + b);
  // A 16-bit tail left by the 32-bit loop is a native word too; an odd byte is the high byte, big-endian.
  if (done + 2 <= len) {
    sum += views.u16[(start + done) >>> 1]!;
    done += 2;
  }
  sum = fold(sum);
  sum = ((sum & 0xff) << 8) | (sum >>> 8);
  if (done < len) sum += buf[off + len - 1]! << 8;
  return fold(sum + initial);
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

/**
 * A pseudo-header word pair replaced under a partial checksum (a CHECKSUM_PARTIAL packet, whose
 * field holds the uncomplemented pseudo-header sum): the sum itself moves by new - old, as the
 * kernel's inet_proto_csum_replace4 does with pseudohdr set. Fields outside the pseudo-header
 * (ports, sequence numbers, payload) change nothing there: the device sums them when it finishes.
 */
export function partialChecksumReplace32(seed: number, oldValue: number, newValue: number): number {
  return ~checksumReplace32(~seed & 0xffff, oldValue, newValue) & 0xffff;
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
