/** Shared by the wire tests: byte vectors written as hex, placed inside larger buffers, and diffed. */

export const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** `bytes` at offset `off` of a larger buffer filled with 0xa5, so views at an offset are exercised. */
export function embed(bytes: Uint8Array, off: number, extra = 9): Buffer {
  const buf = Buffer.alloc(off + bytes.length + extra, 0xa5);
  buf.set(bytes, off);
  return buf;
}

/** Offsets at which two equally long buffers differ. */
export function changedBytes(before: Uint8Array, after: Uint8Array): number[] {
  const changed: number[] = [];
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) changed.push(i);
  return changed;
}

/** Addresses the vectors were readdressed to. */
export const CLIENT = 0xc0a8010a; // 192.168.1.10
export const SERVER = 0xcb007105; // 203.0.113.5
