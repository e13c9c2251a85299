import { describe, expect, it } from 'vitest';
import {
  checksumReplace16,
  checksumReplace32,
  internetChecksum,
  onesComplementSum,
  pseudoHeaderSum,
  transportChecksum,
  updateChecksumField16,
  updateChecksumField32,
  updateUdpChecksumField16,
  updateUdpChecksumField32,
} from '../../../router/wire/checksum.ts';
import { hex, CLIENT, SERVER } from './vectors.ts';

/** mulberry32: a tiny seeded PRNG, so a failing case reproduces from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInt(random: () => number, max: number): number {
  return Math.floor(random() * max);
}

function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = randomInt(random, 256);
  return bytes;
}

/** The reference: the definition read literally, BigInt words, folded only at the very end. */
function referenceSum(bytes: Uint8Array, initial = 0n): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += BigInt((bytes[i] << 8) | (i + 1 < bytes.length ? bytes[i + 1] : 0));
  }
  while (sum > 0xffffn) sum = (sum & 0xffffn) + (sum >> 16n);
  return Number(sum);
}

function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function referenceChecksum(bytes: Uint8Array): number {
  return ~referenceSum(bytes) & 0xffff;
}

/** Full recomputation of a checksum stored at `checksumAt` inside `packet`. */
function recompute(packet: Uint8Array, checksumAt: number): number {
  const copy = packet.slice();
  copy[checksumAt] = 0;
  copy[checksumAt + 1] = 0;
  return referenceChecksum(copy);
}

function word(bytes: Uint8Array, i: number): number {
  return (bytes[i] << 8) | bytes[i + 1];
}

function setWord(bytes: Uint8Array, i: number, value: number): void {
  bytes[i] = value >>> 8;
  bytes[i + 1] = value & 0xff;
}

/**
 * A random "packet" of 8..1500 bytes (odd lengths too) with a checksum word and a field of
 * `fieldBytes` at even offsets that do not overlap. Like every real header, its data is never all zero: word 0 is
 * pinned non-zero, as IPv4's version nibble is (an all-zero message is the one case where one's
 * complement has two spellings of the checksum).
 */
function randomPacket(random: () => number, fieldBytes: 2 | 4) {
  const length = 8 + randomInt(random, 1493);
  const packet = randomBytes(random, length);
  packet[0] |= 0x40;
  const words = length >>> 1;
  let checksumAt: number;
  let fieldAt: number;
  do {
    checksumAt = 2 * (1 + randomInt(random, words - 1));
    fieldAt = 2 * (1 + randomInt(random, words - fieldBytes / 2));
  } while (fieldAt <= checksumAt + 1 && checksumAt <= fieldAt + fieldBytes - 1);
  setWord(packet, checksumAt, recompute(packet, checksumAt));
  return { packet, checksumAt, fieldAt };
}

describe('onesComplementSum / internetChecksum', () => {
  it('matches the RFC 1071 section 3 numerical example', () => {
    const bytes = hex('0001 f203 f4f5 f6f7');
    expect(onesComplementSum(bytes, 0, 8)).toBe(0xddf2);
    expect(internetChecksum(bytes, 0, 8)).toBe(0x220d);
  });

  it('pads an odd trailing byte with zero and sums nothing to zero', () => {
    expect(onesComplementSum(hex('12'), 0, 1)).toBe(0x1200);
    expect(onesComplementSum(hex('0001 f203 f4f5 f6'), 0, 7)).toBe(0xddf2 - 0xf7);
    expect(onesComplementSum(hex(''), 0, 0)).toBe(0);
    expect(internetChecksum(hex(''), 0, 0)).toBe(0xffff);
    expect(onesComplementSum(hex(''), 0, 0, 0x1234)).toBe(0x1234);
  });

  it('folds sums beyond 2^32 (70000 words of 0xffff)', () => {
    const bytes = new Uint8Array(140_001).fill(0xff);
    expect(onesComplementSum(bytes, 0, 140_000)).toBe(0xffff);
    // the odd byte adds 0xff00, and 70000 * 0xffff is 0 modulo 0xffff
    expect(onesComplementSum(bytes, 0, 140_001)).toBe(0xff00);
    expect(onesComplementSum(bytes, 0, 140_001)).toBe(referenceSum(bytes));
    expect(onesComplementSum(bytes, 1, 3)).toBe(0xff00);
  });

  it('reads only [off, off+len) and works on Uint8Array and Buffer alike', () => {
    const bytes = Buffer.from(hex('ffff 0001 f203 f4f5 f6f7 ffff'));
    expect(onesComplementSum(bytes, 2, 8)).toBe(0xddf2);
    expect(onesComplementSum(new Uint8Array(bytes), 2, 8)).toBe(0xddf2);
    // at an odd offset the words are still the bytes from `off` on
    const shifted = hex('aa 0001 f203 f4f5 f6f7 bb');
    expect(onesComplementSum(shifted, 1, 8)).toBe(0xddf2);
  });

  it('matches the reference on 1500 seeded random buffers at random offsets', () => {
    const random = mulberry32(0x1071);
    let odd = 0;
    for (let n = 0; n < 1500; n++) {
      const length = randomInt(random, 1501);
      const off = randomInt(random, 64);
      const buf = randomBytes(random, off + length + randomInt(random, 8));
      const data = buf.subarray(off, off + length);
      const initial = randomInt(random, 0x10000);
      if (length % 2) odd++;
      const context = `case ${n}: length ${length} at ${off}`;
      expect(onesComplementSum(buf, off, length), context).toBe(referenceSum(data));
      expect(onesComplementSum(buf, off, length, initial), context).toBe(referenceSum(data, BigInt(initial)));
      expect(internetChecksum(buf, off, length), context).toBe(referenceChecksum(data));
    }
    expect(odd).toBeGreaterThan(600);
  });

  it('gives 0 over data that includes its own checksum', () => {
    const random = mulberry32(7);
    for (let n = 0; n < 200; n++) {
      const { packet } = randomPacket(random, 2);
      expect(internetChecksum(packet, 0, packet.length)).toBe(0);
      expect(onesComplementSum(packet, 0, packet.length)).toBe(0xffff);
    }
  });
});

describe('pseudoHeaderSum', () => {
  it('equals the sum over the 12 pseudo-header bytes', () => {
    const random = mulberry32(0x768);
    for (let n = 0; n < 1000; n++) {
      const src = randomInt(random, 0x1_0000_0000);
      const dst = randomInt(random, 0x1_0000_0000);
      const protocol = randomInt(random, 256);
      const length = randomInt(random, 0x10000);
      const bytes = new Uint8Array(12);
      Buffer.from(bytes.buffer).writeUInt32BE(src, 0);
      Buffer.from(bytes.buffer).writeUInt32BE(dst, 4);
      bytes[9] = protocol;
      setWord(bytes, 10, length);
      expect(pseudoHeaderSum(src, dst, protocol, length)).toBe(referenceSum(bytes));
    }
  });

  it('sums a concrete pseudo-header', () => {
    // 192.168.1.10 -> 203.0.113.5, TCP, 40 bytes: c0a8+010a+cb00+7105+0006+0028 = 0x1_fde5 -> 0xfde6
    expect(pseudoHeaderSum(0xc0a8010a, 0xcb007105, 6, 40)).toBe(0xfde6);
  });
});

describe('checksumReplace16 / checksumReplace32 (RFC 1624)', () => {
  it('gets the RFC 1624 section 4 example right where eqn. 2 gives -0', () => {
    // the other header words sum to 0xCD7A; m = 0x5555 becomes 0x3285; recomputation gives 0x0000
    expect(checksumReplace16(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
    // and back again
    expect(checksumReplace16(0x0000, 0x3285, 0x5555)).toBe(0xdd2f);
  });

  it('changes nothing when the word does not change', () => {
    expect(checksumReplace16(0x1234, 0xabcd, 0xabcd)).toBe(0x1234);
    expect(checksumReplace32(0x1234, 0xdeadbeef, 0xdeadbeef)).toBe(0x1234);
  });

  it('treats a 32-bit value as its two halves', () => {
    const random = mulberry32(32);
    for (let n = 0; n < 1000; n++) {
      const checksum = randomInt(random, 0x10000);
      const oldValue = randomInt(random, 0x1_0000_0000);
      const newValue = randomInt(random, 0x1_0000_0000);
      const twice = checksumReplace16(
        checksumReplace16(checksum, oldValue >>> 16, newValue >>> 16),
        oldValue & 0xffff,
        newValue & 0xffff,
      );
      expect(checksumReplace32(checksum, oldValue, newValue)).toBe(twice);
    }
  });

  // One case in seven is plain random; the others are the edges RFC 1624 is about: an old or new
  // word of 0x0000 or 0xffff, a stored checksum of 0x0000, and a new value that makes the correct
  // result 0x0000 (where eqn. 2 would give 0xffff). A stored 0xffff needs all-zero data, see above.
  type Edge = 'random' | 'new-0000' | 'new-ffff' | 'old-0000' | 'old-ffff' | 'result-0000' | 'checksum-0000';
  const EDGES: Edge[] = ['random', 'new-0000', 'new-ffff', 'old-0000', 'old-ffff', 'result-0000', 'checksum-0000'];

  /** Re-aims word 0 so that the correct stored checksum is 0x0000, i.e. the data sum to 0xffff. */
  function zeroChecksum(packet: Uint8Array, checksumAt: number): void {
    setWord(packet, checksumAt, 0);
    setWord(packet, 0, 0);
    setWord(packet, 0, 0xffff - referenceSum(packet));
  }

  function runCases(fieldBytes: 2 | 4, seed: number): Record<Edge, number> {
    const random = mulberry32(seed);
    const seen = Object.fromEntries(EDGES.map((edge) => [edge, 0])) as Record<Edge, number>;
    const all = fieldBytes === 2 ? 0xffff : 0xffffffff;
    const read = (p: Uint8Array, i: number) => (fieldBytes === 2 ? word(p, i) : word(p, i) * 0x10000 + word(p, i + 2));
    const write = (p: Uint8Array, i: number, v: number) => {
      if (fieldBytes === 4) setWord(p, i + 2, v & 0xffff);
      setWord(p, i, fieldBytes === 2 ? v : v >>> 16);
    };
    for (let n = 0; n < 1400; n++) {
      const edge = EDGES[n % EDGES.length];
      const { packet, checksumAt, fieldAt } = randomPacket(random, fieldBytes);
      let newValue = randomInt(random, all + 1);
      if (edge === 'new-0000') newValue = 0;
      if (edge === 'new-ffff') newValue = all;
      if (edge === 'old-0000' || edge === 'old-ffff') {
        write(packet, fieldAt, edge === 'old-0000' ? 0 : all);
        setWord(packet, checksumAt, recompute(packet, checksumAt));
      }
      if (edge === 'checksum-0000') zeroChecksum(packet, checksumAt);
      if (edge === 'result-0000') {
        // the other words sum to `rest`; pick the new value so that everything sums to 0xffff
        const probe = packet.slice();
        write(probe, fieldAt, 0);
        setWord(probe, checksumAt, 0);
        const rest = referenceSum(probe);
        const high = fieldBytes === 2 ? 0 : randomInt(random, 0x10000);
        newValue = high * 0x10000 + (0xffff - fold16(rest + high));
      }
      const oldValue = read(packet, fieldAt);
      const storedBefore = word(packet, checksumAt);
      write(packet, fieldAt, newValue);
      if (fieldBytes === 2) updateChecksumField16(packet, checksumAt, oldValue, newValue);
      else updateChecksumField32(packet, checksumAt, oldValue, newValue);
      const expected = recompute(packet, checksumAt);
      const context =
        `${fieldBytes * 8}-bit case ${n} (${edge}): checksum ${storedBefore.toString(16)}, ` +
        `${oldValue.toString(16)} -> ${newValue.toString(16)}`;
      expect(word(packet, checksumAt), context).toBe(expected);
      expect(internetChecksum(packet, 0, packet.length), context).toBe(0);
      if (edge === 'result-0000') expect(expected, context).toBe(0);
      if (edge === 'checksum-0000') expect(storedBefore, context).toBe(0);
      seen[edge]++;
    }
    return seen;
  }

  it('equals full recomputation for 16-bit fields on 1400 random cases and edges', () => {
    const seen = runCases(2, 1624);
    for (const edge of EDGES) expect(seen[edge]).toBe(200);
  });

  it('equals full recomputation for 32-bit fields on 1400 random cases and edges', () => {
    const seen = runCases(4, 3022);
    for (const edge of EDGES) expect(seen[edge]).toBe(200);
  });
});

// Captured from Linux on lo and readdressed to 192.168.1.10 -> 203.0.113.5, checksums recomputed
// (lo leaves TCP/UDP checksums partial) and confirmed by tcpdump -vv: "cksum 0x60b2 (correct)".
const TCP_HELLO = hex(
  '45000039611e40004006dbe8c0a8010acb007105' +
    'bf24b26e36a017e4679267218018004060b200000101080ac976b3138b543d89' +
    '68656c6c6f',
);
// A DNS query for example.com A, same capture: "[udp sum ok]".
const UDP_DNS = hex(
  '450000396a7040004011d28bc0a8010acb007105' +
    '8758b1290025dfd0' +
    '1a2b01000001000000000000076578616d706c6503636f6d0000010001',
);
const PUBLIC = 0xc6336442; // 198.51.100.66

describe('pseudo-header updates for address rewrites', () => {
  it('rewrites a real TCP segment source (SNAT) like a full recomputation', () => {
    const packet = Buffer.from(TCP_HELLO);
    const l4Length = packet.length - 20;
    expect(transportChecksum(packet, 20, l4Length, CLIENT, SERVER, 6)).toBe(0);
    packet.writeUInt32BE(PUBLIC, 12);
    updateChecksumField32(packet, 20 + 16, CLIENT, PUBLIC);
    const stored = packet.readUInt16BE(20 + 16);
    const full = Buffer.from(packet);
    full.writeUInt16BE(0, 20 + 16);
    expect(stored).toBe(transportChecksum(full, 20, l4Length, PUBLIC, SERVER, 6));
    expect(stored).toBe(0xf7ee);
    expect(transportChecksum(packet, 20, l4Length, PUBLIC, SERVER, 6)).toBe(0);
    // the source port too (16-bit), as a masquerade would
    const oldPort = packet.readUInt16BE(20);
    packet.writeUInt16BE(61000, 20);
    updateChecksumField16(packet, 20 + 16, oldPort, 61000);
    expect(transportChecksum(packet, 20, l4Length, PUBLIC, SERVER, 6)).toBe(0);
  });

  it('rewrites a real UDP datagram destination (DNAT) like a full recomputation', () => {
    const packet = Buffer.from(UDP_DNS);
    const l4Length = packet.length - 20;
    const inside = 0x0a000035; // 10.0.0.53
    packet.writeUInt32BE(inside, 16);
    updateUdpChecksumField32(packet, 20 + 6, SERVER, inside);
    updateUdpChecksumField16(packet, 20 + 6, 45353, 53);
    packet.writeUInt16BE(53, 22);
    const stored = packet.readUInt16BE(26);
    const full = Buffer.from(packet);
    full.writeUInt16BE(0, 26);
    expect(stored).toBe(transportChecksum(full, 20, l4Length, CLIENT, inside, 17));
    expect(stored).toBe(0xc296);
  });
});

describe('the UDP zero-checksum rule', () => {
  it('leaves a 0 field ("no checksum") at 0', () => {
    const packet = Buffer.from(UDP_DNS);
    packet.writeUInt16BE(0, 26);
    updateUdpChecksumField32(packet, 26, SERVER, PUBLIC);
    expect(packet.readUInt16BE(26)).toBe(0);
    updateUdpChecksumField16(packet, 26, 45353, 53);
    expect(packet.readUInt16BE(26)).toBe(0);
    // the generic update would have written something
    updateChecksumField16(packet, 26, 45353, 53);
    expect(packet.readUInt16BE(26)).not.toBe(0);
  });

  it('writes a computed 0 as 0xffff', () => {
    const packet = Buffer.from(UDP_DNS);
    const l4Length = packet.length - 20;
    const pseudo = pseudoHeaderSum(CLIENT, SERVER, 17, l4Length);
    // With query ID 0 the datagram's checksum is 0xf9fb; an ID of 0xf9fb then adds exactly the
    // missing ~sum, so everything sums to 0xffff and the computed checksum is 0.
    packet.writeUInt16BE(0, 28);
    packet.writeUInt16BE(0, 26);
    expect(transportChecksum(packet, 20, l4Length, CLIENT, SERVER, 17)).toBe(0xf9fb);
    packet.writeUInt16BE(0xf9fb, 26);
    expect(internetChecksum(packet, 20, l4Length, pseudo)).toBe(0);

    packet.writeUInt16BE(0xf9fb, 28);
    expect(checksumReplace16(0xf9fb, 0, 0xf9fb)).toBe(0);
    updateUdpChecksumField16(packet, 26, 0, 0xf9fb);
    expect(packet.readUInt16BE(26)).toBe(0xffff);
    // 0xffff is the other spelling of 0: the datagram still verifies
    expect(internetChecksum(packet, 20, l4Length, pseudo)).toBe(0);
    // and a full computation over the zeroed field gives 0xffff rather than 0
    packet.writeUInt16BE(0, 26);
    expect(transportChecksum(packet, 20, l4Length, CLIENT, SERVER, 17)).toBe(0xffff);
    expect(internetChecksum(packet, 20, l4Length, pseudo)).toBe(0); // the raw result
  });

  it('applies the rule to 32-bit updates as well', () => {
    const packet = Buffer.from(UDP_DNS);
    const l4Length = packet.length - 20;
    // A destination whose low word is 0xf9fb more (one's complement: 0x7105 + 0xf9fb = 0x6b01)
    // adds the same to the sum as the query ID above did.
    packet.writeUInt16BE(0, 28);
    packet.writeUInt16BE(0xf9fb, 26);
    const aimed = 0xcb006b01; // 203.0.107.1
    packet.writeUInt32BE(aimed, 16);
    updateUdpChecksumField32(packet, 26, SERVER, aimed);
    expect(packet.readUInt16BE(26)).toBe(0xffff);
    expect(internetChecksum(packet, 20, l4Length, pseudoHeaderSum(CLIENT, aimed, 17, l4Length))).toBe(0);
  });
});
