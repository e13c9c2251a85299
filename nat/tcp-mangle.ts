/**
 * Rewriting bytes inside a TCP payload (nf_nat_mangle_tcp_packet, nf_nat_helper.c), for NAT
 * helpers whose protocol carries addresses in text (FTP's PORT / 227 / EPRT / 229).
 *
 * The replacement may be longer or shorter than what it replaces: the datagram grows into a new
 * Buffer (which becomes `packet.buf`) or shrinks in place, the IPv4 total length and header
 * checksum follow, and the change is recorded for sequence adjustment (seqadj.ts) at the
 * segment's sequence number as the sender sent it: the helper runs before adjustment does.
 */
import type { Conntrack } from '../netfilter/conntrack/conntrack-entry.ts';
import { recordSeqChange } from '../netfilter/conntrack/seqadj.ts';
import { ctinfoDirection } from '../netfilter/conntrack/status.ts';
import type { Packet } from '../router/core/packet.ts';
import { updateChecksumField16 } from '../router/wire/checksum.ts';
import { IPV4, ipv4Dst, ipv4HeaderLength, ipv4Src, ipv4TotalLength, setIpv4TotalLength } from '../router/wire/ipv4.ts';
import { fillTcpChecksum, tcpHeaderLength, tcpSeq } from '../router/wire/tcp.ts';

/** The IPv4 total length field's limit. */
const MAX_DATAGRAM = 65535;

/**
 * Replaces `matchLength` bytes at `matchOffset` (from the start of the TCP payload) with
 * `replacement`. False, with the packet untouched, if the match is not inside the payload or the
 * datagram would exceed 65535 bytes.
 */
export function mangleTcpPayload(packet: Packet, entry: Conntrack, ctinfo: number, matchOffset: number, matchLength: number, replacement: Buffer): boolean {
  const buf = packet.buf;
  const l4 = ipv4HeaderLength(buf, 0);
  const payloadStart = l4 + tcpHeaderLength(buf, l4);
  if (matchOffset < 0 || matchLength < 0 || payloadStart + matchOffset + matchLength > buf.length) return false;
  const delta = replacement.length - matchLength;
  const length = buf.length + delta;
  if (length > MAX_DATAGRAM) return false;
  const at = payloadStart + matchOffset;
  let out = buf;
  if (delta > 0) {
    out = Buffer.allocUnsafe(length);
    buf.copy(out, 0, 0, at);
    buf.copy(out, at + replacement.length, at + matchLength);
  } else if (delta < 0) {
    buf.copy(buf, at + replacement.length, at + matchLength);
    out = buf.subarray(0, length);
  }
  replacement.copy(out, at);
  if (delta !== 0) {
    const oldTotal = ipv4TotalLength(out, 0);
    setIpv4TotalLength(out, 0, length);
    updateChecksumField16(out, IPV4.CHECKSUM, oldTotal, length);
  }
  // The payload moved, so an incremental update would have to sum every shifted word anyway: the
  // checksum is computed afresh over the whole segment, as the kernel's csum_recalc does for a
  // packet without checksum offload. A partial checksum is thereby finished.
  fillTcpChecksum(out, l4, length - l4, ipv4Src(out, 0), ipv4Dst(out, 0));
  packet.checksumPartial = false;
  packet.buf = out;
  if (delta !== 0) recordSeqChange(entry, ctinfoDirection(ctinfo), tcpSeq(out, l4), delta);
  return true;
}
