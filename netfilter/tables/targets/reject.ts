/**
 * `-j REJECT [--reject-with TYPE]` (ipt_REJECT, filter table only): drops the packet and answers
 * with an ICMP destination unreachable of the given code, or a TCP reset. The default is
 * icmp-port-unreachable, as iptables sets it. Type names are matched as libipt_REJECT does:
 * case-insensitively, the first entry that the word is a prefix of (name or alias) wins.
 *
 * Like the kernel's nf_send_unreach, no ICMP error answers a non-first fragment or a packet whose
 * L4 checksum is wrong (the protocols whose checksum it does not check are listed below).
 */
import { Verdict } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import { IcmpType, IcmpUnreachableCode } from '../../../router/wire/icmp.ts';
import { greHasChecksum } from '../../../router/wire/gre.ts';
import { IPV4_FRAGMENT_OFFSET_MASK, IpProtocol, ipv4Dst, ipv4FlagsFragment, ipv4HeaderLength, ipv4Protocol, ipv4Src } from '../../../router/wire/ipv4.ts';
import { tcpChecksumValid } from '../../../router/wire/tcp.ts';
import { udpChecksum, udpChecksumValid } from '../../../router/wire/udp.ts';
import { OptionError } from '../errors.ts';
import { type RuleHeader, type Target, type TargetBuilder, type TargetType, type TablesEnv, type RejectSender } from '../extension.ts';

const TCP_RESET = -1;

/** name, alias, ICMP code (TCP_RESET for tcp-reset), in libipt_REJECT's table order. */
const REJECT_TYPES: readonly (readonly [string, string, number])[] = [
  ['icmp-net-unreachable', 'net-unreach', IcmpUnreachableCode.NET],
  ['icmp-host-unreachable', 'host-unreach', IcmpUnreachableCode.HOST],
  ['icmp-proto-unreachable', 'proto-unreach', IcmpUnreachableCode.PROTOCOL],
  ['icmp-port-unreachable', 'port-unreach', IcmpUnreachableCode.PORT],
  ['icmp-net-prohibited', 'net-prohib', IcmpUnreachableCode.NET_PROHIBITED],
  ['icmp-host-prohibited', 'host-prohib', IcmpUnreachableCode.HOST_PROHIBITED],
  ['tcp-reset', 'tcp-rst', TCP_RESET],
  ['icmp-admin-prohibited', 'admin-prohib', IcmpUnreachableCode.ADMIN_PROHIBITED],
];
const DEFAULT_TYPE = 3;

/** IPPROTO_AH, ESP, SCTP, UDPLITE, DCCP: integrity checked otherwise, or partial checksums. */
const UNCHECKED: readonly number[] = [51, 50, 132, 136, 33];

/** nf_reject_verify_csum + nf_ip_checksum: false if the L4 checksum is checked and wrong. */
function checksumAcceptable(buf: Buffer, thoff: number, protocol: number): boolean {
  const length = buf.length - thoff;
  switch (protocol) {
    case IpProtocol.UDP:
      if (length >= 8 && udpChecksum(buf, thoff) === 0) return true;
      break;
    case IpProtocol.GRE:
      if (length >= 4 && !greHasChecksum(buf, thoff)) return true;
      break;
    default:
      if (UNCHECKED.includes(protocol)) return true;
  }
  // Over the whole IP payload, as nf_ip_checksum sums skb->len - dataoff bytes.
  if (protocol === IpProtocol.TCP) return tcpChecksumValid(buf, thoff, length, ipv4Src(buf, 0), ipv4Dst(buf, 0));
  if (protocol === IpProtocol.UDP) return udpChecksumValid(buf, thoff, length, ipv4Src(buf, 0), ipv4Dst(buf, 0));
  return internetChecksum(buf, thoff, length) === 0;
}

class RejectTarget implements Target {
  readonly name = 'REJECT';

  constructor(
    private readonly sender: RejectSender,
    private readonly type: number,
  ) {}

  run(packet: Packet): number {
    const code = REJECT_TYPES[this.type]![2];
    if (code === TCP_RESET) {
      this.sender.sendTcpReset(packet);
      return Verdict.DROP;
    }
    const buf = packet.buf;
    if ((ipv4FlagsFragment(buf, 0) & IPV4_FRAGMENT_OFFSET_MASK) !== 0) return Verdict.DROP;
    if (checksumAcceptable(buf, ipv4HeaderLength(buf, 0), ipv4Protocol(buf, 0))) {
      this.sender.sendIcmpError(packet, IcmpType.DEST_UNREACHABLE, code);
    }
    return Verdict.DROP;
  }

  save(): string {
    return ` -j REJECT --reject-with ${REJECT_TYPES[this.type]![0]}`;
  }

  print(): string {
    return ` reject-with ${REJECT_TYPES[this.type]![0]}`;
  }
}

class RejectBuilder implements TargetBuilder {
  private type = DEFAULT_TYPE;

  constructor(private readonly env: TablesEnv) {}

  option(name: string, args: readonly string[]): void {
    const word = args[0]!.toLowerCase();
    this.type = REJECT_TYPES.findIndex(([typeName, alias]) => typeName.startsWith(word) || alias.startsWith(word));
    if (this.type < 0) throw new OptionError(args[0]!, `unknown reject type "${args[0]}"`);
  }

  build(header: RuleHeader): Target {
    if (REJECT_TYPES[this.type]![2] === TCP_RESET && (header.protocol !== IpProtocol.TCP || header.invertProtocol)) {
      throw new OptionError('tcp-reset', 'REJECT --reject-with tcp-reset needs "-p tcp" (not inverted), as the kernel requires');
    }
    return new RejectTarget(this.env.reject, this.type);
  }
}

export const rejectTarget: TargetType = {
  name: 'REJECT',
  tables: ['filter'],
  options: [{ names: ['reject-with'], args: 1, invertible: false }],
  create: (env) => new RejectBuilder(env),
};
