import { describe, expect, it } from 'vitest';
import { internetChecksum, updateChecksumField16 } from '../../../router/wire/checksum.ts';
import {
  ICMP,
  ICMP_HEADER_LENGTH,
  ICMP_PROBLEM_NAMES,
  IcmpProblem,
  IcmpType,
  IcmpUnreachableCode,
  emitIcmp,
  fillIcmpChecksum,
  icmpChecksum,
  icmpCode,
  icmpEchoId,
  icmpEchoSequence,
  icmpGateway,
  icmpIsError,
  icmpIsQueryRequest,
  icmpLengthOf,
  icmpNextHopMtu,
  icmpPointer,
  icmpReplyTypeOf,
  icmpType,
  setIcmpChecksum,
  setIcmpCode,
  setIcmpEchoId,
  setIcmpEchoSequence,
  setIcmpNextHopMtu,
  setIcmpType,
  validateIcmp,
} from '../../../router/wire/icmp.ts';
import type { IcmpRepr } from '../../../router/wire/icmp.ts';
import { IpProtocol, ipv4Dst, ipv4HeaderLength, ipv4Protocol, ipv4Src } from '../../../router/wire/ipv4.ts';
import { hex, embed, changedBytes } from './vectors.ts';

// The ICMP part of `ping 127.0.0.1` on Linux: id 3766, seq 1, a struct timeval, then 0x10..0x37.
const ECHO_DATA = hex(
  'f39c046b000000007f150e0000000000101112131415161718191a1b1c1d1e1f' +
    '202122232425262728292a2b2c2d2e2f3031323334353637',
);
const ECHO_REQUEST = Buffer.concat([hex('0800a558 0eb60001'), ECHO_DATA]);
// The kernel's reply to it, from the same capture: type 0 and checksum 0xad58, the rest the same.
const ECHO_REPLY = Buffer.concat([hex('0000ad58 0eb60001'), ECHO_DATA]);

// The port unreachable Linux sent for a DNS query to a closed port (readdressed to
// 203.0.113.5 -> 192.168.1.10, checksums recomputed): the IPv4 header, then ICMP quoting the query.
const PORT_UNREACHABLE = hex(
  '45c00055ddc9000040019e66cb007105c0a8010a' +
    '0303faeb00000000' +
    '450000396a7040004011d28bc0a8010acb007105' +
    '8758b1290025dfd0' +
    '1a2b01000001000000000000076578616d706c6503636f6d0000010001',
);

describe('ICMP accessors', () => {
  for (const off of [0, 5]) {
    it(`read a captured echo request (offset ${off})`, () => {
      const buf = embed(ECHO_REQUEST, off);
      expect(icmpType(buf, off)).toBe(IcmpType.ECHO_REQUEST);
      expect(icmpCode(buf, off)).toBe(0);
      expect(icmpChecksum(buf, off)).toBe(0xa558);
      expect(icmpEchoId(buf, off)).toBe(3766);
      expect(icmpEchoSequence(buf, off)).toBe(1);
      expect(internetChecksum(buf, off, 64)).toBe(0);
      expect(validateIcmp(buf, off, 64)).toBe(IcmpProblem.OK);
    });
  }

  it('read a port unreachable and the packet it quotes', () => {
    const off = 20;
    const len = PORT_UNREACHABLE.length - off;
    expect(len).toBe(65);
    expect(icmpType(PORT_UNREACHABLE, off)).toBe(IcmpType.DEST_UNREACHABLE);
    expect(icmpCode(PORT_UNREACHABLE, off)).toBe(IcmpUnreachableCode.PORT);
    expect(icmpChecksum(PORT_UNREACHABLE, off)).toBe(0xfaeb);
    expect(icmpNextHopMtu(PORT_UNREACHABLE, off)).toBe(0);
    expect(validateIcmp(PORT_UNREACHABLE, off, len)).toBe(IcmpProblem.OK);
    const quoted = off + ICMP.DATA;
    expect(ipv4Src(PORT_UNREACHABLE, quoted)).toBe(0xc0a8010a);
    expect(ipv4Dst(PORT_UNREACHABLE, quoted)).toBe(0xcb007105);
    expect(ipv4Protocol(PORT_UNREACHABLE, quoted)).toBe(IpProtocol.UDP);
    const udp = quoted + ipv4HeaderLength(PORT_UNREACHABLE, quoted);
    expect(PORT_UNREACHABLE.readUInt16BE(udp)).toBe(34648);
    expect(PORT_UNREACHABLE.readUInt16BE(udp + 2)).toBe(45353);
  });

  it('field offsets match RFC 792', () => {
    expect(ICMP).toEqual({
      TYPE: 0,
      CODE: 1,
      CHECKSUM: 2,
      ID: 4,
      SEQUENCE: 6,
      NEXT_HOP_MTU: 6,
      POINTER: 4,
      GATEWAY: 4,
      REST: 4,
      DATA: 8,
    });
    expect(ICMP_HEADER_LENGTH).toBe(8);
  });
});

describe('ICMP in-place edits', () => {
  it('turns the request into the kernel reply with a one-word checksum update', () => {
    const off = 3;
    const buf = embed(ECHO_REQUEST, off);
    const before = Buffer.from(buf);
    const oldWord = buf.readUInt16BE(off);
    setIcmpType(buf, off, IcmpType.ECHO_REPLY);
    updateChecksumField16(buf, off + ICMP.CHECKSUM, oldWord, buf.readUInt16BE(off));
    expect(changedBytes(before, buf)).toEqual([off, off + 2]);
    expect(buf.subarray(off, off + 64).equals(ECHO_REPLY)).toBe(true);
  });

  it('fillIcmpChecksum computes the same as the kernel did', () => {
    const buf = embed(ECHO_REQUEST, 1);
    setIcmpType(buf, 1, IcmpType.ECHO_REPLY);
    setIcmpChecksum(buf, 1, 0x1234);
    fillIcmpChecksum(buf, 1, 64);
    expect(icmpChecksum(buf, 1)).toBe(0xad58);
    expect(buf[0]).toBe(0xa5);
    expect(buf[65]).toBe(0xa5);
  });

  it('rewrites the echo id (NAT) incrementally like a full recomputation', () => {
    const buf = Buffer.from(ECHO_REQUEST);
    setIcmpEchoId(buf, 0, 0xfffe);
    updateChecksumField16(buf, ICMP.CHECKSUM, 3766, 0xfffe);
    expect(buf.subarray(4, 6).toString('hex')).toBe('fffe');
    const full = Buffer.from(buf);
    fillIcmpChecksum(full, 0, 64);
    expect(icmpChecksum(buf, 0)).toBe(icmpChecksum(full, 0));
    expect(icmpChecksum(buf, 0)).toBe(0xb40f);
    setIcmpEchoSequence(buf, 0, 0x0102);
    expect(buf.subarray(6, 8).toString('hex')).toBe('0102');
  });

  it('turns the port unreachable into fragmentation needed with an MTU', () => {
    const buf = Buffer.from(PORT_UNREACHABLE);
    setIcmpCode(buf, 20, IcmpUnreachableCode.FRAGMENTATION_NEEDED);
    setIcmpNextHopMtu(buf, 20, 1400);
    fillIcmpChecksum(buf, 20, 65);
    expect(buf.subarray(20, 28).toString('hex')).toBe('0304' + 'f572' + '00000578');
    expect(icmpNextHopMtu(buf, 20)).toBe(1400);
    expect(validateIcmp(buf, 20, 65)).toBe(IcmpProblem.OK);
  });
});

describe('ICMP type classes', () => {
  const all = Array.from({ length: 256 }, (_, type) => type);

  it('icmpIsError: exactly 3, 4, 5, 11, 12', () => {
    expect(all.filter(icmpIsError)).toEqual([3, 4, 5, 11, 12]);
  });

  it('icmpIsQueryRequest: exactly 8, 13, 15, 17', () => {
    expect(all.filter(icmpIsQueryRequest)).toEqual([8, 13, 15, 17]);
  });

  it('icmpReplyTypeOf pairs each request with its reply', () => {
    expect(all.filter((type) => icmpReplyTypeOf(type) !== -1).map((type) => [type, icmpReplyTypeOf(type)])).toEqual([
      [8, 0],
      [13, 14],
      [15, 16],
      [17, 18],
    ]);
  });
});

describe('validateIcmp', () => {
  it('TRUNCATED: under 8 bytes, even with a checksum that holds', () => {
    // 08 00 f7 ff: a 4-byte echo request whose checksum is right
    const short = hex('0800f7ff');
    expect(internetChecksum(short, 0, 4)).toBe(0);
    expect(validateIcmp(short, 0, 4)).toBe(IcmpProblem.TRUNCATED);
    expect(validateIcmp(ECHO_REQUEST, 0, 7)).toBe(IcmpProblem.TRUNCATED);
    expect(validateIcmp(ECHO_REQUEST, 0, 0)).toBe(IcmpProblem.TRUNCATED);
  });

  it('BAD_CHECKSUM: a flipped data bit, or a message cut short', () => {
    const buf = Buffer.from(ECHO_REQUEST);
    buf[40] ^= 0x80;
    expect(validateIcmp(buf, 0, 64)).toBe(IcmpProblem.BAD_CHECKSUM);
    expect(validateIcmp(ECHO_REQUEST, 0, 63)).toBe(IcmpProblem.BAD_CHECKSUM);
  });

  it('names every problem', () => {
    expect(ICMP_PROBLEM_NAMES).toEqual(['ok', 'icmp-truncated', 'icmp-bad-checksum']);
    expect(Object.values(IcmpProblem)).toEqual([0, 1, 2]);
  });
});

describe('IcmpRepr', () => {
  it('emits the captured echo request, at an odd offset too', () => {
    const repr: IcmpRepr = { type: IcmpType.ECHO_REQUEST, code: 0, rest: (3766 << 16) | 1, data: ECHO_DATA };
    expect(icmpLengthOf(repr)).toBe(64);
    for (const off of [0, 9]) {
      const buf = Buffer.alloc(off + 64 + 3, 0xa5);
      expect(emitIcmp(repr, buf, off)).toBe(64);
      expect(buf.subarray(off, off + 64).equals(ECHO_REQUEST)).toBe(true);
      expect(buf.subarray(off + 64).toString('hex')).toBe('a5a5a5');
    }
  });

  it('emits a parameter problem pointer and a redirect gateway', () => {
    const quoted = PORT_UNREACHABLE.subarray(28, 56);
    const problem = Buffer.alloc(36);
    emitIcmp({ type: IcmpType.PARAMETER_PROBLEM, code: 0, rest: 20 << 24, data: quoted }, problem, 0);
    expect(problem.subarray(0, 8).toString('hex')).toBe('0c00' + problem.subarray(2, 4).toString('hex') + '14000000');
    expect(icmpPointer(problem, 0)).toBe(20);
    expect(validateIcmp(problem, 0, 36)).toBe(IcmpProblem.OK);

    const redirect = Buffer.alloc(36);
    emitIcmp({ type: IcmpType.REDIRECT, code: 1, rest: 0xc0a80101, data: quoted }, redirect, 0);
    expect(icmpGateway(redirect, 0)).toBe(0xc0a80101);
    expect(redirect.subarray(4, 8).toString('hex')).toBe('c0a80101');
    expect(validateIcmp(redirect, 0, 36)).toBe(IcmpProblem.OK);
  });

  it('emits a header-only message', () => {
    const buf = Buffer.alloc(8, 0xff);
    expect(emitIcmp({ type: IcmpType.ECHO_REPLY, code: 0 }, buf, 0)).toBe(8);
    expect(buf.toString('hex')).toBe('0000ffff00000000');
  });
});
