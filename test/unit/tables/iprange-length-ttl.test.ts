import { afterEach, describe, expect, it } from 'vitest';
import { udpPacket } from '../../support/packets.ts';
import type { RouterBench } from '../../support/router-bench.ts';
import { firewall, loaded, refused, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

/** A datagram from `src` to `dst` of IP total length `length` (at least 28). */
const datagram = (src: string, dst: string, length = 33, ttl = 64): Buffer =>
  udpPacket({ src, dst, ttl }, { srcPort: 5000, dstPort: 9, payload: Buffer.alloc(length - 28) });
const passes = (buf: Buffer): boolean => bench.receive(buf).sent.length > 0;
const dropping = (rule: string): RouterBench => firewall(section('filter', `-A FORWARD ${rule} -j DROP`));

describe('-m iprange on a router built by buildRouter', () => {
  it('matches a source inside the inclusive range, and a destination outside an inverted one', () => {
    bench = dropping('-m iprange --src-range 10.0.1.10-10.0.1.20 ! --dst-range 198.51.100.0-198.51.100.255');
    expect(passes(datagram('10.0.1.9', '203.0.113.9'))).toBe(true);
    expect(passes(datagram('10.0.1.10', '203.0.113.9'))).toBe(false);
    expect(passes(datagram('10.0.1.20', '203.0.113.9'))).toBe(false);
    expect(passes(datagram('10.0.1.21', '203.0.113.9'))).toBe(true);
    expect(passes(datagram('10.0.1.15', '198.51.100.255'))).toBe(true);
  });

  it('a single address is the range A-A; a reversed range never matches', () => {
    bench = dropping('-m iprange --dst-range 203.0.113.9');
    expect(passes(datagram('10.0.1.2', '203.0.113.9'))).toBe(false);
    expect(passes(datagram('10.0.1.2', '203.0.113.10'))).toBe(true);
    bench.close();
    bench = dropping('-m iprange --src-range 10.0.1.20-10.0.1.10');
    expect(passes(datagram('10.0.1.15', '203.0.113.9'))).toBe(true);
  });
});

describe('-m length and -m ttl on a router built by buildRouter', () => {
  it('-m length --length 100:200 is the IP total length, both ends included', () => {
    bench = dropping('-m length --length 100:200');
    expect([99, 100, 200, 201].map((length) => passes(datagram('10.0.1.2', '203.0.113.9', length)))).toEqual([true, false, false, true]);
  });

  it('! --length N: every length but N; N:M with N > M never matches', () => {
    bench = dropping('-m length ! --length 60');
    expect([59, 60, 61].map((length) => passes(datagram('10.0.1.2', '203.0.113.9', length)))).toEqual([false, true, false]);
    bench.close();
    bench = dropping('-m length --length 200:100');
    expect(passes(datagram('10.0.1.2', '203.0.113.9', 150))).toBe(true);
  });

  it('-m ttl in FORWARD sees the TTL after the router decremented it, as the kernel', () => {
    bench = dropping('-m ttl --ttl-lt 10');
    expect(passes(datagram('10.0.1.2', '203.0.113.9', 33, 10))).toBe(false);
    expect(passes(datagram('10.0.1.2', '203.0.113.9', 33, 11))).toBe(true);
  });

  it.each([
    ['--ttl-eq 63', [false, true, false]],
    ['! --ttl-eq 63', [true, false, true]],
    ['--ttl 63', [false, true, false]],
    ['--ttl-gt 63', [false, false, true]],
  ] as const)('-m ttl %s drops %j of TTLs 63, 64 and 65 arriving (62, 63, 64 in FORWARD)', (options, expected) => {
    bench = dropping(`-m ttl ${options}`);
    expect([63, 64, 65].map((ttl) => passes(datagram('10.0.1.2', '203.0.113.9', 33, ttl)))).toEqual(expected.map((dropped) => !dropped));
  });
});

describe('iprange, length and ttl: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['-m iprange --src-range 10.0.0.1-10.0.0.9', '-m iprange --src-range 10.0.0.1-10.0.0.9'],
    ['-m iprange ! --src-range 10.0.0.1-10.0.0.9 ! --dst-range 1.1.1.1-2.2.2.2', '-m iprange ! --src-range 10.0.0.1-10.0.0.9 ! --dst-range 1.1.1.1-2.2.2.2'],
    ['-m iprange --src-range 10.0.0.5', '-m iprange --src-range 10.0.0.5-10.0.0.5'],
    ['-m iprange --src-range 10.0.0.9-10.0.0.1', '-m iprange --src-range 10.0.0.9-10.0.0.1'],
    ['-m iprange --dst-range 1.2.3.4-1.2.3.4 --src-range 5.6.7.8-5.6.7.9', '-m iprange --src-range 5.6.7.8-5.6.7.9 --dst-range 1.2.3.4-1.2.3.4'],
    ['-m length --length 100', '-m length --length 100'],
    ['-m length --length 100:200', '-m length --length 100:200'],
    ['-m length ! --length 100:', '-m length ! --length 100:65535'],
    ['-m length --length :200', '-m length --length 0:200'],
    ['-m length --length :', '-m length --length 0:65535'],
    ['-m length --length 5:5', '-m length --length 5'],
    ['-m length --length 0x10', '-m length --length 16'],
    ['-m length --length 200:100', '-m length --length 200:100'],
    ['-m ttl --ttl-eq 64', '-m ttl --ttl-eq 64'],
    ['-m ttl ! --ttl-eq 64', '-m ttl ! --ttl-eq 64'],
    ['-m ttl --ttl-gt 64', '-m ttl --ttl-gt 64'],
    ['-m ttl --ttl-lt 64', '-m ttl --ttl-lt 64'],
    ['-m ttl --ttl 5', '-m ttl --ttl-eq 5'],
    ['-m ttl --ttl-eq 0x10', '-m ttl --ttl-eq 16'],
    ['-m ttl --ttl-gt 255', '-m ttl --ttl-gt 255'],
    ['-m ttl --ttl-lt 0', '-m ttl --ttl-lt 0'],
  ])('%s saves as %s', (rule, saved) => {
    expect(savedRules(loaded(section('filter', `-A INPUT ${rule}`)).tables)).toEqual([`-A INPUT ${saved}`]);
  });

  it.each([
    ['-m iprange', "iprange match: You must specify `--src-range' or `--dst-range'"],
    ['-m iprange --src-range 10.0.0.1-', 'iprange: Bad value for "--src-range" option: ""'],
    ['-m iprange --src-range 10.0.0.1-10.0.0.256', 'iprange: Bad value for "--src-range" option: "10.0.0.256"'],
    ['-m iprange --dst-range 10.0.0.1/24-10.0.0.3', 'iprange: Bad value for "--dst-range" option: "10.0.0.1/24"'],
    ['-m iprange --src-range 1.2.3.4-5.6.7.8-9.9.9.9', 'iprange: Bad value for "--src-range" option: "5.6.7.8-9.9.9.9"'],
    ['-m length', 'length: option "--length" must be specified'],
    ['-m length --length 65536', 'length: bad value for option "--length" near "65536", or out of range (0-65535)'],
    ['-m length --length abc', 'length: bad value for option "--length" near "abc", or out of range (0-65535)'],
    ['-m length --length 10:20:30', 'length: Too many components for option "--length" (max: 2)'],
    ['-m ttl', "TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt'"],
    ['-m ttl --ttl-eq 256', 'ttl: bad value "256" for option "--ttl-eq", or out of range (0-255)'],
    ['-m ttl --ttl-eq -1', 'ttl: bad value "-1" for option "--ttl-eq", or out of range (0-255)'],
    ['-m ttl ! --ttl-lt 5', 'option "--ttl-lt" cannot be inverted'],
    ['-m ttl --ttl-gt 2 --ttl-lt 5', 'ttl: option "--ttl-lt" cannot be used together with "--ttl-gt"'],
  ])('refuses %s as iptables does', (rule, reason) => {
    expect(refused(section('filter', `-A INPUT ${rule}`)).message).toContain(`test.rules:5: ${reason}`);
  });
});
