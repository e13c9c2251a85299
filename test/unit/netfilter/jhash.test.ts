/**
 * jhash2 and reciprocal_scale against the kernel. The vectors were read from a kernel 6.x: an nft
 * rule `ct mark set jhash FIELDS mod 4294967295 seed S` stores reciprocal_scale(jhash(FIELDS), 2^32 - 1)
 * (the hash minus one) in the connection's mark, shown by `conntrack -L`. nft pads each field of a
 * concatenation to 4 bytes and jhash over 4n bytes equals jhash2 over n words loaded little-endian,
 * so 10.0.1.2 is the word 0x0201000a and UDP port 40000 (0x9c40) is 0x0000409c.
 */
import { describe, expect, it } from 'vitest';
import { jhash2, reciprocalScale } from '../../../netfilter/jhash.ts';

const SRC = 0x0201000a; // 10.0.1.2
const DST = 0x027100cb; // 203.0.113.2

/** [fields hashed, words, seed, the mark conntrack -L showed] */
const KERNEL_VECTORS: [string, number[], number, number][] = [
  ['ip saddr', [SRC], 0, 2503389059],
  ['ip saddr . ip daddr', [SRC, DST], 0, 2080294436],
  ['ip saddr . ip daddr . udp dport (6003)', [SRC, DST, 0x7317], 0, 3984520321],
  ['ip saddr . ip daddr . udp sport (40000) . udp dport (6004)', [SRC, DST, 0x409c, 0x7417], 0xcb007102, 1195763169],
  ['ip saddr . ip daddr . udp sport . udp dport (6007) . ip saddr . ip daddr . ip protocol', [SRC, DST, 0x409c, 0x7717, SRC, DST, 17], 0x12345678, 2914006206],
];

describe('jhash2', () => {
  it.each(KERNEL_VECTORS)('hashes %s as the kernel does', (_fields, words, seed, mark) => {
    const hash = jhash2(words, words.length, seed);
    expect(reciprocalScale(hash, 0xffffffff)).toBe(mark);
    expect(hash).toBe(mark + 1);
  });

  it('returns the initial value for an empty key, and hashes only the first `length` words', () => {
    expect(jhash2([], 0, 0)).toBe(0xdeadbeef);
    expect(jhash2([SRC, DST, 99], 2, 0)).toBe(2080294436 + 1);
  });
});

describe('reciprocalScale', () => {
  it('is ((u64)value * range) >> 32, exactly, over the whole 32-bit range', () => {
    let x = 0x9e3779b9;
    const next = (): number => {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      return x >>> 0;
    };
    const samples: [number, number][] = [[0, 0], [0xffffffff, 0xffffffff], [0xffffffff, 1], [0x80000000, 10], [0xffffffff, 0]];
    for (let i = 0; i < 2000; i++) samples.push([next(), next()]);
    for (const [value, range] of samples) {
      expect(reciprocalScale(value, range)).toBe(Number((BigInt(value) * BigInt(range)) >> 32n));
    }
  });
});
