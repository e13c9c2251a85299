import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../../netfilter/conntrack/conntrack-entry.ts';
import { TrackVerdict, type L4Packet } from '../../../../netfilter/conntrack/l4-tracker.ts';
import { CtEvent, Status } from '../../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../../netfilter/conntrack/tuple.ts';
import {
  TCP_STATE_NAMES,
  TcpPeerFlag,
  TcpState,
  TcpTracker,
  tcpConnectionOf,
  type TcpTrackerOptions,
} from '../../../../netfilter/conntrack/trackers/tcp.ts';
import { DEFAULT_TIMEOUTS, resolveTimeouts, type TcpTimeouts } from '../../../../netfilter/conntrack/trackers/timeouts.ts';
import { TcpFlag } from '../../../../router/wire/tcp.ts';
import { BulkTransfer, TcpSegments, TrackerDriver, tcpOptions } from '../../../support/tcp-flow.ts';

const { SYN, ACK, FIN, RST, PSH, URG, ECE, CWR } = TcpFlag;
const seg = new TcpSegments({ addr: '10.0.0.2', port: 40000 }, { addr: '192.0.2.10', port: 80 });
const SYN_OPTIONS = tcpOptions({ mss: 1460, sackPermitted: true, timestamp: [100, 0], windowScale: 7 });
const SYNACK_OPTIONS = tcpOptions({ mss: 1460, sackPermitted: true, timestamp: [900, 100], windowScale: 7 });
const ts = (value: number, echo: number): Uint8Array => tcpOptions({ timestamp: [value, echo] });

const C_ISN = 0x12345678;
const S_ISN = 0x9abcdef0;

function tracker(options: Partial<TcpTrackerOptions> = {}, timeouts: TcpTimeouts = DEFAULT_TIMEOUTS.tcp): TcpTracker {
  return new TcpTracker(timeouts, options);
}

function expectState(driver: TrackerDriver, name: string, seconds: number): void {
  expect(driver.stateName).toBe(name);
  expect(driver.remaining).toBe(seconds);
}

/** SYN, SYN-ACK, ACK with window scale 7 and SACK on both sides; client data then starts at C_ISN + 1. */
function handshake(driver: TrackerDriver): void {
  expect(driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS }))).toBe(TrackVerdict.ACCEPT);
  expect(driver.send(1, seg.segment(1, { seq: S_ISN, ack: C_ISN + 1, flags: SYN | ACK, window: 65160, options: SYNACK_OPTIONS }))).toBe(
    TrackVerdict.ACCEPT,
  );
  expect(driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK, window: 502, options: ts(101, 900) }))).toBe(
    TrackVerdict.ACCEPT,
  );
}

/** Client sends `length` bytes at `seq`, the server acks them: returns the next client sequence. */
function exchange(driver: TrackerDriver, seq: number, length: number, serverSeq = S_ISN + 1): number {
  expect(driver.send(0, seg.segment(0, { seq, ack: serverSeq, flags: ACK | PSH, window: 502, payloadLength: length }))).toBe(TrackVerdict.ACCEPT);
  const next = (seq + length) >>> 0;
  expect(driver.send(1, seg.segment(1, { seq: serverSeq, ack: next, flags: ACK, window: 509 }))).toBe(TrackVerdict.ACCEPT);
  return next;
}

describe('TCP validate (tcp_error)', () => {
  const t = tracker();
  const withFlags = (flags: number) => seg.segment(0, { seq: 1, ack: flags & ACK ? 1 : 0, flags, window: 100 });
  const VALID = [SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG, ACK, ACK | URG];

  it('accepts exactly the kernel valid-flags table, whatever PSH, ECE and CWR say', () => {
    for (let flags = 0; flags < 0x40; flags++) {
      if (flags & PSH) continue; // added below
      for (const extra of [0, PSH, ECE | CWR, PSH | ECE | CWR]) {
        expect(t.validate(withFlags(flags | extra), true), `flags 0x${(flags | extra).toString(16)}`).toBe(VALID.includes(flags));
      }
    }
  });

  it('refuses the classic scan and garbage combinations', () => {
    for (const flags of [0, FIN, SYN | FIN, SYN | RST, FIN | PSH | URG, SYN | FIN | RST | PSH | ACK | URG, FIN | RST | ACK]) {
      expect(t.validate(withFlags(flags), false)).toBe(false);
    }
  });

  it('refuses a segment shorter than the fixed header', () => {
    const packet = withFlags(ACK);
    expect(t.validate({ ...packet, l4Length: 19 }, false)).toBe(false);
    expect(t.validate({ ...packet, buf: packet.buf.subarray(0, packet.l4Offset + 19) }, false)).toBe(false);
  });

  it('refuses a data offset under 5 words or past the segment', () => {
    for (const [dataOffset, valid] of [
      [4, false],
      [0, false],
      [5, true],
      [6, false],
      [15, false],
    ] as const) {
      const packet = withFlags(ACK);
      packet.buf[packet.l4Offset + 12] = dataOffset << 4;
      expect(t.validate(packet, false), `data offset ${dataOffset}`).toBe(valid);
    }
  });

  it('checks the checksum only when asked', () => {
    const packet = seg.segment(0, { seq: 5, ack: 6, flags: ACK, window: 100, payloadLength: 33 });
    expect(t.validate(packet, true)).toBe(true);
    packet.buf[packet.buf.length - 1] ^= 0x40;
    expect(t.validate(packet, true)).toBe(false);
    expect(t.validate(packet, false)).toBe(true);
  });

  it('covers the pseudo-header: a changed address fails the checksum', () => {
    const packet = withFlags(SYN);
    packet.buf[19] ^= 1; // destination address (IP checksum is not the tracker's business)
    expect(t.validate(packet, true)).toBe(false);
  });
});

describe('TCP tuple and listing', () => {
  const t = tracker();

  it('reads the ports from the first 4 bytes only, as from a quoted header', () => {
    const full = seg.segment(0, { seq: 1, flags: SYN, window: 1 });
    const tuple = new Tuple();
    expect(t.readTuple({ buf: full.buf.subarray(0, full.l4Offset + 8), l4Offset: full.l4Offset, l4Length: 8 }, tuple)).toBe(true);
    expect([tuple.srcPort, tuple.dstPort]).toEqual([40000, 80]);
    expect(t.readTuple({ ...full, l4Length: 3 }, new Tuple())).toBe(false);
  });

  it('inverts by swapping the ports and prints them as conntrack does', () => {
    const reply = new Tuple();
    expect(t.invertTuple(new Tuple(1, 2, 6, 40000, 80), reply)).toBe(true);
    expect([reply.srcPort, reply.dstPort]).toEqual([80, 40000]);
    expect(t.formatTupleFields(new Tuple(1, 2, 6, 40000, 80))).toBe('sport=40000 dport=80 ');
    expect([t.protocol, t.name]).toEqual([6, 'tcp']);
  });

  it('names the states as conntrack -L', () => {
    expect(TCP_STATE_NAMES).toEqual([
      'NONE',
      'SYN_SENT',
      'SYN_RECV',
      'ESTABLISHED',
      'FIN_WAIT',
      'CLOSE_WAIT',
      'LAST_ACK',
      'TIME_WAIT',
      'CLOSE',
      'SYN_SENT2',
    ]);
    const entry = new Conntrack(t, new Tuple(), new Tuple());
    entry.l4State = TcpState.TIME_WAIT;
    expect(t.stateName(entry)).toBe('TIME_WAIT');
  });
});

describe('TCP new connections (tcp_new)', () => {
  it('opens on a SYN', () => {
    const driver = new TrackerDriver(tracker());
    expect(driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'SYN_SENT', 120);
    expect(driver.entry!.events & CtEvent.PROTOINFO).toBeTruthy();
    const original = tcpConnectionOf(driver.entry!)!.seen[0];
    expect(original.end).toBe(C_ISN + 1);
    expect(original.scale).toBe(7);
    expect(original.flags & (TcpPeerFlag.SACK_PERM | TcpPeerFlag.WINDOW_SCALE)).toBe(TcpPeerFlag.SACK_PERM | TcpPeerFlag.WINDOW_SCALE);
  });

  it('refuses SYN-ACK, FIN, RST and RST-ACK as a first packet', () => {
    for (const flags of [SYN | ACK, FIN | ACK, RST, RST | ACK]) {
      const driver = new TrackerDriver(tracker());
      expect(driver.open(seg.segment(0, { seq: 1, ack: 1, flags, window: 100 })), `flags ${flags}`).toBe(TrackVerdict.INVALID);
      expect(driver.entry).toBeNull();
    }
  });

  it('picks up an ACK mid-stream with loose on: ESTABLISHED, capped at 300 s until answered, liberal', () => {
    const driver = new TrackerDriver(tracker());
    expect(driver.open(seg.segment(0, { seq: 5000, ack: 9000, flags: ACK | PSH, window: 1000, payloadLength: 100 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 300);
    const conn = tcpConnectionOf(driver.entry!)!;
    for (const peer of conn.seen) expect(peer.flags & TcpPeerFlag.BE_LIBERAL).toBeTruthy();
    expect(conn.seen[0].maxEnd).toBe(5100 + 1000);
    expect(driver.entry!.status & Status.ASSURED).toBe(0);

    // The first reply is still capped (SEEN_REPLY is set only after it); the next packet assures.
    expect(driver.send(1, seg.segment(1, { seq: 9000, ack: 5100, flags: ACK, window: 800 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 300);
    expect(driver.send(0, seg.segment(0, { seq: 5100, ack: 9000, flags: ACK, window: 1000 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 432000);
    expect(driver.entry!.status & Status.ASSURED).toBeTruthy();
    expect(driver.entry!.events & CtEvent.ASSURED).toBeTruthy();

    // Window scale is unknown on a picked-up connection: far out-of-window data still passes.
    expect(driver.send(0, seg.segment(0, { seq: 5100 + 10_000_000, ack: 9000, flags: ACK, window: 1000, payloadLength: 10 }))).toBe(
      TrackVerdict.ACCEPT,
    );
  });

  it('refuses to pick up with loose off', () => {
    const driver = new TrackerDriver(tracker({ loose: false }));
    expect(driver.open(seg.segment(0, { seq: 5000, ack: 9000, flags: ACK, window: 1000 }))).toBe(TrackVerdict.INVALID);
    expect(driver.open(seg.segment(0, { seq: 5000, flags: SYN, window: 1000 }))).toBe(TrackVerdict.ACCEPT);
  });
});

describe('TCP state machine', () => {
  it('follows the handshake with the kernel timeouts and assures on the final ACK', () => {
    const driver = new TrackerDriver(tracker());
    driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS }));
    expectState(driver, 'SYN_SENT', 120);

    driver.now += 1000;
    driver.send(1, seg.segment(1, { seq: S_ISN, ack: C_ISN + 1, flags: SYN | ACK, window: 65160, options: SYNACK_OPTIONS }));
    expectState(driver, 'SYN_RECV', 60);
    expect(driver.entry!.events).toBe(CtEvent.PROTOINFO);
    expect(driver.entry!.status & Status.ASSURED).toBe(0);

    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK, window: 502, options: ts(101, 900) }));
    expectState(driver, 'ESTABLISHED', 432000);
    expect(driver.entry!.events).toBe(CtEvent.PROTOINFO | CtEvent.ASSURED);
    expect(driver.entry!.status & Status.ASSURED).toBeTruthy();

    // Both SYNs asked for scaling: it is on in both directions.
    const conn = tcpConnectionOf(driver.entry!)!;
    expect([conn.seen[0].scale, conn.seen[1].scale]).toEqual([7, 7]);
  });

  it('does not extend the entry on a retransmitted SYN', () => {
    const driver = new TrackerDriver(tracker());
    const syn = seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS });
    driver.open(syn);
    driver.now += 3000;
    expect(driver.send(0, syn)).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'SYN_SENT', 117);
  });

  it('turns scaling off unless both SYNs ask for it, and caps a scale above 14', () => {
    const driver = new TrackerDriver(tracker());
    driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: tcpOptions({ windowScale: 15 }) }));
    expect(tcpConnectionOf(driver.entry!)!.seen[0].scale).toBe(14);
    driver.send(1, seg.segment(1, { seq: S_ISN, ack: C_ISN + 1, flags: SYN | ACK, window: 65160, options: tcpOptions({ mss: 1400 }) }));
    const conn = tcpConnectionOf(driver.entry!)!;
    expect([conn.seen[0].scale, conn.seen[1].scale]).toEqual([0, 0]);
  });

  it('walks the close: FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const clientSeq = exchange(driver, C_ISN + 1, 500);
    expectState(driver, 'ESTABLISHED', 432000);

    driver.send(0, seg.segment(0, { seq: clientSeq, ack: S_ISN + 1, flags: FIN | ACK, window: 502 }));
    expectState(driver, 'FIN_WAIT', 120);
    expect(tcpConnectionOf(driver.entry!)!.seen[0].flags & TcpPeerFlag.CLOSE_INIT).toBeTruthy();
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: clientSeq + 1, flags: ACK, window: 509 }));
    expectState(driver, 'CLOSE_WAIT', 60);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: clientSeq + 1, flags: FIN | ACK, window: 509 }));
    expectState(driver, 'LAST_ACK', 30);
    driver.send(0, seg.segment(0, { seq: clientSeq + 1, ack: S_ISN + 2, flags: ACK, window: 502 }));
    expectState(driver, 'TIME_WAIT', 120);
    expect(driver.entry!.events).toBe(CtEvent.PROTOINFO);

    // A new SYN on the closed tuple: kill and track afresh.
    expect(driver.send(0, seg.segment(0, { seq: C_ISN + 100000, flags: SYN, window: 64240, options: SYN_OPTIONS }))).toBe(
      TrackVerdict.RECREATE,
    );
    expect(driver.stateName).toBe('TIME_WAIT');
  });

  it('reopens CLOSE on a SYN from the side that sent the RST', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: RST | ACK, window: 0 }));
    expectState(driver, 'CLOSE', 10);
    expect(driver.send(0, seg.segment(0, { seq: C_ISN + 7777, flags: SYN, window: 100 }))).toBe(TrackVerdict.RECREATE);
    // The table has no SYN from the reply side in CLOSE.
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 5000, flags: SYN, window: 100 }))).toBe(TrackVerdict.INVALID);
  });

  it('lets a SYN after the other side reset pass untracked, and follows the SYN-ACK that answers it', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 1, flags: RST | ACK, window: 0 }));
    expectState(driver, 'CLOSE', 10);
    driver.now += 1000;
    expect(driver.send(0, seg.segment(0, { seq: 0x01020304, flags: SYN, window: 64240, options: SYN_OPTIONS }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'CLOSE', 9);
    expect(driver.send(1, seg.segment(1, { seq: 0x0a0b0c0d, ack: 0x01020305, flags: SYN | ACK, window: 65160, options: SYNACK_OPTIONS }))).toBe(
      TrackVerdict.ACCEPT,
    );
    expectState(driver, 'SYN_RECV', 60);
    expect(driver.send(0, seg.segment(0, { seq: 0x01020305, ack: 0x0a0b0c0e, flags: ACK, window: 502 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 432000);
  });

  it('marks table-invalid segments INVALID without touching the entry', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const before = driver.entry!.timeout;
    driver.now += 5000;
    // A SYN-ACK from the client side in ESTABLISHED.
    expect(driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: SYN | ACK, window: 502 }))).toBe(TrackVerdict.INVALID);
    expect(driver.entry!.timeout).toBe(before);
    expect(driver.stateName).toBe('ESTABLISHED');

    const fresh = new TrackerDriver(tracker());
    fresh.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240 }));
    expect(fresh.send(0, seg.segment(0, { seq: C_ISN + 1, ack: 1, flags: ACK, window: 502 }))).toBe(TrackVerdict.INVALID);
    expect(fresh.send(0, seg.segment(0, { seq: C_ISN + 1, ack: 1, flags: FIN | ACK, window: 502 }))).toBe(TrackVerdict.INVALID);
    expect(fresh.send(1, seg.segment(1, { seq: 1, ack: C_ISN + 1, flags: FIN | ACK, window: 502 }))).toBe(TrackVerdict.INVALID);
    expect(fresh.stateName).toBe('SYN_SENT');
  });

  it('ignores a retransmitted SYN-ACK in SYN_RECV and a late one in ESTABLISHED', () => {
    const driver = new TrackerDriver(tracker());
    driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS }));
    const synAck = seg.segment(1, { seq: S_ISN, ack: C_ISN + 1, flags: SYN | ACK, window: 65160, options: SYNACK_OPTIONS });
    driver.send(1, synAck);
    driver.now += 2000;
    expect(driver.send(1, synAck)).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'SYN_RECV', 58);
    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK, window: 502 }));
    expect(driver.send(1, synAck)).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 432000);
  });

  it('tracks a simultaneous open through SYN_SENT2', () => {
    const driver = new TrackerDriver(tracker());
    driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS }));
    driver.now += 1000;
    expect(driver.send(1, seg.segment(1, { seq: S_ISN, flags: SYN, window: 65160, options: SYNACK_OPTIONS }))).toBe(TrackVerdict.ACCEPT);
    // The reply SYN is a SYN seen in SYN_SENT: the entry is not extended.
    expectState(driver, 'SYN_SENT2', 119);
    expect(tcpConnectionOf(driver.entry!)!.lastFlags & TcpPeerFlag.SIMULTANEOUS_OPEN).toBeTruthy();
    driver.send(0, seg.segment(0, { seq: C_ISN, ack: S_ISN + 1, flags: SYN | ACK, window: 64240, options: SYN_OPTIONS }));
    expectState(driver, 'SYN_RECV', 60);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 1, flags: ACK, window: 509 }));
    expectState(driver, 'ESTABLISHED', 432000);
    expect(driver.entry!.status & Status.ASSURED).toBeTruthy();
  });

  it('resynchronises on the SYN-ACK that answers a SYN it let through', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const newIsn = 0x0badf00d;
    // The client restarted and reuses the port: its SYN is ignored, not tracked.
    const newSyn = seg.segment(0, { seq: newIsn, flags: SYN, window: 64240, options: tcpOptions({ windowScale: 5, sackPermitted: true }) });
    expect(driver.send(0, newSyn)).toBe(TrackVerdict.ACCEPT);
    expect(driver.stateName).toBe('ESTABLISHED');
    // The server answers it: both ends are in sync, the tracker follows them.
    const synAck = seg.segment(1, { seq: 0x55555555, ack: newIsn + 1, flags: SYN | ACK, window: 65160, options: tcpOptions({ windowScale: 7 }) });
    expect(driver.send(1, synAck)).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'SYN_RECV', 60);
    const conn = tcpConnectionOf(driver.entry!)!;
    expect(conn.seen[0].end).toBe(newIsn + 1);
    expect([conn.seen[0].scale, conn.seen[1].scale]).toEqual([5, 7]);
    expect(driver.send(0, seg.segment(0, { seq: newIsn + 1, ack: 0x55555556, flags: ACK, window: 502 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 432000);
  });

  it('does not take an RFC 5961 challenge ACK in LAST_ACK for the last ACK', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 1, flags: FIN | ACK, window: 509 }));
    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 2, flags: ACK, window: 502 }));
    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 2, flags: FIN | ACK, window: 502 }));
    expectState(driver, 'LAST_ACK', 30);
    driver.now += 1000;
    expect(driver.send(0, seg.segment(0, { seq: 0x77777777, flags: SYN, window: 64240 }))).toBe(TrackVerdict.ACCEPT);
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 2, ack: C_ISN + 2, flags: ACK, window: 509 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'LAST_ACK', 29);
    // The real last ACK still closes.
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 2, ack: C_ISN + 2, flags: ACK, window: 509 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'TIME_WAIT', 120);
  });
});

describe('TCP resets', () => {
  it('kills the entry at once on an RST answering the SYN, leaving SYN_SENT\'s timeout for its DESTROY', () => {
    const driver = new TrackerDriver(tracker());
    driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240, options: SYN_OPTIONS }));
    driver.now += 1000;
    expect(driver.send(1, seg.segment(1, { seq: 0, ack: C_ISN + 1, flags: RST | ACK, window: 0 }))).toBe(TrackVerdict.KILL);
    expectState(driver, 'CLOSE', 119);
  });

  it('kills the entry when the opener resets before any reply', () => {
    const driver = new TrackerDriver(tracker());
    driver.open(seg.segment(0, { seq: C_ISN, flags: SYN, window: 64240 }));
    expect(driver.send(0, seg.segment(0, { seq: C_ISN + 1, flags: RST, window: 0 }))).toBe(TrackVerdict.KILL);
  });

  it('closes an established connection on an in-window RST with the exact sequence number (10 s)', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const clientSeq = exchange(driver, C_ISN + 1, 1000);
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: clientSeq, flags: RST | ACK, window: 0 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'CLOSE', 10);
    expect(driver.entry!.events).toBe(CtEvent.PROTOINFO);
  });

  it('treats an RST below what the peer acked as INVALID, unless ignoreInvalidRst', () => {
    for (const [ignoreInvalidRst, verdict, remaining] of [
      [false, TrackVerdict.INVALID, 432000],
      // Then it is only "not the exact number": the state stays, the timeout drops to CLOSE's.
      [true, TrackVerdict.ACCEPT, 10],
    ] as const) {
      const driver = new TrackerDriver(tracker({ ignoreInvalidRst }));
      handshake(driver);
      exchange(driver, C_ISN + 1, 1000);
      expect(driver.send(1, seg.segment(1, { seq: S_ISN - 1000, flags: RST, window: 0 }))).toBe(verdict);
      expectState(driver, 'ESTABLISHED', remaining);
    }
  });

  it('keeps the state for an in-window RST with an inexact sequence number, but shortens the timeout', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    exchange(driver, C_ISN + 1, 1000);
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 11, flags: RST, window: 0 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 10);
  });

  it('accepts an RST that ends a train of data from the same side', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const clientSeq = exchange(driver, C_ISN + 1, 100);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: clientSeq, flags: ACK | PSH, window: 509, payloadLength: 19 }));
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 20, ack: clientSeq, flags: RST | ACK, window: 0 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'CLOSE', 10);
  });

  it('needs no sequence check while closing', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: FIN | ACK, window: 502 }));
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 999999, flags: RST, window: 0 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'CLOSE', 10);
  });
});

describe('TCP timeout caps', () => {
  // Distinct values, so that each cap is visible.
  const timeouts = resolveTimeouts({ tcp: { retrans: 250, unacknowledged: 280 } }).tcp;

  it('uses UNACK while data is outstanding and the state timeout once it is acked', () => {
    const driver = new TrackerDriver(tracker({}, timeouts));
    handshake(driver);
    driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK | PSH, window: 502, payloadLength: 100 }));
    expectState(driver, 'ESTABLISHED', 280);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 51, flags: ACK, window: 509 }));
    expectState(driver, 'ESTABLISHED', 280);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 101, flags: ACK, window: 509 }));
    expectState(driver, 'ESTABLISHED', 432000);
  });

  it('uses RETRANS after max_retrans identical retransmissions', () => {
    const driver = new TrackerDriver(tracker({}, timeouts));
    handshake(driver);
    const data = seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK | PSH, window: 502, payloadLength: 100 });
    const expected = [280, 280, 280, 250, 250];
    for (const seconds of expected) {
      expect(driver.send(0, data)).toBe(TrackVerdict.ACCEPT);
      expectState(driver, 'ESTABLISHED', seconds);
    }
    expect(tcpConnectionOf(driver.entry!)!.retrans).toBe(4);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 101, flags: ACK, window: 509 }));
    expectState(driver, 'ESTABLISHED', 432000);
  });

  it('uses RETRANS after a zero window', () => {
    const driver = new TrackerDriver(tracker({}, timeouts));
    handshake(driver);
    driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 1, flags: ACK, window: 0 }));
    expectState(driver, 'ESTABLISHED', 250);
    // A window probe passes (a right edge once allowed never shrinks); its byte is outstanding.
    expect(driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK, window: 502, payloadLength: 1 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 280);
  });

  it('keeps a fixed timeout', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    driver.entry!.status |= Status.FIXED_TIMEOUT;
    driver.entry!.timeout = 42;
    exchange(driver, C_ISN + 1, 10);
    expect(driver.entry!.timeout).toBe(42);
  });

  it('shrinks an assured entry to UNACK on out-of-window FINs from both sides', () => {
    const driver = new TrackerDriver(tracker({}, timeouts));
    handshake(driver);
    driver.now += 1000;
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 50_000_000, ack: C_ISN + 1, flags: FIN | ACK, window: 509 }))).toBe(TrackVerdict.INVALID);
    expectState(driver, 'ESTABLISHED', 431999);
    expect(driver.send(0, seg.segment(0, { seq: C_ISN + 50_000_000, ack: S_ISN + 1, flags: FIN | ACK, window: 502 }))).toBe(TrackVerdict.INVALID);
    expectState(driver, 'ESTABLISHED', 280);
  });
});

describe('TCP window tracking (tcp_in_window)', () => {
  const CLIENT_DATA = 0xfff00000; // a megabyte before the sequence space wraps
  const SERVER_DATA = 0xffffff00;

  function bulkSetup(options: Partial<TcpTrackerOptions> = {}) {
    const driver = new TrackerDriver(tracker(options));
    expect(driver.open(seg.segment(0, { seq: CLIENT_DATA - 1, flags: SYN, window: 64240, options: SYN_OPTIONS }))).toBe(TrackVerdict.ACCEPT);
    expect(driver.send(1, seg.segment(1, { seq: SERVER_DATA - 1, ack: CLIENT_DATA, flags: SYN | ACK, window: 65160, options: SYNACK_OPTIONS }))).toBe(
      TrackVerdict.ACCEPT,
    );
    expect(driver.send(0, seg.segment(0, { seq: CLIENT_DATA, ack: SERVER_DATA, flags: ACK, window: 1024, options: ts(101, 900) }))).toBe(
      TrackVerdict.ACCEPT,
    );
    expectState(driver, 'ESTABLISHED', 432000);
    const bulk = new BulkTransfer(seg, {
      seed: 7,
      segments: 3000,
      mss: 1448,
      clientData: CLIENT_DATA,
      serverData: SERVER_DATA,
      serverWindow: 262144,
      clientWindow: 131072,
      windowScale: 7,
      reorder: 0.05,
      lossAfter: 0.02,
      lossBefore: 0.01,
      spurious: 0.05,
      ackReorder: 0.05,
      serverDataEvery: 7,
    });
    return { driver, bulk };
  }

  it('accepts every segment of a long lossy transfer across the 32-bit wrap, then closes', () => {
    const { driver, bulk } = bulkSetup();
    const seen: Record<string, number> = {};
    let sackedAcks = 0;
    for (const step of bulk.run()) {
      driver.now += 1;
      const verdict = driver.send(step.direction, step.packet);
      if (verdict !== TrackVerdict.ACCEPT) throw new Error(`${step.what} in direction ${step.direction} was ${verdict}`);
      seen[step.what] = (seen[step.what] ?? 0) + 1;
      if (step.direction === 1 && step.packet.buf[step.packet.l4Offset + 12]! >>> 4 > 8) sackedAcks++;
    }
    // The run exercised what it claims to.
    expect(seen.data).toBeGreaterThan(2900);
    expect(seen.retransmission).toBeGreaterThan(20);
    expect(seen.spurious).toBeGreaterThan(5);
    expect(seen['server-data']).toBeGreaterThan(50);
    expect(sackedAcks).toBeGreaterThan(20);
    expect(bulk.clientSeq).toBeLessThan(CLIENT_DATA); // wrapped

    // The tracker followed both directions exactly.
    const conn = tcpConnectionOf(driver.entry!)!;
    expect(conn.seen[0].end).toBe(bulk.clientSeq);
    expect(conn.seen[1].end).toBe(bulk.serverSeq);
    expect(conn.seen[0].maxWin).toBeGreaterThanOrEqual(131072);
    expect(conn.seen[1].maxWin).toBeGreaterThanOrEqual(262144);
    expectState(driver, 'ESTABLISHED', 432000);

    const clientSeq = bulk.clientSeq;
    const serverSeq = bulk.serverSeq;
    driver.send(0, seg.segment(0, { seq: clientSeq, ack: serverSeq, flags: FIN | ACK, window: 1024 }));
    expectState(driver, 'FIN_WAIT', 120);
    driver.send(1, seg.segment(1, { seq: serverSeq, ack: clientSeq + 1, flags: FIN | ACK, window: 2048 }));
    expectState(driver, 'LAST_ACK', 30);
    driver.send(0, seg.segment(0, { seq: clientSeq + 1, ack: serverSeq + 1, flags: ACK, window: 1024 }));
    expectState(driver, 'TIME_WAIT', 120);
  });

  it('marks segments beyond the window, and acks or SACKs of unseen data, INVALID', () => {
    const { driver, bulk } = bulkSetup();
    for (const step of bulk.run()) driver.send(step.direction, step.packet);
    const c = bulk.clientSeq;
    const s = bulk.serverSeq;
    const before = driver.entry!.timeout;
    driver.now += 1000;
    const outOfWindow: [0 | 1, L4Packet][] = [
      // I: data past what the server's window allows, by more than its largest window.
      [0, seg.segment(0, { seq: c + 4 * 1024 * 1024, ack: s, flags: ACK, window: 1024, payloadLength: 1448 })],
      // III: an ack of data the client never sent.
      [1, seg.segment(1, { seq: s, ack: c + 5 * 1448, flags: ACK, window: 2048 })],
      // III with SACK: the cumulative ack is fine, a SACK block is not.
      [1, seg.segment(1, { seq: s, ack: c, flags: ACK, window: 2048, options: tcpOptions({ timestamp: [1, 1], sack: [[c + 1448, c + 2896]] }) })],
      // The other direction: an ack of server data never sent.
      [0, seg.segment(0, { seq: c, ack: s + 100000, flags: ACK, window: 1024 })],
    ];
    for (const [direction, packet] of outOfWindow) expect(driver.send(direction, packet)).toBe(TrackVerdict.INVALID);
    expect(driver.entry!.timeout).toBe(before);

    // II: data from long ago is let through but changes nothing (the kernel's "ignore").
    expect(driver.send(0, seg.segment(0, { seq: c - 0x40000000, ack: s, flags: ACK, window: 1024, payloadLength: 1448 }))).toBe(TrackVerdict.ACCEPT);
    expect(driver.entry!.timeout).toBe(before);
    expect(tcpConnectionOf(driver.entry!)!.seen[0].end).toBe(c);

    // In window, the same tracker still accepts.
    expect(driver.send(0, seg.segment(0, { seq: c, ack: s, flags: ACK, window: 1024, payloadLength: 1448 }))).toBe(TrackVerdict.ACCEPT);
  });

  it('lets a little more than the window pass untracked and remembers it for the ack', () => {
    const { driver, bulk } = bulkSetup();
    for (const step of bulk.run()) driver.send(step.direction, step.packet);
    const c = bulk.clientSeq;
    const s = bulk.serverSeq;
    const conn = tcpConnectionOf(driver.entry!)!;
    const edge = conn.seen[0].maxEnd;
    const before = driver.entry!.timeout;
    driver.now += 1000;
    // Starts one byte past the right edge: bound I fails, but the overshoot fits the window.
    expect(driver.send(0, seg.segment(0, { seq: edge + 1, ack: s, flags: ACK, window: 1024, payloadLength: 1000 }))).toBe(TrackVerdict.ACCEPT);
    expect(driver.entry!.timeout).toBe(before);
    expect(conn.seen[0].end).toBe(edge + 1001);
    // So the server's ack of it is not "over the upper bound".
    expect(driver.send(1, seg.segment(1, { seq: s, ack: edge + 1001, flags: ACK, window: 2048 }))).toBe(TrackVerdict.ACCEPT);
    expect(edge + 1 - c).toBeGreaterThan(0);
  });

  it('lets out-of-window segments through with liberal on', () => {
    const { driver, bulk } = bulkSetup({ liberal: true });
    for (const step of bulk.run()) expect(driver.send(step.direction, step.packet)).toBe(TrackVerdict.ACCEPT);
    const c = bulk.clientSeq;
    expect(driver.send(0, seg.segment(0, { seq: c + 10_000_000, ack: bulk.serverSeq, flags: ACK, window: 1024, payloadLength: 100 }))).toBe(
      TrackVerdict.ACCEPT,
    );
    expect(driver.send(1, seg.segment(1, { seq: bulk.serverSeq, ack: c + 20_000_000, flags: ACK, window: 2048 }))).toBe(TrackVerdict.ACCEPT);
  });

  it('takes sequence adjustment back out of the acks (seqOffset)', () => {
    // A helper made the client's segment 10 bytes longer on the way to the server.
    const grown = 10;
    for (const [seqOffset, verdict] of [
      [null, TrackVerdict.INVALID],
      [(_entry: Conntrack, direction: 0 | 1) => (direction === 0 ? grown : 0), TrackVerdict.ACCEPT],
    ] as const) {
      const driver = new TrackerDriver(tracker({ seqOffset }));
      handshake(driver);
      driver.send(0, seg.segment(0, { seq: C_ISN + 1, ack: S_ISN + 1, flags: ACK | PSH, window: 502, payloadLength: 100 }));
      expect(driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: C_ISN + 101 + grown, flags: ACK, window: 509 }))).toBe(verdict);
    }
  });

  it('widens the receiver window by what a segment crossing the right edge carried past it', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const conn = tcpConnectionOf(driver.entry!)!;
    const edge = conn.seen[0].maxEnd;
    const serverMaxWin = conn.seen[1].maxWin;
    // Bound I looks at the first byte only: this segment starts inside and ends 500 bytes past.
    expect(driver.send(0, seg.segment(0, { seq: edge - 100, ack: S_ISN + 1, flags: ACK, window: 502, payloadLength: 600 }))).toBe(TrackVerdict.ACCEPT);
    expect(conn.seen[0].end).toBe(edge + 500);
    expect(conn.seen[1].maxWin).toBe(serverMaxWin + 500);
  });

  it('accepts a keepalive and its answer', () => {
    const driver = new TrackerDriver(tracker());
    handshake(driver);
    const c = exchange(driver, C_ISN + 1, 100);
    expect(driver.send(0, seg.segment(0, { seq: c - 1, ack: S_ISN + 1, flags: ACK, window: 502 }))).toBe(TrackVerdict.ACCEPT);
    expect(driver.send(1, seg.segment(1, { seq: S_ISN + 1, ack: c, flags: ACK, window: 509 }))).toBe(TrackVerdict.ACCEPT);
    expectState(driver, 'ESTABLISHED', 432000);
  });
});
