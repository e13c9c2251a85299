/**
 * GRE, two versions on IP protocol 47.
 *
 * Version 0 (RFC 2784 section 2, with the key and sequence number of RFC 2890 section 2):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-----------------+-----+-------------------------------+
 *   |C|R|K|S| Reserved0       | Ver |         Protocol Type         |
 *   +-+-+-+-+-----------------+-----+-------------------------------+
 *   |      Checksum (if C)          |       Reserved1 (if C)        |
 *   +-------------------------------+-------------------------------+
 *   |                         Key (if K)                            |
 *   +---------------------------------------------------------------+
 *   |                   Sequence Number (if S)                      |
 *   +---------------------------------------------------------------+
 *
 * The checksum covers the GRE header and payload. R (RFC 1701 source routing) is obsolete and
 * refused, as the kernel's gre_parse_header does: its routing entries have no fixed length.
 *
 * Version 1, PPTP's enhanced GRE (RFC 2637 section 4.1):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-----+-+-------+-----+-------------------------------+
 *   |C|R|K|S|s|Recur|A| Flags | Ver |   Protocol Type (0x880B)      |
 *   +-+-+-+-+-+-----+-+-------+-----+-------------------------------+
 *   |   Key (HW): Payload Length    |     Key (LW): Call ID         |
 *   +-------------------------------+-------------------------------+
 *   |                   Sequence Number (if S)                      |
 *   +---------------------------------------------------------------+
 *   |                Acknowledgment Number (if A)                   |
 *   +---------------------------------------------------------------+
 *
 * C=0 R=0 K=1 s=0 Recur=0 Flags=0 Ver=1. The key word is split into the PPP payload length and the
 * peer's call ID, which is what PPTP NAT rewrites.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';

export const GRE = {
  FLAGS_VERSION: 0,
  PROTOCOL: 2,
  /** Version 0 with C: checksum, then Reserved1. */
  CHECKSUM: 4,
  RESERVED1: 6,
  /** Version 1: the key word's halves, then the sequence number if S. */
  V1_PAYLOAD_LENGTH: 4,
  V1_CALL_ID: 6,
  V1_SEQUENCE: 8,
} as const;

/** Bits of the first 16-bit word. */
export const GreFlag = {
  CHECKSUM: 0x8000,
  ROUTING: 0x4000,
  KEY: 0x2000,
  SEQUENCE: 0x1000,
  /** Version 1 only. */
  ACK: 0x0080,
} as const;

export const GRE_VERSION_MASK = 0x0007;
export const GRE_MIN_HEADER_LENGTH = 4;
export const GRE_PROTOCOL_PPP = 0x880b;

export function greFlagsVersion(buf: Uint8Array, off: number): number {
  return readU16(buf, off + GRE.FLAGS_VERSION);
}

export function greVersion(buf: Uint8Array, off: number): number {
  return buf[off + GRE.FLAGS_VERSION + 1] & GRE_VERSION_MASK;
}

export function greProtocol(buf: Uint8Array, off: number): number {
  return readU16(buf, off + GRE.PROTOCOL);
}

export function greHasChecksum(buf: Uint8Array, off: number): boolean {
  return (greFlagsVersion(buf, off) & GreFlag.CHECKSUM) !== 0;
}

export function greHasKey(buf: Uint8Array, off: number): boolean {
  return (greFlagsVersion(buf, off) & GreFlag.KEY) !== 0;
}

export function greHasSequence(buf: Uint8Array, off: number): boolean {
  return (greFlagsVersion(buf, off) & GreFlag.SEQUENCE) !== 0;
}

/** In version 0 the A bit is reserved, so only version 1 has an acknowledgment. */
export function greHasAck(buf: Uint8Array, off: number): boolean {
  const word = greFlagsVersion(buf, off);
  return (word & GRE_VERSION_MASK) === 1 && (word & GreFlag.ACK) !== 0;
}

/** Both versions lay the optional words out in the same order: checksum, key, sequence, ack. */
export function greHeaderLength(buf: Uint8Array, off: number): number {
  const word = greFlagsVersion(buf, off);
  let length = GRE_MIN_HEADER_LENGTH;
  if (word & GreFlag.CHECKSUM) length += 4;
  if (word & GreFlag.KEY) length += 4;
  if (word & GreFlag.SEQUENCE) length += 4;
  if ((word & GRE_VERSION_MASK) === 1 && (word & GreFlag.ACK) !== 0) length += 4;
  return length;
}

/** Offset in `buf` of the key word (version 1: payload length and call ID), -1 if none. */
export function greKeyOffset(buf: Uint8Array, off: number): number {
  const word = greFlagsVersion(buf, off);
  if (!(word & GreFlag.KEY)) return -1;
  return off + GRE_MIN_HEADER_LENGTH + (word & GreFlag.CHECKSUM ? 4 : 0);
}

/** Offset in `buf` of the sequence number, -1 if none. */
export function greSequenceOffset(buf: Uint8Array, off: number): number {
  const word = greFlagsVersion(buf, off);
  if (!(word & GreFlag.SEQUENCE)) return -1;
  return off + GRE_MIN_HEADER_LENGTH + (word & GreFlag.CHECKSUM ? 4 : 0) + (word & GreFlag.KEY ? 4 : 0);
}

/** Offset in `buf` of the version 1 acknowledgment number, -1 if none. */
export function greAckOffset(buf: Uint8Array, off: number): number {
  if (!greHasAck(buf, off)) return -1;
  return off + greHeaderLength(buf, off) - 4;
}

/** The version 0 key (unsigned 32-bit), -1 if the header has none. */
export function greKey(buf: Uint8Array, off: number): number {
  const i = greKeyOffset(buf, off);
  return i < 0 ? -1 : readU32(buf, i);
}

export function greV1PayloadLength(buf: Uint8Array, off: number): number {
  return readU16(buf, off + GRE.V1_PAYLOAD_LENGTH);
}

export function greV1CallId(buf: Uint8Array, off: number): number {
  return readU16(buf, off + GRE.V1_CALL_ID);
}

/** Raw write; GRE version 1 carries no checksum. */
export function setGreV1CallId(buf: Uint8Array, off: number, callId: number): void {
  writeU16(buf, off + GRE.V1_CALL_ID, callId);
}

/** -1 if the header has none. */
export function greV1Sequence(buf: Uint8Array, off: number): number {
  const i = greSequenceOffset(buf, off);
  return i < 0 ? -1 : readU32(buf, i);
}

/** -1 if the header has none. */
export function greV1Ack(buf: Uint8Array, off: number): number {
  const i = greAckOffset(buf, off);
  return i < 0 ? -1 : readU32(buf, i);
}

export const GreProblem = {
  OK: 0,
  /** The buffer ends inside the header its flags describe. */
  TRUNCATED: 1,
  /** Version 2 to 7. */
  BAD_VERSION: 2,
  ROUTING_PRESENT: 3,
  V1_CHECKSUM_PRESENT: 4,
  V1_NO_KEY: 5,
  V1_BAD_PROTOCOL: 6,
} as const;

export const GRE_PROBLEM_NAMES: readonly string[] = [
  'ok',
  'gre-truncated',
  'gre-bad-version',
  'gre-routing-present',
  'gre-v1-checksum-present',
  'gre-v1-no-key',
  'gre-v1-bad-protocol',
];

/**
 * Structure only: a router forwards GRE and does not terminate it, so the optional version 0
 * checksum is not verified (nf_conntrack_proto_gre does not either). `len` is the GRE length.
 */
export function validateGre(buf: Uint8Array, off: number, len: number): number {
  if (len < GRE_MIN_HEADER_LENGTH) return GreProblem.TRUNCATED;
  const word = greFlagsVersion(buf, off);
  const version = word & GRE_VERSION_MASK;
  if (version > 1) return GreProblem.BAD_VERSION;
  if (word & GreFlag.ROUTING) return GreProblem.ROUTING_PRESENT;
  if (version === 1) {
    if (word & GreFlag.CHECKSUM) return GreProblem.V1_CHECKSUM_PRESENT;
    if (!(word & GreFlag.KEY)) return GreProblem.V1_NO_KEY;
    if (greProtocol(buf, off) !== GRE_PROTOCOL_PPP) return GreProblem.V1_BAD_PROTOCOL;
  }
  if (greHeaderLength(buf, off) > len) return GreProblem.TRUNCATED;
  return GreProblem.OK;
}

export interface GreV0Repr {
  /** The payload's EtherType, e.g. 0x0800 for IPv4. */
  protocol: number;
  /** Whether to include the checksum (computed over header and payload). */
  checksum?: boolean;
  key?: number;
  sequence?: number;
  payload?: Uint8Array;
}

/** Header and payload. */
export function greV0LengthOf(repr: GreV0Repr): number {
  return (
    GRE_MIN_HEADER_LENGTH +
    (repr.checksum ? 4 : 0) +
    (repr.key !== undefined ? 4 : 0) +
    (repr.sequence !== undefined ? 4 : 0) +
    (repr.payload ? repr.payload.length : 0)
  );
}

/** Writes header and payload; returns the length. */
export function emitGreV0(repr: GreV0Repr, buf: Uint8Array, off: number): number {
  let word = 0;
  let i = off + GRE_MIN_HEADER_LENGTH;
  if (repr.checksum) {
    word |= GreFlag.CHECKSUM;
    writeU32(buf, i, 0);
    i += 4;
  }
  if (repr.key !== undefined) {
    word |= GreFlag.KEY;
    writeU32(buf, i, repr.key);
    i += 4;
  }
  if (repr.sequence !== undefined) {
    word |= GreFlag.SEQUENCE;
    writeU32(buf, i, repr.sequence);
    i += 4;
  }
  writeU16(buf, off + GRE.FLAGS_VERSION, word);
  writeU16(buf, off + GRE.PROTOCOL, repr.protocol);
  if (repr.payload) buf.set(repr.payload, i);
  const length = greV0LengthOf(repr);
  if (repr.checksum) writeU16(buf, off + GRE.CHECKSUM, internetChecksum(buf, off, length));
  return length;
}

export interface GreV1Repr {
  callId: number;
  sequence?: number;
  ack?: number;
  /** The PPP frame; its length goes into the payload length field. */
  payload?: Uint8Array;
}

/** Header and payload. */
export function greV1LengthOf(repr: GreV1Repr): number {
  return (
    GRE_MIN_HEADER_LENGTH +
    4 +
    (repr.sequence !== undefined ? 4 : 0) +
    (repr.ack !== undefined ? 4 : 0) +
    (repr.payload ? repr.payload.length : 0)
  );
}

/** Writes header and payload; returns the length. */
export function emitGreV1(repr: GreV1Repr, buf: Uint8Array, off: number): number {
  let word = GreFlag.KEY | 1;
  let i = off + GRE.V1_SEQUENCE;
  if (repr.sequence !== undefined) {
    word |= GreFlag.SEQUENCE;
    writeU32(buf, i, repr.sequence);
    i += 4;
  }
  if (repr.ack !== undefined) {
    word |= GreFlag.ACK;
    writeU32(buf, i, repr.ack);
    i += 4;
  }
  writeU16(buf, off + GRE.FLAGS_VERSION, word);
  writeU16(buf, off + GRE.PROTOCOL, GRE_PROTOCOL_PPP);
  writeU16(buf, off + GRE.V1_PAYLOAD_LENGTH, repr.payload ? repr.payload.length : 0);
  writeU16(buf, off + GRE.V1_CALL_ID, repr.callId);
  if (repr.payload) buf.set(repr.payload, i);
  return greV1LengthOf(repr);
}
