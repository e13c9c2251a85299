/**
 * The capture filter against hand-built packets. The MATCHES table was also run through tcpdump
 * 4.99.3 (`tcpdump -r` of the same packets written as pcapng): every expression both accept
 * selects the same packets; the ones only we accept are `gre`, `proto udp` and a bare address.
 */
import { describe, expect, it } from 'vitest';
import { CaptureFilterError, compileCaptureFilter } from '../../../router/deploy/capture/capture-filter.ts';
import { MAX_FILTER_DEPTH, MAX_FILTER_LENGTH } from '../../../router/deploy/capture/filter-syntax.ts';
import { IPV4_FLAG_MF } from '../../../router/wire/ipv4.ts';
import { icmpPacket, rawPacket, tcpPacket, udpPacket } from '../../support/packets.ts';

const SYN = 0x02;

/** The packets every expression below is matched against. */
const PACKETS = {
  // 192.168.1.10:40000 -> 203.0.113.5:80
  web: tcpPacket({ src: '192.168.1.10', dst: '203.0.113.5' }, { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: SYN, window: 65535 }),
  // 10.0.0.1:53 -> 10.0.0.2:1024
  dns: udpPacket({ src: '10.0.0.1', dst: '10.0.0.2' }, { srcPort: 53, dstPort: 1024, payload: Buffer.from('answer') }),
  // 192.168.1.10 -> 192.168.1.1, echo request
  ping: icmpPacket({ src: '192.168.1.10', dst: '192.168.1.1' }, { type: 8, code: 0, rest: 0x00010001 }),
  // 198.51.100.7 -> 203.0.113.5, PPTP's enhanced GRE (payload not parsed by the filter)
  gre: rawPacket({ src: '198.51.100.7', dst: '203.0.113.5' }, 47, Buffer.from('3081880b00004d2a00000006', 'hex')),
  // The first fragment of a UDP datagram 10.0.0.1:53 -> 10.0.0.2:1024 (MF set, offset 0): ports readable.
  firstFragment: udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', flagsFragment: IPV4_FLAG_MF }, { srcPort: 53, dstPort: 1024, payload: Buffer.alloc(16) }),
  // A later fragment of it (offset 3 = 24 bytes): its first bytes look like ports 53 -> 1024 but are data.
  laterFragment: rawPacket({ src: '10.0.0.1', dst: '10.0.0.2', flagsFragment: 3 }, 17, Buffer.from('0035040000100000', 'hex')),
  // Protocol 132 (SCTP), ports 5000 -> 36412 at the start of its header.
  sctp: rawPacket({ src: '10.0.0.1', dst: '10.0.0.2' }, 132, Buffer.from('13888e3c0000000000000000', 'hex')),
  // Not IPv4 at all: version 6 in the first nibble.
  ipv6: Buffer.from('6000000000083a40' + '00'.repeat(32) + '8000000000000000', 'hex'),
  // A TCP header cut off after 2 bytes: no destination port to read.
  truncated: tcpPacket({ src: '192.168.1.10', dst: '203.0.113.5' }, { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: SYN, window: 1 }).subarray(0, 22),
} as const;
type PacketName = keyof typeof PACKETS;
const ALL = Object.keys(PACKETS) as PacketName[];

/** Expression -> the packets it matches (every other packet of PACKETS must not match). */
const MATCHES: readonly [string, readonly PacketName[]][] = [
  ['', ALL],
  ['ip', ALL.filter((name) => name !== 'ipv6')],
  ['host 192.168.1.10', ['web', 'ping', 'truncated']],
  ['src host 192.168.1.10', ['web', 'ping', 'truncated']],
  ['dst host 192.168.1.10', []],
  ['dst host 203.0.113.5', ['web', 'gre', 'truncated']],
  ['src or dst host 10.0.0.2', ['dns', 'firstFragment', 'laterFragment', 'sctp']],
  ['src and dst net 192.168.1.0/24', ['ping']],
  ['ip host 192.168.1.1', ['ping']],
  ['192.168.1.1', ['ping']],
  ['src 198.51.100.7', ['gre']],
  ['net 192.168.0.0/16', ['web', 'ping', 'truncated']],
  ['net 192.168', ['web', 'ping', 'truncated']],
  ['net 10', ['dns', 'firstFragment', 'laterFragment', 'sctp']],
  ['net 0.0.0.0/0', ALL.filter((name) => name !== 'ipv6')],
  ['src net 203.0.113.0/24', []],
  ['dst net 203.0.113.0/24', ['web', 'gre', 'truncated']],
  ['port 80', ['web']],
  ['port 53', ['dns', 'firstFragment']],
  ['src port 53', ['dns', 'firstFragment']],
  ['dst port 53', []],
  ['dst port 1024', ['dns', 'firstFragment']],
  ['tcp port 53', []],
  ['udp port 53', ['dns', 'firstFragment']],
  ['udp dst port 1024', ['dns', 'firstFragment']],
  ['port 5000', ['sctp']],
  ['sctp port 36412', ['sctp']],
  ['udp port 5000', []],
  ['src and dst port 53', []],
  ['portrange 1-100', ['web', 'dns', 'firstFragment']],
  ['portrange 100-1', ['web', 'dns', 'firstFragment']],
  ['dst portrange 1000-1100', ['dns', 'firstFragment']],
  ['src portrange 39000-41000', ['web', 'truncated']],
  ['portrange 80', ['web']],
  // The truncated header has its source port only: tcpdump matches on it, and on nothing after it.
  ['port 40000', ['web', 'truncated']],
  ['dst port 80', ['web']],
  ['tcp', ['web', 'truncated']],
  ['udp', ['dns', 'firstFragment', 'laterFragment']],
  ['icmp', ['ping']],
  ['gre', ['gre']],
  ['sctp', ['sctp']],
  ['proto 47', ['gre']],
  ['ip proto 1', ['ping']],
  ['proto udp', ['dns', 'firstFragment', 'laterFragment']],
  ['not tcp', ALL.filter((name) => name !== 'web' && name !== 'truncated')],
  ['! ip', ['ipv6']],
  ['!tcp && !udp', ['ping', 'gre', 'sctp', 'ipv6']],
  ['tcp or icmp', ['web', 'ping', 'truncated']],
  ['tcp || icmp', ['web', 'ping', 'truncated']],
  ['host 192.168.1.10 and not icmp', ['web', 'truncated']],
  ['host 192.168.1.10 && tcp and port 80', ['web']],
  // and/or have the same precedence and group to the left, as in tcpdump: (udp or tcp) and port 80.
  ['udp or tcp and port 80', ['web']],
  ['udp or (tcp and port 80)', ['web', 'dns', 'firstFragment', 'laterFragment']],
  ['not (udp or tcp)', ['ping', 'gre', 'sctp', 'ipv6']],
  ['((icmp))', ['ping']],
  ['not not icmp', ['ping']],
  // An ID alone takes the qualifiers before it.
  ['port 80 or 53', ['web', 'dns', 'firstFragment']],
  ['udp dst port 9 or 1024', ['dns', 'firstFragment']],
  ['host 192.168.1.1 or 198.51.100.7', ['ping', 'gre']],
  ['dst net 10.0.0.0/8 and not 10.0.0.2', []],
];

describe('capture filter: matching', () => {
  for (const [expression, expected] of MATCHES) {
    it(`"${expression}" matches ${expected.length ? expected.join(', ') : 'nothing'}`, () => {
      const filter = compileCaptureFilter(expression);
      const matched = ALL.filter((name) => filter.matches(PACKETS[name], 0, PACKETS[name].length));
      expect(matched).toEqual(expected);
    });
  }

  it('reads the packet at an offset inside a larger buffer, and only `length` bytes of it', () => {
    const filter = compileCaptureFilter('tcp dst port 80');
    const web = PACKETS.web;
    const slab = Buffer.concat([Buffer.alloc(13, 0x45), web, Buffer.alloc(7, 0xff)]);
    expect(filter.matches(slab, 13, web.length)).toBe(true);
    // The same bytes, but only the first 22 are the packet: the destination port is not in them.
    expect(filter.matches(slab, 13, 22)).toBe(false);
    expect(filter.matches(slab, 13, 24)).toBe(true);
  });

  it('does not treat a header longer than the bytes given as IPv4', () => {
    const options = tcpPacket(
      { src: '192.168.1.10', dst: '203.0.113.5', options: Buffer.from('01010100', 'hex') },
      { srcPort: 1, dstPort: 80, seq: 0, ack: 0, flags: SYN, window: 1 },
    );
    const filter = compileCaptureFilter('host 192.168.1.10');
    expect(filter.matches(options, 0, options.length)).toBe(true);
    expect(filter.matches(options, 0, 23)).toBe(false); // IHL 6 says 24 header bytes
    expect(compileCaptureFilter('port 80').matches(options, 0, options.length)).toBe(true);
  });

  it('keeps the expression text', () => {
    expect(compileCaptureFilter('  tcp   port 21 ').text).toBe('tcp   port 21');
  });
});

/** Expression -> the word the error names, its 1-based character, and part of the message. */
const ERRORS: readonly [string, string, number, string][] = [
  ['hots 10.0.0.1', 'hots', 1, 'expected a primitive'],
  ['host 10.0.0.1 and hots 5', 'hots', 19, 'expected a primitive'],
  ['host', '', 5, 'expected an IPv4 address (a.b.c.d) after "host" at character 1, found the end'],
  ['host 10.0.0.256', '10.0.0.256', 6, 'is not an IPv4 address'],
  ['host 10.0.0.0/8', '10.0.0.0/8', 6, 'a prefix needs "net"'],
  ['host tcp', 'tcp', 6, 'expected an IPv4 address'],
  ['net 10.0.0.1/8', '10.0.0.1/8', 5, 'host bits set beyond /8'],
  ['net 10.0.0.0/33', '10.0.0.0/33', 5, 'prefix length that is not 0-32'],
  ['net 10.0.0.0.0', '10.0.0.0.0', 5, 'is not a network'],
  ['port 65536', '65536', 6, 'is not a port number (0-65535)'],
  ['port http', 'http', 6, 'is not a port number'],
  ['dst port', '', 9, 'expected a port number (0-65535) after "port"'],
  ['portrange 10-', '10-', 11, 'is not a port range'],
  ['portrange 1-70000', '1-70000', 11, 'is not a port number'],
  ['proto 256', '256', 7, 'is not a protocol'],
  ['proto', '', 6, 'expected a protocol'],
  ['tcp host 10.0.0.1', 'host', 5, 'cannot follow "tcp"'],
  ['udp src 10.0.0.1', '10.0.0.1', 9, '"port" or "portrange" after "udp"'],
  ['ip port 80', 'port', 4, 'cannot follow "ip"'],
  ['tcp and', '', 8, 'expected a primitive'],
  ['and tcp', 'and', 1, 'expected a primitive'],
  ['tcp udp', 'udp', 5, 'expected "and" or "or", found'],
  ['tcp)', ')', 4, 'closes no "("'],
  ['(tcp or udp', '', 12, 'expected ")" to close the "(" at character 1'],
  ['()', ')', 2, 'expected a primitive'],
  ['tcp & udp', '&', 5, 'is not an operator (write && or and)'],
  ['tcp | udp', '|', 5, 'is not an operator (write || or or)'],
  ['not', '', 4, 'expected a primitive'],
];

describe('capture filter: errors', () => {
  for (const [expression, word, position, message] of ERRORS) {
    it(`refuses "${expression}" at "${word}" (character ${position})`, () => {
      let error: unknown;
      try {
        compileCaptureFilter(expression);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(CaptureFilterError);
      const filterError = error as CaptureFilterError;
      expect({ word: filterError.word, position: filterError.position }).toEqual({ word, position });
      expect(filterError.message).toContain(message);
      if (word) expect(filterError.message).toContain(`"${word}" at character ${position}`);
    });
  }

  it('bounds the nesting, so a request cannot exhaust the stack', () => {
    const deep = '('.repeat(MAX_FILTER_DEPTH) + 'tcp' + ')'.repeat(MAX_FILTER_DEPTH);
    expect(compileCaptureFilter(deep).matches(PACKETS.web, 0, PACKETS.web.length)).toBe(true);
    expect(() => compileCaptureFilter('(' + deep + ')')).toThrow(/nests deeper than 64 levels/);
    expect(() => compileCaptureFilter('not '.repeat(MAX_FILTER_DEPTH + 1) + 'tcp')).toThrow(CaptureFilterError);
  });

  it('bounds the length of the expression', () => {
    const long = Array.from({ length: 700 }, () => 'tcp').join(' or ');
    expect(long.length).toBeGreaterThan(MAX_FILTER_LENGTH);
    expect(() => compileCaptureFilter(long)).toThrow(/longer than the 4096 allowed/);
  });
});
