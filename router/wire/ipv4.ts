/**
 * IPv4 header (RFC 791 section 3.1).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------+-------+---------------+-------------------------------+
 *   |Version|  IHL  |      TOS      |         Total Length          |
 *   +-------+-------+---------------+-----+-------------------------+
 *   |        Identification         |Flags|     Fragment Offset     |
 *   +---------------+---------------+-----+-------------------------+
 *   |      TTL      |   Protocol    |        Header Checksum        |
 *   +---------------+---------------+-------------------------------+
 *   |                        Source Address                         |
 *   +---------------------------------------------------------------+
 *   |                      Destination Address                      |
 *   +-----------------------------------------------+---------------+
 *   |              Options (IHL > 5)                |    Padding    |
 *   +-----------------------------------------------+---------------+
 *
 * IHL counts 32-bit words (5..15, so 20..60 bytes). Flags are 0, DF, MF from the high bit; the
 * fragment offset counts 8-byte units. The checksum covers the header only. Options are kept as
 * opaque bytes: nothing here interprets or rewrites them.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum, onesComplementSum, updateChecksumField16 } from './checksum.ts';

export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17, GRE: 47 } as const;

export const IPV4 = {
  VERSION_IHL: 0,
  TOS: 1,
  TOTAL_LENGTH: 2,
  IDENT: 4,
  FLAGS_FRAGMENT: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
  OPTIONS: 20,
} as const;

export const IPV4_MIN_HEADER_LENGTH = 20;
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;

export function ipv4Version(buf: Uint8Array, off: number): number {
  return buf[off + IPV4.VERSION_IHL] >>> 4;
}

/** In bytes. */
export function ipv4HeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off + IPV4.VERSION_IHL] & 0x0f) * 4;
}

export function ipv4Tos(buf: Uint8Array, off: number): number {
  return buf[off + IPV4.TOS];
}

export function ipv4TotalLength(buf: Uint8Array, off: number): number {
  return readU16(buf, off + IPV4.TOTAL_LENGTH);
}

export function setIpv4TotalLength(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + IPV4.TOTAL_LENGTH, value);
}

export function ipv4Ident(buf: Uint8Array, off: number): number {
  return readU16(buf, off + IPV4.IDENT);
}

export function setIpv4Ident(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + IPV4.IDENT, value);
}

/** The raw word: flags in the top 3 bits, the offset in 8-byte units below. */
export function ipv4FlagsFragment(buf: Uint8Array, off: number): number {
  return readU16(buf, off + IPV4.FLAGS_FRAGMENT);
}

export function setIpv4FlagsFragment(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + IPV4.FLAGS_FRAGMENT, value);
}

export function ipv4DontFragment(buf: Uint8Array, off: number): boolean {
  return (ipv4FlagsFragment(buf, off) & IPV4_FLAG_DF) !== 0;
}

export function ipv4MoreFragments(buf: Uint8Array, off: number): boolean {
  return (ipv4FlagsFragment(buf, off) & IPV4_FLAG_MF) !== 0;
}

/** In bytes. */
export function ipv4FragmentOffset(buf: Uint8Array, off: number): number {
  return (ipv4FlagsFragment(buf, off) & IPV4_FRAGMENT_OFFSET_MASK) * 8;
}

/** Any fragment, the first one included (it has MF set and offset 0). */
export function ipv4IsFragment(buf: Uint8Array, off: number): boolean {
  return (ipv4FlagsFragment(buf, off) & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET_MASK)) !== 0;
}

export function ipv4Ttl(buf: Uint8Array, off: number): number {
  return buf[off + IPV4.TTL];
}

/** Raw write: the header checksum is not touched. */
export function setIpv4Ttl(buf: Uint8Array, off: number, value: number): void {
  buf[off + IPV4.TTL] = value;
}

export function ipv4Protocol(buf: Uint8Array, off: number): number {
  return buf[off + IPV4.PROTOCOL];
}

export function setIpv4Protocol(buf: Uint8Array, off: number, value: number): void {
  buf[off + IPV4.PROTOCOL] = value;
}

export function ipv4Checksum(buf: Uint8Array, off: number): number {
  return readU16(buf, off + IPV4.CHECKSUM);
}

export function setIpv4Checksum(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + IPV4.CHECKSUM, value);
}

export function ipv4Src(buf: Uint8Array, off: number): number {
  return readU32(buf, off + IPV4.SRC);
}

export function setIpv4Src(buf: Uint8Array, off: number, address: number): void {
  writeU32(buf, off + IPV4.SRC, address);
}

export function ipv4Dst(buf: Uint8Array, off: number): number {
  return readU32(buf, off + IPV4.DST);
}

export function setIpv4Dst(buf: Uint8Array, off: number, address: number): void {
  writeU32(buf, off + IPV4.DST, address);
}

/** The value the checksum field should hold, computed as if that field were zero. */
export function computeIpv4HeaderChecksum(buf: Uint8Array, off: number): number {
  const after = off + IPV4.CHECKSUM + 2;
  const rest = onesComplementSum(buf, after, off + ipv4HeaderLength(buf, off) - after);
  return internetChecksum(buf, off, IPV4.CHECKSUM, rest);
}

export function fillIpv4HeaderChecksum(buf: Uint8Array, off: number): void {
  setIpv4Checksum(buf, off, computeIpv4HeaderChecksum(buf, off));
}

/**
 * The forwarding path's TTL decrement. TTL and protocol form one 16-bit word, so the checksum
 * update replaces that word. The caller checks the TTL first (a TTL of 0 would wrap to 255).
 */
export function decrementIpv4Ttl(buf: Uint8Array, off: number): void {
  const ttl = buf[off + IPV4.TTL];
  const protocol = buf[off + IPV4.PROTOCOL];
  const newTtl = (ttl - 1) & 0xff;
  buf[off + IPV4.TTL] = newTtl;
  updateChecksumField16(buf, off + IPV4.CHECKSUM, (ttl << 8) | protocol, (newTtl << 8) | protocol);
}

/**
 * Why a buffer is not an IPv4 packet the router accepts. TRUNCATED: the buffer ends inside the
 * header. BAD_TOTAL_LENGTH covers both a total length shorter than the header and one longer than
 * the buffer (the kernel counts the latter as InTruncatedPkts, the rest as InHdrErrors).
 */
export const Ipv4Problem = {
  OK: 0,
  TRUNCATED: 1,
  BAD_VERSION: 2,
  BAD_HEADER_LENGTH: 3,
  BAD_TOTAL_LENGTH: 4,
  BAD_CHECKSUM: 5,
} as const;

export const IPV4_PROBLEM_NAMES: readonly string[] = [
  'ok',
  'ipv4-truncated',
  'ipv4-bad-version',
  'ipv4-bad-header-length',
  'ipv4-bad-total-length',
  'ipv4-bad-checksum',
];

/**
 * The checks of the kernel's ip_rcv_core, in its order (the header checksum before the total
 * length). `len` is the number of bytes available from `off`; bytes past the total length are
 * link padding, which the caller trims.
 */
export function validateIpv4(buf: Uint8Array, off: number, len: number): number {
  if (len < IPV4_MIN_HEADER_LENGTH) return Ipv4Problem.TRUNCATED;
  if (ipv4Version(buf, off) !== 4) return Ipv4Problem.BAD_VERSION;
  const headerLength = ipv4HeaderLength(buf, off);
  if (headerLength < IPV4_MIN_HEADER_LENGTH) return Ipv4Problem.BAD_HEADER_LENGTH;
  if (headerLength > len) return Ipv4Problem.TRUNCATED;
  if (internetChecksum(buf, off, headerLength) !== 0) return Ipv4Problem.BAD_CHECKSUM;
  const totalLength = ipv4TotalLength(buf, off);
  if (totalLength < headerLength || totalLength > len) return Ipv4Problem.BAD_TOTAL_LENGTH;
  return Ipv4Problem.OK;
}

export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  tos?: number;
  ident?: number;
  /** The raw flags/fragment-offset word, e.g. IPV4_FLAG_DF. */
  flagsFragment?: number;
  /** At most 40 bytes, copied verbatim, then zero-padded (End of Option List) to a multiple of 4. */
  options?: Uint8Array;
  payloadLength: number;
}

export function ipv4HeaderLengthOf(repr: Ipv4Repr): number {
  const optionsLength = repr.options ? repr.options.length : 0;
  return IPV4_MIN_HEADER_LENGTH + ((optionsLength + 3) & ~3);
}

/** Writes the header only (the payload goes after it) and returns its length. */
export function emitIpv4Header(repr: Ipv4Repr, buf: Uint8Array, off: number): number {
  const headerLength = ipv4HeaderLengthOf(repr);
  buf[off + IPV4.VERSION_IHL] = 0x40 | (headerLength >>> 2);
  buf[off + IPV4.TOS] = repr.tos ?? 0;
  setIpv4TotalLength(buf, off, headerLength + repr.payloadLength);
  setIpv4Ident(buf, off, repr.ident ?? 0);
  setIpv4FlagsFragment(buf, off, repr.flagsFragment ?? 0);
  buf[off + IPV4.TTL] = repr.ttl;
  buf[off + IPV4.PROTOCOL] = repr.protocol;
  setIpv4Src(buf, off, repr.src);
  setIpv4Dst(buf, off, repr.dst);
  const options = repr.options;
  if (options) {
    buf.set(options, off + IPV4.OPTIONS);
    buf.fill(0, off + IPV4.OPTIONS + options.length, off + headerLength);
  }
  fillIpv4HeaderChecksum(buf, off);
  return headerLength;
}

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Strict dotted quad for tests and diagnostics; throws on anything else (never on the packet path). */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255)) {
    throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  }
  return ((Number(parts[0]) << 24) | (Number(parts[1]) << 16) | (Number(parts[2]) << 8) | Number(parts[3])) >>> 0;
}
