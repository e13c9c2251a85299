/**
 * `-m icmp --icmp-type TYPE[/CODE]` (ip_tables' icmp match). Loaded implicitly by `-p icmp`. Names
 * are iptables' table, matched case-insensitively by unique prefix as iptables does; type 255 is
 * "any". A non-first fragment never matches; a header cut short drops the packet.
 */
import { ICMP_HEADER_LENGTH, icmpCode, icmpType } from '../../../router/wire/icmp.ts';
import { IpProtocol } from '../../../router/wire/ipv4.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type ListFormat, type Match, type MatchBuilder, type MatchType, type RuleHeader } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';
import { requireProtocol } from './ports.ts';

const ANY_TYPE = 0xff;

/** name, type, lowest code, highest code: libxt_icmp's table, checked against iptables 1.8.9. */
const ICMP_NAMES: readonly (readonly [string, number, number, number])[] = [
  ['any', 0xff, 0, 0xff],
  ['echo-reply', 0, 0, 0xff],
  ['pong', 0, 0, 0xff],
  ['destination-unreachable', 3, 0, 0xff],
  ['network-unreachable', 3, 0, 0],
  ['host-unreachable', 3, 1, 1],
  ['protocol-unreachable', 3, 2, 2],
  ['port-unreachable', 3, 3, 3],
  ['fragmentation-needed', 3, 4, 4],
  ['source-route-failed', 3, 5, 5],
  ['network-unknown', 3, 6, 6],
  ['host-unknown', 3, 7, 7],
  ['network-prohibited', 3, 9, 9],
  ['host-prohibited', 3, 10, 10],
  ['TOS-network-unreachable', 3, 11, 11],
  ['TOS-host-unreachable', 3, 12, 12],
  ['communication-prohibited', 3, 13, 13],
  ['host-precedence-violation', 3, 14, 14],
  ['precedence-cutoff', 3, 15, 15],
  ['source-quench', 4, 0, 0xff],
  ['redirect', 5, 0, 0xff],
  ['network-redirect', 5, 0, 0],
  ['host-redirect', 5, 1, 1],
  ['TOS-network-redirect', 5, 2, 2],
  ['TOS-host-redirect', 5, 3, 3],
  ['echo-request', 8, 0, 0xff],
  ['ping', 8, 0, 0xff],
  ['router-advertisement', 9, 0, 0xff],
  ['router-solicitation', 10, 0, 0xff],
  ['time-exceeded', 11, 0, 0xff],
  ['ttl-exceeded', 11, 0, 0xff],
  ['ttl-zero-during-transit', 11, 0, 0],
  ['ttl-zero-during-reassembly', 11, 1, 1],
  ['parameter-problem', 12, 0, 0xff],
  ['ip-header-bad', 12, 0, 0],
  ['required-option-missing', 12, 1, 1],
  ['timestamp-request', 13, 0, 0xff],
  ['timestamp-reply', 14, 0, 0xff],
  ['address-mask-request', 17, 0, 0xff],
  ['address-mask-reply', 18, 0, 0xff],
];

function parseIcmpType(text: string): [number, number, number] {
  const lower = text.toLowerCase();
  const named = ICMP_NAMES.filter(([name]) => name.toLowerCase().startsWith(lower));
  if (named.length > 1) {
    throw new OptionError(text, `ambiguous ICMP type "${text}": "${named[0]![0]}" or "${named[1]![0]}"?`);
  }
  if (named.length === 1) {
    const [, type, low, high] = named[0]!;
    return [type, low, high];
  }
  const slash = text.indexOf('/');
  const type = parseCNumber(slash < 0 ? text : text.slice(0, slash), 0xff);
  if (type < 0) throw new OptionError(text, `unknown ICMP type "${text}"`);
  if (slash < 0) return [type, 0, 0xff];
  const code = parseCNumber(text.slice(slash + 1), 0xff);
  if (code < 0) throw new OptionError(text, `unknown ICMP code in "${text}"`);
  return [type, code, code];
}

class IcmpMatch implements Match {
  constructor(
    private readonly type: number,
    private readonly codeLow: number,
    private readonly codeHigh: number,
    private readonly invert: boolean,
  ) {}

  test(packet: Packet, thoff: number, fragoff: number): MatchResult {
    if (fragoff !== 0) return MatchResult.NO;
    const buf = packet.buf;
    if (thoff + ICMP_HEADER_LENGTH > buf.length) return MatchResult.HOTDROP;
    const code = icmpCode(buf, thoff);
    const matches = this.type === ANY_TYPE || (icmpType(buf, thoff) === this.type && code >= this.codeLow && code <= this.codeHigh);
    return matches !== this.invert ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    let type = this.type === ANY_TYPE ? 'any' : `${this.type}`;
    if (this.type !== ANY_TYPE && (this.codeLow !== 0 || this.codeHigh !== 0xff)) type += `/${this.codeLow}`;
    return ` -m icmp${this.invert ? ' !' : ''} --icmp-type ${type}`;
  }

  /** libipt_icmp's print: the table's name for exactly this type and code range, else the numbers. */
  print(format: ListFormat): string {
    const named = format.numeric ? undefined : ICMP_NAMES.find(([, type, low, high]) => type === this.type && low === this.codeLow && high === this.codeHigh);
    if (named) return ` icmp ${this.invert ? '!' : ''}${named[0]}`;
    let text = ` icmp${this.invert ? ' !' : ''}type ${this.type}`;
    if (this.codeLow === this.codeHigh) text += ` code ${this.codeLow}`;
    else if (this.codeLow !== 0 || this.codeHigh !== 0xff) text += ` codes ${this.codeLow}-${this.codeHigh}`;
    return text;
  }
}

class IcmpBuilder implements MatchBuilder {
  private spec: [number, number, number] | null = null;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean): void {
    this.spec = parseIcmpType(args[0]!);
    this.invert = invert;
  }

  build(header: RuleHeader): Match {
    requireProtocol(header, IpProtocol.ICMP, 'icmp');
    if (!this.spec) throw new OptionError('icmp', 'the icmp match needs --icmp-type');
    return new IcmpMatch(this.spec[0], this.spec[1], this.spec[2], this.invert);
  }
}

export const icmpMatch: MatchType = {
  name: 'icmp',
  protocol: IpProtocol.ICMP,
  options: [{ names: ['icmp-type'], args: 1, invertible: true }],
  create: () => new IcmpBuilder(),
};
