/**
 * TCP header (RFC 9293 section 3.1; options from RFC 2018 (SACK) and RFC 7323 (window scale,
 * timestamps)).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------------------------------+-------------------------------+
 *   |          Source Port          |       Destination Port        |
 *   +-------------------------------+-------------------------------+
 *   |                        Sequence Number                        |
 *   +---------------------------------------------------------------+
 *   |                    Acknowledgment Number                      |
 *   +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
 *   |  Data |       |C|E|U|A|P|R|S|F|                               |
 *   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *   |       |       |R|E|G|K|H|T|N|N|                               |
 *   +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
 *   |           Checksum            |         Urgent Pointer        |
 *   +-------------------------------+-------------------------------+
 *   |                    Options (data offset > 5)                  |
 *   +---------------------------------------------------------------+
 *
 * The data offset counts 32-bit words. Options are kind bytes; END (0) and NOP (1) are one byte,
 * every other kind is followed by a length byte that counts the kind and length bytes too.
 * The checksum covers the pseudo-header (see checksum.ts), the header and the data.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum, pseudoHeaderSum, transportChecksum } from './checksum.ts';

/** IPPROTO_TCP; ipv4.ts has it as IpProtocol.TCP, kept local so this module stands alone. */
const PROTOCOL_TCP = 6;

export const TCP = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  OPTIONS: 20,
} as const;

export const TCP_MIN_HEADER_LENGTH = 20;

export const TcpFlag = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

export function tcpSrcPort(buf: Uint8Array, off: number): number {
  return readU16(buf, off + TCP.SRC_PORT);
}

export function setTcpSrcPort(buf: Uint8Array, off: number, port: number): void {
  writeU16(buf, off + TCP.SRC_PORT, port);
}

export function tcpDstPort(buf: Uint8Array, off: number): number {
  return readU16(buf, off + TCP.DST_PORT);
}

export function setTcpDstPort(buf: Uint8Array, off: number, port: number): void {
  writeU16(buf, off + TCP.DST_PORT, port);
}

export function tcpSeq(buf: Uint8Array, off: number): number {
  return readU32(buf, off + TCP.SEQ);
}

export function setTcpSeq(buf: Uint8Array, off: number, value: number): void {
  writeU32(buf, off + TCP.SEQ, value);
}

export function tcpAck(buf: Uint8Array, off: number): number {
  return readU32(buf, off + TCP.ACK);
}

export function setTcpAck(buf: Uint8Array, off: number, value: number): void {
  writeU32(buf, off + TCP.ACK, value);
}

/** In bytes. */
export function tcpHeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off + TCP.DATA_OFFSET] >>> 4) * 4;
}

/** The eight flag bits of byte 13 (CWR..FIN); the reserved bits of byte 12 are left alone. */
export function tcpFlags(buf: Uint8Array, off: number): number {
  return buf[off + TCP.FLAGS];
}

export function setTcpFlags(buf: Uint8Array, off: number, flags: number): void {
  buf[off + TCP.FLAGS] = flags;
}

export function tcpWindow(buf: Uint8Array, off: number): number {
  return readU16(buf, off + TCP.WINDOW);
}

export function setTcpWindow(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + TCP.WINDOW, value);
}

export function tcpChecksum(buf: Uint8Array, off: number): number {
  return readU16(buf, off + TCP.CHECKSUM);
}

export function setTcpChecksum(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + TCP.CHECKSUM, value);
}

export function tcpUrgent(buf: Uint8Array, off: number): number {
  return readU16(buf, off + TCP.URGENT);
}

/**
 * The offset in `buf` of the first option of `kind`, -1 if there is none before END or the end of
 * the header, -2 if an option before it is malformed (length < 2 or running past the header).
 * The header must have passed validateTcp, so that the data offset lies inside `buf`.
 */
export function tcpFindOption(buf: Uint8Array, off: number, kind: number): number {
  const end = off + tcpHeaderLength(buf, off);
  let i = off + TCP.OPTIONS;
  while (i < end) {
    const k = buf[i];
    if (k === TcpOptionKind.END) return kind === TcpOptionKind.END ? i : -1;
    if (k === TcpOptionKind.NOP) {
      if (kind === TcpOptionKind.NOP) return i;
      i += 1;
      continue;
    }
    if (i + 1 >= end) return -2;
    const length = buf[i + 1];
    if (length < 2 || i + length > end) return -2;
    if (k === kind) return i;
    i += length;
  }
  return -1;
}

/** Blocks in the SACK option at `optionOffset` (as found by tcpFindOption). */
export function tcpSackBlockCount(buf: Uint8Array, optionOffset: number): number {
  return (buf[optionOffset + 1] - 2) >>> 3;
}

/** Where block `index` starts: left edge u32 there, right edge u32 4 bytes on (see bytes.ts). */
export function tcpSackBlockOffset(optionOffset: number, index: number): number {
  return optionOffset + 2 + index * 8;
}

export const TcpProblem = { OK: 0, TRUNCATED: 1, BAD_DATA_OFFSET: 2 } as const;

export const TCP_PROBLEM_NAMES: readonly string[] = ['ok', 'tcp-truncated', 'tcp-bad-data-offset'];

/**
 * The header checks of the kernel's tcp_v4_rcv: the fixed header fits (TRUNCATED), the data offset
 * is at least 5 (BAD_DATA_OFFSET) and the header it claims fits (TRUNCATED). `len` is the segment
 * length. The checksum needs the addresses: see tcpChecksumValid.
 */
export function validateTcp(buf: Uint8Array, off: number, len: number): number {
  if (len < TCP_MIN_HEADER_LENGTH) return TcpProblem.TRUNCATED;
  const headerLength = tcpHeaderLength(buf, off);
  if (headerLength < TCP_MIN_HEADER_LENGTH) return TcpProblem.BAD_DATA_OFFSET;
  if (headerLength > len) return TcpProblem.TRUNCATED;
  return TcpProblem.OK;
}

export function tcpChecksumValid(buf: Uint8Array, off: number, len: number, src: number, dst: number): boolean {
  return internetChecksum(buf, off, len, pseudoHeaderSum(src, dst, PROTOCOL_TCP, len)) === 0;
}

/** Computes the checksum over the `len`-byte segment and stores it. */
export function fillTcpChecksum(buf: Uint8Array, off: number, len: number, src: number, dst: number): void {
  setTcpChecksum(buf, off, 0);
  setTcpChecksum(buf, off, transportChecksum(buf, off, len, src, dst, PROTOCOL_TCP));
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** TcpFlag bits. */
  flags: number;
  window: number;
  urgent?: number;
  /** Encoded options, copied verbatim and zero-padded (END) to a multiple of 4 bytes. */
  options?: Uint8Array;
  payload?: Uint8Array;
}

export function tcpHeaderLengthOf(repr: TcpRepr): number {
  const optionsLength = repr.options ? repr.options.length : 0;
  return TCP_MIN_HEADER_LENGTH + ((optionsLength + 3) & ~3);
}

/** Header and payload. */
export function tcpLengthOf(repr: TcpRepr): number {
  return tcpHeaderLengthOf(repr) + (repr.payload ? repr.payload.length : 0);
}

/** Writes header, options and payload with the checksum for `src` -> `dst`; returns the length. */
export function emitTcp(repr: TcpRepr, buf: Uint8Array, off: number, src: number, dst: number): number {
  const headerLength = tcpHeaderLengthOf(repr);
  setTcpSrcPort(buf, off, repr.srcPort);
  setTcpDstPort(buf, off, repr.dstPort);
  setTcpSeq(buf, off, repr.seq);
  setTcpAck(buf, off, repr.ack);
  buf[off + TCP.DATA_OFFSET] = (headerLength >>> 2) << 4;
  buf[off + TCP.FLAGS] = repr.flags;
  setTcpWindow(buf, off, repr.window);
  writeU16(buf, off + TCP.URGENT, repr.urgent ?? 0);
  const options = repr.options;
  if (options) {
    buf.set(options, off + TCP.OPTIONS);
    buf.fill(0, off + TCP.OPTIONS + options.length, off + headerLength);
  }
  if (repr.payload) buf.set(repr.payload, off + headerLength);
  const length = tcpLengthOf(repr);
  fillTcpChecksum(buf, off, length, src, dst);
  return length;
}
