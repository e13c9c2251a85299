import { describe, expect, it } from 'vitest';
import { TrackVerdict } from '../../../../netfilter/conntrack/l4-tracker.ts';
import { CtEvent, Status } from '../../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../../netfilter/conntrack/tuple.ts';
import { DEFAULT_TIMEOUTS } from '../../../../netfilter/conntrack/trackers/timeouts.ts';
import { UdpTracker } from '../../../../netfilter/conntrack/trackers/udp.ts';
import { setUdpChecksum, setUdpLength } from '../../../../router/wire/udp.ts';
import { udpPacket } from '../../../support/packets.ts';
import { l4Of, TrackerDriver } from '../../../support/tcp-flow.ts';

const CLIENT = { src: '10.0.0.2', dst: '198.51.100.53' };
const SERVER = { src: '198.51.100.53', dst: '10.0.0.2' };
const query = () => l4Of(udpPacket(CLIENT, { srcPort: 33000, dstPort: 53, payload: new Uint8Array(29).fill(7) }));
const answer = () => l4Of(udpPacket(SERVER, { srcPort: 53, dstPort: 33000, payload: new Uint8Array(45).fill(9) }));

describe('UDP validate (udp_error)', () => {
  const t = new UdpTracker(DEFAULT_TIMEOUTS.udp);

  it('accepts a well-formed datagram with or without a checksum check', () => {
    expect(t.validate(query(), true)).toBe(true);
    expect(t.validate(query(), false)).toBe(true);
  });

  it('refuses a header cut short', () => {
    const packet = query();
    expect(t.validate({ ...packet, l4Length: 7 }, false)).toBe(false);
  });

  it('refuses a length field under 8 or over the IP payload, and allows trailing bytes', () => {
    for (const [length, valid] of [
      [7, false],
      [0, false],
      [38, false],
      [37, true],
      [8, true],
    ] as const) {
      const packet = query();
      setUdpLength(packet.buf, packet.l4Offset, length);
      expect(t.validate(packet, false), `length ${length}`).toBe(valid);
    }
  });

  it('refuses a bad checksum only when asked, and takes 0 as "no checksum"', () => {
    const packet = query();
    packet.buf[packet.buf.length - 1] ^= 0x10;
    expect(t.validate(packet, true)).toBe(false);
    expect(t.validate(packet, false)).toBe(true);
    setUdpChecksum(packet.buf, packet.l4Offset, 0);
    expect(t.validate(packet, true)).toBe(true);
  });

  it('reads, inverts and prints the ports', () => {
    const tuple = new Tuple();
    const packet = query();
    expect(t.readTuple({ ...packet, l4Length: 4 }, tuple)).toBe(true);
    expect([tuple.srcPort, tuple.dstPort]).toEqual([33000, 53]);
    expect(t.readTuple({ ...packet, l4Length: 3 }, tuple)).toBe(false);
    const reply = new Tuple();
    expect(t.invertTuple(tuple, reply)).toBe(true);
    expect([reply.srcPort, reply.dstPort]).toEqual([53, 33000]);
    expect(t.formatTupleFields(tuple)).toBe('sport=33000 dport=53 ');
    expect([t.protocol, t.name]).toEqual([17, 'udp']);
  });
});

describe('UDP timeouts and ASSURED (nf_conntrack_udp_packet)', () => {
  it('keeps an unreplied flow at 30 s however long it lasts', () => {
    const driver = new TrackerDriver(new UdpTracker(DEFAULT_TIMEOUTS.udp));
    expect(driver.open(query())).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    expect(driver.stateName).toBe('');
    driver.now += 10_000;
    driver.send(0, query());
    expect(driver.remaining).toBe(30);
    expect(driver.entry!.status & Status.ASSURED).toBe(0);
  });

  it('gives a quick request and answer only 30 s, and 120 s with ASSURED once the flow is older than 2 s', () => {
    const driver = new TrackerDriver(new UdpTracker(DEFAULT_TIMEOUTS.udp));
    driver.open(query());
    driver.now += 50;
    expect(driver.send(1, answer())).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    driver.now += 1950; // exactly 2 s old: not yet "after"
    driver.send(0, query());
    expect(driver.remaining).toBe(30);
    expect(driver.entry!.status & Status.ASSURED).toBe(0);
    driver.now += 1;
    driver.send(0, query());
    expect(driver.remaining).toBe(120);
    expect(driver.entry!.status & Status.ASSURED).toBeTruthy();
    expect(driver.entry!.events).toBe(CtEvent.ASSURED);
    driver.now += 5000;
    driver.send(1, answer());
    expect(driver.remaining).toBe(120);
    expect(driver.entry!.events).toBe(0);
  });

  it('honours configured timeouts and a fixed timeout', () => {
    const driver = new TrackerDriver(new UdpTracker({ unreplied: 10, replied: 3600 }));
    driver.open(query());
    expect(driver.remaining).toBe(10);
    driver.now += 3000;
    driver.send(1, answer());
    driver.send(1, answer());
    expect(driver.remaining).toBe(3600);
    driver.entry!.status |= Status.FIXED_TIMEOUT;
    driver.entry!.timeout = 7;
    driver.send(0, query());
    expect(driver.entry!.timeout).toBe(7);
  });
});
