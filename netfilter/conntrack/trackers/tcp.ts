/**
 * TCP connection tracking, after the kernel's nf_conntrack_proto_tcp.c.
 *
 * Two halves, as there:
 *  - a state machine driven by a transition table indexed by direction, the kind of segment
 *    (SYN, SYN-ACK, FIN, ACK, RST, none) and the current state, with the special cases
 *    nf_conntrack_tcp_packet layers on top (reopening, resynchronising on ignored SYNs,
 *    simultaneous open, RFC 5961 challenge ACKs, RST sequence checks);
 *  - window tracking (tcp_in_window, after Guido van Rooij's "Real Stateful TCP Packet Filtering
 *    in IP Filter"): per direction the highest sequence sent (end), the highest sequence the peer
 *    allowed (maxEnd), the largest window seen (maxWin) and the window scale, with four bounds:
 *      I.   seq <= sender.maxEnd
 *      II.  seq + len >= sender.end - receiver.maxWin
 *      III. sack <= receiver.end
 *      IV.  sack >= receiver.end - max(sender.maxWin, 66000)
 *    where sack is the highest SACK right edge when the receiver allowed SACK, else the ack.
 *
 * Per-connection state lives on the entry: `l4State` is the TcpState, `l4Data` a
 * TcpConnectionState. All sequence arithmetic is modulo 2^32 (RFC 9293 section 3.4).
 *
 * Conventions towards the core:
 *  - `packet` runs for every tracked segment, the first one included (after `newConnection`),
 *    and the core sets SEEN_REPLY only after `packet` accepted a reply, as nf_conntrack_in does:
 *    the tracker must see the first reply as "no reply seen yet".
 *  - An RST before any reply kills the entry at once (nf_ct_kill_acct): the tracker puts it in
 *    CLOSE and returns KILL without refreshing the timeout, so its DESTROY shows what was left of
 *    SYN_SENT's (`[DESTROY] tcp 6 120 CLOSE`, as the kernel prints it).
 *  - RECREATE asks the core to kill the entry and track the segment afresh (-NF_REPEAT).
 */
import { readU32 } from '../../../router/wire/bytes.ts';
import { ipv4Dst, ipv4Src, IPV4_MIN_HEADER_LENGTH } from '../../../router/wire/ipv4.ts';
import {
  TCP_MIN_HEADER_LENGTH,
  TcpFlag,
  TcpOptionKind,
  TcpProblem,
  tcpAck,
  tcpChecksumValid,
  tcpDstPort,
  tcpFlags,
  tcpHeaderLength,
  tcpSeq,
  tcpSrcPort,
  tcpWindow,
  validateTcp,
} from '../../../router/wire/tcp.ts';
import type { Conntrack } from '../conntrack-entry.ts';
import { TrackVerdict, type L4Packet, type L4Tracker } from '../l4-tracker.ts';
import { CtEvent, Status } from '../status.ts';
import type { Tuple } from '../tuple.ts';
import type { TcpTimeouts } from './timeouts.ts';

const PROTOCOL_TCP = 6;

/** enum tcp_conntrack, in the kernel's order (the CTA_PROTOINFO_TCP_STATE numbers). */
export const TcpState = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
  SYN_SENT2: 9,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

/** As conntrack -L prints them. */
export const TCP_STATE_NAMES: readonly string[] = [
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
];

/** Table results beyond the states: the segment is invalid, or passes without a state change. */
const S_INVALID = 10;
const S_IGNORE = 11;
const STATE_COUNT = 10;

/** Segment kinds (enum tcp_bit_set), the table's middle index. */
const SYN_SET = 0;
const SYNACK_SET = 1;
const FIN_SET = 2;
const ACK_SET = 3;
const RST_SET = 4;
const NONE_SET = 5;

/** Per-direction flags (IP_CT_TCP_FLAG_*, with the uapi values; the last two live in lastFlags). */
export const TcpPeerFlag = {
  WINDOW_SCALE: 0x01,
  SACK_PERM: 0x02,
  CLOSE_INIT: 0x04,
  BE_LIBERAL: 0x08,
  DATA_UNACKNOWLEDGED: 0x10,
  MAXACK_SET: 0x20,
  EXP_CHALLENGE_ACK: 0x40,
  SIMULTANEOUS_OPEN: 0x80,
} as const;

/** RFC 7323 section 2.3: larger shifts are treated as 14. */
const MAX_WINDOW_SCALE = 14;
/** The floor of bound IV (the kernel's MAXACKWINCONST). */
const MAX_ACK_WINDOW_FLOOR = 66000;
/** nf_tcp_handle_invalid leaves alone a connection that expires sooner than this anyway. */
const INVALID_SHRINK_FLOOR_MS = 120_000;

// The transition table (tcp_conntracks), one row per segment kind, one column per current state
// in TcpState order. SS SR ES FW CW LA TW CL S2 are states, IV invalid, IG ignored.
//                      NO SS SR ES FW CW LA TW CL S2
const ORIGINAL_ROWS = [
  /* SYN     */ 'SS SS IG IG IG IG IG SS SS S2',
  /* SYN-ACK */ 'IV IV SR IV IV IV IV IV IV SR',
  /* FIN     */ 'IV IV FW FW LA LA LA TW CL IV',
  /* ACK     */ 'ES IV ES ES CW CW TW TW CL IV',
  /* RST     */ 'IV CL CL CL CL CL CL CL CL CL',
  /* none    */ 'IV IV IV IV IV IV IV IV IV IV',
];
const REPLY_ROWS = [
  /* SYN     */ 'IV S2 IV IV IV IV IV SS IV S2',
  /* SYN-ACK */ 'IV SR IG IG IG IG IG IG IG SR',
  /* FIN     */ 'IV IV FW FW LA LA LA TW CL IV',
  /* ACK     */ 'IV IG SR ES CW CW TW TW CL IG',
  /* RST     */ 'IV CL CL CL CL CL CL CL CL CL',
  /* none    */ 'IV IV IV IV IV IV IV IV IV IV',
];

const CELL: Readonly<Record<string, number>> = {
  NO: TcpState.NONE,
  SS: TcpState.SYN_SENT,
  SR: TcpState.SYN_RECV,
  ES: TcpState.ESTABLISHED,
  FW: TcpState.FIN_WAIT,
  CW: TcpState.CLOSE_WAIT,
  LA: TcpState.LAST_ACK,
  TW: TcpState.TIME_WAIT,
  CL: TcpState.CLOSE,
  S2: TcpState.SYN_SENT2,
  IV: S_INVALID,
  IG: S_IGNORE,
};

/** [direction][kind][state] flattened: index direction * 60 + kind * 10 + state. */
const TRANSITIONS = Uint8Array.from(
  [...ORIGINAL_ROWS, ...REPLY_ROWS].flatMap((row) => row.split(' ').map((cell) => CELL[cell])),
);

function transition(direction: 0 | 1, kind: number, state: number): number {
  return TRANSITIONS[direction * 60 + kind * STATE_COUNT + state];
}

/** get_conntrack_index: RST first, then SYN (with or without ACK), FIN, ACK. */
function segmentKind(flags: number): number {
  if (flags & TcpFlag.RST) return RST_SET;
  if (flags & TcpFlag.SYN) return flags & TcpFlag.ACK ? SYNACK_SET : SYN_SET;
  if (flags & TcpFlag.FIN) return FIN_SET;
  if (flags & TcpFlag.ACK) return ACK_SET;
  return NONE_SET;
}

/** tcp_valid_flags: the combinations of FIN/SYN/RST/ACK/URG that tcp_error lets through. */
const VALID_FLAGS = new Uint8Array(0x40);
for (const combination of [
  TcpFlag.SYN,
  TcpFlag.SYN | TcpFlag.URG,
  TcpFlag.SYN | TcpFlag.ACK,
  TcpFlag.RST,
  TcpFlag.RST | TcpFlag.ACK,
  TcpFlag.FIN | TcpFlag.ACK,
  TcpFlag.FIN | TcpFlag.ACK | TcpFlag.URG,
  TcpFlag.ACK,
  TcpFlag.ACK | TcpFlag.URG,
]) {
  VALID_FLAGS[combination] = 1;
}
/** PSH, ECE and CWR never make a combination invalid. */
const FLAGS_IGNORED_BY_VALIDATION = TcpFlag.PSH | TcpFlag.ECE | TcpFlag.CWR;

/** RFC 1982 serial comparison on 32-bit sequence numbers (the kernel's before/after). */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** What one direction of the connection has shown (struct ip_ct_tcp_state). */
export class TcpPeerState {
  /** Highest sequence number sent, plus one (SYN and FIN count). */
  end = 0;
  /** Highest sequence number the other side's acks and windows allow. */
  maxEnd = 0;
  /** Largest (scaled) window advertised, at least 1 once the direction is initialised. */
  maxWin = 0;
  /** Highest ack this direction sent (valid once MAXACK_SET). */
  maxAck = 0;
  /** Window scale from this direction's SYN. */
  scale = 0;
  /** TcpPeerFlag bits. */
  flags = 0;

  /** nf_ct_tcp_state_reset: forget the numbers, keep only "be liberal". */
  reset(): void {
    this.end = 0;
    this.maxEnd = 0;
    this.maxWin = 0;
    this.maxAck = 0;
    this.scale = 0;
    this.flags &= TcpPeerFlag.BE_LIBERAL;
  }
}

/** The connection's TCP state beyond the state index (struct ip_ct_tcp), kept in `entry.l4Data`. */
export class TcpConnectionState {
  /** Indexed by direction: [ORIGINAL, REPLY]. */
  readonly seen: [TcpPeerState, TcpPeerState] = [new TcpPeerState(), new TcpPeerState()];
  /** The last segment that changed state or was ignored: its direction, kind and numbers. */
  lastDir: 0 | 1 = 0;
  lastIndex = NONE_SET;
  lastSeq = 0;
  lastAck = 0;
  lastEnd = 0;
  lastWin = 0;
  lastWscale = 0;
  /** WINDOW_SCALE / SACK_PERM of an ignored SYN, EXP_CHALLENGE_ACK, SIMULTANEOUS_OPEN. */
  lastFlags = 0;
  /** Identical ACK-kind segments in a row (retransmissions). */
  retrans = 0;
}

export function tcpConnectionOf(entry: Conntrack): TcpConnectionState | null {
  return entry.l4Data instanceof TcpConnectionState ? entry.l4Data : null;
}

/**
 * Window scale and SACK-permitted from the options (tcp_options), packed as flags | scale << 8,
 * or -1 for a header without options, which leaves the direction's previous values in place.
 * Parsing stops at END, at a malformed length or at an option running past the header.
 */
function synOptions(buf: Uint8Array, off: number, headerLength: number): number {
  let remaining = headerLength - TCP_MIN_HEADER_LENGTH;
  if (remaining <= 0) return -1;
  let i = off + TCP_MIN_HEADER_LENGTH;
  let flags = 0;
  let scale = 0;
  while (remaining > 0) {
    const kind = buf[i++];
    if (kind === TcpOptionKind.END) break;
    if (kind === TcpOptionKind.NOP) {
      remaining--;
      continue;
    }
    if (remaining < 2) break;
    const size = buf[i++];
    if (size < 2 || size > remaining) break;
    if (kind === TcpOptionKind.SACK_PERMITTED && size === 2) {
      flags |= TcpPeerFlag.SACK_PERM;
    } else if (kind === TcpOptionKind.WINDOW_SCALE && size === 3) {
      scale = Math.min(buf[i], MAX_WINDOW_SCALE);
      flags |= TcpPeerFlag.WINDOW_SCALE;
    }
    i += size - 2;
    remaining -= size;
  }
  return flags | (scale << 8);
}

/** tcp_options: a SYN's options replace the direction's scale and flags ("be liberal" stays). */
function applySynOptions(peer: TcpPeerState, buf: Uint8Array, off: number, headerLength: number): void {
  const options = synOptions(buf, off, headerLength);
  if (options < 0) return;
  peer.scale = options >>> 8;
  peer.flags = (peer.flags & TcpPeerFlag.BE_LIBERAL) | (options & 0xff);
}

/**
 * tcp_sack: the highest right edge in the first well-formed SACK option if it lies after `ack`,
 * else `ack`. A header holding only the aligned timestamp option (Linux's usual data segment)
 * is skipped without parsing.
 */
function highestSack(buf: Uint8Array, off: number, headerLength: number, ack: number): number {
  let remaining = headerLength - TCP_MIN_HEADER_LENGTH;
  let i = off + TCP_MIN_HEADER_LENGTH;
  if (
    remaining === 12 &&
    buf[i] === TcpOptionKind.NOP &&
    buf[i + 1] === TcpOptionKind.NOP &&
    buf[i + 2] === TcpOptionKind.TIMESTAMP &&
    buf[i + 3] === 10
  ) {
    return ack;
  }
  let sack = ack;
  while (remaining > 0) {
    const kind = buf[i++];
    if (kind === TcpOptionKind.END) return sack;
    if (kind === TcpOptionKind.NOP) {
      remaining--;
      continue;
    }
    if (remaining < 2) return sack;
    const size = buf[i++];
    if (size < 2 || size > remaining) return sack;
    if (kind === TcpOptionKind.SACK && size >= 10 && (size - 2) % 8 === 0) {
      for (let block = 0; block < size - 2; block += 8) {
        const rightEdge = readU32(buf, i + block + 4);
        if (after(rightEdge, sack)) sack = rightEdge;
      }
      return sack;
    }
    i += size - 2;
    remaining -= size;
  }
  return sack;
}

/**
 * tcp_init_sender: a SYN (or SYN-ACK) starts the direction's numbers. Window scaling is on only
 * if both SYNs asked for it (RFC 7323 section 1.3), which is known at the reply's SYN.
 */
function initSender(
  sender: TcpPeerState,
  receiver: TcpPeerState,
  buf: Uint8Array,
  off: number,
  headerLength: number,
  end: number,
  window: number,
  direction: 0 | 1,
): void {
  sender.end = end;
  sender.maxEnd = end;
  sender.maxWin = window === 0 ? 1 : window;
  applySynOptions(sender, buf, off, headerLength);
  if (
    direction === 1 &&
    !(sender.flags & TcpPeerFlag.WINDOW_SCALE && receiver.flags & TcpPeerFlag.WINDOW_SCALE)
  ) {
    sender.scale = 0;
    receiver.scale = 0;
  }
}

/** tcp_can_early_drop: the closing states, where an RST needs no sequence checks. */
function isClosing(state: number): boolean {
  return (
    state === TcpState.FIN_WAIT ||
    state === TcpState.CLOSE_WAIT ||
    state === TcpState.LAST_ACK ||
    state === TcpState.TIME_WAIT ||
    state === TcpState.CLOSE
  );
}

/** tcp_in_window's answers (enum nf_ct_tcp_action). */
const WINDOW_ACCEPT = 0;
/** Let the segment pass without touching the state or the timeout. */
const WINDOW_IGNORE = 1;
const WINDOW_INVALID = 2;

/** What the RST checks decide for a segment the table sends to CLOSE. */
const RST_CHECK_WINDOW = 0;
const RST_SKIP_WINDOW = 1;
/** In window, but the sequence number is not the exact one: keep the state (RFC 5961 3.2). */
const RST_KEEP_STATE = 2;
const RST_INVALID = 3;

export interface TcpTrackerOptions {
  /** nf_conntrack_tcp_loose: pick up connections in the middle (default true). */
  loose: boolean;
  /** nf_conntrack_tcp_be_liberal: out-of-window segments are not INVALID (default false). */
  liberal: boolean;
  /** nf_conntrack_tcp_max_retrans: retransmissions before the RETRANS cap (default 3). */
  maxRetrans: number;
  /** nf_conntrack_tcp_ignore_invalid_rst: skip the RST sequence check (default false). */
  ignoreInvalidRst: boolean;
  /**
   * nf_ct_seq_offset: how far sequence adjustment (NAT helpers that change payload length) has
   * moved sequence numbers of `direction` at `seq`; acks are taken back by it before the window
   * checks. Null while nothing adjusts sequences.
   */
  seqOffset: ((entry: Conntrack, direction: 0 | 1, seq: number) => number) | null;
}

export const DEFAULT_TCP_TRACKER_OPTIONS: Readonly<TcpTrackerOptions> = Object.freeze({
  loose: true,
  liberal: false,
  maxRetrans: 3,
  ignoreInvalidRst: false,
  seqOffset: null,
});

export class TcpTracker implements L4Tracker {
  readonly protocol = PROTOCOL_TCP;
  readonly name = 'tcp';
  readonly sumsChecksum = true;
  private readonly options: TcpTrackerOptions;
  /** Seconds per TcpState, then RETRANS and UNACK. */
  private readonly stateTimeouts: readonly number[];
  private readonly retransTimeout: number;
  private readonly unackTimeout: number;

  constructor(timeouts: TcpTimeouts, options: Partial<TcpTrackerOptions> = {}) {
    this.options = { ...DEFAULT_TCP_TRACKER_OPTIONS, ...options };
    this.stateTimeouts = [
      timeouts.synSent, // NONE: the kernel keeps SYN_SENT's value there
      timeouts.synSent,
      timeouts.synRecv,
      timeouts.established,
      timeouts.finWait,
      timeouts.closeWait,
      timeouts.lastAck,
      timeouts.timeWait,
      timeouts.close,
      timeouts.synSent2,
    ];
    this.retransTimeout = timeouts.retrans;
    this.unackTimeout = timeouts.unacknowledged;
  }

  /** tcp_error. */
  validate(packet: L4Packet, checkChecksum: boolean): boolean {
    const { buf, l4Offset: off } = packet;
    const length = Math.min(packet.l4Length, buf.length - off);
    if (!(off >= 0) || validateTcp(buf, off, length) !== TcpProblem.OK) return false;
    if (checkChecksum) {
      if (off < IPV4_MIN_HEADER_LENGTH) return false;
      if (!tcpChecksumValid(buf, off, length, ipv4Src(buf, 0), ipv4Dst(buf, 0))) return false;
    }
    return VALID_FLAGS[tcpFlags(buf, off) & ~FLAGS_IGNORED_BY_VALIDATION] === 1;
  }

  /** Only the ports, the first 4 bytes (nf_ct_get_tuple_ports), so a quoted header is enough. */
  readTuple(packet: L4Packet, tuple: Tuple): boolean {
    const { buf, l4Offset: off } = packet;
    if (!(off >= 0) || Math.min(packet.l4Length, buf.length - off) < 4) return false;
    tuple.srcPort = tcpSrcPort(buf, off);
    tuple.dstPort = tcpDstPort(buf, off);
    return true;
  }

  invertTuple(original: Tuple, reply: Tuple): boolean {
    reply.srcPort = original.dstPort;
    reply.dstPort = original.srcPort;
    return true;
  }

  /**
   * tcp_new: a SYN opens SYN_SENT-to-be with the original direction's numbers; with `loose`, a
   * plain ACK segment is picked up mid-stream with SACK assumed and liberal window checks in
   * both directions, since its window scale cannot be known. Anything else is refused.
   */
  newConnection(entry: Conntrack, packet: L4Packet, _now: number): boolean {
    const { buf, l4Offset: off } = packet;
    const length = Math.min(packet.l4Length, buf.length - off);
    if (!(off >= 0) || validateTcp(buf, off, length) !== TcpProblem.OK) return false;
    const flags = tcpFlags(buf, off);
    const next = transition(0, segmentKind(flags), TcpState.NONE);
    if (next >= STATE_COUNT) return false;
    if (next !== TcpState.SYN_SENT && !this.options.loose) return false;
    const headerLength = tcpHeaderLength(buf, off);
    const state = new TcpConnectionState();
    const original = state.seen[0];
    original.end = segmentEnd(tcpSeq(buf, off), length, headerLength, flags);
    const window = tcpWindow(buf, off);
    original.maxWin = window === 0 ? 1 : window;
    if (next === TcpState.SYN_SENT) {
      original.maxEnd = original.end;
      applySynOptions(original, buf, off, headerLength);
    } else {
      original.maxEnd = (original.end + original.maxWin) >>> 0;
      original.flags = TcpPeerFlag.SACK_PERM | TcpPeerFlag.BE_LIBERAL;
      state.seen[1].flags = TcpPeerFlag.SACK_PERM | TcpPeerFlag.BE_LIBERAL;
    }
    entry.l4State = TcpState.NONE;
    entry.l4Data = state;
    return true;
  }

  /** nf_conntrack_tcp_packet. */
  packet(entry: Conntrack, packet: L4Packet, direction: 0 | 1, now: number): TrackVerdict {
    const conn = tcpConnectionOf(entry);
    const { buf, l4Offset: off } = packet;
    const length = Math.min(packet.l4Length, buf.length - off);
    if (conn === null || !(off >= 0) || validateTcp(buf, off, length) !== TcpProblem.OK) {
      return TrackVerdict.INVALID;
    }
    let old = entry.l4State;
    if (!(old >= 0 && old < STATE_COUNT)) return TrackVerdict.INVALID;
    const dir = direction;
    const headerLength = tcpHeaderLength(buf, off);
    const flags = tcpFlags(buf, off);
    const seq = tcpSeq(buf, off);
    const ackField = tcpAck(buf, off);
    const window = tcpWindow(buf, off);
    const end = segmentEnd(seq, length, headerLength, flags);
    const index = segmentKind(flags);
    let next = transition(dir, index, old);

    // A SYN on a connection that closed (TIME_WAIT after a FIN, or CLOSE after an RST from the
    // same side) reopens it (RFC 1122 4.2.2.13); otherwise it is only let through.
    if (next === TcpState.SYN_SENT && old >= TcpState.TIME_WAIT) {
      if (
        (conn.seen[dir].flags | conn.seen[1 - dir].flags) & TcpPeerFlag.CLOSE_INIT ||
        (conn.lastDir === dir && conn.lastIndex === RST_SET)
      ) {
        return TrackVerdict.RECREATE;
      }
      next = S_IGNORE;
    }

    let checkWindow = true;
    switch (next) {
      case S_IGNORE:
        // A SYN-ACK answering a SYN we let through: the endpoints are in sync and we are not, so
        // take the numbers noted from that SYN and restart the handshake from them.
        if (
          index === SYNACK_SET &&
          conn.lastIndex === SYN_SET &&
          conn.lastDir !== dir &&
          ackField === conn.lastEnd
        ) {
          const synSender = conn.seen[conn.lastDir];
          synSender.end = conn.lastEnd;
          synSender.maxEnd = conn.lastEnd;
          synSender.maxWin = conn.lastWin === 0 ? 1 : conn.lastWin;
          synSender.scale = conn.lastWscale;
          conn.lastFlags &= ~TcpPeerFlag.EXP_CHALLENGE_ACK;
          synSender.flags = conn.lastFlags;
          conn.seen[dir].reset();
          old = TcpState.SYN_SENT;
          next = TcpState.SYN_RECV;
          break;
        }
        this.noteIgnored(conn, dir, index, old, buf, off, headerLength, seq, ackField, end, window);
        return TrackVerdict.ACCEPT;
      case S_INVALID:
        return TrackVerdict.INVALID;
      case TcpState.TIME_WAIT:
        // RFC 5961 4.2: the ACK a stack sends back to a SYN it got in LAST_ACK does not ack the FIN.
        if (
          old === TcpState.LAST_ACK &&
          index === ACK_SET &&
          conn.lastDir !== dir &&
          conn.lastIndex === SYN_SET &&
          conn.lastFlags & TcpPeerFlag.EXP_CHALLENGE_ACK
        ) {
          conn.lastFlags &= ~TcpPeerFlag.EXP_CHALLENGE_ACK;
          return TrackVerdict.ACCEPT;
        }
        break;
      case TcpState.SYN_SENT2:
        // The table cannot tell a simultaneous open's final ACK from a late one: remember it.
        conn.lastFlags |= TcpPeerFlag.SIMULTANEOUS_OPEN;
        break;
      case TcpState.SYN_RECV:
        if (dir === 1 && index === ACK_SET && conn.lastFlags & TcpPeerFlag.SIMULTANEOUS_OPEN) {
          next = TcpState.ESTABLISHED;
        }
        break;
      case TcpState.CLOSE:
        if (index !== RST_SET) break;
        switch (this.checkRst(entry, conn, dir, old, seq, ackField)) {
          case RST_INVALID:
            return TrackVerdict.INVALID;
          case RST_SKIP_WINDOW:
            checkWindow = false;
            break;
          case RST_KEEP_STATE:
            next = old;
            break;
          default:
            break;
        }
        break;
      default:
        break;
    }

    if (checkWindow) {
      const result = this.inWindow(entry, conn, dir, index, buf, off, headerLength, flags, seq, ackField, window, end);
      if (result === WINDOW_IGNORE) return TrackVerdict.ACCEPT;
      if (result === WINDOW_INVALID) {
        this.shrinkOnInvalid(entry, conn, dir, index, now);
        return TrackVerdict.INVALID;
      }
    }

    conn.lastIndex = index;
    conn.lastDir = dir;
    entry.l4State = next;
    if (old !== next && next === TcpState.FIN_WAIT) conn.seen[dir].flags |= TcpPeerFlag.CLOSE_INIT;

    const stateTimeout = this.stateTimeouts[next];
    let timeout: number;
    if (conn.retrans >= this.options.maxRetrans && stateTimeout > this.retransTimeout) {
      timeout = this.retransTimeout;
    } else if (index === RST_SET) {
      timeout = this.stateTimeouts[TcpState.CLOSE];
    } else if (
      (conn.seen[0].flags | conn.seen[1].flags) & TcpPeerFlag.DATA_UNACKNOWLEDGED &&
      stateTimeout > this.unackTimeout
    ) {
      timeout = this.unackTimeout;
    } else if (conn.lastWin === 0 && stateTimeout > this.retransTimeout) {
      timeout = this.retransTimeout;
    } else {
      timeout = stateTimeout;
    }

    if (next !== old) entry.events |= CtEvent.PROTOINFO;

    if (!(entry.status & Status.SEEN_REPLY)) {
      // Only an RST came back (or the opener gave up): nothing was established, drop it now.
      if (flags & TcpFlag.RST) return TrackVerdict.KILL;
      // A retransmitted SYN does not extend the entry, or a client (or a NAT in front of it)
      // reusing the port would keep it alive for ever.
      if (index === SYN_SET && old === TcpState.SYN_SENT) return TrackVerdict.ACCEPT;
      // Picked up mid-stream and never answered: no five-day ESTABLISHED timeout.
      if (next === TcpState.ESTABLISHED && timeout > this.unackTimeout) timeout = this.unackTimeout;
    } else if (
      !(entry.status & Status.ASSURED) &&
      (old === TcpState.SYN_RECV || old === TcpState.ESTABLISHED) &&
      next === TcpState.ESTABLISHED
    ) {
      // The handshake's last ACK, or a picked-up connection's first answer after its reply.
      entry.status |= Status.ASSURED;
      entry.events |= CtEvent.ASSURED;
    }
    if (!(entry.status & Status.FIXED_TIMEOUT)) entry.timeout = now + timeout * 1000;
    return TrackVerdict.ACCEPT;
  }

  /** tcp_can_early_drop: a closing connection may go for room even once ASSURED. */
  canEarlyDrop(entry: Conntrack): boolean {
    return isClosing(entry.l4State);
  }

  stateName(entry: Conntrack): string {
    return TCP_STATE_NAMES[entry.l4State] ?? '';
  }

  formatTupleFields(tuple: Tuple): string {
    return `sport=${tuple.srcPort} dport=${tuple.dstPort} `;
  }

  /**
   * Remembers an ignored segment, so that an answer to it can be recognised: a SYN-ACK acking it
   * (resynchronise), an RST acking it (close), a challenge ACK after it.
   */
  private noteIgnored(
    conn: TcpConnectionState,
    dir: 0 | 1,
    index: number,
    old: number,
    buf: Uint8Array,
    off: number,
    headerLength: number,
    seq: number,
    ackField: number,
    end: number,
    window: number,
  ): void {
    conn.lastIndex = index;
    conn.lastDir = dir;
    conn.lastSeq = seq;
    conn.lastEnd = end;
    conn.lastWin = window;
    if (index === SYN_SET && dir === 0) {
      conn.lastFlags = 0;
      conn.lastWscale = 0;
      const options = synOptions(buf, off, headerLength);
      if (options > 0) {
        if (options & TcpPeerFlag.WINDOW_SCALE) {
          conn.lastFlags |= TcpPeerFlag.WINDOW_SCALE;
          conn.lastWscale = options >>> 8;
        }
        if (options & TcpPeerFlag.SACK_PERM) conn.lastFlags |= TcpPeerFlag.SACK_PERM;
      }
      // A peer in LAST_ACK may answer this SYN with a challenge ACK (RFC 5961 4.2).
      if (old === TcpState.LAST_ACK) conn.lastFlags |= TcpPeerFlag.EXP_CHALLENGE_ACK;
    }
    // A reply ACK in SYN_SENT may be a challenge ACK; an RST that follows would carry its ack.
    if (old === TcpState.SYN_SENT && index === ACK_SET && dir === 1) conn.lastAck = ackField;
  }

  /** The RST checks of nf_conntrack_tcp_packet (RFC 5961 section 3.2 on top of the window). */
  private checkRst(
    entry: Conntrack,
    conn: TcpConnectionState,
    dir: 0 | 1,
    old: number,
    seq: number,
    ackField: number,
  ): number {
    // Closing: the tuple may already be reused, the numbers are stale.
    if (isClosing(old)) return RST_SKIP_WINDOW;
    const peer = conn.seen[1 - dir];
    if (peer.flags & TcpPeerFlag.MAXACK_SET && conn.lastIndex !== SYN_SET) {
      const established = old === TcpState.ESTABLISHED && (entry.status & Status.ASSURED) !== 0;
      // Most likely the answer to a SYN we let through.
      if (seq === 0 && !established) return RST_CHECK_WINDOW;
      if (before(seq, peer.maxAck) && !this.options.ignoreInvalidRst) return RST_INVALID;
      if (!established || seq === peer.maxAck) return RST_CHECK_WINDOW;
      // An RST right after this side's last data ("train": data, then RST at its end).
      if (conn.lastIndex === ACK_SET && conn.lastDir === dir && seq === conn.lastEnd) return RST_CHECK_WINDOW;
      return RST_KEEP_STATE;
    }
    // An RST answering a SYN or ACK we let through unchecked: it may ack what we never tracked.
    if (
      ((entry.status & Status.SEEN_REPLY && conn.lastIndex === SYN_SET) ||
        (!(entry.status & Status.ASSURED) && conn.lastIndex === ACK_SET)) &&
      ackField === conn.lastEnd
    ) {
      return RST_SKIP_WINDOW;
    }
    // An RST answering a challenge ACK we let through in SYN_SENT.
    if (old === TcpState.SYN_SENT && conn.lastIndex === ACK_SET && conn.lastDir === 1 && seq === conn.lastAck) {
      return RST_SKIP_WINDOW;
    }
    return RST_CHECK_WINDOW;
  }

  /** tcp_in_window: checks bounds I-IV and advances both directions' numbers. */
  private inWindow(
    entry: Conntrack,
    conn: TcpConnectionState,
    dir: 0 | 1,
    index: number,
    buf: Uint8Array,
    off: number,
    headerLength: number,
    flags: number,
    seqField: number,
    ackField: number,
    windowField: number,
    segmentEndSeq: number,
  ): number {
    const sender = conn.seen[dir];
    const receiver = conn.seen[1 - dir];
    const syn = (flags & TcpFlag.SYN) !== 0;
    const hasAck = (flags & TcpFlag.ACK) !== 0;
    let seq = seqField;
    let end = segmentEndSeq;
    let ack = ackField;
    let sack = receiver.flags & TcpPeerFlag.SACK_PERM ? highestSack(buf, off, headerLength, ack) : ack;
    let win = windowField;

    const seqOffset = this.options.seqOffset;
    if (seqOffset !== null) {
      const offset = seqOffset(entry, (1 - dir) as 0 | 1, (ack - 1) >>> 0);
      ack = (ack - offset) >>> 0;
      sack = (sack - offset) >>> 0;
    }

    if (sender.maxWin === 0) {
      if (syn) {
        initSender(sender, receiver, buf, off, headerLength, end, win, dir);
        // Simultaneous open: a SYN without ACK from the reply side has nothing to check yet.
        if (!hasAck) return WINDOW_ACCEPT;
      } else {
        // The first segment of a direction we never saw start: take its numbers as they are.
        sender.end = end;
        const scaled = win << sender.scale;
        sender.maxWin = scaled === 0 ? 1 : scaled;
        sender.maxEnd = (end + sender.maxWin) >>> 0;
        if (receiver.maxWin === 0) {
          // Nothing seen the other way either: make bounds III and IV pass until it is.
          receiver.end = sack;
          receiver.maxEnd = sack;
        } else if (sack === ((receiver.end + 1) >>> 0)) {
          // Likely the answer to a keepalive probe, which sits one byte before the window.
          receiver.end = (receiver.end + 1) >>> 0;
        }
      }
    } else if (
      syn &&
      after(end, sender.end) &&
      (entry.l4State === TcpState.SYN_SENT || entry.l4State === TcpState.SYN_RECV)
    ) {
      // A SYN (or SYN-ACK) with a higher sequence number restarts the direction (RFC 793 3.3
      // on reinitialised TCPs): its options may differ too.
      initSender(sender, receiver, buf, off, headerLength, end, win, dir);
      if (dir === 1 && !hasAck) return WINDOW_ACCEPT;
    }

    if (!hasAck || ((flags & TcpFlag.RST) !== 0 && ack === 0)) {
      // No ack to check (or a broken stack's RST with ACK set and ack 0): assume the right one.
      ack = receiver.end;
      sack = receiver.end;
    }

    // An RST answering a SYN often has sequence 0.
    if (flags & TcpFlag.RST && seq === 0 && entry.l4State === TcpState.SYN_SENT) {
      seq = sender.end;
      end = sender.end;
    }

    const maxAckWindow = Math.max(sender.maxWin, MAX_ACK_WINDOW_FLOOR);
    if (!before(seq, (sender.maxEnd + 1) >>> 0)) {
      // Bound I failed. Some stacks send a little more than the window allows: if everything else
      // holds and the excess fits the receiver's window, note the data so its ack will pass.
      const overshoot = (end - sender.maxEnd + 1) >>> 0;
      const ackAboveFloor = after(sack, (receiver.end - maxAckWindow - 1) >>> 0);
      const inReceiveWindow = receiver.maxWin !== 0 && after(end, (sender.end - receiver.maxWin - 1) >>> 0);
      if (inReceiveWindow && ackAboveFloor && overshoot <= receiver.maxWin && before(sack, (receiver.end + 1) >>> 0)) {
        sender.end = end;
        sender.flags |= TcpPeerFlag.DATA_UNACKNOWLEDGED;
        return this.outOfWindow(sender, WINDOW_IGNORE);
      }
      return this.outOfWindow(sender, WINDOW_INVALID);
    }
    // Bound III: acks data not seen yet.
    if (!before(sack, (receiver.end + 1) >>> 0)) return this.outOfWindow(sender, WINDOW_INVALID);
    // Bound II: already acknowledged data sent again.
    if (receiver.maxWin !== 0 && !after(end, (sender.end - receiver.maxWin - 1) >>> 0)) {
      return this.outOfWindow(sender, WINDOW_IGNORE);
    }
    // Bound IV: an ack from long ago.
    if (!after(sack, (receiver.end - maxAckWindow - 1) >>> 0)) return this.outOfWindow(sender, WINDOW_IGNORE);

    // RFC 7323 2.3: the window field of a SYN is never scaled.
    if (!syn) win = (win << sender.scale) >>> 0;

    const effectiveWindow = (win + ((sack - ack) >>> 0)) >>> 0;
    if (sender.maxWin < effectiveWindow) sender.maxWin = effectiveWindow;
    if (after(end, sender.end)) {
      sender.end = end;
      sender.flags |= TcpPeerFlag.DATA_UNACKNOWLEDGED;
    }
    if (hasAck) {
      if (!(sender.flags & TcpPeerFlag.MAXACK_SET)) {
        sender.maxAck = ack;
        sender.flags |= TcpPeerFlag.MAXACK_SET;
      } else if (after(ack, sender.maxAck)) {
        sender.maxAck = ack;
      }
    }

    if (receiver.maxWin !== 0 && after(end, sender.maxEnd)) {
      receiver.maxWin = (receiver.maxWin + ((end - sender.maxEnd) >>> 0)) >>> 0;
    }
    if (after((sack + win) >>> 0, (receiver.maxEnd - 1) >>> 0)) {
      receiver.maxEnd = (sack + win) >>> 0;
      // A zero window still lets the one-byte window probe in.
      if (win === 0) receiver.maxEnd = (receiver.maxEnd + 1) >>> 0;
    }
    if (ack === receiver.end) receiver.flags &= ~TcpPeerFlag.DATA_UNACKNOWLEDGED;

    if (index === ACK_SET) {
      if (
        conn.lastDir === dir &&
        conn.lastSeq === seq &&
        conn.lastAck === ack &&
        conn.lastEnd === end &&
        conn.lastWin === windowField
      ) {
        conn.retrans++;
      } else {
        conn.lastDir = dir;
        conn.lastSeq = seq;
        conn.lastAck = ack;
        conn.lastEnd = end;
        conn.lastWin = windowField;
        conn.retrans = 0;
      }
    }
    return WINDOW_ACCEPT;
  }

  /** nf_tcp_log_invalid: with "be liberal" (global or picked up) nothing is out of window. */
  private outOfWindow(sender: TcpPeerState, result: number): number {
    return this.options.liberal || sender.flags & TcpPeerFlag.BE_LIBERAL ? WINDOW_ACCEPT : result;
  }

  /**
   * nf_tcp_handle_invalid: an out-of-window FIN or RST on an assured connection answering one
   * from the other side means the endpoints are gone while we are out of sync: do not keep the
   * entry for days, shrink its timeout to UNACK.
   */
  private shrinkOnInvalid(entry: Conntrack, conn: TcpConnectionState, dir: 0 | 1, index: number, now: number): void {
    if (!(entry.status & Status.ASSURED) || entry.status & Status.FIXED_TIMEOUT) return;
    if (index !== RST_SET && index !== FIN_SET) return;
    if (conn.lastDir !== dir && (conn.lastIndex === FIN_SET || conn.lastIndex === RST_SET)) {
      const remaining = entry.timeout - now;
      if (remaining < INVALID_SHRINK_FLOOR_MS) return;
      const unack = this.unackTimeout * 1000;
      if (remaining > unack) entry.timeout = now + unack;
    } else {
      conn.lastIndex = index;
      conn.lastDir = dir;
    }
  }
}

/** segment_seq_plus_len: the sequence number after the segment (SYN and FIN count one each). */
function segmentEnd(seq: number, l4Length: number, headerLength: number, flags: number): number {
  return (seq + l4Length - headerLength + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0)) >>> 0;
}
