import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../../netfilter/conntrack/conntrack-entry.ts';
import { GreKeymap } from '../../../../netfilter/conntrack/gre-keymap.ts';
import { TrackVerdict } from '../../../../netfilter/conntrack/l4-tracker.ts';
import { Status } from '../../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../../netfilter/conntrack/tuple.ts';
import { GenericTracker } from '../../../../netfilter/conntrack/trackers/generic.ts';
import { GreTracker } from '../../../../netfilter/conntrack/trackers/gre.ts';
import { createTrackers, genericTracker } from '../../../../netfilter/conntrack/trackers/index.ts';
import { DEFAULT_TIMEOUTS, resolveTimeouts } from '../../../../netfilter/conntrack/trackers/timeouts.ts';
import { TcpFlag } from '../../../../router/wire/tcp.ts';
import { icmpPacket, rawPacket, udpPacket } from '../../../support/packets.ts';
import { l4Of, TcpSegments, TrackerDriver } from '../../../support/tcp-flow.ts';

const seg = new TcpSegments({ addr: '10.0.0.2', port: 40000 }, { addr: '192.0.2.10', port: 80 });

describe('timeouts', () => {
  it('defaults to the kernel sysctls', () => {
    expect(DEFAULT_TIMEOUTS).toEqual({
      tcp: {
        synSent: 120,
        synRecv: 60,
        established: 432000,
        finWait: 120,
        closeWait: 60,
        lastAck: 30,
        timeWait: 120,
        close: 10,
        synSent2: 120,
        retrans: 300,
        unacknowledged: 300,
      },
      udp: { unreplied: 30, replied: 120 },
      icmp: 30,
      gre: { unreplied: 30, replied: 180 },
      generic: 600,
    });
    expect(Object.isFrozen(DEFAULT_TIMEOUTS.tcp)).toBe(true);
  });

  it('overrides only what is given', () => {
    const timeouts = resolveTimeouts({ tcp: { established: 7200 }, udp: { replied: 180 }, generic: 60 });
    expect(timeouts.tcp).toEqual({ ...DEFAULT_TIMEOUTS.tcp, established: 7200 });
    expect(timeouts.udp).toEqual({ unreplied: 30, replied: 180 });
    expect([timeouts.icmp, timeouts.generic]).toEqual([30, 60]);
    expect(timeouts.gre).toEqual(DEFAULT_TIMEOUTS.gre);
  });

  it('refuses negative, non-finite and unknown values, naming them', () => {
    expect(() => resolveTimeouts({ tcp: { close: -1 } })).toThrow(/tcp\.close/);
    expect(() => resolveTimeouts({ icmp: Number.NaN })).toThrow(/icmp/);
    expect(() => resolveTimeouts({ udp: { replied: Infinity } })).toThrow(/udp\.replied/);
    expect(() => resolveTimeouts({ gre: { stream: 5 } as never })).toThrow(/unknown conntrack timeout gre\.stream/);
  });
});

describe('createTrackers', () => {
  it('has TCP, UDP, ICMP and GRE by protocol number, and nothing else', () => {
    const trackers = createTrackers();
    expect([...trackers.keys()].sort((a, b) => a - b)).toEqual([1, 6, 17, 47]);
    expect([1, 6, 17, 47].map((protocol) => trackers.get(protocol)!.name)).toEqual(['icmp', 'tcp', 'udp', 'gre']);
    for (const [protocol, tracker] of trackers) expect(tracker.protocol).toBe(protocol);
    expect(createTrackers().get(6)).not.toBe(trackers.get(6));
  });

  it('passes the timeouts on', () => {
    const trackers = createTrackers({ timeouts: { tcp: { synSent: 5 }, udp: { unreplied: 6 }, icmp: 7, gre: { unreplied: 8 } } });
    const cases = [
      [6, seg.segment(0, { seq: 1, flags: TcpFlag.SYN, window: 1 }), 5],
      [17, l4Of(udpPacket({ src: '10.0.0.2', dst: '10.0.0.3' }, { srcPort: 1, dstPort: 2 })), 6],
      [1, l4Of(icmpPacket({ src: '10.0.0.2', dst: '10.0.0.3' }, { type: 8, code: 0 })), 7],
      [47, l4Of(rawPacket({ src: '10.0.0.2', dst: '10.0.0.3' }, 47, new Uint8Array([0, 0, 8, 0]))), 8],
    ] as const;
    for (const [protocol, packet, seconds] of cases) {
      const driver = new TrackerDriver(trackers.get(protocol)!);
      expect(driver.open(packet)).toBe(TrackVerdict.ACCEPT);
      expect(driver.remaining, `protocol ${protocol}`).toBe(seconds);
    }
  });

  it('passes the TCP options on', () => {
    const pickup = seg.segment(0, { seq: 1, ack: 1, flags: TcpFlag.ACK, window: 1 });
    expect(new TrackerDriver(createTrackers().get(6)!).open(pickup)).toBe(TrackVerdict.ACCEPT);
    expect(new TrackerDriver(createTrackers({ tcp: { loose: false } }).get(6)!).open(pickup)).toBe(TrackVerdict.INVALID);
  });

  it('shares the keymap it is given with the GRE tracker', () => {
    const keymap = new GreKeymap();
    const gre = createTrackers({ greKeymap: keymap }).get(47) as GreTracker;
    expect(gre.keymap).toBe(keymap);
    expect((createTrackers().get(47) as GreTracker).keymap).toBeInstanceOf(GreKeymap);
  });

  it('refuses bad timeouts when built', () => {
    expect(() => createTrackers({ timeouts: { tcp: { established: -5 } } })).toThrow(RangeError);
  });
});

describe('generic tracker', () => {
  it('has no protocol words and lives 600 s', () => {
    const driver = new TrackerDriver(genericTracker);
    const packet = l4Of(rawPacket({ src: '10.0.0.2', dst: '10.0.0.3' }, 132, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])));
    expect(driver.open(packet)).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(600);
    expect([driver.entry!.tuples[0].srcPort, driver.entry!.tuples[0].dstPort, driver.entry!.tuples[1].srcPort]).toEqual([0, 0, 0]);
    driver.now += 100_000;
    driver.send(1, l4Of(rawPacket({ src: '10.0.0.3', dst: '10.0.0.2' }, 132, new Uint8Array(0))));
    expect(driver.remaining).toBe(600);
    expect(driver.entry!.status & Status.ASSURED).toBe(0);
    expect([genericTracker.name, genericTracker.stateName(driver.entry!), genericTracker.formatTupleFields(new Tuple(1, 2, 132, 3, 4))]).toEqual([
      'unknown',
      '',
      '',
    ]);
  });

  it('takes another timeout when built with one, and keeps a fixed timeout', () => {
    const tracker = new GenericTracker(60);
    const entry = new Conntrack(tracker, new Tuple(), new Tuple());
    const packet = l4Of(rawPacket({ src: '10.0.0.2', dst: '10.0.0.3' }, 50, new Uint8Array(4)));
    tracker.packet(entry, packet, 0, 1000);
    expect(entry.timeout).toBe(61_000);
    entry.status |= Status.FIXED_TIMEOUT;
    tracker.packet(entry, packet, 0, 5000);
    expect(entry.timeout).toBe(61_000);
  });
});
