/**
 * IPv4 fragmentation on output (RFC 791 section 3.2, the kernel's ip_do_fragment slow path).
 *
 * Fragment payloads are multiples of 8 bytes. The first fragment keeps every option; later ones
 * keep the header length but have each option without the "copied" flag overwritten with NOPs,
 * as ip_options_fragment() does. A fragment of a fragment keeps the original offset and MF.
 */
import {
  IPV4,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  fillIpv4HeaderChecksum,
  ipv4FlagsFragment,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4TotalLength,
  setIpv4FlagsFragment,
  setIpv4TotalLength,
} from '../wire/ipv4.ts';

const OPTION_END = 0;
const OPTION_NOP = 1;
const OPTION_COPIED = 0x80;

/** The largest payload a fragment may carry on a link of `mtu`, or 0 if none fits. */
export function fragmentPayloadSize(headerLength: number, mtu: number): number {
  return (mtu - headerLength) & ~7;
}

/**
 * Calls `emit` with each fragment of `packet` (whose DF flag the caller has checked) so that each
 * fits `mtu`. Returns how many fragments were emitted; 0 means the MTU cannot carry any.
 */
export function fragmentIpv4(packet: Uint8Array, mtu: number, emit: (fragment: Buffer) => void): number {
  const headerLength = ipv4HeaderLength(packet, 0);
  const totalLength = ipv4TotalLength(packet, 0);
  const chunk = fragmentPayloadSize(headerLength, mtu);
  if (chunk <= 0) return 0;
  const flags = ipv4FlagsFragment(packet, 0);
  const originalOffset = ipv4FragmentOffset(packet, 0);
  const originalMoreFragments = (flags & IPV4_FLAG_MF) !== 0;
  const keptFlags = flags & IPV4_FLAG_DF;
  let laterHeader: Uint8Array | null = null;
  let count = 0;
  for (let at = headerLength; at < totalLength; at += chunk) {
    const size = Math.min(chunk, totalLength - at);
    const last = at + size >= totalLength;
    const fragment = Buffer.allocUnsafe(headerLength + size);
    if (count === 0) {
      fragment.set(packet.subarray(0, headerLength), 0);
    } else {
      laterHeader ??= headerForLaterFragments(packet, headerLength);
      fragment.set(laterHeader, 0);
    }
    fragment.set(packet.subarray(at, at + size), headerLength);
    setIpv4TotalLength(fragment, 0, headerLength + size);
    const moreFragments = !last || originalMoreFragments;
    setIpv4FlagsFragment(fragment, 0, keptFlags | (moreFragments ? IPV4_FLAG_MF : 0) | ((originalOffset + at - headerLength) >>> 3));
    fillIpv4HeaderChecksum(fragment, 0);
    emit(fragment);
    count++;
  }
  return count;
}

function headerForLaterFragments(packet: Uint8Array, headerLength: number): Uint8Array {
  const header = Uint8Array.from(packet.subarray(0, headerLength));
  let at = IPV4.OPTIONS;
  while (at < headerLength) {
    const kind = header[at]!;
    if (kind === OPTION_END) break;
    if (kind === OPTION_NOP) {
      at++;
      continue;
    }
    const length = at + 1 < headerLength ? header[at + 1]! : 0;
    if (length < 2 || at + length > headerLength) break;
    if ((kind & OPTION_COPIED) === 0) header.fill(OPTION_NOP, at, at + length);
    at += length;
  }
  return header;
}
