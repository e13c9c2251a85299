/**
 * Sequence adjustment after payload rewrites that grow and shrink, over several later segments in
 * both directions, with SACK blocks and 32-bit wraparound. Written as a scenario: what the client
 * sends, what leaves the router, and what the server acknowledges.
 */
import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../netfilter/conntrack/conntrack-entry.ts';
import { adjustSequence, recordSeqChange } from '../../../netfilter/conntrack/seqadj.ts';
import { Status } from '../../../netfilter/conntrack/status.ts';
import { genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { Tuple } from '../../../netfilter/conntrack/tuple.ts';
import { ipv4Dst, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpAck, tcpChecksumValid, tcpFindOption, tcpSackBlockOffset, tcpSeq } from '../../../router/wire/tcp.ts';
import { tcpPacket } from '../../support/packets.ts';

const ORIGINAL = 0;
const REPLY = 1;

function entry(): Conntrack {
  return new Conntrack(genericTracker, new Tuple(1, 2, 6, 1000, 21), new Tuple(2, 1, 6, 21, 1000));
}

/** A SACK option (kind 5) with the given blocks, padded with NOPs in front as stacks do. */
function sackOption(blocks: [number, number][]): Buffer {
  const option = Buffer.alloc(2 + 2 + blocks.length * 8);
  option[0] = 1;
  option[1] = 1;
  option[2] = 5;
  option[3] = 2 + blocks.length * 8;
  blocks.forEach(([left, right], i) => {
    option.writeUInt32BE(left >>> 0, 4 + i * 8);
    option.writeUInt32BE(right >>> 0, 8 + i * 8);
  });
  return option;
}

function segment(direction: number, seq: number, ack: number | null, payload = 10, sack: [number, number][] = []): Buffer {
  const [src, dst, srcPort, dstPort] = direction === ORIGINAL ? ['10.0.1.2', '203.0.113.2', 40000, 21] : ['203.0.113.2', '10.0.1.2', 21, 40000];
  return tcpPacket(
    { src, dst },
    {
      srcPort,
      dstPort,
      seq: seq >>> 0,
      ack: (ack ?? 0) >>> 0,
      flags: ack === null ? TcpFlag.PSH : TcpFlag.ACK | TcpFlag.PSH,
      window: 1000,
      payload: Buffer.alloc(payload, 0x41),
      ...(sack.length ? { options: sackOption(sack) } : {}),
    },
  );
}

/** Runs the adjustment and returns [seq, ack] as they leave, checking the checksum still holds. */
function out(conn: Conntrack, direction: 0 | 1, packet: Buffer): [number, number] {
  expect(adjustSequence(conn, direction, packet, 20)).toBe(true);
  expect(tcpChecksumValid(packet, 20, packet.length - 20, ipv4Src(packet, 0), ipv4Dst(packet, 0))).toBe(true);
  return [tcpSeq(packet, 20), tcpAck(packet, 20)];
}

function sackEdges(packet: Buffer): number[] {
  const option = tcpFindOption(packet, 20, 5);
  const count = (packet[option + 1]! - 2) / 8;
  return Array.from({ length: count * 2 }, (_, i) => packet.readUInt32BE(tcpSackBlockOffset(option, i >> 1) + (i & 1) * 4));
}

function scenario(base: number): void {
  const s = (n: number): number => (base + n) >>> 0;
  const conn = entry();
  // Client segment at s(0) (20 bytes) was rewritten to 24 bytes (+4), e.g. a PORT command.
  recordSeqChange(conn, ORIGINAL, s(0), +4);
  expect(conn.status & Status.SEQ_ADJUST).toBeTruthy();
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(0), 9000, 24))).toEqual([s(0), 9000]);
  // A retransmission of the same segment, rewritten again, is not recorded twice.
  recordSeqChange(conn, ORIGINAL, s(0), +4);
  expect(conn.seqAdjust![ORIGINAL]).toEqual({ correctionPos: s(0), offsetBefore: 0, offsetAfter: 4 });
  // Later client segments move up by 4.
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(20), 9000))[0]).toBe(s(24));
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(30), 9000))[0]).toBe(s(34));
  // The server acknowledges in the shifted space; acks come back down by 4 (and stay before the change).
  expect(out(conn, REPLY, segment(REPLY, 9000, s(44)))).toEqual([9000, s(40)]);
  expect(out(conn, REPLY, segment(REPLY, 9000, s(0)))).toEqual([9000, s(0)]);
  // SACK blocks are taken back like the ack.
  const withSack = segment(REPLY, 9000, s(24), 0, [
    [s(34), s(44)],
    [s(54), s(64)],
  ]);
  out(conn, REPLY, withSack);
  expect(sackEdges(withSack)).toEqual([s(30), s(40), s(50), s(60)]);
  // A second rewrite further on shrinks a segment by 3 (e.g. a 227 reply rewritten shorter).
  recordSeqChange(conn, ORIGINAL, s(40), -3);
  expect(conn.seqAdjust![ORIGINAL]).toEqual({ correctionPos: s(40), offsetBefore: 4, offsetAfter: 1 });
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(40), 9000))[0]).toBe(s(44));
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(50), 9000))[0]).toBe(s(51));
  expect(out(conn, REPLY, segment(REPLY, 9000, s(61)))[1]).toBe(s(60));
  expect(out(conn, REPLY, segment(REPLY, 9000, s(44)))[1]).toBe(s(40));
  // The server's own direction was never rewritten: its seq is untouched, and client acks too.
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(60), 9010))[1]).toBe(9010);
  // Now the server's direction grows by 7 at 9010: client acks of it come down by 7.
  recordSeqChange(conn, REPLY, 9010, +7);
  expect(out(conn, REPLY, segment(REPLY, 9020, s(61)))[0]).toBe(9027);
  expect(out(conn, ORIGINAL, segment(ORIGINAL, s(60), 9037))).toEqual([s(61), 9030]);
}

describe('sequence adjustment', () => {
  it('shifts seq, ack and SACK after growing and shrinking rewrites, in both directions', () => {
    scenario(1_000_000);
  });

  it('does the same across the 32-bit wraparound', () => {
    scenario(0xffffffe8);
    scenario(0xffffffff);
  });

  it('leaves segments alone while nothing was rewritten, and drops malformed options', () => {
    const conn = entry();
    const packet = segment(ORIGINAL, 5, 6);
    const copy = Buffer.from(packet);
    expect(adjustSequence(conn, ORIGINAL, packet, 20)).toBe(true);
    expect(packet).toEqual(copy);
    recordSeqChange(conn, ORIGINAL, 0, 2);
    const bad = segment(REPLY, 1, 5, 0, [[1, 2]]);
    bad[20 + 20 + 3] = 40; // the SACK option claims to run past the header
    expect(adjustSequence(conn, REPLY, bad, 20)).toBe(false);
  });
});
