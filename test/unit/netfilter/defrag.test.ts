import { afterEach, describe, expect, it, vi } from 'vitest';
import { Defrag } from '../../../netfilter/defrag.ts';
import { Verdict } from '../../../router/core/hooks.ts';
import { fragmentIpv4 } from '../../../router/path/fragmentation.ts';
import { Packet } from '../../../router/core/packet.ts';
import { Ipv4Reassembler, REASSEMBLY_MAX_PENDING_BYTES, REASSEMBLY_TIMEOUT_MS, ReassemblyResult } from '../../../router/wire/ipv4-reassembly.ts';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import {
  IPV4,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  fillIpv4HeaderChecksum,
  ipv4FlagsFragment,
  ipv4HeaderLength,
  setIpv4FlagsFragment,
  setIpv4Ident,
  setIpv4TotalLength,
} from '../../../router/wire/ipv4.ts';
import { udpPacket } from '../../support/packets.ts';

const MTU = 1000;
/** (1000 - 20) rounded down to a multiple of 8. */
const CHUNK = 976;

function payload(length: number, seed = 7): Buffer {
  const data = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

/** A 3016-byte UDP datagram (3008 bytes of UDP), ident 0x4242. */
function datagram(options: { ident?: number; flagsFragment?: number; ipOptions?: Uint8Array; length?: number } = {}): Buffer {
  return udpPacket(
    { src: '10.0.1.2', dst: '203.0.113.2', ident: options.ident ?? 0x4242, flagsFragment: options.flagsFragment ?? 0, ...(options.ipOptions ? { options: options.ipOptions } : {}) },
    { srcPort: 40000, dstPort: 9, payload: payload(options.length ?? 3000) },
  );
}

function split(whole: Buffer, mtu = MTU): Buffer[] {
  const fragments: Buffer[] = [];
  expect(fragmentIpv4(whole, mtu, (fragment) => fragments.push(fragment))).toBeGreaterThan(1);
  return fragments;
}

/** Builds a fragment by hand: `data` at byte `offset` of the datagram's payload. */
function fragmentAt(whole: Buffer, offset: number, data: Uint8Array, more: boolean): Buffer {
  const fragment = Buffer.alloc(20 + data.length);
  whole.copy(fragment, 0, 0, 20);
  fragment.set(data, 20);
  setIpv4TotalLength(fragment, 0, fragment.length);
  setIpv4FlagsFragment(fragment, 0, (more ? IPV4_FLAG_MF : 0) | (offset >>> 3));
  fillIpv4HeaderChecksum(fragment, 0);
  return fragment;
}

function feed(defrag: Defrag, fragments: Buffer[]): { verdicts: Verdict[]; last: Packet } {
  const verdicts: Verdict[] = [];
  let last: Packet | null = null;
  for (const fragment of fragments) {
    last = new Packet(fragment, null);
    verdicts.push(defrag.defragment(last));
  }
  return { verdicts, last: last! };
}

const stolen = (count: number): Verdict[] => Array<Verdict>(count).fill(Verdict.STOLEN);

/** The datagram as reassembly must give it back: the original with its fragment fields cleared (DF kept). */
function expectWhole(reassembled: Buffer, original: Buffer): void {
  expect(reassembled.length).toBe(original.length);
  const headerLength = ipv4HeaderLength(original, 0);
  expect(internetChecksum(reassembled, 0, headerLength)).toBe(0);
  expect(ipv4FlagsFragment(reassembled, 0)).toBe(ipv4FlagsFragment(original, 0) & IPV4_FLAG_DF);
  const withoutFragmentFields = (buf: Buffer): Buffer => {
    const copy = Buffer.from(buf);
    copy.writeUInt16BE(0, IPV4.FLAGS_FRAGMENT);
    copy.writeUInt16BE(0, IPV4.CHECKSUM);
    return copy;
  };
  expect(withoutFragmentFields(reassembled).equals(withoutFragmentFields(original))).toBe(true);
}

let defrag: Defrag;
afterEach(() => {
  defrag?.close();
  vi.useRealTimers();
});

describe('defrag', () => {
  it('steals every fragment but the last, which continues as the whole datagram with its largest fragment size', () => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const fragments = split(original);
    expect(fragments.map((f) => f.length)).toEqual([20 + CHUNK, 20 + CHUNK, 20 + CHUNK, 20 + 3008 - 3 * CHUNK]);
    const { verdicts, last } = feed(defrag, fragments);
    expect(verdicts).toEqual([...stolen(3), Verdict.ACCEPT]);
    expectWhole(last.buf, original);
    // The original's fragment fields were already zero: the bytes are the original's exactly.
    expect(last.buf.equals(original)).toBe(true);
    expect(last.fragMaxSize).toBe(20 + CHUNK);
    expect(defrag.counters).toEqual({ held: 3, reassembled: 1, duplicates: 0, invalid: 0, noMemory: 0, expired: 0 });
  });

  it.each([
    ['reversed', [3, 2, 1, 0]],
    ['last fragment first', [3, 0, 1, 2]],
    ['shuffled', [1, 3, 0, 2]],
    ['first fragment last', [1, 2, 3, 0]],
  ])('reassembles fragments fed out of order (%s)', (_name, order) => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const fragments = split(original);
    const { verdicts, last } = feed(
      defrag,
      order.map((i) => fragments[i]!),
    );
    expect(verdicts).toEqual([...stolen(3), Verdict.ACCEPT]);
    expectWhole(last.buf, original);
    expect(last.fragMaxSize).toBe(20 + CHUNK);
    expect(defrag.counters.reassembled).toBe(1);
  });

  it('remembers the largest fragment even when fragments differ in size', () => {
    defrag = new Defrag(() => 0);
    const original = datagram({ length: 1592 }); // 1600 bytes of UDP
    const udp = original.subarray(20);
    const { verdicts, last } = feed(defrag, [
      fragmentAt(original, 0, udp.subarray(0, 400), true),
      fragmentAt(original, 400, udp.subarray(400, 1600 - 8), true),
      fragmentAt(original, 1592, udp.subarray(1592), false),
    ]);
    expect(verdicts).toEqual([...stolen(2), Verdict.ACCEPT]);
    expectWhole(last.buf, original);
    expect(last.fragMaxSize).toBe(20 + 1192);
  });

  it('gives back the first fragment header, with its options, and keeps DF', () => {
    defrag = new Defrag(() => 0);
    // Record route (not copied: NOPs in later fragments) and router alert (copied), then EOL.
    const options = Uint8Array.from([7, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0, 0, 0]).subarray(0, 12);
    const original = datagram({ ipOptions: options, flagsFragment: IPV4_FLAG_DF });
    const fragments = split(original);
    expect(ipv4HeaderLength(fragments[1]!, 0)).toBe(32);
    expect(fragments[1]![20]).toBe(1); // the record route option became NOPs after the first fragment
    const { verdicts, last } = feed(defrag, [...fragments].reverse());
    expect(verdicts.at(-1)).toBe(Verdict.ACCEPT);
    expectWhole(last.buf, original);
    expect(last.buf.equals(original)).toBe(true);
    expect(ipv4FlagsFragment(last.buf, 0)).toBe(IPV4_FLAG_DF);
  });

  it('keeps datagrams with different idents apart', () => {
    defrag = new Defrag(() => 0);
    const a = datagram({ ident: 1 });
    const b = datagram({ ident: 2, length: 2500 });
    const fa = split(a);
    const fb = split(b);
    const verdicts: Verdict[] = [];
    const completed: Buffer[] = [];
    for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
      for (const fragment of [fa[i], fb[i]]) {
        if (!fragment) continue;
        const packet = new Packet(fragment, null);
        const verdict = defrag.defragment(packet);
        verdicts.push(verdict);
        if (verdict === Verdict.ACCEPT) completed.push(packet.buf);
      }
    }
    expect(completed).toHaveLength(2);
    expect(completed.find((buf) => buf.length === a.length)!.equals(a)).toBe(true);
    expect(completed.find((buf) => buf.length === b.length)!.equals(b)).toBe(true);
  });

  it('drops and counts an exact duplicate, and still completes the datagram', () => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const fragments = split(original);
    const { verdicts, last } = feed(defrag, [fragments[0]!, fragments[1]!, Buffer.from(fragments[1]!), fragments[2]!, fragments[0]!, fragments[3]!]);
    expect(verdicts).toEqual([Verdict.STOLEN, Verdict.STOLEN, Verdict.DROP, Verdict.STOLEN, Verdict.DROP, Verdict.ACCEPT]);
    expectWhole(last.buf, original);
    expect(defrag.counters).toMatchObject({ held: 3, reassembled: 1, duplicates: 2, invalid: 0 });
  });

  it('discards the whole datagram on an overlapping fragment (DROP, counted)', () => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const fragments = split(original);
    const udp = original.subarray(20);
    expect(defrag.defragment(new Packet(fragments[0]!, null))).toBe(Verdict.STOLEN);
    // Starts inside the first fragment and runs past it.
    const overlapping = fragmentAt(original, CHUNK / 2, udp.subarray(CHUNK / 2, CHUNK / 2 + CHUNK), true);
    expect(defrag.defragment(new Packet(overlapping, null))).toBe(Verdict.DROP);
    expect(defrag.counters.invalid).toBe(1);
    // What was held is gone: the remaining fragments start a new datagram, which lacks the first one.
    const { verdicts } = feed(defrag, fragments.slice(1));
    expect(verdicts).toEqual(stolen(3));
    expect(defrag.counters.reassembled).toBe(0);
  });

  it('drops an overlap with the same start but a different end, a fragment past the known end, and a second different end', () => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const fragments = split(original);
    const udp = original.subarray(20);
    feed(defrag, [fragments[0]!]);
    expect(defrag.defragment(new Packet(fragmentAt(original, 0, udp.subarray(0, 8), true), null))).toBe(Verdict.DROP);
    // Past the end the last fragment set (3008), without overlapping it.
    feed(defrag, [fragments[3]!]);
    expect(defrag.defragment(new Packet(fragmentAt(original, 3008 + 8, udp.subarray(0, 200), true), null))).toBe(Verdict.DROP);
    // Two "last" fragments that disagree on the length (and do not overlap).
    feed(defrag, [fragments[3]!]);
    expect(defrag.defragment(new Packet(fragmentAt(original, 8, udp.subarray(8, 24), false), null))).toBe(Verdict.DROP);
    expect(defrag.counters.invalid).toBe(3);
  });

  it('drops oversized fragments (past 65535 bytes) and non-final ones not a multiple of 8', () => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const oversized = fragmentAt(original, 8184 * 8, payload(100), false);
    expect(defrag.defragment(new Packet(oversized, null))).toBe(Verdict.DROP);
    const ragged = fragmentAt(original, 0, original.subarray(20, 20 + 13), true);
    expect(defrag.defragment(new Packet(ragged, null))).toBe(Verdict.DROP);
    expect(defrag.counters.invalid).toBe(2);
    expect(defrag.counters.held).toBe(0);
  });

  it('refuses new fragments past 4 MiB pending (DROP, counted as no memory)', () => {
    defrag = new Defrag(() => 0);
    const original = datagram();
    const first = split(original)[0]!;
    const count = Math.floor(REASSEMBLY_MAX_PENDING_BYTES / first.length);
    for (let ident = 0; ident < count; ident++) {
      const fragment = Buffer.from(first);
      setIpv4Ident(fragment, 0, ident);
      fillIpv4HeaderChecksum(fragment, 0);
      expect(defrag.defragment(new Packet(fragment, null))).toBe(Verdict.STOLEN);
    }
    const oneMore = Buffer.from(first);
    setIpv4Ident(oneMore, 0, count);
    fillIpv4HeaderChecksum(oneMore, 0);
    expect(defrag.defragment(new Packet(oneMore, null))).toBe(Verdict.DROP);
    expect(defrag.counters).toMatchObject({ held: count, noMemory: 1 });
  });

  it('passes packets that are not fragments untouched', () => {
    defrag = new Defrag(() => 0);
    for (const buf of [datagram(), datagram({ flagsFragment: IPV4_FLAG_DF }), udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 1, dstPort: 2 })]) {
      const copy = Buffer.from(buf);
      const packet = new Packet(buf, null);
      expect(defrag.defragment(packet)).toBe(Verdict.ACCEPT);
      expect(packet.buf).toBe(buf);
      expect(buf.equals(copy)).toBe(true);
      expect(packet.fragMaxSize).toBe(0);
    }
    expect(defrag.counters).toEqual({ held: 0, reassembled: 0, duplicates: 0, invalid: 0, noMemory: 0, expired: 0 });
  });

  it('expires an incomplete datagram after 30 s, from its own sweep timer', () => {
    vi.useFakeTimers();
    const clock = { ms: 5_000 };
    defrag = new Defrag(() => clock.ms);
    const original = datagram();
    const fragments = split(original);
    feed(defrag, fragments.slice(0, 3));
    expect(vi.getTimerCount()).toBe(1);
    clock.ms += REASSEMBLY_TIMEOUT_MS - 1;
    vi.advanceTimersByTime(1000);
    expect(defrag.counters.expired).toBe(0);
    clock.ms += 1;
    vi.advanceTimersByTime(1000);
    expect(defrag.counters.expired).toBe(1);
    // Nothing pending any more: the sweep timer stopped itself.
    expect(vi.getTimerCount()).toBe(0);
    // The last fragment alone no longer completes anything.
    expect(defrag.defragment(new Packet(fragments[3]!, null))).toBe(Verdict.STOLEN);
    expect(defrag.counters.reassembled).toBe(0);
  });

  it('completes a datagram just before its 30 s are up', () => {
    vi.useFakeTimers();
    const clock = { ms: 0 };
    defrag = new Defrag(() => clock.ms);
    const fragments = split(datagram());
    feed(defrag, fragments.slice(0, 3));
    clock.ms += REASSEMBLY_TIMEOUT_MS - 1;
    vi.advanceTimersByTime(REASSEMBLY_TIMEOUT_MS - 1);
    expect(defrag.defragment(new Packet(fragments[3]!, null))).toBe(Verdict.ACCEPT);
    expect(defrag.counters).toMatchObject({ reassembled: 1, expired: 0 });
  });
});

describe('Ipv4Reassembler expiry', () => {
  it('expires at 30 s and reports the offset-0 fragment only of datagrams that had it', () => {
    const clock = { ms: 0 };
    const reassembler = new Ipv4Reassembler(() => clock.ms);
    const withFirst = split(datagram({ ident: 1 }));
    const withoutFirst = split(datagram({ ident: 2 }));
    expect(reassembler.add(withFirst[0]!)).toBe(ReassemblyResult.PENDING);
    expect(reassembler.add(withoutFirst[2]!)).toBe(ReassemblyResult.PENDING);
    clock.ms += 10_000;
    expect(reassembler.add(split(datagram({ ident: 3 }))[1]!)).toBe(ReassemblyResult.PENDING);
    expect(reassembler.size).toBe(3);
    const reported: Buffer[] = [];
    clock.ms = REASSEMBLY_TIMEOUT_MS - 1;
    expect(reassembler.expire((first) => reported.push(first))).toBe(0);
    clock.ms = REASSEMBLY_TIMEOUT_MS;
    expect(reassembler.expire((first) => reported.push(first))).toBe(2);
    expect(reported).toHaveLength(1);
    expect(reported[0]!.equals(withFirst[0]!)).toBe(true);
    expect(reassembler.size).toBe(1);
    clock.ms = 10_000 + REASSEMBLY_TIMEOUT_MS;
    expect(reassembler.expire()).toBe(1);
    expect(reassembler.size).toBe(0);
  });

  it('frees the pending bytes of expired datagrams', () => {
    const clock = { ms: 0 };
    const reassembler = new Ipv4Reassembler(() => clock.ms);
    const first = split(datagram())[0]!;
    const count = Math.floor(REASSEMBLY_MAX_PENDING_BYTES / first.length);
    const withIdent = (ident: number): Buffer => {
      const fragment = Buffer.from(first);
      setIpv4Ident(fragment, 0, ident);
      fillIpv4HeaderChecksum(fragment, 0);
      return fragment;
    };
    for (let ident = 0; ident < count; ident++) reassembler.add(withIdent(ident));
    expect(reassembler.add(withIdent(count))).toBe(ReassemblyResult.NO_MEMORY);
    clock.ms += REASSEMBLY_TIMEOUT_MS;
    expect(reassembler.expire()).toBe(count);
    expect(reassembler.add(withIdent(count))).toBe(ReassemblyResult.PENDING);
  });
});
