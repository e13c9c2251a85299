/**
 * The NAT hook functions (nf_nat_inet_fn): DST manip at -100 on PRE_ROUTING and LOCAL_OUT, SRC
 * manip at 100 on POST_ROUTING and LOCAL_IN.
 *
 * For the first packet of a connection (NEW or RELATED) and a manip type not yet decided, the nat
 * table's chain for the hook is run; a SNAT/DNAT/MASQUERADE target decides the binding, and if no
 * rule does, a null binding is made (the address stays, the port moves only on a clash). Then
 * every packet is rewritten from the entry's tuples. ICMP errors about a NATed connection get the
 * datagram they quote translated back too (nf_nat_icmp_reply_translation).
 */
import { Hook, Priority, Verdict, dropFor, type HookOps, type HookPoint } from '../router/core/hooks.ts';
import type { Conntrack } from '../netfilter/conntrack/conntrack-entry.ts';
import type { Expectation } from '../netfilter/conntrack/expectation.ts';
import { CtInfo, Status, ctinfoDirection } from '../netfilter/conntrack/status.ts';
import { Tuple } from '../netfilter/conntrack/tuple.ts';
import { formatIpv4Address } from '../router/core/addresses.ts';
import type { Packet } from '../router/core/packet.ts';
import { DropReason } from '../router/core/stats.ts';
import { ICMP } from '../router/wire/icmp.ts';
import { IpProtocol, ipv4HeaderLength, ipv4Protocol } from '../router/wire/ipv4.ts';
import { ManipType, NatCore, natInitialized, natStatusBit } from './nat-core.ts';
import { manipPacket } from './nat-manip.ts';
import type { NatChainRunner } from '../netfilter/tables/index.ts';
import { NatRangeFlag } from './nat-range.ts';

const NAT_BITS = Status.SRC_NAT | Status.DST_NAT;

export function hookManip(hook: HookPoint): ManipType {
  return hook === Hook.PRE_ROUTING || hook === Hook.LOCAL_OUT ? ManipType.DST : ManipType.SRC;
}

export class NatHooks {
  private readonly target = new Tuple();

  constructor(
    readonly core: NatCore,
    private readonly chains: NatChainRunner,
  ) {}

  hookOps(): HookOps[] {
    const fn = (packet: Packet, hook: HookPoint): Verdict => this.nat(packet, hook);
    return [
      { hook: Hook.PRE_ROUTING, priority: Priority.NAT_DST, fn, name: 'nat', describe: describeBinding },
      { hook: Hook.LOCAL_OUT, priority: Priority.NAT_DST, fn, name: 'nat', describe: describeBinding },
      { hook: Hook.POST_ROUTING, priority: Priority.NAT_SRC, fn, name: 'nat', describe: describeBinding },
      { hook: Hook.LOCAL_IN, priority: Priority.NAT_SRC, fn, name: 'nat', describe: describeBinding },
    ];
  }

  nat(packet: Packet, hook: HookPoint): Verdict {
    const entry = packet.conntrack;
    if (!entry || !this.chains.hasNatTable()) return Verdict.ACCEPT;
    const manip = hookManip(hook);
    const ctinfo = packet.ctinfo;
    if (ctinfo === CtInfo.RELATED || ctinfo === CtInfo.RELATED_REPLY) {
      if (ipv4Protocol(packet.buf, 0) === IpProtocol.ICMP) return this.translateIcmpError(packet, entry, manip) ? Verdict.ACCEPT : dropFor(packet, DropReason.NAT_TRUNCATED);
    }
    if ((ctinfo === CtInfo.NEW || ctinfo === CtInfo.RELATED) && !natInitialized(entry, manip)) {
      const verdict = this.chains.runNatChain(hook, packet);
      if (verdict !== Verdict.ACCEPT) return verdict;
      if (!natInitialized(entry, manip) && !this.core.setupNull(entry, manip)) return dropFor(packet, DropReason.NAT_NO_TUPLE);
    }
    return this.rewrite(packet, entry, manip) ? Verdict.ACCEPT : dropFor(packet, DropReason.NAT_TRUNCATED);
  }

  /**
   * nf_nat_follow_master: an expected connection is NATed the way its master is, so that it reaches
   * the endpoint the helper saw announced (`expectation.savedPort`) from the address the peer knows.
   */
  followMaster(child: Conntrack, expectation: Expectation): void {
    const master = child.master!;
    const towards = master.tuples[expectation.natDirection ^ 1]!;
    this.core.setup(child, { flags: NatRangeFlag.MAP_IPS, minAddress: towards.dst, maxAddress: towards.dst, minPort: 0, maxPort: 0 }, ManipType.SRC);
    this.core.setup(
      child,
      { flags: NatRangeFlag.MAP_IPS | NatRangeFlag.PROTO_SPECIFIED, minAddress: towards.src, maxAddress: towards.src, minPort: expectation.savedPort, maxPort: expectation.savedPort },
      ManipType.DST,
    );
  }

  /** nf_nat_packet: rewrite when this manip type applies in this packet's direction. */
  private rewrite(packet: Packet, entry: Conntrack, manip: ManipType): boolean {
    const direction = ctinfoDirection(packet.ctinfo);
    let statusBit = natStatusBit(manip);
    if (direction === 1) statusBit ^= NAT_BITS;
    if (!(entry.status & statusBit)) return true;
    const target = this.invertedOther(entry, direction);
    return manipPacket(packet.buf, 0, target, manip, packet.checksumPartial);
  }

  /** The tuple this direction's packets must carry: the inverse of the other direction's tuple. */
  private invertedOther(entry: Conntrack, direction: 0 | 1): Tuple {
    const other = entry.tuples[direction ^ 1]!;
    const target = this.target.set(other.dst, other.src, other.protocol, 0, 0);
    entry.tracker.invertTuple(other, target);
    return target;
  }

  private translateIcmpError(packet: Packet, entry: Conntrack, manip: ManipType): boolean {
    const direction = ctinfoDirection(packet.ctinfo);
    let statusBit = natStatusBit(manip);
    if (direction === 1) statusBit ^= NAT_BITS;
    if (!(entry.status & statusBit)) return true;
    const buf = packet.buf;
    const l4 = ipv4HeaderLength(buf, 0);
    const inner = l4 + 8;
    // The quoted datagram was sent the other way: undo this hook's manip on it (the opposite type).
    const other = entry.tuples[direction ^ 1]!;
    const opposite = manip === ManipType.SRC ? ManipType.DST : ManipType.SRC;
    if (!manipPacket(buf, inner, other, opposite, false, l4 + ICMP.CHECKSUM)) return false;
    const target = this.invertedOther(entry, direction);
    target.protocol = IpProtocol.ICMP;
    return manipPacket(buf, 0, target, manip, false);
  }
}

/** The connection's NAT binding for `vrouter trace`: which manips it has and the reply tuple they made. */
function describeBinding(packet: Packet): string {
  const entry = packet.conntrack;
  if (!entry) return 'untracked: no NAT';
  const kinds = [entry.status & Status.SRC_NAT ? 'SNAT' : '', entry.status & Status.DST_NAT ? 'DNAT' : ''].filter(Boolean).join('+') || 'no NAT (null binding)';
  const reply = entry.tuples[1];
  return `${kinds}, reply src=${formatIpv4Address(reply.src)} dst=${formatIpv4Address(reply.dst)} sport=${reply.srcPort} dport=${reply.dstPort}`;
}
