/**
 * `-m iprange [!] --src-range A[-B] [!] --dst-range A[-B]` (xt_iprange revision 1): the address
 * inside the inclusive range, XOR the inversion, for each range given. A single address is the
 * range A-A; a reversed range is accepted and never matches (iptables warns), as in the kernel.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { formatIpv4Address, parseIpv4Address } from '../../../router/core/addresses.ts';
import { ipv4Dst, ipv4Src } from '../../../router/wire/ipv4.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';

interface AddressRange {
  readonly low: number;
  readonly high: number;
  readonly invert: boolean;
}

function inRange(range: AddressRange | null, address: number): boolean {
  return range === null || (address >= range.low && address <= range.high) !== range.invert;
}

function addresses(range: AddressRange): string {
  return `${formatIpv4Address(range.low)}-${formatIpv4Address(range.high)}`;
}

function savedRange(option: string, range: AddressRange | null): string {
  return range === null ? '' : `${range.invert ? ' !' : ''} --${option} ${addresses(range)}`;
}

function printedRange(side: string, range: AddressRange | null): string {
  return range === null ? '' : ` ${side} IP range${range.invert ? ' !' : ''} ${addresses(range)}`;
}

function parseRange(text: string, option: string, invert: boolean): AddressRange {
  const dash = text.indexOf('-');
  const [low, high] = dash < 0 ? [text, text] : [text.slice(0, dash), text.slice(dash + 1)];
  const address = (word: string): number => {
    try {
      return parseIpv4Address(word);
    } catch (error) {
      throw new OptionError(text, `iprange: Bad value for "--${option}" option: "${word}" (${(error as Error).message})`);
    }
  };
  return Object.freeze({ low: address(low), high: address(high), invert });
}

class IprangeMatch implements Match {
  constructor(
    private readonly source: AddressRange | null,
    private readonly destination: AddressRange | null,
  ) {}

  test(packet: Packet): MatchResult {
    const buf = packet.buf;
    return inRange(this.source, ipv4Src(buf, 0)) && inRange(this.destination, ipv4Dst(buf, 0)) ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m iprange${savedRange('src-range', this.source)}${savedRange('dst-range', this.destination)}`;
  }

  /** `source IP range ! A-B destination IP range C-D`: the `!` after the words. */
  print(): string {
    return printedRange('source', this.source) + printedRange('destination', this.destination);
  }
}

class IprangeBuilder implements MatchBuilder {
  private source: AddressRange | null = null;
  private destination: AddressRange | null = null;

  option(name: string, args: readonly string[], invert: boolean): void {
    const range = parseRange(args[0]!, name, invert);
    if (name === 'src-range') this.source = range;
    else this.destination = range;
  }

  build(): Match {
    if (!this.source && !this.destination) throw new OptionError('iprange', "iprange match: You must specify `--src-range' or `--dst-range'");
    return new IprangeMatch(this.source, this.destination);
  }
}

export const iprangeMatch: MatchType = {
  name: 'iprange',
  options: [
    { names: ['src-range'], args: 1, invertible: true },
    { names: ['dst-range'], args: 1, invertible: true },
  ],
  create: () => new IprangeBuilder(),
};
