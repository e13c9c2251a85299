import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../../netfilter/conntrack/conntrack-entry.ts';
import type { L4Packet, L4Tracker } from '../../../../netfilter/conntrack/l4-tracker.ts';
import { Status } from '../../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../../netfilter/conntrack/tuple.ts';
import { icmpErrorInnerOffset, icmpQuotedL4 } from '../../../../netfilter/conntrack/trackers/icmp.ts';
import { createTrackers, genericTracker } from '../../../../netfilter/conntrack/trackers/index.ts';
import { TcpState } from '../../../../netfilter/conntrack/trackers/tcp.ts';
import { TcpFlag } from '../../../../router/wire/tcp.ts';
import { seededRandom, TcpSegments, TrackerDriver, tcpOptions } from '../../../support/tcp-flow.ts';

const ROUNDS = 3000;
const seg = new TcpSegments({ addr: '10.0.0.2', port: 40000 }, { addr: '192.0.2.10', port: 80 });

/** Random bytes, sometimes shaped like a header of `protocol` (so deeper code runs), random bounds. */
function randomPacket(random: () => number, protocol: number): L4Packet {
  const length = Math.floor(random() * 120);
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = Math.floor(random() * 256);
  if (length >= 20 && random() < 0.7) {
    buf[0] = 0x45;
    buf[9] = protocol;
  }
  if (protocol === 6 && length >= 33 && random() < 0.5) buf[32] = Math.floor(random() * 16) << 4; // data offset
  if (protocol === 47 && length >= 22 && random() < 0.5) buf[21] = (buf[21]! & 0xf8) | 1; // version 1
  const pick = random();
  const l4Offset = pick < 0.6 ? 20 : pick < 0.8 ? Math.floor(random() * (length + 8)) : Math.floor(random() * 8) - 4;
  const l4Length = random() < 0.6 ? length - l4Offset : Math.floor(random() * 200) - 20;
  return { buf, l4Offset, l4Length };
}

/** An entry in some state: fresh, after a handshake, or with random state words. */
function someEntry(random: () => number, tracker: L4Tracker): Conntrack {
  const choice = random();
  if (tracker.protocol === 6 && choice < 0.4) {
    const driver = new TrackerDriver(tracker);
    const options = tcpOptions({ windowScale: 7, sackPermitted: true });
    driver.open(seg.segment(0, { seq: 100, flags: TcpFlag.SYN, window: 1000, options }));
    if (choice < 0.3) driver.send(1, seg.segment(1, { seq: 900, ack: 101, flags: TcpFlag.SYN | TcpFlag.ACK, window: 1000, options }));
    if (choice < 0.2) driver.send(0, seg.segment(0, { seq: 101, ack: 901, flags: TcpFlag.ACK, window: 1000 }));
    const entry = driver.entry!;
    if (random() < 0.5) entry.l4State = Math.floor(random() * 12);
    entry.status |= Math.floor(random() * 0x4000) & (Status.SEEN_REPLY | Status.ASSURED | Status.FIXED_TIMEOUT);
    return entry;
  }
  const entry = new Conntrack(tracker, new Tuple(1, 2, tracker.protocol, Math.floor(random() * 65536), Math.floor(random() * 65536)), new Tuple());
  if (choice < 0.7) tracker.newConnection(entry, randomPacket(random, tracker.protocol), 0);
  else entry.l4State = Math.floor(random() * 20) - 5;
  entry.status = Math.floor(random() * 0x4000);
  return entry;
}

describe('no tracker throws on any bytes', () => {
  const trackers = [...createTrackers().values(), genericTracker];
  for (const tracker of trackers) {
    it(`${tracker.name}: validate, readTuple, invertTuple, newConnection, packet, listing`, () => {
      const random = seededRandom(0xc0ffee + tracker.protocol);
      let validated = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const packet = randomPacket(random, tracker.protocol);
        const now = Math.floor(random() * 1e9);
        expect(() => {
          tracker.validate(packet, true);
          if (tracker.validate(packet, false)) validated++;
          const tuple = new Tuple(packet.buf.length >= 16 ? packet.buf.readUInt32BE(12) : 0, 0, tracker.protocol);
          tracker.readTuple(packet, tuple);
          tracker.invertTuple(tuple, new Tuple());
          const fresh = new Conntrack(tracker, tuple, new Tuple());
          if (tracker.newConnection(fresh, packet, now)) tracker.packet(fresh, packet, 0, now);
          const entry = someEntry(random, tracker);
          tracker.packet(entry, packet, random() < 0.5 ? 0 : 1, now);
          tracker.stateName(entry);
          tracker.formatTupleFields(entry.tuples[0]);
        }).not.toThrow();
      }
      // The random packets reached past the first checks for the trackers that check anything.
      if (tracker.protocol === 17 || tracker.protocol === 1) expect(validated).toBeGreaterThan(0);
    });
  }

  it('icmp error helpers', () => {
    const random = seededRandom(1234);
    const inner: L4Packet = { buf: Buffer.alloc(0), l4Offset: 0, l4Length: 0 };
    let quoted = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const packet = randomPacket(random, 1);
      if (packet.l4Offset >= 0 && packet.l4Offset < packet.buf.length) packet.buf[packet.l4Offset] = [3, 11, 12, 5, 8][Math.floor(random() * 5)]!;
      expect(() => {
        const at = icmpErrorInnerOffset(packet);
        if (icmpQuotedL4(packet, at >= 0 ? at : Math.floor(random() * 60) - 10, inner)) quoted++;
      }).not.toThrow();
    }
    expect(quoted).toBeGreaterThan(0);
  });

  it('tcp: random segments on a tracked connection never leave a state outside the table', () => {
    const tcp = createTrackers().get(6)!;
    const random = seededRandom(99);
    const driver = new TrackerDriver(tcp, false);
    driver.open(seg.segment(0, { seq: 100, flags: TcpFlag.SYN, window: 1000 }));
    for (let round = 0; round < ROUNDS; round++) {
      const flags = Math.floor(random() * 256);
      const packet = seg.segment(random() < 0.5 ? 0 : 1, {
        seq: Math.floor(random() * 2 ** 32),
        ack: Math.floor(random() * 2 ** 32),
        flags,
        window: Math.floor(random() * 65536),
        payloadLength: Math.floor(random() * 50),
      });
      driver.now += 1;
      expect(() => driver.send(random() < 0.5 ? 0 : 1, packet)).not.toThrow();
      expect(driver.entry!.l4State).toBeGreaterThanOrEqual(TcpState.NONE);
      expect(driver.entry!.l4State).toBeLessThanOrEqual(TcpState.SYN_SENT2);
    }
  });
});
