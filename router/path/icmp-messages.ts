/**
 * ICMP messages the router itself originates (RFC 792, RFC 1812 section 4.3.2), shaped like the
 * kernel's icmp_send()/icmp_echo(): errors quote as much of the offending datagram as fits in 576
 * bytes, carry the precedence "internetwork control", TTL 64, and DF clear.
 */
import { emitIpv4Header, fillIpv4HeaderChecksum, IpProtocol, setIpv4TotalLength, ipv4FragmentOffset, ipv4HeaderLength, ipv4Protocol, ipv4Src, ipv4Tos, IPV4_MIN_HEADER_LENGTH } from '../wire/ipv4.ts';
import { ICMP, ICMP_HEADER_LENGTH, IcmpType, fillIcmpChecksum, icmpIsError, icmpType } from '../wire/icmp.ts';

export const DEFAULT_TTL = 64;
/** RFC 1812 4.3.2.3: an ICMP error datagram is at most 576 bytes. */
const ICMP_ERROR_MAX_LENGTH = 576;
const PRECEDENCE_INTERNETWORK_CONTROL = 0xc0;
const TOS_MASK = 0x1e;

/**
 * Whether the kernel would answer `original` with an ICMP error at all: never about a non-first
 * fragment, and never about an ICMP error (RFC 1122 3.2.2), so two routers cannot ping-pong errors.
 * Broadcast/multicast and martian sources are refused earlier on the receive path.
 */
export function mayAnswerWithError(original: Uint8Array): boolean {
  if (ipv4FragmentOffset(original, 0) !== 0) return false;
  if (ipv4Protocol(original, 0) !== IpProtocol.ICMP) return true;
  const headerLength = ipv4HeaderLength(original, 0);
  if (original.length < headerLength + 1) return false;
  const type = icmpType(original, headerLength);
  return !icmpIsError(type) && type <= IcmpType.ADDRESS_MASK_REPLY;
}

/**
 * Builds an ICMP error from `source` to the sender of `original`. `rest` fills bytes 4..7 (the
 * next-hop MTU for "fragmentation needed", the pointer for "parameter problem", else 0).
 * `originalLength` below the datagram's own length quotes it as a datagram of that length (the
 * first segment of a super-packet): its header says that length, with its checksum to match.
 */
export function buildIcmpError(original: Uint8Array, type: number, code: number, rest: number, source: number, ident: number, originalLength = original.length): Buffer {
  const room = ICMP_ERROR_MAX_LENGTH - IPV4_MIN_HEADER_LENGTH - ICMP_HEADER_LENGTH;
  const quoted = Math.min(originalLength, room);
  const icmpLength = ICMP_HEADER_LENGTH + quoted;
  const packet = Buffer.alloc(IPV4_MIN_HEADER_LENGTH + icmpLength);
  emitIpv4Header(
    {
      src: source,
      dst: ipv4Src(original, 0),
      protocol: IpProtocol.ICMP,
      ttl: DEFAULT_TTL,
      tos: (ipv4Tos(original, 0) & TOS_MASK) | PRECEDENCE_INTERNETWORK_CONTROL,
      ident,
      payloadLength: icmpLength,
    },
    packet,
    0,
  );
  const at = IPV4_MIN_HEADER_LENGTH;
  packet[at + ICMP.TYPE] = type;
  packet[at + ICMP.CODE] = code;
  packet.writeUInt32BE(rest >>> 0, at + ICMP.REST);
  packet.set(original.subarray(0, quoted), at + ICMP.DATA);
  if (originalLength !== original.length) {
    setIpv4TotalLength(packet, at + ICMP.DATA, originalLength);
    fillIpv4HeaderChecksum(packet, at + ICMP.DATA);
  }
  fillIcmpChecksum(packet, at, icmpLength);
  return packet;
}

