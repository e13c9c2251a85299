/**
 * The PPTP helper's NAT half (after nf_nat_pptp.c), used only when the control connection is NATed.
 *
 * Several PNSs behind one NAT may pick the same call id toward the same PAC. GRE version 1 packets
 * carry only the receiver's call id, so the PAC -> PNS packets of two such calls would look alike
 * on the public side. The PNS's call id is therefore replaced, on the control connection, by one
 * that is unique there: the control connection's translated TCP source port (the destination port
 * of its REPLY tuple, which the NAT core made unique for this PAC address and port). The GRE
 * connections then translate it back with a DST manip of the call id field (nat-manip.ts).
 *
 * Control messages (same-length rewrites of one 16-bit field: the TCP checksum is updated
 * incrementally, the length and sequence numbers never change):
 *   PNS -> PAC  OCRQ        save the original PNS call id, write the translated one
 *               ICRP        the same (see below)
 *               CCRQ        call id := the translated PNS id
 *   PAC -> PNS  OCRP, ICCN, WEN, SLI   peer call id := the original PNS id
 *               CDN         call id := the original PNS id (what the kernel does, though the RFC
 *                           puts the PAC's own id there)
 *   anything else passes untouched.
 *
 * ICRP differs from the kernel on purpose: the kernel writes back the id the tracking half just
 * stored (the client's own, so nothing changes) and never saves it as "original", so the peer id
 * of the following ICCN is rewritten to a stale or zero value and incoming calls through NAT break.
 * Here ICRP is translated like OCRQ, which makes ICCN and the GRE flows consistent.
 *
 * GRE (pptp_exp_gre and pptp_nat_expected): the expectations are moved to the ids each side uses
 * (PNS -> PAC: source key = the original PNS id, as the client sends it; PAC -> PNS: destination key
 * = the translated id, as the PAC sends it), and an expected GRE connection is bound like this:
 *   PNS -> PAC first: SRC to the master's public address with source key = the translated id;
 *   PAC -> PNS first: DST to the client's address with destination key = the original id.
 * Either way the reply direction of that one connection is the other flow of the call.
 */
import type { Conntrack } from '../../netfilter/conntrack/conntrack-entry.ts';
import type { Expectation } from '../../netfilter/conntrack/expectation.ts';
import { Direction } from '../../netfilter/conntrack/tuple.ts';
import { PptpCallState, PptpNatInfo, type PptpConnectionState, type PptpNatHook } from '../../netfilter/helpers/pptp.ts';
import {
  CallClearRequest,
  CallDisconnectNotify,
  IncomingCallConnected,
  IncomingCallReply,
  OutgoingCallReply,
  OutgoingCallRequest,
  PptpMessageType,
  SetLinkInfo,
  WanErrorNotify,
  pptpMessageName,
  type PptpField,
  type PptpMessageView,
} from '../../netfilter/helpers/pptp-messages.ts';
import { Verdict } from '../../router/core/hooks.ts';
import type { Packet } from '../../router/core/packet.ts';
import { RateLimitedLog } from '../../router/core/rate-limited-log.ts';
import { readU16 } from '../../router/wire/bytes.ts';
import { updateChecksumField16 } from '../../router/wire/checksum.ts';
import { TCP } from '../../router/wire/tcp.ts';
import { ManipType, type NatCore } from '../nat-core.ts';
import { NatRangeFlag, type NatRange } from '../nat-range.ts';

export interface PptpNatDeps {
  nat: NatCore;
  log?: RateLimitedLog;
}

export interface PptpNatCounters {
  /** Call id fields rewritten in control messages. */
  rewrites: number;
  /** PAC -> PNS messages left alone because no PNS call id had been translated yet. */
  notTranslated: number;
  /** Expected GRE connections bound. */
  bound: number;
  /** Bindings the NAT core could not make (no unique tuple). */
  bindFailed: number;
}

export interface PptpNat extends PptpNatHook {
  readonly counters: PptpNatCounters;
}

export function createPptpNat(deps: PptpNatDeps): PptpNat {
  return new PptpNatHalf(deps.nat, deps.log ?? new RateLimitedLog());
}

function natInfoOf(state: PptpConnectionState): PptpNatInfo {
  state.nat ??= new PptpNatInfo();
  return state.nat;
}

class PptpNatHalf implements PptpNat {
  readonly counters: PptpNatCounters = { rewrites: 0, notTranslated: 0, bound: 0, bindFailed: 0 };

  constructor(
    private readonly nat: NatCore,
    private readonly log: RateLimitedLog,
  ) {}

  /** PNS -> PAC (pptp_outbound_pkt of nf_nat_pptp). */
  outbound(packet: Packet, entry: Conntrack, _ctinfo: number, l4Offset: number, message: PptpMessageView, state: PptpConnectionState): Verdict {
    let field: PptpField;
    switch (message.type) {
      case PptpMessageType.OUTGOING_CALL_REQUEST:
        field = OutgoingCallRequest.callId;
        this.translatePnsCallId(entry, state, message.get(field));
        break;
      case PptpMessageType.INCOMING_CALL_REPLY:
        field = IncomingCallReply.callId;
        // Only an accepted call got its id stored; a refusal carries the current id, as in the kernel.
        if (state.call === PptpCallState.IN_REP) this.translatePnsCallId(entry, state, message.get(field));
        break;
      case PptpMessageType.CALL_CLEAR_REQUEST:
        field = CallClearRequest.callId;
        break;
      default:
        return Verdict.ACCEPT;
    }
    this.rewrite(packet, l4Offset, message, field, state.pnsCallId);
    return Verdict.ACCEPT;
  }

  /** PAC -> PNS (pptp_inbound_pkt of nf_nat_pptp). */
  inbound(packet: Packet, _entry: Conntrack, _ctinfo: number, l4Offset: number, message: PptpMessageView, state: PptpConnectionState): Verdict {
    let field: PptpField;
    switch (message.type) {
      case PptpMessageType.OUTGOING_CALL_REPLY:
        field = OutgoingCallReply.peerCallId;
        break;
      case PptpMessageType.INCOMING_CALL_CONNECTED:
        field = IncomingCallConnected.peerCallId;
        break;
      case PptpMessageType.WAN_ERROR_NOTIFY:
        field = WanErrorNotify.peerCallId;
        break;
      case PptpMessageType.CALL_DISCONNECT_NOTIFY:
        field = CallDisconnectNotify.callId;
        break;
      case PptpMessageType.SET_LINK_INFO:
        field = SetLinkInfo.peerCallId;
        break;
      default:
        return Verdict.ACCEPT;
    }
    if (!state.nat) {
      // The kernel would write its zeroed saved id here; writing nothing is the lesser harm.
      this.counters.notTranslated++;
      this.log.log('nf_nat_pptp', `${pptpMessageName(message.type)} before any PNS call id was translated: left alone`);
      return Verdict.ACCEPT;
    }
    this.rewrite(packet, l4Offset, message, field, state.nat.pnsCallId);
    return Verdict.ACCEPT;
  }

  /** pptp_exp_gre: the keys each side really uses, and where the expected connection is bound. */
  expectGre(_entry: Conntrack, state: PptpConnectionState, toPac: Expectation, toPns: Expectation): void {
    const info = natInfoOf(state);
    info.pacCallId = state.pacCallId;
    // PNS -> PAC: the client sends with its own id as source key; bound to the translated id.
    toPac.savedPort = state.pnsCallId;
    toPac.tuple.srcPort = info.pnsCallId;
    toPac.tuple.dstPort = state.pacCallId;
    toPac.natDirection = Direction.ORIGINAL;
    // PAC -> PNS: the PAC addresses the translated id; bound back to the client's own id.
    toPns.savedPort = info.pnsCallId;
    toPns.tuple.srcPort = info.pacCallId;
    toPns.tuple.dstPort = state.pnsCallId;
    toPns.natDirection = Direction.REPLY;
  }

  /** pptp_nat_expected: binds a GRE connection that matched one of the call's expectations. */
  expected(child: Conntrack, expectation: Expectation, _state: PptpConnectionState): void {
    const master = child.master;
    if (!master) return;
    const direction = expectation.natDirection;
    // The master's other direction: where its packets go is where this connection's come from.
    const other = master.tuples[direction ^ 1]!;
    const source: NatRange = { flags: NatRangeFlag.MAP_IPS, minAddress: other.dst, maxAddress: other.dst, minPort: 0, maxPort: 0 };
    if (direction === Direction.ORIGINAL) {
      source.flags |= NatRangeFlag.PROTO_SPECIFIED;
      source.minPort = source.maxPort = expectation.savedPort;
    }
    const destination: NatRange = { flags: NatRangeFlag.MAP_IPS, minAddress: other.src, maxAddress: other.src, minPort: 0, maxPort: 0 };
    if (direction === Direction.REPLY) {
      destination.flags |= NatRangeFlag.PROTO_SPECIFIED;
      destination.minPort = destination.maxPort = expectation.savedPort;
    }
    const ok = this.nat.setup(child, source, ManipType.SRC) && this.nat.setup(child, destination, ManipType.DST);
    if (ok) {
      this.counters.bound++;
    } else {
      this.counters.bindFailed++;
      this.log.log('nf_nat_pptp', `GRE connection ${child.id}: no unique tuple for the call`);
    }
  }

  /** OCRQ / accepted ICRP: remember the client's id and use the control connection's public port. */
  private translatePnsCallId(entry: Conntrack, state: PptpConnectionState, original: number): void {
    natInfoOf(state).pnsCallId = original;
    // The REPLY tuple's destination port is the control connection's source port after SNAT (the
    // packet itself may not be rewritten yet, so its TCP header is not read).
    state.pnsCallId = entry.tuples[Direction.REPLY].dstPort;
  }

  /** A same-length rewrite of a 16-bit field: the TCP checksum follows incrementally. */
  private rewrite(packet: Packet, l4Offset: number, message: PptpMessageView, field: PptpField, value: number): void {
    const buf = packet.buf;
    const at = message.offsetOf(field);
    // The parser saw the whole message in this buffer; the NAT core may have replaced packet.buf
    // only before the helper ran, so message.buf is packet.buf.
    if (message.buf !== buf || at + 2 > buf.length) return;
    const old = readU16(buf, at);
    if (old === value) return;
    buf[at] = value >>> 8;
    buf[at + 1] = value & 0xff;
    // The payload starts at a multiple of 4 from the TCP header and the field at an even offset in
    // the message, so the field is one aligned word of the checksummed data.
    // A partial checksum is finished over the new payload on the way out.
    if (!packet.checksumPartial) updateChecksumField16(buf, l4Offset + TCP.CHECKSUM, old, value);
    this.counters.rewrites++;
  }
}
