/**
 * IPv4 reassembly (RFC 791 section 3.2, RFC 815), with the kernel's policies (net/ipv4/ip_fragment.c):
 * a datagram is keyed by (source, destination, protocol, identification); a fragment that is an
 * exact duplicate is ignored, any other overlap discards the whole datagram (RFC 5722's rule, which
 * Linux applies to IPv4 too); incomplete datagrams expire after 30 s (ipfrag_time); pending bytes
 * are capped at 4 MiB (ipfrag_high_thresh), past which new fragments are refused.
 */
import {
  IPV4_FLAG_DF,
  fillIpv4HeaderChecksum,
  ipv4FlagsFragment,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4Ident,
  ipv4MoreFragments,
  ipv4Protocol,
  ipv4Src,
  ipv4Dst,
  setIpv4FlagsFragment,
  setIpv4TotalLength,
} from './ipv4.ts';

export const REASSEMBLY_TIMEOUT_MS = 30_000;
export const REASSEMBLY_MAX_PENDING_BYTES = 4 * 1024 * 1024;
const MAX_DATAGRAM = 65535;

export const ReassemblyResult = {
  /** The fragment was kept; the datagram is not complete yet. */
  PENDING: 0,
  COMPLETE: 1,
  DUPLICATE: 2,
  /** Overlap, or a datagram that would exceed 65535 bytes: the whole datagram was discarded. */
  INVALID: 3,
  /** Too many pending bytes. */
  NO_MEMORY: 4,
} as const;
export type ReassemblyResult = (typeof ReassemblyResult)[keyof typeof ReassemblyResult];

interface FragmentPiece {
  start: number;
  end: number;
  /** The fragment's payload, copied: the read slab it came from is reused. */
  data: Buffer;
}

interface PendingDatagram {
  pieces: FragmentPiece[];
  /** The offset-0 fragment's header, once seen: the reassembled datagram's header. */
  firstHeader: Buffer | null;
  /** Payload length, known once the last fragment (MF clear) arrived. */
  totalPayload: number;
  bytes: number;
  /** Largest fragment seen, so the datagram can be refragmented to the same size (frag_max_size). */
  maxFragmentSize: number;
  expiresAt: number;
  /** Whether the fragment at offset 0 arrived: only then does expiry warrant an ICMP error. */
  firstArrivedPacket: Buffer | null;
}

export interface CompletedDatagram {
  packet: Buffer;
  maxFragmentSize: number;
}

export class Ipv4Reassembler {
  private readonly pending = new Map<string, PendingDatagram>();
  private pendingBytes = 0;
  /** Set by `add` when it returns COMPLETE. */
  completed: CompletedDatagram | null = null;

  constructor(private readonly now: () => number = () => performance.now()) {}

  get size(): number {
    return this.pending.size;
  }

  add(fragment: Buffer): ReassemblyResult {
    this.completed = null;
    const headerLength = ipv4HeaderLength(fragment, 0);
    const start = ipv4FragmentOffset(fragment, 0);
    const end = start + fragment.length - headerLength;
    const last = !ipv4MoreFragments(fragment, 0);
    const key = datagramKey(fragment);
    let datagram = this.pending.get(key);
    if (end > MAX_DATAGRAM - headerLength || (!last && (end - start) % 8 !== 0)) {
      if (datagram) this.forget(key, datagram);
      return ReassemblyResult.INVALID;
    }
    if (this.pendingBytes + fragment.length > REASSEMBLY_MAX_PENDING_BYTES) return ReassemblyResult.NO_MEMORY;
    if (!datagram) {
      datagram = { pieces: [], firstHeader: null, totalPayload: -1, bytes: 0, maxFragmentSize: 0, expiresAt: this.now() + REASSEMBLY_TIMEOUT_MS, firstArrivedPacket: null };
      this.pending.set(key, datagram);
    }
    for (const piece of datagram.pieces) {
      if (piece.start === start && piece.end === end) return ReassemblyResult.DUPLICATE;
      if (start < piece.end && piece.start < end) return this.invalid(key, datagram);
    }
    if (last) {
      if (datagram.totalPayload >= 0 && datagram.totalPayload !== end) return this.invalid(key, datagram);
      datagram.totalPayload = end;
    }
    if (datagram.totalPayload >= 0 && end > datagram.totalPayload) return this.invalid(key, datagram);
    datagram.pieces.push({ start, end, data: Buffer.from(fragment.subarray(headerLength)) });
    datagram.bytes += fragment.length;
    this.pendingBytes += fragment.length;
    datagram.maxFragmentSize = Math.max(datagram.maxFragmentSize, fragment.length);
    if (start === 0) {
      datagram.firstHeader = Buffer.from(fragment.subarray(0, headerLength));
      datagram.firstArrivedPacket = Buffer.from(fragment);
    }
    if (datagram.firstHeader === null || datagram.totalPayload < 0) return ReassemblyResult.PENDING;
    let covered = 0;
    for (const piece of datagram.pieces) covered += piece.end - piece.start;
    if (covered !== datagram.totalPayload) return ReassemblyResult.PENDING;
    this.completed = { packet: assemble(datagram), maxFragmentSize: datagram.maxFragmentSize };
    this.forget(key, datagram);
    return ReassemblyResult.COMPLETE;
  }

  /**
   * Drops datagrams whose time is up. `onExpired` gets the offset-0 fragment of each one that had
   * it, for the "fragment reassembly time exceeded" error local delivery sends.
   */
  expire(onExpired?: (firstFragment: Buffer) => void): number {
    const now = this.now();
    let expired = 0;
    for (const [key, datagram] of this.pending) {
      if (datagram.expiresAt > now) continue;
      this.forget(key, datagram);
      expired++;
      if (datagram.firstArrivedPacket && onExpired) onExpired(datagram.firstArrivedPacket);
    }
    return expired;
  }

  private invalid(key: string, datagram: PendingDatagram): ReassemblyResult {
    this.forget(key, datagram);
    return ReassemblyResult.INVALID;
  }

  private forget(key: string, datagram: PendingDatagram): void {
    this.pending.delete(key);
    this.pendingBytes -= datagram.bytes;
  }
}

function datagramKey(fragment: Buffer): string {
  return `${ipv4Src(fragment, 0)}>${ipv4Dst(fragment, 0)}/${ipv4Protocol(fragment, 0)}#${ipv4Ident(fragment, 0)}`;
}

function assemble(datagram: PendingDatagram): Buffer {
  const header = datagram.firstHeader!;
  const packet = Buffer.allocUnsafe(header.length + datagram.totalPayload);
  header.copy(packet, 0);
  for (const piece of datagram.pieces) piece.data.copy(packet, header.length + piece.start);
  setIpv4TotalLength(packet, 0, packet.length);
  setIpv4FlagsFragment(packet, 0, ipv4FlagsFragment(packet, 0) & IPV4_FLAG_DF);
  fillIpv4HeaderChecksum(packet, 0);
  return packet;
}
