import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../../netfilter/conntrack/conntrack-entry.ts';
import { GreKeymap } from '../../../../netfilter/conntrack/gre-keymap.ts';
import { TrackVerdict } from '../../../../netfilter/conntrack/l4-tracker.ts';
import { CtEvent, Status } from '../../../../netfilter/conntrack/status.ts';
import { Direction, Tuple } from '../../../../netfilter/conntrack/tuple.ts';
import { GreTracker } from '../../../../netfilter/conntrack/trackers/gre.ts';
import { DEFAULT_TIMEOUTS } from '../../../../netfilter/conntrack/trackers/timeouts.ts';
import { emitGreV0, emitGreV1, greV0LengthOf, greV1LengthOf, type GreV0Repr, type GreV1Repr } from '../../../../router/wire/gre.ts';
import { IpProtocol } from '../../../../router/wire/ipv4.ts';
import { ip, rawPacket } from '../../../support/packets.ts';
import { l4Of, TrackerDriver } from '../../../support/tcp-flow.ts';

const PNS = '10.0.0.2';
const PAC = '192.0.2.7';
const PNS_CALL_ID = 0x4001;
const PAC_CALL_ID = 0x01f4;

function v1(src: string, dst: string, repr: GreV1Repr) {
  const bytes = new Uint8Array(greV1LengthOf(repr));
  emitGreV1(repr, bytes, 0);
  return l4Of(rawPacket({ src, dst }, IpProtocol.GRE, bytes));
}

function v0(src: string, dst: string, repr: GreV0Repr) {
  const bytes = new Uint8Array(greV0LengthOf(repr));
  emitGreV0(repr, bytes, 0);
  return l4Of(rawPacket({ src, dst }, IpProtocol.GRE, bytes));
}

const toPac = () => v1(PNS, PAC, { callId: PAC_CALL_ID, sequence: 1, payload: new Uint8Array(20) });
const toPns = () => v1(PAC, PNS, { callId: PNS_CALL_ID, sequence: 1, ack: 1, payload: new Uint8Array(20) });

/** The keymap as the PPTP helper leaves it after Outgoing-Call-Reply. */
function pptpKeymap(): GreKeymap {
  const keymap = new GreKeymap();
  const control = new Conntrack(new GreTracker(DEFAULT_TIMEOUTS.gre, keymap), new Tuple(), new Tuple());
  expect(keymap.add(control, Direction.ORIGINAL, new Tuple(ip(PNS), ip(PAC), 47, PNS_CALL_ID, PAC_CALL_ID))).toBe(true);
  expect(keymap.add(control, Direction.REPLY, new Tuple(ip(PAC), ip(PNS), 47, PAC_CALL_ID, PNS_CALL_ID))).toBe(true);
  return keymap;
}

function read(tracker: GreTracker, packet: ReturnType<typeof toPac>): Tuple | null {
  const tuple = new Tuple(packet.buf.readUInt32BE(12), packet.buf.readUInt32BE(16), 47);
  return tracker.readTuple(packet, tuple) ? tuple : null;
}

describe('GRE tuples (gre_pkt_to_tuple)', () => {
  it('takes the call ID as destination key and the keymap source key in both directions', () => {
    const t = new GreTracker(DEFAULT_TIMEOUTS.gre, pptpKeymap());
    const out = read(t, toPac())!;
    expect([out.srcPort, out.dstPort]).toEqual([PNS_CALL_ID, PAC_CALL_ID]);
    const back = read(t, toPns())!;
    expect([back.srcPort, back.dstPort]).toEqual([PAC_CALL_ID, PNS_CALL_ID]);
    const reply = new Tuple();
    expect(t.invertTuple(out, reply)).toBe(true);
    expect([reply.srcPort, reply.dstPort]).toEqual([back.srcPort, back.dstPort]);
  });

  it('uses source key 0 without a keymap entry, and needs only the first 8 bytes', () => {
    const t = new GreTracker(DEFAULT_TIMEOUTS.gre, new GreKeymap());
    const packet = toPac();
    const tuple = read(t, { ...packet, l4Length: 8 })!;
    expect([tuple.srcPort, tuple.dstPort]).toEqual([0, PAC_CALL_ID]);
  });

  it('gives version 0 and short headers keys 0, and refuses version 1 of another protocol', () => {
    const t = new GreTracker(DEFAULT_TIMEOUTS.gre, pptpKeymap());
    const plain = read(t, v0(PNS, PAC, { protocol: 0x0800, key: 0xdeadbeef, payload: new Uint8Array(20) }))!;
    expect([plain.srcPort, plain.dstPort]).toEqual([0, 0]);
    const truncated = read(t, { ...toPac(), l4Length: 7 })!;
    expect([truncated.srcPort, truncated.dstPort]).toEqual([0, 0]);
    expect(read(t, { ...toPac(), l4Length: 2 })).not.toBeNull();
    const ip4 = toPac();
    ip4.buf.writeUInt16BE(0x0800, ip4.l4Offset + 2);
    expect(read(t, ip4)).toBeNull();
  });

  it('refuses nothing in validate (the kernel has no GRE error check) and prints keys in hex', () => {
    const t = new GreTracker(DEFAULT_TIMEOUTS.gre, new GreKeymap());
    expect(t.validate({ ...toPac(), l4Length: 1 }, true)).toBe(true);
    expect(t.formatTupleFields(new Tuple(0, 0, 47, 0, 0x1f4))).toBe('srckey=0x0 dstkey=0x1f4 ');
    expect(t.formatTupleFields(new Tuple(0, 0, 47, 0xabcd, 0))).toBe('srckey=0xabcd dstkey=0x0 ');
    expect([t.protocol, t.name]).toEqual([47, 'gre']);
  });
});

describe('GRE keymap', () => {
  it('holds one entry per master and direction; a repeat is fine, a different one is refused', () => {
    const keymap = new GreKeymap();
    const tracker = new GreTracker(DEFAULT_TIMEOUTS.gre, keymap);
    const master = new Conntrack(tracker, new Tuple(), new Tuple());
    const first = new Tuple(ip(PNS), ip(PAC), 47, 1, 2);
    expect(keymap.add(master, Direction.ORIGINAL, first)).toBe(true);
    expect(keymap.add(master, Direction.ORIGINAL, first.clone())).toBe(true);
    expect(keymap.add(master, Direction.ORIGINAL, new Tuple(ip(PNS), ip(PAC), 47, 1, 3))).toBe(false);
    expect(keymap.size).toBe(1);
    expect(keymap.lookup(ip(PNS), ip(PAC), 2)).toBe(1);
    expect(keymap.lookup(ip(PAC), ip(PNS), 2)).toBe(0);
    expect(keymap.lookup(ip(PNS), ip(PAC), 3)).toBe(0);
  });

  it('answers with the oldest entry for a tuple and forgets a master on destroy', () => {
    const keymap = new GreKeymap();
    const tracker = new GreTracker(DEFAULT_TIMEOUTS.gre, keymap);
    const a = new Conntrack(tracker, new Tuple(), new Tuple());
    const b = new Conntrack(tracker, new Tuple(), new Tuple());
    keymap.add(a, Direction.ORIGINAL, new Tuple(ip(PNS), ip(PAC), 47, 11, 500));
    keymap.add(b, Direction.ORIGINAL, new Tuple(ip(PNS), ip(PAC), 47, 22, 500));
    keymap.add(b, Direction.REPLY, new Tuple(ip(PAC), ip(PNS), 47, 500, 22));
    expect(keymap.lookup(ip(PNS), ip(PAC), 500)).toBe(11);
    keymap.destroy(a);
    expect(keymap.lookup(ip(PNS), ip(PAC), 500)).toBe(22);
    keymap.destroy(b);
    keymap.destroy(b);
    expect(keymap.size).toBe(0);
    expect(keymap.lookup(ip(PNS), ip(PAC), 500)).toBe(0);
  });
});

describe('GRE timeouts (nf_conntrack_gre_packet)', () => {
  it('is 30 s unreplied, then 180 s and ASSURED from the first packet after a reply', () => {
    const driver = new TrackerDriver(new GreTracker(DEFAULT_TIMEOUTS.gre, pptpKeymap()));
    expect(driver.open(toPac())).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    expect(driver.stateName).toBe('');
    expect(driver.send(1, toPns())).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(30);
    driver.now += 10;
    driver.send(0, toPac());
    expect(driver.remaining).toBe(180);
    expect(driver.entry!.status & Status.ASSURED).toBeTruthy();
    expect(driver.entry!.events).toBe(CtEvent.ASSURED);
    driver.send(1, toPns());
    expect(driver.entry!.events).toBe(0);
  });

  it('tracks version 0 between two hosts as one connection with the configured timeouts', () => {
    const driver = new TrackerDriver(new GreTracker({ unreplied: 5, replied: 50 }, new GreKeymap()));
    expect(driver.open(v0(PNS, PAC, { protocol: 0x0800, payload: new Uint8Array(20) }))).toBe(TrackVerdict.ACCEPT);
    expect(driver.remaining).toBe(5);
    expect(driver.entry!.tuples[1].srcPort).toBe(0);
    driver.entry!.status |= Status.FIXED_TIMEOUT;
    driver.entry!.timeout = 1;
    driver.send(1, v0(PAC, PNS, { protocol: 0x0800 }));
    expect(driver.entry!.timeout).toBe(1);
  });
});
