/**
 * `-j TCPMSS --set-mss N | --clamp-mss-to-pmtu` (with `-p tcp`): lowers the MSS option of the TCP
 * segments it sees (in practice the SYNs the rule picks with `--syn` or `--tcp-flags SYN,RST SYN`)
 * to N, or to the output interface's MTU less 40 (IPv4 and TCP headers), updating the TCP checksum
 * incrementally (RFC 1624). An MSS already at or below the value is left alone: raising it could
 * stall the connection.
 *
 * As the kernel here does it: iptables-nft loads TCPMSS as nft's `tcp option maxseg size set`
 * (nft_exthdr), which only rewrites an MSS option that is there (xt_TCPMSS would add one to a SYN
 * without), accepts a rule without a SYN match, and ignores a non-first fragment or a header cut
 * short. --clamp-mss-to-pmtu needs a route, so only FORWARD, OUTPUT and POSTROUTING take it.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { readU16, writeU16 } from '../../../router/wire/bytes.ts';
import { updateChecksumField16 } from '../../../router/wire/checksum.ts';
import { IPV4_FRAGMENT_OFFSET_MASK, IpProtocol, ipv4FlagsFragment, ipv4HeaderLength } from '../../../router/wire/ipv4.ts';
import { TCP, TcpOptionKind, TcpProblem, tcpFindOption, validateTcp } from '../../../router/wire/tcp.ts';
import { OptionError } from '../errors.ts';
import { CONTINUE, type RuleHeader, type Target, type TargetBuilder, type TargetType } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';

/** sizeof(struct iphdr) + sizeof(struct tcphdr). */
const HEADERS = 40;
/** libxt_TCPMSS's --set-mss maximum: UINT16_MAX less the IPv4 header. */
const MAX_MSS = 0xffff - 20;
const MSS_OPTION_LENGTH = 4;
const CLAMP = -1;
const CLAMP_CHAINS = ['FORWARD', 'OUTPUT', 'POSTROUTING'];
const BUILTIN_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

class TcpmssTarget implements Target {
  readonly name = 'TCPMSS';

  /** The MSS to set, or CLAMP. */
  constructor(private readonly mss: number) {}

  run(packet: Packet): number {
    const buf = packet.buf;
    if ((ipv4FlagsFragment(buf, 0) & IPV4_FRAGMENT_OFFSET_MASK) !== 0) return CONTINUE;
    const thoff = ipv4HeaderLength(buf, 0);
    if (validateTcp(buf, thoff, buf.length - thoff) !== TcpProblem.OK) return CONTINUE;
    let mss = this.mss;
    if (mss === CLAMP) {
      const out = packet.outInterface;
      if (out === null || out.mtu <= HEADERS) return CONTINUE;
      mss = out.mtu - HEADERS;
    }
    const option = tcpFindOption(buf, thoff, TcpOptionKind.MSS);
    if (option < 0 || buf[option + 1] !== MSS_OPTION_LENGTH) return CONTINUE;
    const old = readU16(buf, option + 2);
    if (old <= mss) return CONTINUE;
    writeU16(buf, option + 2, mss);
    // A partial checksum is finished over the new option on the way out.
    if (!packet.checksumPartial) updateChecksumField16(buf, thoff + TCP.CHECKSUM, old, mss);
    return CONTINUE;
  }

  save(): string {
    return this.mss === CLAMP ? ' -j TCPMSS --clamp-mss-to-pmtu' : ` -j TCPMSS --set-mss ${this.mss}`;
  }

  print(): string {
    return this.mss === CLAMP ? ' TCPMSS clamp to PMTU' : ` TCPMSS set ${this.mss}`;
  }
}

class TcpmssBuilder implements TargetBuilder {
  private mss: number | null = null;

  option(name: string, args: readonly string[]): void {
    if (name === 'clamp-mss-to-pmtu') {
      this.mss = CLAMP;
      return;
    }
    const mss = parseCNumber(args[0]!, MAX_MSS);
    if (mss < 0) throw new OptionError(args[0]!, `TCPMSS: bad value "${args[0]}" for option "--set-mss", or out of range (0-${MAX_MSS})`);
    // The two share one field: the later option wins, as in iptables.
    this.mss = mss;
  }

  build(header: RuleHeader): Target {
    if (this.mss === null) throw new OptionError('TCPMSS', 'TCPMSS target: At least one parameter is required');
    if (header.protocol !== IpProtocol.TCP || header.invertProtocol) {
      throw new OptionError('TCPMSS', 'TCPMSS needs "-p tcp" (not inverted), as the kernel requires (Invalid argument)');
    }
    if (this.mss === CLAMP && BUILTIN_CHAINS.includes(header.chain) && !CLAMP_CHAINS.includes(header.chain)) {
      throw new OptionError('--clamp-mss-to-pmtu', `TCPMSS --clamp-mss-to-pmtu is only valid in FORWARD, OUTPUT and POSTROUTING (the kernel refuses it in ${header.chain}: Invalid argument)`);
    }
    return new TcpmssTarget(this.mss);
  }
}

export const tcpmssTarget: TargetType = {
  name: 'TCPMSS',
  options: [
    { names: ['set-mss'], args: 1, invertible: false },
    { names: ['clamp-mss-to-pmtu'], args: 0, invertible: false },
  ],
  create: () => new TcpmssBuilder(),
};
