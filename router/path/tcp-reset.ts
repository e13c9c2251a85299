/**
 * The TCP reset that answers a segment, as the kernel's nf_send_reset builds it for REJECT
 * --reject-with tcp-reset and tcp_v4_send_reset for a segment to a port with no listener:
 *
 *   - from the segment's destination to its source, ports swapped, TTL 64, DF, IP ID 0, TOS 0;
 *   - if the segment has ACK: seq = its ack number, flags RST;
 *   - else: seq 0, ack = its seq + payload length (+1 for SYN, +1 for FIN), flags RST|ACK;
 *   - window 0, no options, no payload.
 *
 * Nothing (null) answers a reset (no RST for a RST), a non-first fragment, or a segment that is
 * malformed or fails its checksum (not summed when `checksumVerified`: known good, or left
 * partial by its sender), which the kernel refuses to answer too.
 */
import { DEFAULT_TTL } from './icmp-messages.ts';
import {
  IPV4_FLAG_DF,
  IPV4_MIN_HEADER_LENGTH,
  IpProtocol,
  emitIpv4Header,
  ipv4Dst,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4Protocol,
  ipv4Src,
  ipv4TotalLength,
} from '../wire/ipv4.ts';
import { TCP, TcpFlag, TcpProblem, emitTcp, tcpAck, tcpChecksumValid, tcpDstPort, tcpFlags, tcpHeaderLength, tcpSeq, tcpSrcPort, validateTcp } from '../wire/tcp.ts';

export function buildTcpReset(original: Buffer, checksumVerified = false): Buffer | null {
  if (original.length < IPV4_MIN_HEADER_LENGTH) return null;
  const at = ipv4HeaderLength(original, 0);
  const totalLength = ipv4TotalLength(original, 0);
  if (at < IPV4_MIN_HEADER_LENGTH || totalLength < at || totalLength > original.length) return null;
  if (ipv4Protocol(original, 0) !== IpProtocol.TCP || ipv4FragmentOffset(original, 0) !== 0) return null;
  const length = totalLength - at;
  if (validateTcp(original, at, length) !== TcpProblem.OK) return null;
  const flags = tcpFlags(original, at);
  if (flags & TcpFlag.RST) return null;
  const source = ipv4Dst(original, 0);
  const destination = ipv4Src(original, 0);
  if (!checksumVerified && !tcpChecksumValid(original, at, length, destination, source)) return null;
  const payload = length - tcpHeaderLength(original, at);
  const acked = (flags & TcpFlag.ACK) !== 0;
  const segmentLength = payload + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0);
  const reset = Buffer.alloc(IPV4_MIN_HEADER_LENGTH + TCP.OPTIONS);
  emitIpv4Header(
    { src: source, dst: destination, protocol: IpProtocol.TCP, ttl: DEFAULT_TTL, ident: 0, flagsFragment: IPV4_FLAG_DF, payloadLength: TCP.OPTIONS },
    reset,
    0,
  );
  emitTcp(
    {
      srcPort: tcpDstPort(original, at),
      dstPort: tcpSrcPort(original, at),
      seq: acked ? tcpAck(original, at) : 0,
      ack: acked ? 0 : (tcpSeq(original, at) + segmentLength) >>> 0,
      flags: acked ? TcpFlag.RST : TcpFlag.RST | TcpFlag.ACK,
      window: 0,
    },
    reset,
    IPV4_MIN_HEADER_LENGTH,
    source,
    destination,
  );
  return reset;
}
