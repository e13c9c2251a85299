import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../../netfilter/conntrack/conntrack-entry.ts';
import { TrackVerdict, type L4Packet } from '../../../../netfilter/conntrack/l4-tracker.ts';
import { Status } from '../../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../../netfilter/conntrack/tuple.ts';
import { IcmpTracker, icmpErrorInnerOffset, icmpQuotedL4 } from '../../../../netfilter/conntrack/trackers/icmp.ts';
import { UdpTracker } from '../../../../netfilter/conntrack/trackers/udp.ts';
import { DEFAULT_TIMEOUTS } from '../../../../netfilter/conntrack/trackers/timeouts.ts';
import { IcmpType, fillIcmpChecksum } from '../../../../router/wire/icmp.ts';
import { setIpv4FlagsFragment } from '../../../../router/wire/ipv4.ts';
import { icmpPacket, ip, udpPacket } from '../../../support/packets.ts';
import { l4Of, TrackerDriver } from '../../../support/tcp-flow.ts';

const PINGER = { src: '10.0.0.2', dst: '192.0.2.1' };
const TARGET = { src: '192.0.2.1', dst: '10.0.0.2' };
const message = (description: typeof PINGER, type: number, code = 0, id = 0x1234, seq = 1, data = new Uint8Array(16).fill(3)) =>
  l4Of(icmpPacket(description, { type, code, rest: (id << 16) | seq, data }));

describe('ICMP validate', () => {
  const t = new IcmpTracker(DEFAULT_TIMEOUTS.icmp);

  it('refuses a message shorter than the 8-byte header', () => {
    const packet = message(PINGER, IcmpType.ECHO_REQUEST);
    expect(t.validate({ ...packet, l4Length: 7 }, false)).toBe(false);
    expect(t.validate({ ...packet, l4Length: 8 }, false)).toBe(true);
  });

  it('refuses a bad checksum only when asked', () => {
    const packet = message(PINGER, IcmpType.ECHO_REQUEST);
    expect(t.validate(packet, true)).toBe(true);
    packet.buf[packet.buf.length - 1] ^= 1;
    expect(t.validate(packet, true)).toBe(false);
    expect(t.validate(packet, false)).toBe(true);
  });

  it('refuses types above 18 (RFC 1122 3.2.2)', () => {
    expect(t.validate(message(PINGER, 18), true)).toBe(true);
    expect(t.validate(message(PINGER, 19), true)).toBe(false);
    expect(t.validate(message(PINGER, 255), true)).toBe(false);
  });
});

describe('ICMP tuples', () => {
  const t = new IcmpTracker(DEFAULT_TIMEOUTS.icmp);

  it('keeps the identifier as source and type/code as destination, from the first 8 bytes', () => {
    const tuple = new Tuple();
    const packet = message(PINGER, IcmpType.ECHO_REQUEST, 0, 0xbeef);
    expect(t.readTuple({ ...packet, l4Length: 8 }, tuple)).toBe(true);
    expect([tuple.srcPort, tuple.dstPort]).toEqual([0xbeef, 8 << 8]);
    expect(t.readTuple({ ...packet, l4Length: 7 }, tuple)).toBe(false);
    expect(t.formatTupleFields(tuple)).toBe('type=8 code=0 id=48879 ');
    expect(t.formatTupleFields(new Tuple(0, 0, 1, 7, (3 << 8) | 3))).toBe('type=3 code=3 id=7 ');
    expect([t.protocol, t.name, t.stateName(new Conntrack(t, tuple, new Tuple()))]).toEqual([1, 'icmp', '']);
  });

  it('inverts each query type to its reply and back, keeping code and identifier', () => {
    for (const [request, reply] of [
      [IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY],
      [IcmpType.TIMESTAMP_REQUEST, IcmpType.TIMESTAMP_REPLY],
      [IcmpType.INFO_REQUEST, IcmpType.INFO_REPLY],
      [IcmpType.ADDRESS_MASK_REQUEST, IcmpType.ADDRESS_MASK_REPLY],
    ]) {
      const inverted = new Tuple();
      expect(t.invertTuple(new Tuple(1, 2, 1, 99, (request << 8) | 5), inverted)).toBe(true);
      expect([inverted.srcPort, inverted.dstPort]).toEqual([99, (reply << 8) | 5]);
      expect(t.invertTuple(new Tuple(1, 2, 1, 99, reply << 8), inverted)).toBe(true);
      expect(inverted.dstPort).toBe(request << 8);
    }
  });

  it('has no inverse for errors and other types', () => {
    for (const type of [3, 4, 5, 11, 12, 1, 2, 6, 7, 9, 10, 19, 255]) {
      expect(t.invertTuple(new Tuple(1, 2, 1, 0, type << 8), new Tuple()), `type ${type}`).toBe(false);
    }
  });
});

describe('ICMP connections', () => {
  it('opens only on query requests', () => {
    for (let type = 0; type < 256; type++) {
      const driver = new TrackerDriver(new IcmpTracker(DEFAULT_TIMEOUTS.icmp), false);
      const opened = driver.open(message(PINGER, type)) === TrackVerdict.ACCEPT;
      expect(opened, `type ${type}`).toBe([8, 13, 15, 17].includes(type));
    }
  });

  it('lives 30 s from each packet, replies included, and is never ASSURED', () => {
    const driver = new TrackerDriver(new IcmpTracker(DEFAULT_TIMEOUTS.icmp));
    expect(driver.open(message(PINGER, IcmpType.ECHO_REQUEST))).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    driver.now += 700;
    expect(driver.send(1, message(TARGET, IcmpType.ECHO_REPLY))).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    driver.now += 1000;
    expect(driver.send(1, message(TARGET, IcmpType.ECHO_REPLY))).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    expect(driver.entry!.status & Status.ASSURED).toBe(0);
    expect(new TrackerDriver(new IcmpTracker(5)).open(message(PINGER, IcmpType.TIMESTAMP_REQUEST))).toBe(TrackVerdict.ACCEPT);
  });
});

describe('ICMP errors: where the quoted datagram is', () => {
  /** A port unreachable from 192.0.2.1 quoting the client's UDP datagram (IP header + 8 bytes). */
  function portUnreachable(quotedLength = 28): { error: L4Packet; quoted: Buffer } {
    const quoted = udpPacket({ src: '10.0.0.2', dst: '192.0.2.1' }, { srcPort: 33000, dstPort: 5353, payload: new Uint8Array(40) });
    const buf = icmpPacket(TARGET, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: quoted.subarray(0, quotedLength) });
    return { error: l4Of(buf), quoted };
  }

  it('points the inner protocol tracker at the quoted UDP header', () => {
    const { error } = portUnreachable();
    const at = icmpErrorInnerOffset(error);
    expect(at).toBe(error.l4Offset + 8);
    expect(error.buf[at + 9]).toBe(17);
    const inner: L4Packet = { buf: Buffer.alloc(0), l4Offset: 0, l4Length: 0 };
    expect(icmpQuotedL4(error, at, inner)).toBe(true);
    expect([inner.l4Offset, inner.l4Length]).toEqual([at + 20, 8]);
    const tuple = new Tuple(ip('10.0.0.2'), ip('192.0.2.1'), 17);
    expect(new UdpTracker(DEFAULT_TIMEOUTS.udp).readTuple(inner, tuple)).toBe(true);
    expect([tuple.srcPort, tuple.dstPort]).toEqual([33000, 5353]);
  });

  it('finds nothing in queries or in a message too short for its header', () => {
    expect(icmpErrorInnerOffset(message(PINGER, IcmpType.ECHO_REQUEST))).toBe(-1);
    const { error } = portUnreachable();
    expect(icmpErrorInnerOffset({ ...error, l4Length: 7 })).toBe(-1);
  });

  it('refuses a quoted header cut short, a later fragment, or a header length past the end', () => {
    const inner: L4Packet = { buf: Buffer.alloc(0), l4Offset: 0, l4Length: 0 };
    const short = portUnreachable(19).error;
    expect(icmpQuotedL4(short, icmpErrorInnerOffset(short), inner)).toBe(false);

    const fragment = portUnreachable().error;
    const at = icmpErrorInnerOffset(fragment);
    setIpv4FlagsFragment(fragment.buf, at, 0x2000 | 10);
    fillIcmpChecksum(fragment.buf, fragment.l4Offset, fragment.l4Length);
    expect(icmpQuotedL4(fragment, at, inner)).toBe(false);

    const longHeader = portUnreachable(24).error;
    longHeader.buf[icmpErrorInnerOffset(longHeader)] = 0x47; // IHL 7: 28 bytes, only 24 quoted
    expect(icmpQuotedL4(longHeader, icmpErrorInnerOffset(longHeader), inner)).toBe(false);
  });
});
