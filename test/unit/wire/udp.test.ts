import { describe, expect, it } from 'vitest';
import { transportChecksum, updateUdpChecksumField16, updateUdpChecksumField32 } from '../../../router/wire/checksum.ts';
import {
  UDP,
  UDP_HEADER_LENGTH,
  UDP_PROBLEM_NAMES,
  UdpProblem,
  emitUdp,
  fillUdpChecksum,
  setUdpChecksum,
  setUdpDstPort,
  setUdpLength,
  setUdpSrcPort,
  udpChecksum,
  udpChecksumValid,
  udpDstPort,
  udpLength,
  udpLengthOf,
  udpSrcPort,
  validateUdp,
} from '../../../router/wire/udp.ts';
import type { UdpRepr } from '../../../router/wire/udp.ts';
import { hex, embed, changedBytes, CLIENT, SERVER } from './vectors.ts';

const PUBLIC = 0xc6336442; // 198.51.100.66

// A DNS query (id 0x1a2b, RD, example.com A) sent from Python on Linux, captured on lo and
// readdressed 192.168.1.10 -> 203.0.113.5; tcpdump -vv: "[udp sum ok]". The UDP part.
const DNS_PAYLOAD = hex('1a2b01000001000000000000076578616d706c6503636f6d0000010001');
const DNS = Buffer.concat([hex('8758b1290025dfd0'), DNS_PAYLOAD]);

describe('UDP accessors on a captured DNS query', () => {
  for (const off of [0, 11]) {
    it(`read every field (datagram at offset ${off})`, () => {
      const buf = embed(DNS, off);
      expect(udpSrcPort(buf, off)).toBe(34648);
      expect(udpDstPort(buf, off)).toBe(45353);
      expect(udpLength(buf, off)).toBe(37);
      expect(udpChecksum(buf, off)).toBe(0xdfd0);
      expect(udpChecksumValid(buf, off, 37, CLIENT, SERVER)).toBe(true);
      expect(udpChecksumValid(buf, off, 37, CLIENT, PUBLIC)).toBe(false);
      expect(validateUdp(buf, off, 37)).toBe(UdpProblem.OK);
      expect(buf.subarray(off + UDP_HEADER_LENGTH, off + 37).equals(DNS_PAYLOAD)).toBe(true);
    });
  }

  it('works on a plain Uint8Array', () => {
    const bytes = new Uint8Array(DNS);
    expect(udpSrcPort(bytes, 0)).toBe(34648);
    expect(udpChecksumValid(bytes, 0, 37, CLIENT, SERVER)).toBe(true);
  });

  it('field offsets match RFC 768', () => {
    expect(UDP).toEqual({ SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 });
    expect(UDP_HEADER_LENGTH).toBe(8);
  });
});

describe('UDP in-place edits', () => {
  it('masquerades source address and port with exact checksum updates', () => {
    const off = 5;
    const buf = embed(DNS, off);
    const before = Buffer.from(buf);
    setUdpSrcPort(buf, off, 1024);
    updateUdpChecksumField16(buf, off + UDP.CHECKSUM, 34648, 1024);
    updateUdpChecksumField32(buf, off + UDP.CHECKSUM, CLIENT, PUBLIC);
    expect(changedBytes(before, buf)).toEqual([off, off + 1, off + 6, off + 7]);
    expect(buf.subarray(off, off + 2).toString('hex')).toBe('0400');
    const full = Buffer.from(buf);
    fillUdpChecksum(full, off, 37, PUBLIC, SERVER);
    expect(udpChecksum(buf, off)).toBe(udpChecksum(full, off));
    expect(udpChecksum(buf, off)).toBe(0xfa65);
    expect(udpChecksumValid(buf, off, 37, PUBLIC, SERVER)).toBe(true);
  });

  it('a datagram without checksum stays without one and is valid', () => {
    const buf = Buffer.from(DNS);
    setUdpChecksum(buf, 0, 0);
    expect(udpChecksumValid(buf, 0, 37, CLIENT, SERVER)).toBe(true);
    setUdpDstPort(buf, 0, 53);
    updateUdpChecksumField16(buf, UDP.CHECKSUM, 45353, 53);
    updateUdpChecksumField32(buf, UDP.CHECKSUM, SERVER, PUBLIC);
    expect(buf.subarray(0, 8).toString('hex')).toBe('8758003500250000');
  });

  it('setUdpLength writes the length field', () => {
    const buf = Buffer.from(DNS);
    setUdpLength(buf, 0, 0x1234);
    expect(buf.subarray(4, 6).toString('hex')).toBe('1234');
    expect(validateUdp(buf, 0, 37)).toBe(UdpProblem.BAD_LENGTH);
  });
});

describe('validateUdp', () => {
  it('OK, also with bytes beyond the length field (IP padding)', () => {
    expect(validateUdp(DNS, 0, 37)).toBe(UdpProblem.OK);
    expect(validateUdp(embed(DNS, 0, 8), 0, 45)).toBe(UdpProblem.OK);
  });

  it('TRUNCATED: no room for the 8-byte header', () => {
    expect(validateUdp(DNS, 0, 7)).toBe(UdpProblem.TRUNCATED);
    expect(validateUdp(DNS, 0, 0)).toBe(UdpProblem.TRUNCATED);
  });

  it('BAD_LENGTH: longer than the buffer, or shorter than the header', () => {
    expect(validateUdp(DNS, 0, 36)).toBe(UdpProblem.BAD_LENGTH);
    const short = Buffer.from(DNS);
    short.writeUInt16BE(7, UDP.LENGTH);
    expect(validateUdp(short, 0, 37)).toBe(UdpProblem.BAD_LENGTH);
    short.writeUInt16BE(8, UDP.LENGTH);
    expect(validateUdp(short, 0, 37)).toBe(UdpProblem.OK);
  });

  it('names every problem', () => {
    expect(UDP_PROBLEM_NAMES).toEqual(['ok', 'udp-truncated', 'udp-bad-length']);
    expect(Object.values(UdpProblem)).toEqual([0, 1, 2]);
  });
});

describe('UdpRepr', () => {
  const repr: UdpRepr = { srcPort: 34648, dstPort: 45353, payload: DNS_PAYLOAD };

  it('emits the captured datagram byte for byte, at odd offsets too', () => {
    expect(udpLengthOf(repr)).toBe(37);
    for (const off of [0, 9]) {
      const buf = Buffer.alloc(off + 40, 0xa5);
      expect(emitUdp(repr, buf, off, CLIENT, SERVER)).toBe(37);
      expect(buf.subarray(off, off + 37).equals(DNS)).toBe(true);
      expect(buf.subarray(off + 37).toString('hex')).toBe('a5a5a5');
    }
  });

  it('emits a computed checksum of 0 as 0xffff', () => {
    // With query id 0 the checksum is 0xf9fb, so query id 0xf9fb makes the sum 0xffff.
    const payload = Buffer.from(DNS_PAYLOAD);
    payload.writeUInt16BE(0, 0);
    const buf = Buffer.alloc(37);
    emitUdp({ ...repr, payload }, buf, 0, CLIENT, SERVER);
    expect(udpChecksum(buf, 0)).toBe(0xf9fb);
    payload.writeUInt16BE(0xf9fb, 0);
    emitUdp({ ...repr, payload }, buf, 0, CLIENT, SERVER);
    expect(udpChecksum(buf, 0)).toBe(0xffff);
    expect(udpChecksumValid(buf, 0, 37, CLIENT, SERVER)).toBe(true);
    setUdpChecksum(buf, 0, 0);
    expect(transportChecksum(buf, 0, 37, CLIENT, SERVER, 17)).toBe(0xffff);
  });

  it('emits an empty datagram', () => {
    const buf = new Uint8Array(8);
    expect(emitUdp({ srcPort: 7, dstPort: 9 }, buf, 0, CLIENT, SERVER)).toBe(8);
    expect(Buffer.from(buf).subarray(0, 6).toString('hex')).toBe('000700090008');
    expect(udpChecksumValid(buf, 0, 8, CLIENT, SERVER)).toBe(true);
    expect(validateUdp(buf, 0, 8)).toBe(UdpProblem.OK);
  });
});
