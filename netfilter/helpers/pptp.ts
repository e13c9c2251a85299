/**
 * The PPTP helper's tracking half (after nf_conntrack_pptp.c): follows the control connection on
 * TCP 1723 (RFC 2637) and expects the two GRE flows of a call.
 *
 * The ORIGINAL direction of the control connection is taken to be PNS -> PAC (client -> server),
 * as the kernel does. Per connection, on `entry.helperData` (PptpConnectionState):
 *
 *   session: NONE --SCCRQ--> REQUESTED --SCCRP ok--> CONFIRMED (not ok: ERROR)
 *            any --StopCCRQ--> STOPREQ;  NONE/ERROR/STOPREQ --StopCCRP ok--> NONE (not ok: ERROR)
 *   call:    OCRQ (session CONFIRMED): OUT_REQ, PNS call id kept
 *            OCRP (from OUT_REQ/OUT_CONF, peer id = the PNS id): ok -> OUT_CONF, PAC id kept,
 *                 GRE expected; refused -> NONE
 *            ICRQ (session CONFIRMED): IN_REQ, PAC id kept
 *            ICRP (from IN_REQ/IN_REP, peer id = the PAC id): accept -> IN_REP, PNS id kept; else NONE
 *            ICCN (from IN_REP/IN_CONF, peer id = the PNS id): IN_CONF, GRE expected
 *            CCRQ (session CONFIRMED): CLEAR_REQ
 *            CDN: NONE, and the call's GRE state goes (keymap, expectations, connections)
 *
 * A message in the wrong direction, state or with the wrong ids is "invalid": counted, logged
 * (rate-limited) and accepted untouched, with no NAT rewrite, as in the kernel. Only the first
 * message of a segment is read; segments shorter than the message's fixed length are counted as
 * truncated and accepted (Echo messages too, which the kernel does not size-check: they change no
 * state and are never rewritten, so the outcome is the same). Nothing here throws on packet data.
 *
 * The GRE expectations of a call are exact (every tuple field must match):
 *   PNS -> PAC: the control connection's ORIGINAL addresses, keys (PNS call id, PAC call id)
 *   PAC -> PNS: its REPLY addresses, keys (PAC call id, PNS call id)
 * registered together with the two GRE keymap entries that let the GRE tracker find the source key
 * of version 1 packets (which carry only the receiver's call id). If either expectation or keymap
 * entry cannot be made, none of them stay. When the control connection is NATed the NAT half
 * (nat/helpers/nat-pptp.ts) moves the keys to the ids each side really uses first.
 *
 * An expected GRE connection is remembered as a child of its control connection, its keymap
 * entries are (re)asserted, and, if the control connection is NATed, the NAT half binds it. It
 * keeps the GRE tracker's timeouts (30 s / 180 s): the kernel's PPTP_GRE_TIMEOUT and
 * PPTP_GRE_STREAM_TIMEOUT (600 s / 18000 s) are overwritten by the GRE tracker's first packet (see
 * trackers/gre.ts), as kernel 6.18 shows.
 *
 * ## Why the kernel fails a second round when the server's GRE comes first, and what is done here
 *
 * When one expectation of the pair is matched, the other must go: its connection will be the reply
 * direction of the one just made. The kernel finds "the other" again by rebuilding its tuple. With
 * NAT (nf_nat_pptp's expectfn) the PAC -> PNS case rebuilds it from the NAT extension of the *new
 * GRE connection*, which was just allocated and is all zeros, instead of the control connection's
 * saved ids: the lookup asks for keys 0/0 and finds nothing, so the PNS -> PAC expectation (keys =
 * the client's original call id and the PAC id) is left behind. The first call still works (the
 * GRE connection's reply tuple catches the client's packets before expectations are consulted).
 * Call-Disconnect-Notify does not remove it either: the kernel's teardown rebuilds the PNS -> PAC
 * tuple with the NATed PNS id (the TCP port), not the original id the expectation carries. So the
 * stale expectation lives on until its 300 s timeout or until the old control connection dies
 * (after TIME_WAIT). A new control connection from the same client with the same call ids then
 * asks for exactly the same PNS -> PAC expectation under another master, the expectation table
 * answers "busy", the whole pair and the keymap are refused, and the second round's GRE is never
 * related to the call: it is not translated back to the client. When the client's GRE comes first
 * nothing is left behind, because that branch rebuilds the PAC -> PNS tuple from the control
 * connection's own (translated) ids, which are right. Seen on this machine's kernel (6.18) with
 * these peers through MASQUERADE and `CT --helper pptp`: after a server-first round `conntrack -L
 * expect` still lists the PNS -> PAC expectation, and the next control connection gets none.
 *
 * Here nothing is found again by tuple: the two expectations of a call are created as siblings that
 * know each other, and a match removes its sibling by reference; a CDN, a new call replacing the
 * previous one, the end of the session (Stop-Control-Connection-Reply: RFC 2637 section 2.3 says
 * it clears every call) and the end of the control connection remove the keymap, every expectation
 * this control connection still has and the GRE connections it created (known by reference, and
 * optionally also by the kernel's tuples, but only if their master is this connection, so that an
 * old control connection dying late never kills a newer call with the same ids).
 *
 * Other deliberate differences from the kernel, each so that a later call is not refused:
 * - a successful OCRP/ICCN for a different call than the one in progress first tears the previous
 *   call down (the keymap has one slot per direction per control connection; the kernel refuses the
 *   new call instead);
 * - a session ending with Stop-Control-Connection-Reply tears the call down at once rather than
 *   when the TCP connection is finally destroyed.
 */
import type { Conntrack } from '../conntrack/conntrack-entry.ts';
import { Expectation, type TupleMask } from '../conntrack/expectation.ts';
import { ExpectResult, type ExpectationTable } from '../conntrack/expectation-table.ts';
import type { GreKeymap } from '../conntrack/gre-keymap.ts';
import { CtInfo, Status, ctinfoDirection } from '../conntrack/status.ts';
import { Direction, Tuple } from '../conntrack/tuple.ts';
import { Verdict } from '../../router/core/hooks.ts';
import type { Packet } from '../../router/core/packet.ts';
import { RateLimitedLog } from '../../router/core/rate-limited-log.ts';
import { IpProtocol } from '../../router/wire/ipv4.ts';
import { TCP_MIN_HEADER_LENGTH, tcpHeaderLength } from '../../router/wire/tcp.ts';
import type { ConntrackHelper, ExpectationPolicy } from './helper.ts';
import {
  IncomingCallConnected,
  IncomingCallReply,
  IncomingCallRequest,
  OutgoingCallReply,
  OutgoingCallRequest,
  PPTP_CONTROL_PORT,
  PptpMessageType,
  PptpMessageView,
  PptpParse,
  PptpResult,
  StartControlConnectionReply,
  StopControlConnectionReply,
  parsePptpMessage,
  pptpMessageName,
} from './pptp-messages.ts';

/** enum pptp_ctrlsess_state, with the kernel's order (the checks compare with < and >). */
export const PptpSessionState = { NONE: 0, ERROR: 1, STOPREQ: 2, REQUESTED: 3, CONFIRMED: 4 } as const;
export type PptpSessionState = (typeof PptpSessionState)[keyof typeof PptpSessionState];

/** enum pptp_ctrlcall_state */
export const PptpCallState = { NONE: 0, ERROR: 1, OUT_REQ: 2, OUT_CONF: 3, IN_REQ: 4, IN_REP: 5, IN_CONF: 6, CLEAR_REQ: 7 } as const;
export type PptpCallState = (typeof PptpCallState)[keyof typeof PptpCallState];

const EXACT: TupleMask = Object.freeze({ src: 0xffffffff, srcPort: 0xffff });
const NAT_BITS = Status.SRC_NAT | Status.DST_NAT;

/** What the NAT half keeps per control connection (struct nf_nat_pptp): the ids before rewriting. */
export class PptpNatInfo {
  /** The PNS's own call id, as the client chose it. */
  pnsCallId = 0;
  /** The PAC's call id (never rewritten: kept for the expectation callback). */
  pacCallId = 0;
}

/** Per control connection (struct nf_ct_pptp_master and what vrouter adds), on `entry.helperData`. */
export class PptpConnectionState {
  session: PptpSessionState = PptpSessionState.NONE;
  call: PptpCallState = PptpCallState.NONE;
  /** The PNS call id as the PAC knows it (after NAT: the translated one). */
  pnsCallId = 0;
  pacCallId = 0;
  /** Filled by the NAT half when the connection is NATed. */
  nat: PptpNatInfo | null = null;
  /** The keymap tuples of the call in progress [PNS->PAC, PAC->PNS], null when there is none. */
  callTuples: [Tuple, Tuple] | null = null;
  /** GRE connections made from this control connection's expectations. */
  readonly children = new Set<Conntrack>();
}

/** One GRE expectation of a call; knows the other one of its pair. */
export class PptpGreExpectation extends Expectation {
  sibling: PptpGreExpectation | null = null;
}

/**
 * The NAT half's entry points (nf_nat_pptp_hook). `outbound`/`inbound` are called only for valid
 * messages of NATed control connections, after the tracking half updated its state; they return
 * the packet's verdict. `expectGre` adjusts a new pair of expectations before registration
 * (pptp_exp_gre); `expected` binds a GRE connection that matched one (pptp_nat_expected).
 */
export interface PptpNatHook {
  outbound(packet: Packet, entry: Conntrack, ctinfo: number, l4Offset: number, message: PptpMessageView, state: PptpConnectionState): Verdict;
  inbound(packet: Packet, entry: Conntrack, ctinfo: number, l4Offset: number, message: PptpMessageView, state: PptpConnectionState): Verdict;
  expectGre(entry: Conntrack, state: PptpConnectionState, toPac: Expectation, toPns: Expectation): void;
  expected(child: Conntrack, expectation: Expectation, state: PptpConnectionState): void;
}

export interface PptpHelperDeps {
  expectations: ExpectationTable;
  /** The keymap the GRE tracker reads (createTrackers({ greKeymap })): it must be the same object. */
  keymap: GreKeymap;
  /** Removes a connection now (ConntrackCore.destroy). */
  destroyConnection: (entry: Conntrack) => void;
  /**
   * Finds a confirmed connection holding this tuple in either direction, for the kernel's teardown
   * by tuple (e.g. `t => core.table.find(t.src, t.dst, t.protocol, t.srcPort, t.dstPort)?.entry ?? null`).
   * Optional: the GRE connections of a call are known by reference anyway.
   */
  findGre?: ((tuple: Tuple) => Conntrack | null) | null;
  /** The NAT half, used only for NATed control connections. */
  nat?: PptpNatHook | null;
  log?: RateLimitedLog;
}

export interface PptpCounters {
  /** Control messages read (valid or not). */
  messages: number;
  /** Payloads too short for the 8-byte PPTP header or the control header. */
  noHeader: number;
  /** Not a control message (PPTP message type or magic cookie wrong). */
  notControl: number;
  /** Shorter than the fixed length of their message type. */
  truncated: number;
  /** Control message type 0 or above 15. */
  unknownType: number;
  /** Refused by the state machines (wrong direction, state or call id), unknown types included. */
  invalid: number;
  /** Calls for which the GRE expectations and keymap entries were made. */
  callsExpected: number;
  /** Calls for which they could not be made. */
  expectFailed: number;
  /** GRE connections that arrived as expected. */
  greExpected: number;
  /** Teardowns of a call's GRE state (CDN, replaced call, session end, connection end). */
  callsTornDown: number;
}

export interface PptpHelper extends ConntrackHelper {
  readonly counters: PptpCounters;
  /** The connection's PPTP state, null if the helper has not seen it. */
  stateOf(entry: Conntrack): PptpConnectionState | null;
}

export function createPptpHelper(deps: PptpHelperDeps): PptpHelper {
  return new PptpConntrackHelper(deps);
}

function stateOf(entry: Conntrack): PptpConnectionState {
  if (entry.helperData instanceof PptpConnectionState) return entry.helperData;
  const state = new PptpConnectionState();
  entry.helperData = state;
  return state;
}

class PptpConntrackHelper implements PptpHelper {
  readonly name = 'pptp';
  readonly protocol = IpProtocol.TCP;
  readonly ports: readonly number[] = [PPTP_CONTROL_PORT];
  readonly policies: readonly ExpectationPolicy[] = [{ name: 'pptp', maxExpected: 2, timeout: 300 }];
  readonly faultVerdict = Verdict.ACCEPT;
  readonly counters: PptpCounters = {
    messages: 0,
    noHeader: 0,
    notControl: 0,
    truncated: 0,
    unknownType: 0,
    invalid: 0,
    callsExpected: 0,
    expectFailed: 0,
    greExpected: 0,
    callsTornDown: 0,
  };
  private readonly expectations: ExpectationTable;
  private readonly keymap: GreKeymap;
  private readonly destroyConnection: (entry: Conntrack) => void;
  private readonly findGre: ((tuple: Tuple) => Conntrack | null) | null;
  private readonly nat: PptpNatHook | null;
  private readonly log: RateLimitedLog;
  /** Reused for each segment; it never outlives a help() call. */
  private readonly view = new PptpMessageView();
  private readonly onMatch = (child: Conntrack, expectation: Expectation): void => this.expected(child, expectation);

  constructor(deps: PptpHelperDeps) {
    this.expectations = deps.expectations;
    this.keymap = deps.keymap;
    this.destroyConnection = deps.destroyConnection;
    this.findGre = deps.findGre ?? null;
    this.nat = deps.nat ?? null;
    this.log = deps.log ?? new RateLimitedLog();
  }

  stateOf(entry: Conntrack): PptpConnectionState | null {
    return entry.helperData instanceof PptpConnectionState ? entry.helperData : null;
  }

  help(packet: Packet, entry: Conntrack, ctinfo: number, l4Offset: number): Verdict {
    // Nothing is read before the handshake is complete.
    if (ctinfo !== CtInfo.ESTABLISHED && ctinfo !== CtInfo.ESTABLISHED_REPLY) return Verdict.ACCEPT;
    const buf = packet.buf;
    if (l4Offset < 0 || buf.length < l4Offset + TCP_MIN_HEADER_LENGTH) return Verdict.ACCEPT;
    const headerLength = tcpHeaderLength(buf, l4Offset);
    const dataOffset = l4Offset + headerLength;
    if (headerLength < TCP_MIN_HEADER_LENGTH || dataOffset >= buf.length) return Verdict.ACCEPT;
    const message = this.view;
    const parsed = parsePptpMessage(buf, dataOffset, buf.length - dataOffset, message);
    switch (parsed) {
      case PptpParse.NO_HEADER:
        this.counters.noHeader++;
        return Verdict.ACCEPT;
      case PptpParse.NOT_CONTROL:
        this.counters.notControl++;
        return Verdict.ACCEPT;
      case PptpParse.TRUNCATED:
        this.counters.truncated++;
        this.log.log('nf_ct_pptp', `truncated ${pptpMessageName(message.type)}: ${message.available} bytes`);
        return Verdict.ACCEPT;
      case PptpParse.UNKNOWN_TYPE:
        this.counters.unknownType++;
        break;
      default:
        break;
    }
    this.counters.messages++;
    const state = stateOf(entry);
    const direction = ctinfoDirection(ctinfo);
    const valid = direction === Direction.ORIGINAL ? this.outbound(entry, state, message) : this.inbound(entry, state, message);
    if (!valid) {
      this.counters.invalid++;
      this.log.log(
        'nf_ct_pptp',
        `invalid ${pptpMessageName(message.type)} ${direction === Direction.ORIGINAL ? 'from PNS' : 'from PAC'}: session=${state.session} call=${state.call} pns_cid=${state.pnsCallId} pac_cid=${state.pacCallId}`,
      );
      return Verdict.ACCEPT;
    }
    if (this.nat && entry.status & NAT_BITS) {
      return direction === Direction.ORIGINAL
        ? this.nat.outbound(packet, entry, ctinfo, l4Offset, message, state)
        : this.nat.inbound(packet, entry, ctinfo, l4Offset, message, state);
    }
    return Verdict.ACCEPT;
  }

  destroy(entry: Conntrack): void {
    const state = this.stateOf(entry);
    this.tearDown(entry, state);
  }

  /** PNS -> PAC (pptp_outbound_pkt). False: invalid. */
  private outbound(_entry: Conntrack, state: PptpConnectionState, message: PptpMessageView): boolean {
    switch (message.type) {
      case PptpMessageType.START_CONTROL_CONNECTION_REQUEST:
        if (state.session !== PptpSessionState.NONE) return false;
        state.session = PptpSessionState.REQUESTED;
        return true;
      case PptpMessageType.STOP_CONTROL_CONNECTION_REQUEST:
        state.session = PptpSessionState.STOPREQ;
        return true;
      case PptpMessageType.OUTGOING_CALL_REQUEST:
        if (state.session !== PptpSessionState.CONFIRMED) return false;
        state.call = PptpCallState.OUT_REQ;
        state.pnsCallId = message.get(OutgoingCallRequest.callId);
        return true;
      case PptpMessageType.INCOMING_CALL_REPLY: {
        if (state.call !== PptpCallState.IN_REQ && state.call !== PptpCallState.IN_REP) return false;
        if (message.get(IncomingCallReply.peerCallId) !== state.pacCallId) return false;
        if (message.get(IncomingCallReply.resultCode) === PptpResult.INCOMING_CALL_ACCEPT) {
          state.call = PptpCallState.IN_REP;
          state.pnsCallId = message.get(IncomingCallReply.callId);
        } else {
          state.call = PptpCallState.NONE;
        }
        return true;
      }
      case PptpMessageType.CALL_CLEAR_REQUEST:
        if (state.session !== PptpSessionState.CONFIRMED) return false;
        state.call = PptpCallState.CLEAR_REQ;
        return true;
      case PptpMessageType.SET_LINK_INFO:
      case PptpMessageType.ECHO_REQUEST:
      case PptpMessageType.ECHO_REPLY:
        return true;
      default:
        return false;
    }
  }

  /** PAC -> PNS (pptp_inbound_pkt). False: invalid. */
  private inbound(entry: Conntrack, state: PptpConnectionState, message: PptpMessageView): boolean {
    switch (message.type) {
      case PptpMessageType.START_CONTROL_CONNECTION_REPLY:
        if (state.session < PptpSessionState.REQUESTED) return false;
        state.session = message.get(StartControlConnectionReply.resultCode) === PptpResult.START_OK ? PptpSessionState.CONFIRMED : PptpSessionState.ERROR;
        return true;
      case PptpMessageType.STOP_CONTROL_CONNECTION_REPLY:
        if (state.session > PptpSessionState.STOPREQ) return false;
        if (message.get(StopControlConnectionReply.resultCode) === PptpResult.STOP_OK) {
          state.session = PptpSessionState.NONE;
          // RFC 2637 2.3: stopping the control connection clears its calls (see the file comment).
          this.tearDown(entry, state);
        } else {
          state.session = PptpSessionState.ERROR;
        }
        return true;
      case PptpMessageType.OUTGOING_CALL_REPLY: {
        if (state.session !== PptpSessionState.CONFIRMED) return false;
        if (state.call !== PptpCallState.OUT_REQ && state.call !== PptpCallState.OUT_CONF) return false;
        const callId = message.get(OutgoingCallReply.callId);
        if (message.get(OutgoingCallReply.peerCallId) !== state.pnsCallId) return false;
        if (message.get(OutgoingCallReply.resultCode) === PptpResult.OUTGOING_CALL_CONNECTED) {
          state.call = PptpCallState.OUT_CONF;
          state.pacCallId = callId;
          this.expectGre(entry, state, callId, state.pnsCallId);
        } else {
          state.call = PptpCallState.NONE;
        }
        return true;
      }
      case PptpMessageType.INCOMING_CALL_REQUEST:
        if (state.session !== PptpSessionState.CONFIRMED) return false;
        state.call = PptpCallState.IN_REQ;
        state.pacCallId = message.get(IncomingCallRequest.callId);
        return true;
      case PptpMessageType.INCOMING_CALL_CONNECTED: {
        if (state.session !== PptpSessionState.CONFIRMED) return false;
        if (state.call !== PptpCallState.IN_REP && state.call !== PptpCallState.IN_CONF) return false;
        const peerCallId = message.get(IncomingCallConnected.peerCallId);
        if (peerCallId !== state.pnsCallId) return false;
        state.call = PptpCallState.IN_CONF;
        this.expectGre(entry, state, state.pacCallId, peerCallId);
        return true;
      }
      case PptpMessageType.CALL_DISCONNECT_NOTIFY:
        // The call id is not checked: one call per session is tracked, as in the kernel.
        state.call = PptpCallState.NONE;
        this.tearDown(entry, state);
        return true;
      case PptpMessageType.WAN_ERROR_NOTIFY:
      case PptpMessageType.SET_LINK_INFO:
      case PptpMessageType.ECHO_REQUEST:
      case PptpMessageType.ECHO_REPLY:
        return true;
      default:
        return false;
    }
  }

  /**
   * exp_gre: the pair of exact GRE expectations and the keymap entries of a call, all or none.
   * `callId` is the PAC's, `peerCallId` the PNS's, both as the PAC sees them.
   */
  private expectGre(entry: Conntrack, state: PptpConnectionState, callId: number, peerCallId: number): boolean {
    const original = entry.tuples[Direction.ORIGINAL];
    const reply = entry.tuples[Direction.REPLY];
    const toPac = new PptpGreExpectation(entry, new Tuple(original.src, original.dst, IpProtocol.GRE, peerCallId, callId), EXACT, 0, this, 0, null, this.onMatch);
    const toPns = new PptpGreExpectation(entry, new Tuple(reply.src, reply.dst, IpProtocol.GRE, callId, peerCallId), EXACT, 0, this, 0, null, this.onMatch);
    toPac.natDirection = Direction.ORIGINAL;
    toPns.natDirection = Direction.REPLY;
    toPac.sibling = toPns;
    toPns.sibling = toPac;
    if (this.nat && entry.status & NAT_BITS) this.nat.expectGre(entry, state, toPac, toPns);
    // Another call's leftovers would make the keymap refuse this one (one slot per direction).
    const previous = state.callTuples;
    if (previous && !(previous[0].equals(toPac.tuple) && previous[1].equals(toPns.tuple))) this.tearDown(entry, state);
    const first = this.expectations.add(toPac);
    if (first !== ExpectResult.OK) return this.expectFailed(entry, `PNS->PAC expectation refused (${first})`);
    const second = this.expectations.add(toPns);
    if (second !== ExpectResult.OK) {
      this.expectations.remove(toPac);
      return this.expectFailed(entry, `PAC->PNS expectation refused (${second})`);
    }
    if (!this.keymap.add(entry, Direction.ORIGINAL, toPac.tuple) || !this.keymap.add(entry, Direction.REPLY, toPns.tuple)) {
      this.keymap.destroy(entry);
      this.expectations.remove(toPac);
      this.expectations.remove(toPns);
      state.callTuples = null;
      return this.expectFailed(entry, 'GRE keymap refused the call');
    }
    state.callTuples = [toPac.tuple.clone(), toPns.tuple.clone()];
    this.counters.callsExpected++;
    return true;
  }

  private expectFailed(entry: Conntrack, why: string): boolean {
    this.counters.expectFailed++;
    this.log.log('nf_ct_pptp', `connection ${entry.id}: cannot expect GRE: ${why}`);
    return false;
  }

  /** pptp_expectfn: an expected GRE connection arrived (before it is confirmed). */
  private expected(child: Conntrack, expectation: Expectation): void {
    this.counters.greExpected++;
    const master = expectation.master;
    const state = stateOf(master);
    state.children.add(child);
    // The other direction will be this connection's reply: its expectation must not linger.
    if (expectation instanceof PptpGreExpectation && expectation.sibling) {
      this.expectations.remove(expectation.sibling);
      expectation.sibling.sibling = null;
      expectation.sibling = null;
    }
    const tuples = state.callTuples;
    if (tuples && !master.dying) {
      // Already there unless something removed them; a refusal means another call holds the slots.
      if (!this.keymap.add(master, Direction.ORIGINAL, tuples[0]) || !this.keymap.add(master, Direction.REPLY, tuples[1])) {
        this.log.log('nf_ct_pptp', `connection ${master.id}: keymap holds another call`);
      }
    }
    if (this.nat && master.status & NAT_BITS) this.nat.expected(child, expectation, state);
  }

  /**
   * pptp_destroy_siblings and more: forgets the call's keymap entries, removes every expectation
   * the control connection still has, and ends the GRE connections it created.
   */
  private tearDown(entry: Conntrack, state: PptpConnectionState | null): void {
    this.keymap.destroy(entry);
    let removed = false;
    for (const expectation of [...entry.expectations]) {
      if (expectation.helper !== this) continue;
      this.expectations.remove(expectation);
      removed = true;
    }
    if (!state) return;
    for (const child of state.children) {
      if (child.dying) continue;
      this.destroyConnection(child);
      removed = true;
    }
    state.children.clear();
    if (this.findGre) {
      // The kernel's way, by the tuples the ids describe (both the translated and the original PNS id).
      const original = entry.tuples[Direction.ORIGINAL];
      const reply = entry.tuples[Direction.REPLY];
      const pnsIds = state.nat ? [state.pnsCallId, state.nat.pnsCallId] : [state.pnsCallId];
      for (const pns of pnsIds) {
        for (const tuple of [
          new Tuple(original.src, original.dst, IpProtocol.GRE, pns, state.pacCallId),
          new Tuple(reply.src, reply.dst, IpProtocol.GRE, state.pacCallId, pns),
        ]) {
          const found = this.findGre(tuple);
          if (found && found.master === entry && !found.dying) {
            this.destroyConnection(found);
            removed = true;
          }
        }
      }
    }
    if (removed || state.callTuples) this.counters.callsTornDown++;
    state.callTuples = null;
  }
}
