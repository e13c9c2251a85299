/**
 * `-m tcp` (xt_tcpudp): --sport, --dport, --tcp-flags MASK COMP, --syn. Loaded implicitly by `-p tcp`
 * followed by one of its options. A non-first fragment has no TCP header and never matches; one at
 * offset 1 (8 bytes in, overwriting the flags) and a header cut short are dropped outright.
 */
import { TCP_MIN_HEADER_LENGTH, tcpDstPort, tcpFlags, tcpSrcPort } from '../../../router/wire/tcp.ts';
import { IpProtocol } from '../../../router/wire/ipv4.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type ListFormat, type Match, type MatchBuilder, type MatchType, type RuleHeader } from '../extension.ts';
import { parsePortRange } from '../numbers.ts';
import { ANY_PORT, portMatches, printPortRange, requireProtocol, savePortRange, type PortRange } from './ports.ts';

/** iptables' names for the flag bits it knows, in the order it prints them (CWR and ECE have none). */
const FLAG_NAMES: readonly (readonly [string, number])[] = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
];
const ALL_FLAGS = 0x3f;
/** --syn: SYN set, ACK, RST and FIN clear. */
const SYN_MASK = 0x17;
const SYN_COMP = 0x02;

function parseFlags(text: string): number {
  let flags = 0;
  if (text === '') return 0;
  for (const name of text.split(',')) {
    const upper = name.toUpperCase();
    if (upper === 'ALL') flags |= ALL_FLAGS;
    else if (upper !== 'NONE') {
      const known = FLAG_NAMES.find(([flagName]) => flagName === upper);
      if (!known) throw new OptionError(name, `unknown TCP flag "${name}"`);
      flags |= known[1];
    }
  }
  return flags;
}

function saveFlags(flags: number): string {
  if (flags === 0) return 'NONE';
  return FLAG_NAMES.filter(([, bit]) => flags & bit)
    .map(([name]) => name)
    .join(',');
}

/** printf's `0x%02X`. */
function hexByte(value: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(2, '0')}`;
}

class TcpMatch implements Match {
  constructor(
    private readonly sport: PortRange,
    private readonly dport: PortRange,
    private readonly flagMask: number,
    private readonly flagComp: number,
    private readonly invertFlags: boolean,
  ) {}

  test(packet: Packet, thoff: number, fragoff: number): MatchResult {
    if (fragoff !== 0) return fragoff === 1 ? MatchResult.HOTDROP : MatchResult.NO;
    const buf = packet.buf;
    if (thoff + TCP_MIN_HEADER_LENGTH > buf.length) return MatchResult.HOTDROP;
    if (!portMatches(this.sport, tcpSrcPort(buf, thoff))) return MatchResult.NO;
    if (!portMatches(this.dport, tcpDstPort(buf, thoff))) return MatchResult.NO;
    if (((tcpFlags(buf, thoff) & this.flagMask) === this.flagComp) === this.invertFlags) return MatchResult.NO;
    return MatchResult.YES;
  }

  save(): string {
    let text = ' -m tcp' + savePortRange('sport', this.sport) + savePortRange('dport', this.dport);
    if (this.flagMask !== 0 || this.invertFlags) {
      text += `${this.invertFlags ? ' !' : ''} --tcp-flags ${saveFlags(this.flagMask)} ${saveFlags(this.flagComp)}`;
    }
    return text;
  }

  /** `tcp dpt:22 flags:0x17/0x02`, the flags by name without -n. */
  print(format: ListFormat): string {
    let text = ' tcp' + printPortRange('spt', this.sport, 'tcp', format) + printPortRange('dpt', this.dport, 'tcp', format);
    if (this.flagMask !== 0 || this.invertFlags) {
      const flags = format.numeric ? `${hexByte(this.flagMask)}/${hexByte(this.flagComp)}` : `${saveFlags(this.flagMask)}/${saveFlags(this.flagComp)}`;
      text += ` flags:${this.invertFlags ? '!' : ''}${flags}`;
    }
    return text;
  }
}

class TcpBuilder implements MatchBuilder {
  private sport = ANY_PORT;
  private dport = ANY_PORT;
  private flagMask = 0;
  private flagComp = 0;
  private invertFlags = false;
  private flagsGiven = false;

  option(name: string, args: readonly string[], invert: boolean, written: string): void {
    if (name === 'syn' || name === 'tcp-flags') {
      if (this.flagsGiven) throw new OptionError(written, 'only one of --syn and --tcp-flags is allowed');
      this.flagsGiven = true;
      this.invertFlags = invert;
      if (name === 'syn') {
        this.flagMask = SYN_MASK;
        this.flagComp = SYN_COMP;
      } else {
        this.flagMask = parseFlags(args[0]!);
        this.flagComp = parseFlags(args[1]!);
      }
      return;
    }
    const [low, high] = parsePortRange(args[0]!);
    if (name === 'source-port') this.sport = { low, high, invert };
    else this.dport = { low, high, invert };
  }

  build(header: RuleHeader): Match {
    requireProtocol(header, IpProtocol.TCP, 'tcp');
    return new TcpMatch(this.sport, this.dport, this.flagMask, this.flagComp, this.invertFlags);
  }
}

export const tcpMatch: MatchType = {
  name: 'tcp',
  protocol: IpProtocol.TCP,
  options: [
    { names: ['source-port', 'sport'], args: 1, invertible: true },
    { names: ['destination-port', 'dport'], args: 1, invertible: true },
    { names: ['tcp-flags'], args: 2, invertible: true },
    { names: ['syn'], args: 0, invertible: true },
  ],
  create: () => new TcpBuilder(),
};
