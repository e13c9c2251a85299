import { describe, expect, it } from 'vitest';
import { compileCaptureFilter } from '../../../router/deploy/capture/capture-filter.ts';
import { CaptureDirection, CaptureSession, type CaptureEnd } from '../../../router/deploy/capture/capture-session.ts';
import { TimestampHalves } from '../../../router/deploy/capture/capture-clock.ts';
import { tcpPacket, udpPacket } from '../../support/packets.ts';
import { ManualClock, MemorySink, interfaceNames, readBlocks, readPackets } from './support.ts';

const { INBOUND, OUTBOUND } = CaptureDirection;
const ORIGIN = 1_700_000_000_000_000_000n;
const SYN = 0x02;

// One connection through a masquerading router: the client's SYN on the inside, then as SNAT
// rewrote it on the outside, and a DNS answer that has nothing to do with it.
const INSIDE = tcpPacket({ src: '192.168.1.10', dst: '203.0.113.5' }, { srcPort: 40000, dstPort: 21, seq: 1, ack: 0, flags: SYN, window: 65535 });
const OUTSIDE = tcpPacket({ src: '198.51.100.1', dst: '203.0.113.5' }, { srcPort: 61000, dstPort: 21, seq: 1, ack: 0, flags: SYN, window: 65535 });
const DNS = udpPacket({ src: '10.0.0.1', dst: '10.0.0.2' }, { srcPort: 53, dstPort: 1024, payload: Buffer.from('x') });

function session(options: Partial<ConstructorParameters<typeof CaptureSession>[0]> = {}) {
  const sink = new MemorySink();
  const clock = new ManualClock(ORIGIN);
  const capture = new CaptureSession({ sink, clock, ...options });
  return { sink, clock, capture };
}

describe('CaptureSession', () => {
  it('writes an IDB per interface as it is registered, and one id per name', () => {
    const { sink, capture } = session();
    expect(capture.addInterface('home:lan0', 'inside')).toBe(0);
    expect(capture.addInterface('home:wan0', 'uplink')).toBe(1);
    expect(capture.addInterface('home:lan0', 'inside')).toBe(0);
    expect(capture.interfaceId('home:wan0')).toBe(1);
    expect(capture.interfaceId('home:dmz0')).toBe(-1);
    expect(interfaceNames(sink.bytes())).toEqual(['home:lan0', 'home:wan0']);
    const idb = readBlocks(sink.bytes())[2]!;
    expect(idb.options.get(3)!.toString()).toBe('uplink');
  });

  it('writes each copy with its interface, direction, shared packet id, comment and clock time', () => {
    const { sink, clock, capture } = session();
    const lan = capture.addInterface('home:lan0');
    const wan = capture.addInterface('home:wan0');
    clock.advance(1_000);
    capture.packet(lan, INBOUND, 41, INSIDE);
    clock.advance(2_500);
    capture.packet(wan, OUTBOUND, 41, OUTSIDE);
    // An interface added after packets were written, and a dropped packet's comment.
    const host = capture.addInterface('pc:eth0', 'a host');
    capture.packet(host, INBOUND, 42, DNS, 'dropped by filter:INPUT policy DROP');
    const packets = readPackets(sink.bytes());
    expect(packets.map((p) => [p.interfaceId, p.direction, p.packetId, p.comment, p.timestampNs - ORIGIN])).toEqual([
      [0, INBOUND, 41, undefined, 1_000n],
      [1, OUTBOUND, 41, undefined, 3_500n],
      [2, INBOUND, 42, 'dropped by filter:INPUT policy DROP', 3_500n],
    ]);
    expect(packets[1]!.data.equals(OUTSIDE)).toBe(true);
    expect(interfaceNames(sink.bytes())).toEqual(['home:lan0', 'home:wan0', 'pc:eth0']);
    expect([capture.seen, capture.written, capture.dropped]).toEqual([3, 3, 0]);
  });

  it('takes a packet from an offset inside a larger buffer', () => {
    const { sink, capture } = session();
    const lan = capture.addInterface('home:lan0');
    const slab = Buffer.concat([Buffer.alloc(10, 0xa5), DNS, Buffer.alloc(10, 0xa5)]);
    capture.packetAt(lan, OUTBOUND, 1, slab, 10, DNS.length);
    expect(readPackets(sink.bytes())[0]!.data.equals(DNS)).toBe(true);
  });

  it('writes only the interfaces -i selects, by full name or by interface name', () => {
    const { sink, capture } = session({ interfaces: ['wan0', 'pc:eth0', 'home:bogus'] });
    const lan = capture.addInterface('home:lan0');
    const wan = capture.addInterface('home:wan0');
    const office = capture.addInterface('office:wan0');
    const pc = capture.addInterface('pc:eth0');
    for (const id of [lan, wan, office, pc]) capture.packet(id, INBOUND, id, DNS);
    expect(interfaceNames(sink.bytes())).toEqual(['home:wan0', 'office:wan0', 'pc:eth0']);
    // File interface ids follow the IDBs written; the session's ids stay the caller's.
    expect(readPackets(sink.bytes()).map((p) => [p.interfaceId, p.packetId])).toEqual([
      [0, wan],
      [1, office],
      [2, pc],
    ]);
    expect(capture.unmatchedSelectors()).toEqual(['home:bogus']);
    expect(capture.seen).toBe(3);
  });

  it('ignores packets for an id that was never registered', () => {
    const { sink, capture } = session();
    capture.addInterface('home:lan0');
    capture.packet(7, INBOUND, 1, DNS);
    expect(readPackets(sink.bytes())).toEqual([]);
  });

  it('filters each copy, and follows a packet it chose through NAT by its packet id', () => {
    const { sink, capture } = session({ filter: compileCaptureFilter('host 192.168.1.10') });
    const lan = capture.addInterface('home:lan0');
    const wan = capture.addInterface('home:wan0');
    capture.packet(lan, INBOUND, 1, INSIDE); // matches
    capture.packet(wan, OUTBOUND, 1, OUTSIDE); // does not match, but is the same packet
    capture.packet(wan, OUTBOUND, 2, OUTSIDE); // does not match: another packet
    capture.packet(lan, INBOUND, 3, DNS);
    expect(readPackets(sink.bytes()).map((p) => [p.interfaceId, p.packetId])).toEqual([
      [lan, 1],
      [wan, 1],
    ]);
    expect([capture.seen, capture.written]).toEqual([4, 2]);
  });

  it('writes everything with an empty filter', () => {
    const { sink, capture } = session({ filter: compileCaptureFilter('') });
    const lan = capture.addInterface('home:lan0');
    capture.packet(lan, INBOUND, 1, DNS);
    expect(readPackets(sink.bytes())).toHaveLength(1);
  });

  it('ends itself after --count packets, closes its sink and tells once', async () => {
    const ends: CaptureEnd[] = [];
    const { sink, capture } = session({ count: 2, onEnd: (end) => ends.push(end) });
    const lan = capture.addInterface('home:lan0');
    for (let id = 1; id <= 5; id++) capture.packet(lan, INBOUND, id, DNS);
    expect(capture.ended).toBe(true);
    expect(sink.ended).toBe(true);
    expect(await capture.done).toEqual({ reason: 'count', message: '' });
    expect(ends).toEqual([{ reason: 'count', message: '' }]);
    expect(readPackets(sink.bytes()).map((p) => p.packetId)).toEqual([1, 2]);
    await capture.close();
    expect(ends).toHaveLength(1);
  });

  it('refuses a count that is not a whole number', () => {
    expect(() => session({ count: -1 })).toThrow(RangeError);
    expect(() => session({ count: 1.5 })).toThrow(/not a whole number/);
  });

  it('ends when its sink ends (the reader went away), and then takes packets quietly', async () => {
    const { sink, capture } = session();
    const lan = capture.addInterface('home:lan0');
    capture.packet(lan, INBOUND, 1, DNS);
    sink.end('closed');
    expect(capture.ended).toBe(true);
    expect(() => capture.packet(lan, INBOUND, 2, DNS)).not.toThrow();
    expect(await capture.done).toEqual({ reason: 'closed', message: '' });
    expect(capture.written).toBe(1);
  });

  it('passes a write error on with its message', async () => {
    const { sink, capture } = session();
    sink.end('error', 'writing x.pcapng: ENOSPC');
    expect(await capture.done).toEqual({ reason: 'error', message: 'writing x.pcapng: ENOSPC' });
  });

  it('stops on close', async () => {
    const { sink, capture } = session();
    expect(await capture.close()).toEqual({ reason: 'stopped', message: '' });
    expect(sink.ended).toBe(true);
  });

  it('counts packets a slow reader did not take, and says so in the next block of that interface', () => {
    const { sink, capture } = session();
    const lan = capture.addInterface('home:lan0');
    const wan = capture.addInterface('home:wan0');
    capture.packet(lan, INBOUND, 1, DNS);
    sink.behind = true;
    capture.packet(lan, INBOUND, 2, DNS);
    capture.packet(lan, INBOUND, 3, DNS);
    capture.packet(wan, INBOUND, 4, DNS);
    // An interface registered while the reader is behind still gets its IDB.
    const late = capture.addInterface('pc:eth0');
    sink.behind = false;
    capture.packet(wan, INBOUND, 5, DNS);
    capture.packet(lan, INBOUND, 6, DNS);
    capture.packet(lan, INBOUND, 7, DNS);
    capture.packet(late, INBOUND, 8, DNS);
    expect(readPackets(sink.bytes()).map((p) => [p.packetId, p.dropCount])).toEqual([
      [1, undefined],
      [5, 1],
      [6, 2],
      [7, undefined],
      [8, undefined],
    ]);
    expect(capture.dropped).toBe(3);
    expect(interfaceNames(sink.bytes())).toEqual(['home:lan0', 'home:wan0', 'pc:eth0']);
  });
});

describe('TimestampHalves', () => {
  it('adds the elapsed nanoseconds to the origin with a carry into the high word', () => {
    const origin = (5n << 32n) | 0xffff_fff0n;
    const halves = new TimestampHalves(origin);
    halves.set(0x10);
    expect([halves.high, halves.low]).toEqual([6, 0]);
    halves.set(0x1_0000_0005);
    expect([halves.high, halves.low]).toEqual([6, 0xffff_fff5]);
    // 100 days in ns, beyond 2^32 many times over but exact in a double.
    const elapsed = 100 * 86_400 * 1e9;
    halves.set(elapsed);
    expect((BigInt(halves.high) << 32n) | BigInt(halves.low)).toBe(origin + BigInt(elapsed));
  });
});
