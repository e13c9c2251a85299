import { describe, expect, it } from 'vitest';
import { readU16, readU32, writeU32 } from '../../../router/wire/bytes.ts';
import { transportChecksum, updateChecksumField16, updateChecksumField32 } from '../../../router/wire/checksum.ts';
import {
  TCP,
  TCP_PROBLEM_NAMES,
  TcpFlag,
  TcpOptionKind,
  TcpProblem,
  emitTcp,
  fillTcpChecksum,
  setTcpAck,
  setTcpChecksum,
  setTcpDstPort,
  setTcpFlags,
  setTcpSeq,
  setTcpSrcPort,
  setTcpWindow,
  tcpAck,
  tcpChecksum,
  tcpChecksumValid,
  tcpDstPort,
  tcpFindOption,
  tcpFlags,
  tcpHeaderLength,
  tcpHeaderLengthOf,
  tcpLengthOf,
  tcpSackBlockCount,
  tcpSackBlockOffset,
  tcpSeq,
  tcpSrcPort,
  tcpUrgent,
  tcpWindow,
  validateTcp,
} from '../../../router/wire/tcp.ts';
import type { TcpRepr } from '../../../router/wire/tcp.ts';
import { hex, embed, changedBytes, CLIENT, SERVER } from './vectors.ts';


// Segments captured from Linux on lo, readdressed to 192.168.1.10 <-> 203.0.113.5 with the checksums
// recomputed (lo leaves them partial) and confirmed by tcpdump -vv. TCP parts only.
// SYN: MSS 65495, SACK permitted, timestamps 3379999507/0, NOP, window scale 10.
const SYN = hex(
  'bf24b26e36a017e300000000a002ffd713a80000' + '0204ffd7' + '0402' + '080ac976b31300000000' + '01' + '03030a',
);
// PSH+ACK carrying "hello" after NOP, NOP, timestamps.
const HELLO = hex('bf24b26e36a017e4679267218018004060b20000' + '0101080ac976b3138b543d89' + '68656c6c6f');
// The server's ACK with NOP, NOP, timestamps and a SACK option of two blocks (hand-extended
// from a captured ACK; tcpdump reads it as "sack 2 {12:28}{44:60}").
const SACK = hex(
  'b26ebf246792672136a017e9d010004013c40000' +
    '0101080a8b543d89c976b313' +
    '01010512' +
    '36a017f036a01800' +
    '36a0181036a01820',
);

describe('TCP accessors on a captured SYN', () => {
  for (const off of [0, 21]) {
    it(`read every field (segment at offset ${off})`, () => {
      const buf = embed(SYN, off);
      expect(tcpSrcPort(buf, off)).toBe(48932);
      expect(tcpDstPort(buf, off)).toBe(45678);
      expect(tcpSeq(buf, off)).toBe(916461539);
      expect(tcpAck(buf, off)).toBe(0);
      expect(tcpHeaderLength(buf, off)).toBe(40);
      expect(tcpFlags(buf, off)).toBe(TcpFlag.SYN);
      expect(tcpWindow(buf, off)).toBe(65495);
      expect(tcpChecksum(buf, off)).toBe(0x13a8);
      expect(tcpUrgent(buf, off)).toBe(0);
      expect(tcpChecksumValid(buf, off, 40, CLIENT, SERVER)).toBe(true);
      expect(tcpChecksumValid(buf, off, 40, SERVER, CLIENT)).toBe(true); // the sum is symmetric
      expect(tcpChecksumValid(buf, off, 40, CLIENT, SERVER + 1)).toBe(false);
      expect(transportChecksum(buf, off, 40, CLIENT, SERVER, 6)).toBe(0);
      expect(validateTcp(buf, off, 40)).toBe(TcpProblem.OK);
    });

    it(`find each option (segment at offset ${off})`, () => {
      const buf = embed(SYN, off);
      const mss = tcpFindOption(buf, off, TcpOptionKind.MSS);
      expect(mss).toBe(off + 20);
      expect(readU16(buf, mss + 2)).toBe(65495);
      expect(tcpFindOption(buf, off, TcpOptionKind.SACK_PERMITTED)).toBe(off + 24);
      const timestamp = tcpFindOption(buf, off, TcpOptionKind.TIMESTAMP);
      expect(timestamp).toBe(off + 26);
      expect(readU32(buf, timestamp + 2)).toBe(3379999507);
      expect(readU32(buf, timestamp + 6)).toBe(0);
      expect(tcpFindOption(buf, off, TcpOptionKind.NOP)).toBe(off + 36);
      const windowScale = tcpFindOption(buf, off, TcpOptionKind.WINDOW_SCALE);
      expect(windowScale).toBe(off + 37);
      expect(buf[windowScale + 2]).toBe(10);
      expect(tcpFindOption(buf, off, TcpOptionKind.SACK)).toBe(-1);
      expect(tcpFindOption(buf, off, TcpOptionKind.END)).toBe(-1);
      expect(tcpFindOption(buf, off, 30)).toBe(-1);
    });
  }

  it('field offsets and constants match RFC 9293', () => {
    expect(TCP).toEqual({
      SRC_PORT: 0,
      DST_PORT: 2,
      SEQ: 4,
      ACK: 8,
      DATA_OFFSET: 12,
      FLAGS: 13,
      WINDOW: 14,
      CHECKSUM: 16,
      URGENT: 18,
      OPTIONS: 20,
    });
    expect(TcpFlag).toEqual({ FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 });
  });
});

describe('TCP data and SACK segments', () => {
  it('reads the PSH+ACK and finds its payload after the options', () => {
    expect(tcpHeaderLength(HELLO, 0)).toBe(32);
    expect(tcpFlags(HELLO, 0)).toBe(TcpFlag.PSH | TcpFlag.ACK);
    expect(tcpAck(HELLO, 0)).toBe(1737647905);
    expect(tcpFindOption(HELLO, 0, TcpOptionKind.TIMESTAMP)).toBe(22);
    expect(HELLO.subarray(tcpHeaderLength(HELLO, 0)).toString()).toBe('hello');
    expect(tcpChecksumValid(HELLO, 0, HELLO.length, CLIENT, SERVER)).toBe(true);
    expect(tcpChecksumValid(HELLO, 0, HELLO.length - 1, CLIENT, SERVER)).toBe(false);
  });

  for (const off of [0, 13]) {
    it(`reads the two SACK blocks (offset ${off})`, () => {
      const buf = embed(SACK, off);
      expect(tcpHeaderLength(buf, off)).toBe(52);
      expect(tcpFlags(buf, off)).toBe(TcpFlag.ACK);
      expect(tcpChecksumValid(buf, off, 52, SERVER, CLIENT)).toBe(true);
      const sack = tcpFindOption(buf, off, TcpOptionKind.SACK);
      expect(sack).toBe(off + 34);
      expect(tcpSackBlockCount(buf, sack)).toBe(2);
      expect(tcpSackBlockOffset(sack, 0)).toBe(off + 36);
      expect(tcpSackBlockOffset(sack, 1)).toBe(off + 44);
      const edges = [0, 1].flatMap((i) => [readU32(buf, tcpSackBlockOffset(sack, i)), readU32(buf, tcpSackBlockOffset(sack, i) + 4)]);
      expect(edges).toEqual([0x36a017f0, 0x36a01800, 0x36a01810, 0x36a01820]);
    });
  }

  it('shifts SACK edges in place (NAT sequence adjustment) with exact checksum updates', () => {
    const off = 7;
    const buf = embed(SACK, off);
    const before = Buffer.from(buf);
    const sack = tcpFindOption(buf, off, TcpOptionKind.SACK);
    const delta = 0x100; // the peer's data grew by 256 bytes before these edges
    for (let block = 0; block < tcpSackBlockCount(buf, sack); block++) {
      for (const edge of [0, 4]) {
        const at = tcpSackBlockOffset(sack, block) + edge;
        const old = readU32(buf, at);
        const moved = (old + delta) >>> 0;
        writeU32(buf, at, moved);
        updateChecksumField32(buf, off + TCP.CHECKSUM, old, moved);
      }
    }
    expect(buf.subarray(off + 36, off + 52).toString('hex')).toBe('36a018f036a0190036a0191036a01920');
    expect(changedBytes(before, buf)).toEqual([off + 16, off + 38, off + 42, off + 46, off + 50]);
    const full = Buffer.from(buf);
    fillTcpChecksum(full, off, 52, SERVER, CLIENT);
    expect(tcpChecksum(buf, off)).toBe(tcpChecksum(full, off));
    expect(tcpChecksum(buf, off)).toBe(0x0fc4);
    expect(tcpChecksumValid(buf, off, 52, SERVER, CLIENT)).toBe(true);
  });

  it('rewrites ports, seq and ack in place; 32-bit values read back unsigned', () => {
    const buf = Buffer.from(HELLO);
    const before = Buffer.from(buf);
    setTcpSrcPort(buf, 0, 1024);
    updateChecksumField16(buf, TCP.CHECKSUM, 48932, 1024);
    setTcpDstPort(buf, 0, 80);
    updateChecksumField16(buf, TCP.CHECKSUM, 45678, 80);
    setTcpSeq(buf, 0, 0xfffffff0);
    updateChecksumField32(buf, TCP.CHECKSUM, 916461540, 0xfffffff0);
    setTcpAck(buf, 0, 0x80000000);
    updateChecksumField32(buf, TCP.CHECKSUM, 1737647905, 0x80000000);
    expect(buf.subarray(0, 12).toString('hex')).toBe('04000050fffffff080000000');
    expect(tcpSeq(buf, 0)).toBe(4294967280);
    expect(tcpAck(buf, 0)).toBe(2147483648);
    expect(changedBytes(before, buf).every((i) => i < 12 || i === 16 || i === 17)).toBe(true);
    expect(tcpChecksumValid(buf, 0, buf.length, CLIENT, SERVER)).toBe(true);
    setTcpFlags(buf, 0, TcpFlag.RST | TcpFlag.ACK);
    setTcpWindow(buf, 0, 0);
    setTcpChecksum(buf, 0, 0xbeef);
    expect(buf.subarray(12, 18).toString('hex')).toBe('80140000beef');
  });
});

describe('tcpFindOption on malformed options', () => {
  /** A 40-byte header (data offset 10) with these 20 option bytes. */
  function withOptions(options: string): Buffer {
    const bytes = hex(options);
    expect(bytes.length).toBe(20);
    return Buffer.concat([SYN.subarray(0, 20), bytes]);
  }
  const nops = (count: number) => '01'.repeat(count);

  it('-2 for a length below 2 (which would never advance)', () => {
    expect(tcpFindOption(withOptions('0201' + nops(18)), 0, TcpOptionKind.WINDOW_SCALE)).toBe(-2);
    expect(tcpFindOption(withOptions('0800' + nops(18)), 0, TcpOptionKind.SACK)).toBe(-2);
  });

  it('-2 for an option that runs past the header, or has no room for its length byte', () => {
    expect(tcpFindOption(withOptions(nops(18) + '0305'), 0, TcpOptionKind.WINDOW_SCALE)).toBe(-2);
    expect(tcpFindOption(withOptions(nops(19) + '08'), 0, TcpOptionKind.TIMESTAMP)).toBe(-2);
    expect(tcpFindOption(withOptions(nops(17) + '030309'), 0, TcpOptionKind.WINDOW_SCALE)).toBe(37);
  });

  it('-2 for a malformed option before the one sought, but the earlier one is still found', () => {
    const options = withOptions('0204ffd7' + '08ff' + nops(14));
    expect(tcpFindOption(options, 0, TcpOptionKind.MSS)).toBe(20);
    expect(tcpFindOption(options, 0, TcpOptionKind.WINDOW_SCALE)).toBe(-2);
  });

  it('-1 past END: what follows it is padding', () => {
    const options = withOptions('0204ffd7' + '00' + '03030a' + '00'.repeat(12));
    expect(tcpFindOption(options, 0, TcpOptionKind.MSS)).toBe(20);
    expect(tcpFindOption(options, 0, TcpOptionKind.WINDOW_SCALE)).toBe(-1);
    expect(tcpFindOption(options, 0, TcpOptionKind.END)).toBe(24);
  });

  it('-1 without options', () => {
    const bare = Buffer.from(SYN.subarray(0, 20));
    bare[TCP.DATA_OFFSET] = 0x50;
    expect(tcpFindOption(bare, 0, TcpOptionKind.MSS)).toBe(-1);
    expect(tcpFindOption(bare, 0, TcpOptionKind.END)).toBe(-1);
  });

  it('an unknown kind is skipped by its length', () => {
    const options = withOptions('fe06aabbccdd' + '03030a' + nops(11));
    expect(tcpFindOption(options, 0, 0xfe)).toBe(20);
    expect(tcpFindOption(options, 0, TcpOptionKind.WINDOW_SCALE)).toBe(26);
  });
});

describe('validateTcp', () => {
  it('OK for the captured segments', () => {
    expect(validateTcp(SYN, 0, SYN.length)).toBe(TcpProblem.OK);
    expect(validateTcp(HELLO, 0, HELLO.length)).toBe(TcpProblem.OK);
    expect(validateTcp(SACK, 0, SACK.length)).toBe(TcpProblem.OK);
  });

  it('TRUNCATED: under 20 bytes, or shorter than the data offset says', () => {
    expect(validateTcp(SYN, 0, 19)).toBe(TcpProblem.TRUNCATED);
    expect(validateTcp(SYN, 0, 39)).toBe(TcpProblem.TRUNCATED);
    expect(validateTcp(SACK, 0, 51)).toBe(TcpProblem.TRUNCATED);
  });

  it('BAD_DATA_OFFSET: a data offset of 4 (or 0)', () => {
    const buf = Buffer.from(SYN);
    buf[TCP.DATA_OFFSET] = 0x40;
    expect(validateTcp(buf, 0, 40)).toBe(TcpProblem.BAD_DATA_OFFSET);
    buf[TCP.DATA_OFFSET] = 0x00;
    expect(validateTcp(buf, 0, 40)).toBe(TcpProblem.BAD_DATA_OFFSET);
  });

  it('names every problem', () => {
    expect(TCP_PROBLEM_NAMES).toEqual(['ok', 'tcp-truncated', 'tcp-bad-data-offset']);
    expect(Object.values(TcpProblem)).toEqual([0, 1, 2]);
  });
});

describe('TcpRepr', () => {
  const synRepr: TcpRepr = {
    srcPort: 48932,
    dstPort: 45678,
    seq: 916461539,
    ack: 0,
    flags: TcpFlag.SYN,
    window: 65495,
    options: SYN.subarray(20),
  };

  it('emits the captured SYN byte for byte, checksum included, at odd offsets too', () => {
    expect(tcpHeaderLengthOf(synRepr)).toBe(40);
    expect(tcpLengthOf(synRepr)).toBe(40);
    for (const off of [0, 3]) {
      const buf = Buffer.alloc(off + 45, 0xa5);
      expect(emitTcp(synRepr, buf, off, CLIENT, SERVER)).toBe(40);
      expect(buf.subarray(off, off + 40).equals(SYN)).toBe(true);
      expect(buf.subarray(off + 40).toString('hex')).toBe('a5a5a5a5a5');
    }
  });

  it('emits the captured PSH+ACK with its payload', () => {
    const repr: TcpRepr = {
      srcPort: 48932,
      dstPort: 45678,
      seq: 916461540,
      ack: 1737647905,
      flags: TcpFlag.PSH | TcpFlag.ACK,
      window: 64,
      options: HELLO.subarray(20, 32),
      payload: Buffer.from('hello'),
    };
    expect(tcpLengthOf(repr)).toBe(37);
    const buf = Buffer.alloc(37);
    expect(emitTcp(repr, buf, 0, CLIENT, SERVER)).toBe(37);
    expect(buf.equals(HELLO)).toBe(true);
  });

  it('pads options with END to a multiple of 4 and parses back', () => {
    const repr: TcpRepr = {
      srcPort: 1,
      dstPort: 65535,
      seq: 0xffffffff,
      ack: 0x12345678,
      flags: TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE,
      window: 1024,
      urgent: 7,
      options: hex('030307'), // window scale 7, one byte short of a word
      payload: hex('00ff'),
    };
    expect(tcpHeaderLengthOf(repr)).toBe(24);
    const buf = new Uint8Array(1 + tcpLengthOf(repr));
    buf.fill(0xee);
    expect(emitTcp(repr, buf, 1, SERVER, CLIENT)).toBe(26);
    expect(Buffer.from(buf.subarray(21, 27)).toString('hex')).toBe('03030700' + '00ff');
    expect({
      srcPort: tcpSrcPort(buf, 1),
      dstPort: tcpDstPort(buf, 1),
      seq: tcpSeq(buf, 1),
      ack: tcpAck(buf, 1),
      flags: tcpFlags(buf, 1),
      window: tcpWindow(buf, 1),
      urgent: tcpUrgent(buf, 1),
    }).toEqual({ ...repr, options: undefined, payload: undefined, urgent: 7 });
    expect(tcpFindOption(buf, 1, TcpOptionKind.WINDOW_SCALE)).toBe(21);
    expect(tcpFindOption(buf, 1, TcpOptionKind.END)).toBe(24);
    expect(tcpChecksumValid(buf, 1, 26, SERVER, CLIENT)).toBe(true);
    expect(validateTcp(buf, 1, 26)).toBe(TcpProblem.OK);
  });
});
