/**
 * `-m udp` (xt_tcpudp): --sport, --dport. Loaded implicitly by `-p udp` followed by one of its
 * options. A non-first fragment never matches; a header cut short drops the packet.
 */
import { UDP_HEADER_LENGTH, udpDstPort, udpSrcPort } from '../../../router/wire/udp.ts';
import { IpProtocol } from '../../../router/wire/ipv4.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { MatchResult, type ListFormat, type Match, type MatchBuilder, type MatchType, type RuleHeader } from '../extension.ts';
import { parsePortRange } from '../numbers.ts';
import { ANY_PORT, portMatches, printPortRange, requireProtocol, savePortRange, type PortRange } from './ports.ts';

class UdpMatch implements Match {
  constructor(
    private readonly sport: PortRange,
    private readonly dport: PortRange,
  ) {}

  test(packet: Packet, thoff: number, fragoff: number): MatchResult {
    if (fragoff !== 0) return MatchResult.NO;
    const buf = packet.buf;
    if (thoff + UDP_HEADER_LENGTH > buf.length) return MatchResult.HOTDROP;
    if (!portMatches(this.sport, udpSrcPort(buf, thoff))) return MatchResult.NO;
    return portMatches(this.dport, udpDstPort(buf, thoff)) ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ' -m udp' + savePortRange('sport', this.sport) + savePortRange('dport', this.dport);
  }

  print(format: ListFormat): string {
    return ' udp' + printPortRange('spt', this.sport, 'udp', format) + printPortRange('dpt', this.dport, 'udp', format);
  }
}

class UdpBuilder implements MatchBuilder {
  private sport = ANY_PORT;
  private dport = ANY_PORT;

  option(name: string, args: readonly string[], invert: boolean): void {
    const [low, high] = parsePortRange(args[0]!);
    if (name === 'source-port') this.sport = { low, high, invert };
    else this.dport = { low, high, invert };
  }

  build(header: RuleHeader): Match {
    requireProtocol(header, IpProtocol.UDP, 'udp');
    return new UdpMatch(this.sport, this.dport);
  }
}

export const udpMatch: MatchType = {
  name: 'udp',
  protocol: IpProtocol.UDP,
  options: [
    { names: ['source-port', 'sport'], args: 1, invertible: true },
    { names: ['destination-port', 'dport'], args: 1, invertible: true },
  ],
  create: () => new UdpBuilder(),
};
