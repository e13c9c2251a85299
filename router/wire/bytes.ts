/**
 * Big-endian (network order) integer access on plain byte arithmetic, so the same code works on a
 * Buffer and on a bare Uint8Array view, at any offset, without allocating.
 */

export function readU16(buf: Uint8Array, i: number): number {
  return (buf[i] << 8) | buf[i + 1];
}

export function writeU16(buf: Uint8Array, i: number, value: number): void {
  buf[i] = value >>> 8;
  buf[i + 1] = value;
}

/** Unsigned: `<< 24` would go negative for a high bit, so the top byte is multiplied in. */
export function readU32(buf: Uint8Array, i: number): number {
  return buf[i] * 0x1000000 + ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]);
}

export function writeU32(buf: Uint8Array, i: number, value: number): void {
  buf[i] = value >>> 24;
  buf[i + 1] = value >>> 16;
  buf[i + 2] = value >>> 8;
  buf[i + 3] = value;
}
