import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import {
  IPV4,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_MIN_HEADER_LENGTH,
  IPV4_PROBLEM_NAMES,
  IpProtocol,
  Ipv4Problem,
  computeIpv4HeaderChecksum,
  decrementIpv4Ttl,
  emitIpv4Header,
  fillIpv4HeaderChecksum,
  formatIpv4,
  ipv4Checksum,
  ipv4DontFragment,
  ipv4Dst,
  ipv4FlagsFragment,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4HeaderLengthOf,
  ipv4Ident,
  ipv4IsFragment,
  ipv4MoreFragments,
  ipv4Protocol,
  ipv4Src,
  ipv4Tos,
  ipv4TotalLength,
  ipv4Ttl,
  ipv4Version,
  parseIpv4,
  setIpv4Checksum,
  setIpv4Dst,
  setIpv4FlagsFragment,
  setIpv4Ident,
  setIpv4Protocol,
  setIpv4Src,
  setIpv4TotalLength,
  setIpv4Ttl,
  validateIpv4,
} from '../../../router/wire/ipv4.ts';
import type { Ipv4Repr } from '../../../router/wire/ipv4.ts';
import { hex, embed, changedBytes, CLIENT, SERVER } from './vectors.ts';

/** `bytes` copied to `off` inside a larger buffer of filler, to catch accessors that ignore `off`. */
/** Offsets of the bytes that differ. */
// `ping 127.0.0.1` on Linux, readdressed to 192.168.1.10 -> 203.0.113.5 (header checksum recomputed).
const ECHO_REQUEST = hex(
  '45000054ddb5400040015f3bc0a8010acb007105' +
    '0800a5580eb60001f39c046b000000007f150e0000000000101112131415161718191a1b1c1d1e1f' +
    '202122232425262728292a2b2c2d2e2f3031323334353637',
);
const ECHO_HEADER = ECHO_REQUEST.subarray(0, 20);

// `ping -R 127.0.0.1`: the echo reply as captured, IHL 15 with a Record Route option holding three
// recorded hops (type 7, length 39, pointer 16) and an End of Option List byte.
const RECORD_ROUTE_REPLY = hex(
  '4f00007ce33a0000400173a07f0000017f000001' +
    '0727107f0000017f0000017f00000100000000000000000000000000000000000000000000000000' +
    '0000cabf0f050001069d046b00000000575f050000000000101112131415161718191a1b1c1d1e1f' +
    '202122232425262728292a2b2c2d2e2f3031323334353637',
);
const RECORD_ROUTE_OPTIONS = RECORD_ROUTE_REPLY.subarray(20, 60);

const LOOPBACK = 0x7f000001;

describe('IPv4 accessors on a captured echo request', () => {
  for (const off of [0, 7]) {
    it(`reads every field (header at offset ${off})`, () => {
      const buf = embed(ECHO_REQUEST, off);
      expect(ipv4Version(buf, off)).toBe(4);
      expect(ipv4HeaderLength(buf, off)).toBe(20);
      expect(ipv4Tos(buf, off)).toBe(0);
      expect(ipv4TotalLength(buf, off)).toBe(84);
      expect(ipv4Ident(buf, off)).toBe(0xddb5);
      expect(ipv4FlagsFragment(buf, off)).toBe(0x4000);
      expect(ipv4DontFragment(buf, off)).toBe(true);
      expect(ipv4MoreFragments(buf, off)).toBe(false);
      expect(ipv4FragmentOffset(buf, off)).toBe(0);
      expect(ipv4IsFragment(buf, off)).toBe(false);
      expect(ipv4Ttl(buf, off)).toBe(64);
      expect(ipv4Protocol(buf, off)).toBe(IpProtocol.ICMP);
      expect(ipv4Checksum(buf, off)).toBe(0x5f3b);
      expect(ipv4Src(buf, off)).toBe(CLIENT);
      expect(ipv4Dst(buf, off)).toBe(SERVER);
      expect(computeIpv4HeaderChecksum(buf, off)).toBe(0x5f3b);
      expect(internetChecksum(buf, off, 20)).toBe(0);
      expect(validateIpv4(buf, off, 84)).toBe(Ipv4Problem.OK);
    });
  }

  it('works on a plain Uint8Array', () => {
    const bytes = new Uint8Array(ECHO_REQUEST);
    expect(ipv4Src(bytes, 0)).toBe(CLIENT);
    expect(ipv4Dst(bytes, 0)).toBe(SERVER);
    expect(computeIpv4HeaderChecksum(bytes, 0)).toBe(0x5f3b);
    decrementIpv4Ttl(bytes, 0);
    expect(Array.from(bytes.subarray(8, 12))).toEqual([0x3f, 0x01, 0x60, 0x3b]);
  });

  it('reads addresses with the high bit set as unsigned', () => {
    const buf = Buffer.from(ECHO_HEADER);
    setIpv4Src(buf, 0, 0xffffffff);
    setIpv4Dst(buf, 0, 0x80000001);
    expect(ipv4Src(buf, 0)).toBe(4294967295);
    expect(ipv4Dst(buf, 0)).toBe(2147483649);
    expect(buf.subarray(12, 20).toString('hex')).toBe('ffffffff80000001');
  });

  it('field offsets match the RFC 791 layout', () => {
    expect(IPV4).toEqual({
      VERSION_IHL: 0,
      TOS: 1,
      TOTAL_LENGTH: 2,
      IDENT: 4,
      FLAGS_FRAGMENT: 6,
      TTL: 8,
      PROTOCOL: 9,
      CHECKSUM: 10,
      SRC: 12,
      DST: 16,
      OPTIONS: 20,
    });
    expect(IPV4_MIN_HEADER_LENGTH).toBe(20);
    expect(IpProtocol).toEqual({ ICMP: 1, TCP: 6, UDP: 17, GRE: 47 });
  });
});

describe('IPv4 in-place edits', () => {
  it('decrements the TTL with an incremental checksum update, touching only TTL and checksum', () => {
    const off = 7;
    const buf = embed(ECHO_REQUEST, off);
    const before = Buffer.from(buf);
    decrementIpv4Ttl(buf, off);
    expect(changedBytes(before, buf)).toEqual([off + 8, off + 10]);
    expect(ipv4Ttl(buf, off)).toBe(63);
    expect(ipv4Protocol(buf, off)).toBe(IpProtocol.ICMP);
    // one less in the high byte of the TTL/protocol word: the checksum grows by 0x0100
    expect(ipv4Checksum(buf, off)).toBe(0x603b);
    expect(validateIpv4(buf, off, 84)).toBe(Ipv4Problem.OK);
  });

  it('keeps the checksum exact from TTL 255 down to 0 for each protocol', () => {
    for (const protocol of [IpProtocol.ICMP, IpProtocol.TCP, IpProtocol.UDP, IpProtocol.GRE, 0xff]) {
      const buf = Buffer.from(ECHO_HEADER);
      setIpv4Protocol(buf, 0, protocol);
      setIpv4Ttl(buf, 0, 255);
      fillIpv4HeaderChecksum(buf, 0);
      for (let ttl = 254; ttl >= 0; ttl--) {
        decrementIpv4Ttl(buf, 0);
        expect(ipv4Ttl(buf, 0)).toBe(ttl);
        expect(ipv4Protocol(buf, 0)).toBe(protocol);
        expect(ipv4Checksum(buf, 0), `protocol ${protocol} ttl ${ttl}`).toBe(computeIpv4HeaderChecksum(buf, 0));
      }
    }
  });

  it('lands on a checksum of exactly 0x0000 where eqn. 2 would give 0xffff', () => {
    // With TTL 63 and ident 0 the header checksum is C; ident = C makes the TTL-63 header sum to
    // 0xffff, so decrementing from 64 must end at 0x0000.
    const buf = Buffer.from(ECHO_HEADER);
    setIpv4TotalLength(buf, 0, 20);
    setIpv4Ttl(buf, 0, 63);
    setIpv4Ident(buf, 0, 0);
    const aim = computeIpv4HeaderChecksum(buf, 0);
    setIpv4Ident(buf, 0, aim);
    setIpv4Ttl(buf, 0, 64);
    fillIpv4HeaderChecksum(buf, 0);
    expect(ipv4Checksum(buf, 0)).toBe(0xfeff);
    decrementIpv4Ttl(buf, 0);
    expect(ipv4Checksum(buf, 0)).toBe(0x0000);
    expect(validateIpv4(buf, 0, 20)).toBe(Ipv4Problem.OK);
  });

  it('raw setters write exactly their bytes and leave the checksum alone', () => {
    const buf = Buffer.from(ECHO_HEADER);
    setIpv4Src(buf, 0, 0x0a000001);
    setIpv4Dst(buf, 0, 0x0a000002);
    setIpv4Ttl(buf, 0, 1);
    setIpv4Protocol(buf, 0, IpProtocol.UDP);
    setIpv4Ident(buf, 0, 0xbeef);
    setIpv4TotalLength(buf, 0, 1500);
    expect(buf.toString('hex')).toBe('450005dcbeef4000011' + '15f3b0a0000010a000002');
    setIpv4Checksum(buf, 0, 0x1234);
    expect(buf.subarray(10, 12).toString('hex')).toBe('1234');
    expect(validateIpv4(buf, 0, 1500)).toBe(Ipv4Problem.BAD_CHECKSUM);
    fillIpv4HeaderChecksum(buf, 0);
    expect(internetChecksum(buf, 0, 20)).toBe(0);
  });

  it('decodes fragment fields', () => {
    const buf = Buffer.from(ECHO_HEADER);
    // first fragment: MF, offset 0
    setIpv4FlagsFragment(buf, 0, IPV4_FLAG_MF);
    expect(buf.subarray(6, 8).toString('hex')).toBe('2000');
    expect([ipv4MoreFragments(buf, 0), ipv4FragmentOffset(buf, 0), ipv4IsFragment(buf, 0)]).toEqual([true, 0, true]);
    // middle: MF, 185 units = 1480 bytes
    setIpv4FlagsFragment(buf, 0, IPV4_FLAG_MF | 185);
    expect(buf.subarray(6, 8).toString('hex')).toBe('20b9');
    expect([ipv4MoreFragments(buf, 0), ipv4FragmentOffset(buf, 0), ipv4IsFragment(buf, 0)]).toEqual([true, 1480, true]);
    // last: no MF, offset 2960
    setIpv4FlagsFragment(buf, 0, 370);
    expect([ipv4MoreFragments(buf, 0), ipv4FragmentOffset(buf, 0), ipv4IsFragment(buf, 0)]).toEqual([false, 2960, true]);
    expect(ipv4DontFragment(buf, 0)).toBe(false);
    // DF alone is not a fragment; the largest offset
    setIpv4FlagsFragment(buf, 0, IPV4_FLAG_DF | 0x1fff);
    expect([ipv4DontFragment(buf, 0), ipv4FragmentOffset(buf, 0)]).toEqual([true, 65528]);
    setIpv4FlagsFragment(buf, 0, IPV4_FLAG_DF);
    expect(ipv4IsFragment(buf, 0)).toBe(false);
  });
});

describe('IPv4 header with options (Record Route)', () => {
  for (const off of [0, 3]) {
    it(`parses a 60-byte header and verifies its checksum (offset ${off})`, () => {
      const buf = embed(RECORD_ROUTE_REPLY, off);
      expect(ipv4HeaderLength(buf, off)).toBe(60);
      expect(ipv4TotalLength(buf, off)).toBe(124);
      expect(ipv4Checksum(buf, off)).toBe(0x73a0);
      expect(computeIpv4HeaderChecksum(buf, off)).toBe(0x73a0);
      expect(internetChecksum(buf, off, 60)).toBe(0);
      expect(ipv4Src(buf, off)).toBe(LOOPBACK);
      expect(validateIpv4(buf, off, 124)).toBe(Ipv4Problem.OK);
      // the ICMP echo reply starts after the options
      expect(buf[off + ipv4HeaderLength(buf, off)]).toBe(0);
    });
  }

  it('leaves the options untouched when forwarding', () => {
    const buf = Buffer.from(RECORD_ROUTE_REPLY);
    decrementIpv4Ttl(buf, 0);
    expect(changedBytes(RECORD_ROUTE_REPLY, buf)).toEqual([8, 10]);
    expect(buf.subarray(20, 60).equals(RECORD_ROUTE_OPTIONS)).toBe(true);
    expect(computeIpv4HeaderChecksum(buf, 0)).toBe(ipv4Checksum(buf, 0));
    expect(ipv4Checksum(buf, 0)).toBe(0x74a0);
  });

  it('catches a corrupted option byte with the header checksum', () => {
    const buf = Buffer.from(RECORD_ROUTE_REPLY);
    buf[30] ^= 0x01;
    expect(validateIpv4(buf, 0, 124)).toBe(Ipv4Problem.BAD_CHECKSUM);
  });
});

describe('Ipv4Repr round trip', () => {
  const echoRepr: Ipv4Repr = {
    src: CLIENT,
    dst: SERVER,
    protocol: IpProtocol.ICMP,
    ttl: 64,
    ident: 0xddb5,
    flagsFragment: IPV4_FLAG_DF,
    payloadLength: 64,
  };

  it('emits the captured header byte for byte', () => {
    const buf = Buffer.alloc(20, 0xff);
    expect(ipv4HeaderLengthOf(echoRepr)).toBe(20);
    expect(emitIpv4Header(echoRepr, buf, 0)).toBe(20);
    expect(buf.toString('hex')).toBe(ECHO_HEADER.toString('hex'));
  });

  it('emits at an odd offset without touching the bytes around it', () => {
    const buf = Buffer.alloc(41, 0xa5);
    expect(emitIpv4Header(echoRepr, buf, 9)).toBe(20);
    expect(buf.subarray(9, 29).equals(ECHO_HEADER)).toBe(true);
    expect(changedBytes(Buffer.alloc(41, 0xa5), buf).every((i) => i >= 9 && i < 29)).toBe(true);
  });

  it('emits options verbatim', () => {
    const repr: Ipv4Repr = {
      src: LOOPBACK,
      dst: LOOPBACK,
      protocol: IpProtocol.ICMP,
      ttl: 64,
      ident: 0xe33a,
      options: RECORD_ROUTE_OPTIONS,
      payloadLength: 64,
    };
    expect(ipv4HeaderLengthOf(repr)).toBe(60);
    const buf = Buffer.alloc(124);
    buf.set(RECORD_ROUTE_REPLY.subarray(60), 60);
    expect(emitIpv4Header(repr, buf, 0)).toBe(60);
    expect(buf.equals(RECORD_ROUTE_REPLY)).toBe(true);
  });

  it('pads options to a multiple of 4 with zero (End of Option List)', () => {
    // Router Alert is 4 bytes; a lone NOP before it makes 5, padded to 8.
    const repr: Ipv4Repr = {
      src: CLIENT,
      dst: 0xe0000016, // 224.0.0.22
      protocol: 2,
      ttl: 1,
      tos: 0xc0,
      options: hex('01 94040000'),
      payloadLength: 8,
    };
    expect(ipv4HeaderLengthOf(repr)).toBe(28);
    const buf = Buffer.alloc(28, 0xee);
    expect(emitIpv4Header(repr, buf, 0)).toBe(28);
    expect(buf.subarray(0, 4).toString('hex')).toBe('47c00024');
    expect(buf.subarray(20).toString('hex')).toBe('0194040000000000');
    expect(ipv4Tos(buf, 0)).toBe(0xc0);
    expect(validateIpv4(buf, 0, 28)).toBe(Ipv4Problem.BAD_TOTAL_LENGTH); // total 36 > 28 bytes
    expect(validateIpv4(Buffer.concat([buf, Buffer.alloc(8)]), 0, 36)).toBe(Ipv4Problem.OK);
  });

  it('parses back what it emitted', () => {
    const repr: Ipv4Repr = {
      src: 0x0a0b0c0d,
      dst: 0xfffffffe,
      protocol: IpProtocol.GRE,
      ttl: 200,
      tos: 0x10,
      ident: 0xfffe,
      flagsFragment: IPV4_FLAG_MF | 3,
      payloadLength: 1000,
    };
    const buf = Buffer.alloc(1030);
    emitIpv4Header(repr, buf, 5);
    expect({
      src: ipv4Src(buf, 5),
      dst: ipv4Dst(buf, 5),
      protocol: ipv4Protocol(buf, 5),
      ttl: ipv4Ttl(buf, 5),
      tos: ipv4Tos(buf, 5),
      ident: ipv4Ident(buf, 5),
      flagsFragment: ipv4FlagsFragment(buf, 5),
      payloadLength: ipv4TotalLength(buf, 5) - ipv4HeaderLength(buf, 5),
    }).toEqual(repr);
    expect(ipv4FragmentOffset(buf, 5)).toBe(24);
    expect(validateIpv4(buf, 5, 1020)).toBe(Ipv4Problem.OK);
  });
});

describe('validateIpv4', () => {
  /** The echo header with `edit` applied and the checksum made right again. */
  function variant(edit: (buf: Buffer) => void): Buffer {
    const buf = Buffer.from(ECHO_REQUEST);
    edit(buf);
    fillIpv4HeaderChecksum(buf, 0);
    return buf;
  }

  it('accepts a good packet, and link padding past the total length', () => {
    expect(validateIpv4(ECHO_REQUEST, 0, 84)).toBe(Ipv4Problem.OK);
    expect(validateIpv4(embed(ECHO_REQUEST, 0, 16), 0, 100)).toBe(Ipv4Problem.OK);
  });

  it('TRUNCATED: fewer than 20 bytes, or fewer than IHL * 4', () => {
    expect(validateIpv4(ECHO_REQUEST, 0, 19)).toBe(Ipv4Problem.TRUNCATED);
    expect(validateIpv4(ECHO_REQUEST, 0, 0)).toBe(Ipv4Problem.TRUNCATED);
    expect(validateIpv4(RECORD_ROUTE_REPLY, 0, 59)).toBe(Ipv4Problem.TRUNCATED);
  });

  it('BAD_VERSION: an IPv6 version nibble', () => {
    expect(validateIpv4(variant((b) => (b[0] = 0x65)), 0, 84)).toBe(Ipv4Problem.BAD_VERSION);
  });

  it('BAD_HEADER_LENGTH: IHL 4', () => {
    expect(validateIpv4(variant((b) => (b[0] = 0x44)), 0, 84)).toBe(Ipv4Problem.BAD_HEADER_LENGTH);
  });

  it('BAD_TOTAL_LENGTH: longer than the buffer, or shorter than the header', () => {
    expect(validateIpv4(variant((b) => b.writeUInt16BE(85, 2)), 0, 84)).toBe(Ipv4Problem.BAD_TOTAL_LENGTH);
    expect(validateIpv4(variant((b) => b.writeUInt16BE(19, 2)), 0, 84)).toBe(Ipv4Problem.BAD_TOTAL_LENGTH);
    expect(validateIpv4(variant((b) => b.writeUInt16BE(20, 2)), 0, 84)).toBe(Ipv4Problem.OK);
  });

  it('BAD_CHECKSUM: one flipped bit, checked before the total length as ip_rcv does', () => {
    const flipped = Buffer.from(ECHO_REQUEST);
    flipped[5] ^= 0x10;
    expect(validateIpv4(flipped, 0, 84)).toBe(Ipv4Problem.BAD_CHECKSUM);
    flipped.writeUInt16BE(200, 2);
    expect(validateIpv4(flipped, 0, 84)).toBe(Ipv4Problem.BAD_CHECKSUM);
  });

  it('names every problem', () => {
    expect(IPV4_PROBLEM_NAMES).toEqual([
      'ok',
      'ipv4-truncated',
      'ipv4-bad-version',
      'ipv4-bad-header-length',
      'ipv4-bad-total-length',
      'ipv4-bad-checksum',
    ]);
    expect(Object.values(Ipv4Problem)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('formatIpv4 / parseIpv4', () => {
  it('round trips dotted quads', () => {
    expect(formatIpv4(CLIENT)).toBe('192.168.1.10');
    expect(formatIpv4(0)).toBe('0.0.0.0');
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
    expect(parseIpv4('203.0.113.5')).toBe(SERVER);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('0.0.0.0')).toBe(0);
  });

  it('rejects anything else', () => {
    for (const text of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', '', 'a.b.c.d', '1..2.3']) {
      expect(() => parseIpv4(text), text).toThrow(/not an IPv4 address/);
    }
  });
});
