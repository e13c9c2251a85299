/**
 * Builders for conntrack tracker tests: TCP segments between two endpoints with Linux-like
 * options, a driver that feeds packets to one tracker in the order the kernel's nf_conntrack_in
 * calls it, and a simulated bulk transfer (reordering, losses, retransmissions, SACK, 32-bit
 * wraparound) that yields what a router in the middle would see.
 */
import { Conntrack } from '../../netfilter/conntrack/conntrack-entry.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from '../../netfilter/conntrack/l4-tracker.ts';
import { Status } from '../../netfilter/conntrack/status.ts';
import { Tuple } from '../../netfilter/conntrack/tuple.ts';
import { ipv4Dst, ipv4HeaderLength, ipv4Protocol, ipv4Src } from '../../router/wire/ipv4.ts';
import { TcpFlag, TcpOptionKind } from '../../router/wire/tcp.ts';
import { tcpPacket } from './packets.ts';

/** mulberry32: a small deterministic generator in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An L4Packet over a whole IPv4 datagram built by test/support/packets.ts. */
export function l4Of(buf: Buffer): L4Packet {
  const l4Offset = ipv4HeaderLength(buf, 0);
  return { buf, l4Offset, l4Length: buf.length - l4Offset };
}

export interface TcpOptionsSpec {
  mss?: number;
  sackPermitted?: boolean;
  windowScale?: number;
  /** [TSval, TSecr] */
  timestamp?: [number, number];
  /** [left, right) edges. */
  sack?: [number, number][];
}

/** Options laid out as Linux sends them (NOP-padded to 4-byte words). */
export function tcpOptions(spec: TcpOptionsSpec): Uint8Array {
  const bytes: number[] = [];
  const u32 = (value: number): number[] => [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  if (spec.mss !== undefined) bytes.push(TcpOptionKind.MSS, 4, spec.mss >>> 8, spec.mss & 0xff);
  if (spec.sackPermitted && spec.timestamp) {
    bytes.push(TcpOptionKind.SACK_PERMITTED, 2, TcpOptionKind.TIMESTAMP, 10, ...u32(spec.timestamp[0]), ...u32(spec.timestamp[1]));
  } else {
    if (spec.sackPermitted) bytes.push(TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.SACK_PERMITTED, 2);
    if (spec.timestamp) {
      bytes.push(TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.TIMESTAMP, 10, ...u32(spec.timestamp[0]), ...u32(spec.timestamp[1]));
    }
  }
  if (spec.windowScale !== undefined) bytes.push(TcpOptionKind.NOP, TcpOptionKind.WINDOW_SCALE, 3, spec.windowScale);
  if (spec.sack && spec.sack.length > 0) {
    bytes.push(TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.SACK, 2 + 8 * spec.sack.length);
    for (const [left, right] of spec.sack) bytes.push(...u32(left >>> 0), ...u32(right >>> 0));
  }
  return Uint8Array.from(bytes);
}

export interface Endpoint {
  addr: string;
  port: number;
}

export interface SegmentSpec {
  seq: number;
  ack?: number;
  flags: number;
  /** The raw 16-bit window field. */
  window: number;
  payloadLength?: number;
  options?: Uint8Array;
}

/** Segments between a client (direction 0 senders) and a server (direction 1). */
export class TcpSegments {
  constructor(
    readonly client: Endpoint,
    readonly server: Endpoint,
  ) {}

  segment(from: 0 | 1, spec: SegmentSpec): L4Packet {
    const [source, target] = from === 0 ? [this.client, this.server] : [this.server, this.client];
    const payloadLength = spec.payloadLength ?? 0;
    const buf = tcpPacket(
      { src: source.addr, dst: target.addr },
      {
        srcPort: source.port,
        dstPort: target.port,
        seq: spec.seq >>> 0,
        ack: (spec.ack ?? 0) >>> 0,
        flags: spec.flags,
        window: spec.window,
        ...(spec.options ? { options: spec.options } : {}),
        ...(payloadLength > 0 ? { payload: new Uint8Array(payloadLength).fill(0x61) } : {}),
      },
    );
    return l4Of(buf);
  }
}

/**
 * One connection through one tracker, driven as the conntrack core does it: validate, read the
 * tuple (addresses first), invert, newConnection and packet for the first packet, which then
 * confirms the entry; validate and packet for later ones, with SEEN_REPLY set only after an
 * accepted reply. `events` are cleared before each packet, so they show that packet's.
 */
export class TrackerDriver {
  entry: Conntrack | null = null;
  now = 1_000_000;

  constructor(
    readonly tracker: L4Tracker,
    readonly checkChecksum = true,
  ) {}

  /** Tracks `packet` as the first of a new connection; the entry stays null if refused. */
  open(packet: L4Packet): TrackVerdict {
    this.entry = null;
    if (!this.tracker.validate(packet, this.checkChecksum)) return TrackVerdict.INVALID;
    const buf = packet.buf;
    const original = new Tuple(ipv4Src(buf, 0), ipv4Dst(buf, 0), ipv4Protocol(buf, 0));
    if (!this.tracker.readTuple(packet, original)) return TrackVerdict.INVALID;
    const reply = new Tuple(original.dst, original.src, original.protocol);
    if (!this.tracker.invertTuple(original, reply)) return TrackVerdict.INVALID;
    const entry = new Conntrack(this.tracker, original, reply);
    if (!this.tracker.newConnection(entry, packet, this.now)) return TrackVerdict.INVALID;
    const verdict = this.tracker.packet(entry, packet, 0, this.now);
    if (verdict !== TrackVerdict.ACCEPT) return verdict;
    entry.status |= Status.CONFIRMED;
    this.entry = entry;
    return verdict;
  }

  send(direction: 0 | 1, packet: L4Packet): TrackVerdict {
    const entry = this.entry;
    if (entry === null) throw new Error('no connection: open() first');
    if (!this.tracker.validate(packet, this.checkChecksum)) return TrackVerdict.INVALID;
    entry.events = 0;
    const verdict = this.tracker.packet(entry, packet, direction, this.now);
    if (verdict === TrackVerdict.ACCEPT && direction === 1) entry.status |= Status.SEEN_REPLY;
    return verdict;
  }

  /** Seconds until the entry expires, as conntrack -L shows them. */
  get remaining(): number {
    if (this.entry === null) throw new Error('no connection');
    return (this.entry.timeout - this.now) / 1000;
  }

  get stateName(): string {
    if (this.entry === null) throw new Error('no connection');
    return this.tracker.stateName(this.entry);
  }
}

export interface BulkTransferOptions {
  seed: number;
  /** Full-sized segments the client sends. */
  segments: number;
  mss: number;
  /** Sequence number of the client's first data byte (its ISN + 1). */
  clientData: number;
  /** Sequence number of the server's next byte. */
  serverData: number;
  /** The server's receive window in bytes, and the client's; both advertised with `windowScale`. */
  serverWindow: number;
  clientWindow: number;
  windowScale: number;
  /** Probability that two adjacent client segments reach the router swapped. */
  reorder: number;
  /** Probability that a client segment is lost after the router (the server never gets it). */
  lossAfter: number;
  /** Probability that a client segment is lost before the router (nobody sees it). */
  lossBefore: number;
  /** Probability per round that the client needlessly resends an acknowledged segment. */
  spurious: number;
  /** Probability that two adjacent server ACKs reach the router swapped. */
  ackReorder: number;
  /** Every this many rounds the server sends a small reply on its ACK. */
  serverDataEvery: number;
}

/** Bytes of each server reply in a bulk transfer. */
const SERVER_REPLY = 300;

export interface FlowStep {
  direction: 0 | 1;
  packet: L4Packet;
  what: 'data' | 'retransmission' | 'spurious' | 'ack' | 'server-data' | 'client-ack';
}

/**
 * A client sending `segments` full segments to a server over a lossy, reordering path, seen from
 * the router between them. The client stays inside the server's advertised window and resends
 * what the server's cumulative ACK and SACK blocks show missing; the server acks every second
 * in-order segment and at once on anything out of order, with SACK blocks for what it holds
 * above the cumulative ACK. Both sides send the aligned timestamp option on every segment.
 * After `run` is exhausted the numbers below describe where each side stands.
 */
export class BulkTransfer {
  /** Next new segment index the client sends, and the client's cumulative ACK from the server. */
  clientNext = 0;
  clientUna = 0;
  /** Server's next expected segment index and what it holds above it. */
  serverNext = 0;
  private readonly serverHeld = new Set<number>();
  /** Server's next data sequence number and how far the client has received it. */
  serverSeq: number;
  clientAckOfServer: number;
  /** Highest segment index the router has seen from the client, plus one. */
  routerSawUpTo = 0;
  private tsClient = 1000;
  private tsServer = 50000;
  private readonly random: () => number;
  private readonly sacked = new Set<number>();
  private readonly serverDataHeld = new Set<number>();
  private dupAcks = 0;

  constructor(
    readonly segments: TcpSegments,
    readonly options: BulkTransferOptions,
  ) {
    this.random = seededRandom(options.seed);
    this.serverSeq = options.serverData >>> 0;
    this.clientAckOfServer = options.serverData >>> 0;
  }

  seqOf(index: number): number {
    return (this.options.clientData + index * this.options.mss) >>> 0;
  }

  /** The client's next sequence number (after all data). */
  get clientSeq(): number {
    return this.seqOf(this.clientNext);
  }

  *run(): Generator<FlowStep> {
    const o = this.options;
    const windowSegments = Math.floor(o.serverWindow / o.mss);
    let round = 0;
    while (this.clientUna < o.segments) {
      round++;
      // What the client sends this round: holes first (fast retransmit or timeout), then new data.
      const send: { index: number; what: FlowStep['what'] }[] = [];
      const progressStalled = this.clientNext - this.clientUna >= windowSegments || this.clientNext === o.segments;
      for (let i = this.clientUna; i < this.clientNext && send.length < 8; i++) {
        const hole = !this.sacked.has(i) && (i < this.highestSacked() || (progressStalled && i === this.clientUna));
        if (hole && (this.dupAcks >= 3 || progressStalled || this.random() < 0.3)) send.push({ index: i, what: 'retransmission' });
      }
      const burst = 1 + Math.floor(this.random() * 16);
      for (let n = 0; n < burst && this.clientNext < o.segments && this.clientNext < this.clientUna + windowSegments; n++) {
        send.push({ index: this.clientNext++, what: 'data' });
      }
      if (this.clientUna > 0 && this.random() < o.spurious) {
        const index = Math.max(0, this.clientUna - 1 - Math.floor(this.random() * 4));
        send.push({ index, what: 'spurious' });
      }
      for (let i = 0; i + 1 < send.length; i++) {
        if (this.random() < o.reorder) [send[i], send[i + 1]] = [send[i + 1]!, send[i]!];
      }

      const serverAcks: FlowStep[] = [];
      let inOrderSinceAck = 0;
      for (const { index, what } of send) {
        if (this.random() < o.lossBefore) continue;
        yield { direction: 0, packet: this.clientSegment(index), what };
        this.routerSawUpTo = Math.max(this.routerSawUpTo, index + 1);
        if (this.random() < o.lossAfter) continue;
        const inOrder = index === this.serverNext;
        if (index >= this.serverNext) this.serverHeld.add(index);
        while (this.serverHeld.delete(this.serverNext)) this.serverNext++;
        if (inOrder && this.serverHeld.size === 0 && ++inOrderSinceAck < 2) continue;
        inOrderSinceAck = 0;
        serverAcks.push(this.serverAck(round));
      }
      if (inOrderSinceAck > 0 || serverAcks.length === 0) serverAcks.push(this.serverAck(round));
      for (let i = 0; i + 1 < serverAcks.length; i++) {
        if (this.random() < o.ackReorder) [serverAcks[i], serverAcks[i + 1]] = [serverAcks[i + 1]!, serverAcks[i]!];
      }
      for (const ack of serverAcks) {
        yield ack;
        this.clientReceives(ack.packet);
      }
      // Once all data is out, the client acknowledges with pure ACKs (before, its data does).
      if (this.clientNext === o.segments) yield { direction: 0, packet: this.clientPureAck(), what: 'client-ack' };
    }
  }

  private highestSacked(): number {
    let highest = -1;
    for (const index of this.sacked) if (index > highest) highest = index;
    return highest;
  }

  private clientSegment(index: number): L4Packet {
    const o = this.options;
    return this.segments.segment(0, {
      seq: this.seqOf(index),
      ack: this.clientAckOfServer,
      flags: TcpFlag.ACK | TcpFlag.PSH,
      window: o.clientWindow >>> o.windowScale,
      payloadLength: o.mss,
      options: tcpOptions({ timestamp: [this.tsClient++, this.tsServer] }),
    });
  }

  clientPureAck(): L4Packet {
    const o = this.options;
    return this.segments.segment(0, {
      seq: this.clientSeq,
      ack: this.clientAckOfServer,
      flags: TcpFlag.ACK,
      window: o.clientWindow >>> o.windowScale,
      options: tcpOptions({ timestamp: [this.tsClient++, this.tsServer] }),
    });
  }

  /** The server's ACK, with SACK blocks (highest first, at most 3) and now and then some data. */
  private serverAck(round: number): FlowStep {
    const o = this.options;
    const blocks: [number, number][] = [];
    const held = [...this.serverHeld].sort((a, b) => b - a);
    for (let i = 0; i < held.length && blocks.length < 3; ) {
      const top = held[i]!;
      let bottom = top;
      while (i + 1 < held.length && held[i + 1] === bottom - 1) bottom = held[++i]!;
      i++;
      blocks.push([this.seqOf(bottom), this.seqOf(top + 1)]);
    }
    const withData = round % o.serverDataEvery === 0 && blocks.length === 0;
    const packet = this.segments.segment(1, {
      seq: this.serverSeq,
      ack: this.seqOf(this.serverNext),
      flags: TcpFlag.ACK | (withData ? TcpFlag.PSH : 0),
      window: o.serverWindow >>> o.windowScale,
      payloadLength: withData ? SERVER_REPLY : 0,
      options: tcpOptions({ timestamp: [this.tsServer++, this.tsClient], sack: blocks }),
    });
    if (withData) this.serverSeq = (this.serverSeq + SERVER_REPLY) >>> 0;
    return { direction: 1, packet, what: withData ? 'server-data' : 'ack' };
  }

  /** The client reads the cumulative ACK and the SACK blocks of a server segment. */
  private clientReceives(packet: L4Packet): void {
    const { buf, l4Offset } = packet;
    const ack = buf.readUInt32BE(l4Offset + 8);
    const acked = Math.round(((ack - this.options.clientData) >>> 0) / this.options.mss);
    if (acked > this.clientUna) {
      this.clientUna = acked;
      this.dupAcks = 0;
      for (const index of this.sacked) if (index < acked) this.sacked.delete(index);
    } else if (acked === this.clientUna) {
      this.dupAcks++;
    }
    const headerLength = (buf[l4Offset + 12]! >>> 4) * 4;
    for (let i = l4Offset + 20; i < l4Offset + headerLength; ) {
      const kind = buf[i]!;
      if (kind === TcpOptionKind.NOP) {
        i++;
        continue;
      }
      if (kind === TcpOptionKind.END) break;
      const size = buf[i + 1]!;
      if (kind === TcpOptionKind.SACK) {
        for (let b = i + 2; b < i + size; b += 8) {
          const left = Math.round(((buf.readUInt32BE(b) - this.options.clientData) >>> 0) / this.options.mss);
          const right = Math.round(((buf.readUInt32BE(b + 4) - this.options.clientData) >>> 0) / this.options.mss);
          for (let index = left; index < right; index++) this.sacked.add(index);
        }
      }
      i += size;
    }
    // Server data (always SERVER_REPLY bytes) is reassembled: the path back loses nothing.
    if (packet.l4Length > headerLength) {
      this.serverDataHeld.add(buf.readUInt32BE(l4Offset + 4));
      while (this.serverDataHeld.delete(this.clientAckOfServer)) {
        this.clientAckOfServer = (this.clientAckOfServer + SERVER_REPLY) >>> 0;
      }
    }
  }
}
