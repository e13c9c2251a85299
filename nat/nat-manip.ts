/**
 * Rewriting one datagram for NAT (nf_nat_ipv4_manip_pkt and the per-protocol manip functions):
 * the source (SRC manip) or destination (DST manip) address and port/id/key are set from a target
 * tuple, and every checksum that covers them is updated incrementally (RFC 1624): the IP header
 * checksum, the TCP/UDP checksum through its pseudo-header (a zero UDP checksum stays zero), the
 * ICMP checksum for a query id. GRE version 1 has no checksum; only its call id (the destination
 * key) changes, and only for DST manip, as nf_nat_proto_gre does.
 *
 * A datagram whose transport checksum is partial (CHECKSUM_PARTIAL: the field holds only the
 * pseudo-header sum, finished on the way out) gets only the address change in that sum; the port
 * is summed when the checksum is finished (inet_proto_csum_replace* with CHECKSUM_PARTIAL).
 *
 * The same function rewrites the datagram quoted inside an ICMP error: there only part of the L4
 * header may be present, and every word changed must also be folded into the enclosing ICMP
 * checksum (`enclosingChecksum`).
 */
import { readU16, readU32, writeU16 } from '../router/wire/bytes.ts';
import { checksumReplace16, checksumReplace32, partialChecksumReplace32 } from '../router/wire/checksum.ts';
import { ICMP, icmpIsQueryRequest, icmpType, IcmpType } from '../router/wire/icmp.ts';
import { GRE, greVersion } from '../router/wire/gre.ts';
import { IPV4, IpProtocol, ipv4FragmentOffset, ipv4HeaderLength, ipv4Protocol } from '../router/wire/ipv4.ts';
import { TCP, TCP_MIN_HEADER_LENGTH } from '../router/wire/tcp.ts';
import { UDP, UDP_HEADER_LENGTH } from '../router/wire/udp.ts';
import type { Tuple } from '../netfilter/conntrack/tuple.ts';
import { ManipType } from './nat-core.ts';

const NO_ENCLOSING = -1;
const ICMP_QUERY_REPLIES: readonly number[] = [IcmpType.ECHO_REPLY, IcmpType.TIMESTAMP_REPLY, IcmpType.INFO_REPLY, IcmpType.ADDRESS_MASK_REPLY];

/** Writes a 16-bit word, keeping an enclosing checksum (if any) consistent. */
function write16(buf: Uint8Array, at: number, value: number, enclosing: number): void {
  const old = readU16(buf, at);
  if (old === value) return;
  writeU16(buf, at, value);
  if (enclosing !== NO_ENCLOSING) writeU16(buf, enclosing, checksumReplace16(readU16(buf, enclosing), old, value));
}

function write32(buf: Uint8Array, at: number, value: number, enclosing: number): void {
  write16(buf, at, value >>> 16, enclosing);
  write16(buf, at + 2, value & 0xffff, enclosing);
}

/** Replaces a checksum field's value through `write16`, so an enclosing checksum follows it. */
function updateChecksum(buf: Uint8Array, field: number, next: number, enclosing: number): void {
  write16(buf, field, next, enclosing);
}

/**
 * Rewrites the datagram at `at` (its bytes run to the end of `buf`); `partialChecksum` for a
 * CHECKSUM_PARTIAL one. False when the L4 header is too short to rewrite, which the caller treats
 * as a drop.
 */
export function manipPacket(buf: Uint8Array, at: number, target: Tuple, manip: ManipType, partialChecksum: boolean, enclosing = NO_ENCLOSING): boolean {
  const headerLength = ipv4HeaderLength(buf, at);
  const l4 = at + headerLength;
  const available = buf.length - l4;
  const addressField = at + (manip === ManipType.SRC ? IPV4.SRC : IPV4.DST);
  const oldAddress = readU32(buf, addressField);
  const newAddress = manip === ManipType.SRC ? target.src : target.dst;
  // A later fragment carries no L4 header to rewrite.
  if (ipv4FragmentOffset(buf, at) === 0 && !manipL4(buf, l4, available, ipv4Protocol(buf, at), oldAddress, newAddress, target, manip, partialChecksum, enclosing)) return false;
  if (oldAddress !== newAddress) {
    write32(buf, addressField, newAddress, enclosing);
    const field = at + IPV4.CHECKSUM;
    updateChecksum(buf, field, checksumReplace32(readU16(buf, field), oldAddress, newAddress), enclosing);
  }
  return true;
}

function manipL4(
  buf: Uint8Array,
  l4: number,
  available: number,
  protocol: number,
  oldAddress: number,
  newAddress: number,
  target: Tuple,
  manip: ManipType,
  partialChecksum: boolean,
  enclosing: number,
): boolean {
  switch (protocol) {
    case IpProtocol.TCP:
    case IpProtocol.UDP: {
      // Ports are in the first 4 bytes; an ICMP error may quote only 8 bytes of the segment.
      if (available < 8) return false;
      const portField = l4 + (manip === ManipType.SRC ? TCP.SRC_PORT : TCP.DST_PORT);
      const oldPort = readU16(buf, portField);
      const newPort = manip === ManipType.SRC ? target.srcPort : target.dstPort;
      const tcp = protocol === IpProtocol.TCP;
      const checksumField = l4 + (tcp ? TCP.CHECKSUM : UDP.CHECKSUM);
      const checksumPresent = tcp ? available >= TCP_MIN_HEADER_LENGTH : available >= UDP_HEADER_LENGTH && readU16(buf, checksumField) !== 0;
      if (checksumPresent && partialChecksum) {
        writeU16(buf, checksumField, partialChecksumReplace32(readU16(buf, checksumField), oldAddress, newAddress));
      } else if (checksumPresent) {
        let checksum = readU16(buf, checksumField);
        checksum = checksumReplace32(checksum, oldAddress, newAddress);
        checksum = checksumReplace16(checksum, oldPort, newPort);
        // UDP: 0 means "no checksum", so a computed 0 is sent as all ones (RFC 768).
        if (!tcp && checksum === 0) checksum = 0xffff;
        updateChecksum(buf, checksumField, checksum, enclosing);
      }
      write16(buf, portField, newPort, enclosing);
      return true;
    }
    case IpProtocol.ICMP: {
      if (available < 8) return false;
      const type = icmpType(buf, l4);
      if (!icmpIsQueryRequest(type) && !ICMP_QUERY_REPLIES.includes(type)) return true;
      const oldId = readU16(buf, l4 + ICMP.ID);
      const field = l4 + ICMP.CHECKSUM;
      updateChecksum(buf, field, checksumReplace16(readU16(buf, field), oldId, target.srcPort), enclosing);
      write16(buf, l4 + ICMP.ID, target.srcPort, enclosing);
      return true;
    }
    case IpProtocol.GRE: {
      if (available < 8) return false;
      if (manip !== ManipType.DST || greVersion(buf, l4) !== 1) return true;
      write16(buf, l4 + GRE.V1_CALL_ID, target.dstPort, enclosing);
      return true;
    }
    default:
      return true;
  }
}

