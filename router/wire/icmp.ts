/**
 * ICMP for IPv4 (RFC 792; fragmentation-needed MTU from RFC 1191 section 4).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +---------------+---------------+-------------------------------+
 *   |     Type      |     Code      |           Checksum            |
 *   +---------------+---------------+-------------------------------+
 *   |                 rest of header, by type:                      |
 *   |  echo, timestamp, info, mask:  Identifier   |  Sequence Number |
 *   |  destination unreachable:      unused       |  Next-Hop MTU    |
 *   |  parameter problem:   Pointer |          unused                |
 *   |  redirect:                 Gateway Internet Address            |
 *   +---------------------------------------------------------------+
 *   |  data: for errors the offending IP header + 8 bytes of it ... |
 *   +---------------------------------------------------------------+
 *
 * The checksum covers the whole ICMP message (no pseudo-header).
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';

export const IcmpType = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
  TIMESTAMP_REQUEST: 13,
  TIMESTAMP_REPLY: 14,
  INFO_REQUEST: 15,
  INFO_REPLY: 16,
  ADDRESS_MASK_REQUEST: 17,
  ADDRESS_MASK_REPLY: 18,
} as const;

export const IcmpUnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAGMENTATION_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  NET_UNKNOWN: 6,
  HOST_UNKNOWN: 7,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  ADMIN_PROHIBITED: 13,
} as const;

export const ICMP = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  ID: 4,
  SEQUENCE: 6,
  NEXT_HOP_MTU: 6,
  POINTER: 4,
  GATEWAY: 4,
  REST: 4,
  DATA: 8,
} as const;

export const ICMP_HEADER_LENGTH = 8;

export function icmpType(buf: Uint8Array, off: number): number {
  return buf[off + ICMP.TYPE];
}

export function setIcmpType(buf: Uint8Array, off: number, value: number): void {
  buf[off + ICMP.TYPE] = value;
}

export function icmpCode(buf: Uint8Array, off: number): number {
  return buf[off + ICMP.CODE];
}

export function setIcmpCode(buf: Uint8Array, off: number, value: number): void {
  buf[off + ICMP.CODE] = value;
}

export function icmpChecksum(buf: Uint8Array, off: number): number {
  return readU16(buf, off + ICMP.CHECKSUM);
}

export function setIcmpChecksum(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + ICMP.CHECKSUM, value);
}

/** Echo, timestamp, information and address mask messages. */
export function icmpEchoId(buf: Uint8Array, off: number): number {
  return readU16(buf, off + ICMP.ID);
}

export function setIcmpEchoId(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + ICMP.ID, value);
}

export function icmpEchoSequence(buf: Uint8Array, off: number): number {
  return readU16(buf, off + ICMP.SEQUENCE);
}

export function setIcmpEchoSequence(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + ICMP.SEQUENCE, value);
}

/** Destination unreachable, code FRAGMENTATION_NEEDED. */
export function icmpNextHopMtu(buf: Uint8Array, off: number): number {
  return readU16(buf, off + ICMP.NEXT_HOP_MTU);
}

export function setIcmpNextHopMtu(buf: Uint8Array, off: number, value: number): void {
  writeU16(buf, off + ICMP.NEXT_HOP_MTU, value);
}

/** Parameter problem: the offset of the offending octet in the quoted header. */
export function icmpPointer(buf: Uint8Array, off: number): number {
  return buf[off + ICMP.POINTER];
}

/** Redirect: the better first hop. */
export function icmpGateway(buf: Uint8Array, off: number): number {
  return readU32(buf, off + ICMP.GATEWAY);
}

/** The types that quote an offending packet (what the kernel's icmp_is_err and conntrack check). */
export function icmpIsError(type: number): boolean {
  return (
    type === IcmpType.DEST_UNREACHABLE ||
    type === IcmpType.SOURCE_QUENCH ||
    type === IcmpType.REDIRECT ||
    type === IcmpType.TIME_EXCEEDED ||
    type === IcmpType.PARAMETER_PROBLEM
  );
}

/** The requests conntrack tracks as new connections (nf_conntrack_proto_icmp's valid_new). */
export function icmpIsQueryRequest(type: number): boolean {
  return icmpReplyTypeOf(type) !== -1;
}

/** The reply type that answers a query request, -1 for anything else. */
export function icmpReplyTypeOf(requestType: number): number {
  switch (requestType) {
    case IcmpType.ECHO_REQUEST:
      return IcmpType.ECHO_REPLY;
    case IcmpType.TIMESTAMP_REQUEST:
      return IcmpType.TIMESTAMP_REPLY;
    case IcmpType.INFO_REQUEST:
      return IcmpType.INFO_REPLY;
    case IcmpType.ADDRESS_MASK_REQUEST:
      return IcmpType.ADDRESS_MASK_REPLY;
    default:
      return -1;
  }
}

/** Computes the checksum over `len` bytes of the message and stores it. */
export function fillIcmpChecksum(buf: Uint8Array, off: number, len: number): void {
  setIcmpChecksum(buf, off, 0);
  setIcmpChecksum(buf, off, internetChecksum(buf, off, len));
}

export const IcmpProblem = { OK: 0, TRUNCATED: 1, BAD_CHECKSUM: 2 } as const;

export const ICMP_PROBLEM_NAMES: readonly string[] = ['ok', 'icmp-truncated', 'icmp-bad-checksum'];

/**
 * Like the kernel's icmp_rcv: every type needs the 8-byte struct icmphdr, and the checksum over the
 * whole message must hold. `len` is the ICMP length (the IP payload length).
 */
export function validateIcmp(buf: Uint8Array, off: number, len: number): number {
  if (len < ICMP_HEADER_LENGTH) return IcmpProblem.TRUNCATED;
  if (internetChecksum(buf, off, len) !== 0) return IcmpProblem.BAD_CHECKSUM;
  return IcmpProblem.OK;
}

/** An ICMP message: the 4 bytes after the checksum by type (`rest`) and the data after them. */
export interface IcmpRepr {
  type: number;
  code: number;
  /** Identifier/sequence, MTU, pointer or gateway as one 32-bit word. */
  rest?: number;
  data?: Uint8Array;
}

export function icmpLengthOf(repr: IcmpRepr): number {
  return ICMP_HEADER_LENGTH + (repr.data ? repr.data.length : 0);
}

/** Writes the message with its checksum and returns its length. */
export function emitIcmp(repr: IcmpRepr, buf: Uint8Array, off: number): number {
  const length = icmpLengthOf(repr);
  buf[off + ICMP.TYPE] = repr.type;
  buf[off + ICMP.CODE] = repr.code;
  writeU32(buf, off + ICMP.REST, repr.rest ?? 0);
  if (repr.data) buf.set(repr.data, off + ICMP.DATA);
  fillIcmpChecksum(buf, off, length);
  return length;
}
