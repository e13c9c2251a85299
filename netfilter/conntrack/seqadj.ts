/**
 * TCP sequence adjustment after a payload length change (nf_conntrack_seqadj.c).
 *
 * When a NAT helper rewrites a segment so that it grows or shrinks, every later segment of that
 * direction must have its sequence number shifted, and every acknowledgment (and SACK block)
 * coming back must be shifted the other way. Per direction the entry keeps where the last change
 * happened (correctionPos) and the offsets before and after it; a retransmission of an already
 * rewritten segment does not record the change twice. All comparisons wrap at 2^32 and checksums
 * are updated incrementally.
 */
import { CtInfo, Status, ctinfoDirection } from './status.ts';
import type { Conntrack } from './conntrack-entry.ts';
import { Priority, Verdict, Hook, dropFor, type HookOps } from '../../router/core/hooks.ts';
import { DropReason } from '../../router/core/stats.ts';
import type { Packet } from '../../router/core/packet.ts';
import { updateChecksumField32 } from '../../router/wire/checksum.ts';
import { readU32, writeU32 } from '../../router/wire/bytes.ts';
import { IpProtocol, ipv4HeaderLength, ipv4Protocol } from '../../router/wire/ipv4.ts';
import { TCP, TcpFlag, TcpOptionKind, tcpAck, tcpFlags, tcpHeaderLength, tcpSeq } from '../../router/wire/tcp.ts';

export interface SeqAdjustWay {
  correctionPos: number;
  offsetBefore: number;
  offsetAfter: number;
}

const SACK_BLOCK_LENGTH = 8;

/** a is after b in sequence space (RFC 1982 style, as the kernel's after()). */
function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/**
 * Records that the segment starting at `seq` (as sent, before adjustment) in `direction` changed
 * length by `delta` (nf_ct_seqadj_set).
 */
export function recordSeqChange(entry: Conntrack, direction: 0 | 1, seq: number, delta: number): void {
  if (delta === 0) return;
  entry.seqAdjust ??= [
    { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 },
    { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 },
  ];
  entry.status |= Status.SEQ_ADJUST;
  const way = entry.seqAdjust[direction];
  if (way.offsetBefore === way.offsetAfter || before(way.correctionPos, seq >>> 0)) {
    way.correctionPos = seq >>> 0;
    way.offsetBefore = way.offsetAfter;
    way.offsetAfter = (way.offsetAfter + delta) | 0;
  }
}

/** nf_ct_seq_offset: how far adjustment has moved sequence numbers of `direction` at `seq`. */
export function seqOffset(entry: Conntrack, direction: 0 | 1, seq: number): number {
  const way = entry.seqAdjust?.[direction];
  if (!way) return 0;
  return after(seq, way.correctionPos) ? way.offsetAfter : way.offsetBefore;
}

/**
 * Shifts seq, ack and SACK blocks of the TCP segment at `l4` (nf_ct_seq_adjust). False when the
 * options are malformed: the kernel drops such a segment. A partial checksum (CHECKSUM_PARTIAL)
 * does not cover these fields yet, so it is left alone.
 */
export function adjustSequence(entry: Conntrack, direction: 0 | 1, buf: Uint8Array, l4: number, partialChecksum = false): boolean {
  const ways = entry.seqAdjust;
  if (!ways) return true;
  const thisWay = ways[direction];
  const otherWay = ways[direction ^ 1]!;
  const checksum = partialChecksum ? NO_CHECKSUM : l4 + TCP.CHECKSUM;
  const seq = tcpSeq(buf, l4);
  const shift = after(seq, thisWay.correctionPos) ? thisWay.offsetAfter : thisWay.offsetBefore;
  if (shift !== 0) {
    const newSeq = (seq + shift) >>> 0;
    if (checksum !== NO_CHECKSUM) updateChecksumField32(buf, checksum, seq, newSeq);
    writeU32(buf, l4 + TCP.SEQ, newSeq);
  }
  if (!(tcpFlags(buf, l4) & TcpFlag.ACK)) return true;
  const ack = tcpAck(buf, l4);
  const newAck = unshift(ack, otherWay);
  if (newAck !== ack) {
    if (checksum !== NO_CHECKSUM) updateChecksumField32(buf, checksum, ack, newAck);
    writeU32(buf, l4 + TCP.ACK, newAck);
  }
  return adjustSackBlocks(buf, l4, otherWay, checksum);
}

/** Where the checksum field would be, for a segment whose checksum nothing here must touch. */
const NO_CHECKSUM = -1;

/** An acknowledged sequence number mapped back into the sender's unadjusted space. */
function unshift(value: number, way: SeqAdjustWay): number {
  const offset = after((value - way.offsetBefore) >>> 0, way.correctionPos) ? way.offsetAfter : way.offsetBefore;
  return (value - offset) >>> 0;
}

/** nf_ct_sack_adjust: walks the options; partial options make the segment malformed. */
function adjustSackBlocks(buf: Uint8Array, l4: number, way: SeqAdjustWay, checksum: number): boolean {
  const end = l4 + tcpHeaderLength(buf, l4);
  let at = l4 + TCP.OPTIONS;
  while (at < end) {
    const kind = buf[at]!;
    if (kind === TcpOptionKind.END) return true;
    if (kind === TcpOptionKind.NOP) {
      at++;
      continue;
    }
    const length = buf[at + 1]!;
    if (at + 1 === end || at + length > end || length < 2) return false;
    if (kind === TcpOptionKind.SACK && length >= 2 + SACK_BLOCK_LENGTH && (length - 2) % SACK_BLOCK_LENGTH === 0) {
      for (let edge = at + 2; edge < at + length; edge += 4) {
        const old = readU32(buf, edge);
        const fixed = unshift(old, way);
        if (fixed !== old) {
          if (checksum !== NO_CHECKSUM) updateChecksumField32(buf, checksum, old, fixed);
          writeU32(buf, edge, fixed);
        }
      }
    }
    at += length;
  }
  return true;
}

/** The adjustment op: after the helper (300), before confirm, on POST_ROUTING and LOCAL_IN. */
export function seqAdjustHookOps(onMalformed: () => void): HookOps[] {
  const fn = (packet: Packet): Verdict => {
    const entry = packet.conntrack;
    if (!entry || !(entry.status & Status.SEQ_ADJUST) || packet.ctinfo === CtInfo.RELATED_REPLY) return Verdict.ACCEPT;
    if (ipv4Protocol(packet.buf, 0) !== IpProtocol.TCP) return Verdict.ACCEPT;
    if (adjustSequence(entry, ctinfoDirection(packet.ctinfo), packet.buf, ipv4HeaderLength(packet.buf, 0), packet.checksumPartial)) return Verdict.ACCEPT;
    onMalformed();
    return dropFor(packet, DropReason.SEQADJ_MALFORMED);
  };
  const priority = Priority.CONNTRACK_HELPER + 1;
  return [
    { hook: Hook.POST_ROUTING, priority, fn, name: 'seqadj', describe: describeAdjustment },
    { hook: Hook.LOCAL_IN, priority, fn, name: 'seqadj', describe: describeAdjustment },
  ];
}

/** For `vrouter trace`: the offsets a helper's rewrites left, per direction. */
function describeAdjustment(packet: Packet): string {
  const ways = packet.conntrack?.seqAdjust;
  if (!ways) return '';
  const way = (w: SeqAdjustWay): string => `${w.offsetAfter >= 0 ? '+' : ''}${w.offsetAfter} after seq ${w.correctionPos >>> 0} (${w.offsetBefore >= 0 ? '+' : ''}${w.offsetBefore} before)`;
  return `original ${way(ways[0])}, reply ${way(ways[1])}`;
}
