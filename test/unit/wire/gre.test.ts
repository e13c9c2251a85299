import { describe, expect, it } from 'vitest';
import { readU32 } from '../../../router/wire/bytes.ts';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import {
  GRE,
  GRE_PROBLEM_NAMES,
  GRE_PROTOCOL_PPP,
  GreFlag,
  GreProblem,
  emitGreV0,
  emitGreV1,
  greAckOffset,
  greHasAck,
  greHasChecksum,
  greHasKey,
  greHasSequence,
  greHeaderLength,
  greKey,
  greKeyOffset,
  greProtocol,
  greSequenceOffset,
  greV0LengthOf,
  greV1Ack,
  greV1CallId,
  greV1LengthOf,
  greV1PayloadLength,
  greV1Sequence,
  greVersion,
  setGreV1CallId,
  validateGre,
} from '../../../router/wire/gre.ts';
import type { GreV0Repr, GreV1Repr } from '../../../router/wire/gre.ts';
import { IpProtocol, Ipv4Problem, ipv4HeaderLength, ipv4Protocol, ipv4TotalLength, validateIpv4 } from '../../../router/wire/ipv4.ts';
import { hex, embed, changedBytes } from './vectors.ts';

// The tunnelled packet: a captured `ping` echo request, 192.168.1.10 -> 203.0.113.5.
const INNER = hex(
  '45000054ddb5400040015f3bc0a8010acb007105' +
    '0800a5580eb60001f39c046b000000007f150e0000000000101112131415161718191a1b1c1d1e1f' +
    '202122232425262728292a2b2c2d2e2f3031323334353637',
);
// PPP in HDLC-like framing (address ff, control 03, protocol 0021 = IPv4) around it.
const PPP_FRAME = Buffer.concat([hex('ff030021'), INNER]);

// Hand-built from RFC 2637 4.1 and RFC 2890 (tcpdump -vv decodes each as described), inside an
// IPv4 header 198.51.100.7 -> 203.0.113.5. PPTP data: K S A, version 1, payload 88, call 0x4d2a,
// sequence 7, acknowledgment 5.
const V1_DATA = Buffer.concat([
  hex('4500007c1c4640003f2fb8ccc6336407cb007105'),
  hex('3081 880b 0058 4d2a 00000007 00000005'),
  PPP_FRAME,
]);
// PPTP acknowledgment only: K A, no payload, acknowledgment 6.
const V1_ACK = hex('450000201c4740003f2fb927c6336407cb007105' + '2081 880b 0000 4d2a 00000006');
// Version 0 with key 0x12345 carrying IPv4.
const V0_KEY = Buffer.concat([hex('450000701c4640003f2fb8d8c6336407cb007105'), hex('2000 0800 00012345'), INNER]);
// Version 0 with checksum (0x248f over GRE header and payload), key 0x12345 and sequence 42.
const V0_CSUM_KEY_SEQ = Buffer.concat([
  hex('450000781c4640003f2fb8d0c6336407cb007105'),
  hex('b000 0800 248f 0000 00012345 0000002a'),
  INNER,
]);

/** The outer IPv4 header's length: where GRE starts. */
const ipOffset = (packet: Buffer) => ipv4HeaderLength(packet, 0);

describe('the outer packets', () => {
  it('are valid IPv4 carrying protocol 47', () => {
    for (const packet of [V1_DATA, V1_ACK, V0_KEY, V0_CSUM_KEY_SEQ]) {
      expect(validateIpv4(packet, 0, packet.length)).toBe(Ipv4Problem.OK);
      expect(ipv4Protocol(packet, 0)).toBe(IpProtocol.GRE);
      expect(ipv4TotalLength(packet, 0)).toBe(packet.length);
    }
  });
});

describe('GRE version 1 (PPTP)', () => {
  for (const shift of [0, 7]) {
    it(`reads a data packet with sequence and acknowledgment (shifted by ${shift})`, () => {
      const buf = embed(V1_DATA, shift);
      const off = shift + 20;
      const len = V1_DATA.length - 20;
      expect(greVersion(buf, off)).toBe(1);
      expect(greProtocol(buf, off)).toBe(GRE_PROTOCOL_PPP);
      expect(greHasChecksum(buf, off)).toBe(false);
      expect(greHasKey(buf, off)).toBe(true);
      expect(greHasSequence(buf, off)).toBe(true);
      expect(greHasAck(buf, off)).toBe(true);
      expect(greHeaderLength(buf, off)).toBe(16);
      expect(greKeyOffset(buf, off)).toBe(off + 4);
      expect(greSequenceOffset(buf, off)).toBe(off + 8);
      expect(greAckOffset(buf, off)).toBe(off + 12);
      expect(greV1PayloadLength(buf, off)).toBe(88);
      expect(greV1PayloadLength(buf, off)).toBe(len - greHeaderLength(buf, off));
      expect(greV1CallId(buf, off)).toBe(0x4d2a);
      expect(greV1Sequence(buf, off)).toBe(7);
      expect(greV1Ack(buf, off)).toBe(5);
      expect(validateGre(buf, off, len)).toBe(GreProblem.OK);
      expect(buf.subarray(off + 16, off + len).equals(PPP_FRAME)).toBe(true);
    });
  }

  it('reads an acknowledgment-only packet', () => {
    const off = ipOffset(V1_ACK);
    expect(greHasSequence(V1_ACK, off)).toBe(false);
    expect(greHasAck(V1_ACK, off)).toBe(true);
    expect(greHeaderLength(V1_ACK, off)).toBe(12);
    expect(greSequenceOffset(V1_ACK, off)).toBe(-1);
    expect(greV1Sequence(V1_ACK, off)).toBe(-1);
    expect(greAckOffset(V1_ACK, off)).toBe(off + 8);
    expect(greV1Ack(V1_ACK, off)).toBe(6);
    expect(greV1PayloadLength(V1_ACK, off)).toBe(0);
    expect(greV1CallId(V1_ACK, off)).toBe(0x4d2a);
    expect(validateGre(V1_ACK, off, 12)).toBe(GreProblem.OK);
  });

  it('reads a sequence-only packet: no acknowledgment', () => {
    const buf = Buffer.from(V1_DATA);
    buf[21] &= ~0x80; // clear A
    expect(greHasAck(buf, 20)).toBe(false);
    expect(greHeaderLength(buf, 20)).toBe(12);
    expect(greAckOffset(buf, 20)).toBe(-1);
    expect(greV1Ack(buf, 20)).toBe(-1);
    expect(greV1Sequence(buf, 20)).toBe(7);
  });

  it('rewrites the call ID (PPTP NAT) in exactly its two bytes', () => {
    const buf = Buffer.from(V1_DATA);
    setGreV1CallId(buf, 20, 0xbeef);
    expect(changedBytes(V1_DATA, buf)).toEqual([26, 27]);
    expect(buf.subarray(24, 28).toString('hex')).toBe('0058beef');
    expect(greV1CallId(buf, 20)).toBe(0xbeef);
    expect(validateGre(buf, 20, buf.length - 20)).toBe(GreProblem.OK);
  });

  it('reads sequence and acknowledgment numbers with the high bit set as unsigned', () => {
    const buf = Buffer.from(V1_DATA);
    buf.writeUInt32BE(0xfffffffe, 28);
    buf.writeUInt32BE(0x80000000, 32);
    expect(greV1Sequence(buf, 20)).toBe(4294967294);
    expect(greV1Ack(buf, 20)).toBe(2147483648);
  });
});

describe('GRE version 0', () => {
  for (const shift of [0, 3]) {
    it(`reads a keyed packet (shifted by ${shift})`, () => {
      const buf = embed(V0_KEY, shift);
      const off = shift + 20;
      expect(greVersion(buf, off)).toBe(0);
      expect(greProtocol(buf, off)).toBe(0x0800);
      expect(greHasChecksum(buf, off)).toBe(false);
      expect(greHasKey(buf, off)).toBe(true);
      expect(greHasSequence(buf, off)).toBe(false);
      expect(greHasAck(buf, off)).toBe(false);
      expect(greHeaderLength(buf, off)).toBe(8);
      expect(greKeyOffset(buf, off)).toBe(off + 4);
      expect(greKey(buf, off)).toBe(0x12345);
      expect(greSequenceOffset(buf, off)).toBe(-1);
      expect(validateGre(buf, off, V0_KEY.length - 20)).toBe(GreProblem.OK);
      expect(buf.subarray(off + 8, off + 8 + INNER.length).equals(INNER)).toBe(true);
    });
  }

  it('reads checksum, key and sequence, and the checksum verifies', () => {
    const off = 20;
    const len = V0_CSUM_KEY_SEQ.length - off;
    expect(greHasChecksum(V0_CSUM_KEY_SEQ, off)).toBe(true);
    expect(greHeaderLength(V0_CSUM_KEY_SEQ, off)).toBe(16);
    expect(V0_CSUM_KEY_SEQ.readUInt16BE(off + GRE.CHECKSUM)).toBe(0x248f);
    expect(internetChecksum(V0_CSUM_KEY_SEQ, off, len)).toBe(0);
    expect(greKeyOffset(V0_CSUM_KEY_SEQ, off)).toBe(off + 8);
    expect(greKey(V0_CSUM_KEY_SEQ, off)).toBe(0x12345);
    expect(greSequenceOffset(V0_CSUM_KEY_SEQ, off)).toBe(off + 12);
    expect(readU32(V0_CSUM_KEY_SEQ, greSequenceOffset(V0_CSUM_KEY_SEQ, off))).toBe(42);
    expect(validateGre(V0_CSUM_KEY_SEQ, off, len)).toBe(GreProblem.OK);
  });

  it('has no key and ignores the A bit (reserved in version 0)', () => {
    const buf = hex('0080 0800');
    expect(greKeyOffset(buf, 0)).toBe(-1);
    expect(greKey(buf, 0)).toBe(-1);
    expect(greHasAck(buf, 0)).toBe(false);
    expect(greHeaderLength(buf, 0)).toBe(4);
    expect(validateGre(buf, 0, 4)).toBe(GreProblem.OK);
  });

  it('reads keys with the high bit set as unsigned', () => {
    const buf = Buffer.from(V0_KEY);
    buf.writeUInt32BE(0xdeadbeef, 24);
    expect(greKey(buf, 20)).toBe(0xdeadbeef);
  });
});

describe('validateGre', () => {
  /** V1_DATA's GRE part with its first word replaced. */
  function v1WithWord(word: number): Buffer {
    const gre = Buffer.from(V1_DATA.subarray(20));
    gre.writeUInt16BE(word, 0);
    return gre;
  }

  it('TRUNCATED: under 4 bytes, or shorter than the flags say', () => {
    expect(validateGre(V0_KEY, 20, 3)).toBe(GreProblem.TRUNCATED);
    expect(validateGre(V0_KEY, 20, 7)).toBe(GreProblem.TRUNCATED);
    expect(validateGre(V1_DATA, 20, 15)).toBe(GreProblem.TRUNCATED);
    expect(validateGre(V1_DATA, 20, 16)).toBe(GreProblem.OK);
    expect(validateGre(V0_CSUM_KEY_SEQ, 20, 15)).toBe(GreProblem.TRUNCATED);
  });

  it('BAD_VERSION: versions 2 to 7', () => {
    for (const version of [2, 3, 7]) {
      expect(validateGre(v1WithWord(0x3080 | version), 0, 104)).toBe(GreProblem.BAD_VERSION);
    }
  });

  it('ROUTING_PRESENT: the R bit, in either version', () => {
    expect(validateGre(hex('4000 0800 0000 0000'), 0, 8)).toBe(GreProblem.ROUTING_PRESENT);
    expect(validateGre(v1WithWord(0x7081), 0, 104)).toBe(GreProblem.ROUTING_PRESENT);
  });

  it('V1_CHECKSUM_PRESENT: C set in version 1', () => {
    expect(validateGre(v1WithWord(0xb081), 0, 104)).toBe(GreProblem.V1_CHECKSUM_PRESENT);
  });

  it('V1_NO_KEY: version 1 without K', () => {
    expect(validateGre(v1WithWord(0x1081), 0, 104)).toBe(GreProblem.V1_NO_KEY);
  });

  it('V1_BAD_PROTOCOL: version 1 carrying anything but PPP', () => {
    const gre = Buffer.from(V1_DATA.subarray(20));
    gre.writeUInt16BE(0x0800, GRE.PROTOCOL);
    expect(validateGre(gre, 0, gre.length)).toBe(GreProblem.V1_BAD_PROTOCOL);
    // version 0 may carry anything
    expect(validateGre(V0_KEY, 20, V0_KEY.length - 20)).toBe(GreProblem.OK);
  });

  it('leaves the unused version 1 bits alone (s, recur, flags)', () => {
    expect(validateGre(v1WithWord(0x3081 | 0x0800 | 0x0700 | 0x0078), 0, 104)).toBe(GreProblem.OK);
  });

  it('names every problem', () => {
    expect(GRE_PROBLEM_NAMES).toEqual([
      'ok',
      'gre-truncated',
      'gre-bad-version',
      'gre-routing-present',
      'gre-v1-checksum-present',
      'gre-v1-no-key',
      'gre-v1-bad-protocol',
    ]);
    expect(Object.values(GreProblem)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(GreFlag).toEqual({ CHECKSUM: 0x8000, ROUTING: 0x4000, KEY: 0x2000, SEQUENCE: 0x1000, ACK: 0x0080 });
  });
});

describe('GRE reprs', () => {
  it('emitGreV1 rebuilds the data packet and the acknowledgment', () => {
    const data: GreV1Repr = { callId: 0x4d2a, sequence: 7, ack: 5, payload: PPP_FRAME };
    expect(greV1LengthOf(data)).toBe(104);
    const buf = Buffer.alloc(9 + 104, 0xa5);
    expect(emitGreV1(data, buf, 9)).toBe(104);
    expect(buf.subarray(9).equals(V1_DATA.subarray(20))).toBe(true);
    expect(buf.subarray(0, 9).equals(Buffer.alloc(9, 0xa5))).toBe(true);

    const ack: GreV1Repr = { callId: 0x4d2a, ack: 6 };
    expect(greV1LengthOf(ack)).toBe(12);
    const small = Buffer.alloc(12, 0xff);
    expect(emitGreV1(ack, small, 0)).toBe(12);
    expect(small.equals(V1_ACK.subarray(20))).toBe(true);
  });

  it('emitGreV1 with neither sequence nor acknowledgment, parsed back', () => {
    const buf = Buffer.alloc(8 + 3);
    expect(emitGreV1({ callId: 65535, payload: hex('c02109') }, buf, 0)).toBe(11);
    expect(buf.subarray(0, 8).toString('hex')).toBe('2001880b0003ffff');
    expect(greV1CallId(buf, 0)).toBe(65535);
    expect(greV1PayloadLength(buf, 0)).toBe(3);
    expect([greV1Sequence(buf, 0), greV1Ack(buf, 0)]).toEqual([-1, -1]);
    expect(validateGre(buf, 0, 11)).toBe(GreProblem.OK);
  });

  it('emitGreV0 rebuilds the keyed packet and the checksummed one', () => {
    const keyed: GreV0Repr = { protocol: 0x0800, key: 0x12345, payload: INNER };
    expect(greV0LengthOf(keyed)).toBe(92);
    const buf = Buffer.alloc(92);
    expect(emitGreV0(keyed, buf, 0)).toBe(92);
    expect(buf.equals(V0_KEY.subarray(20))).toBe(true);

    const full: GreV0Repr = { protocol: 0x0800, checksum: true, key: 0x12345, sequence: 42, payload: INNER };
    expect(greV0LengthOf(full)).toBe(100);
    const odd = Buffer.alloc(5 + 100, 0xa5);
    expect(emitGreV0(full, odd, 5)).toBe(100);
    expect(odd.subarray(5).equals(V0_CSUM_KEY_SEQ.subarray(20))).toBe(true);
  });

  it('emitGreV0 with only a sequence number, parsed back', () => {
    const buf = new Uint8Array(8);
    expect(emitGreV0({ protocol: 0x86dd, sequence: 0xffffffff }, buf, 0)).toBe(8);
    expect(Buffer.from(buf).toString('hex')).toBe('100086ddffffffff');
    expect(greHasKey(buf, 0)).toBe(false);
    expect(greSequenceOffset(buf, 0)).toBe(4);
    expect(readU32(buf, 4)).toBe(0xffffffff);
    expect(validateGre(buf, 0, 8)).toBe(GreProblem.OK);
  });
});
