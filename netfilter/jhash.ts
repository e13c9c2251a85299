/**
 * The kernel's Jenkins hash over 32-bit words (include/linux/jhash.h, jhash2: Bob Jenkins'
 * lookup3 `hashword`) and its way of reducing a hash into a range (reciprocal_scale). Used where
 * vrouter must pick what the kernel picks from the same inputs, e.g. the NAT address in a range.
 *
 * Words are unsigned 32-bit numbers; the arithmetic stays in 32-bit ints and allocates nothing.
 */

const JHASH_INITVAL = 0xdeadbeef;

function rol32(word: number, shift: number): number {
  return (word << shift) | (word >>> (32 - shift));
}

/** jhash2(k, length, initval): the hash of the first `length` words of `key`. */
export function jhash2(key: ArrayLike<number>, length: number, initval: number): number {
  let a = (JHASH_INITVAL + (length << 2) + initval) | 0;
  let b = a;
  let c = a;
  let at = 0;
  // Every block of three words but the last is mixed in (__jhash_mix).
  while (length > 3) {
    a = (a + key[at]!) | 0;
    b = (b + key[at + 1]!) | 0;
    c = (c + key[at + 2]!) | 0;
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    length -= 3;
    at += 3;
  }
  if (length === 0) return c >>> 0;
  // The last one to three words, then the final avalanche into c (__jhash_final).
  if (length === 3) c = (c + key[at + 2]!) | 0;
  if (length >= 2) b = (b + key[at + 1]!) | 0;
  a = (a + key[at]!) | 0;
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

/**
 * reciprocal_scale(value, range): `((u64)value * range) >> 32`, a value in [0, range) for a 32-bit
 * `value`. The product needs up to 64 bits, so it is taken in 16-bit halves of `value`; the low
 * half's remainder below 2^16 cannot carry into bit 32.
 */
export function reciprocalScale(value: number, range: number): number {
  const high = Math.floor(value / 0x10000) * range;
  const low = Math.floor(((value & 0xffff) * range) / 0x10000);
  return Math.floor((high + low) / 0x10000);
}
