/**
 * `-m multiport` (xt_multiport revision 1): up to 15 ports, a range `a:b` (a < b) counting as two,
 * against the source, the destination, or either port. Reads the first four L4 bytes, so it serves
 * every protocol whose ports sit there.
 */
import { readU16 } from '../../../router/wire/bytes.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type ListFormat, type Match, type MatchBuilder, type MatchType, type RuleHeader } from '../extension.ts';
import { parsePort } from '../numbers.ts';
import { protocolName } from '../protocols.ts';
import { printPort } from './ports.ts';

const MAX_PORTS = 15;
/** tcp, udp, udplite, sctp, dccp: what xt_multiport's checkentry allows. */
const PORT_PROTOCOLS: readonly number[] = [6, 17, 136, 132, 33];

const Direction = { SOURCE: 0, DESTINATION: 1, EITHER: 2 } as const;
type Direction = (typeof Direction)[keyof typeof Direction];
const OPTION_OF: readonly string[] = ['sports', 'dports', 'ports'];

class MultiportMatch implements Match {
  constructor(
    private readonly direction: Direction,
    /** Pairs low, high; a single port is low === high. */
    private readonly ranges: Uint16Array,
    private readonly invert: boolean,
    private readonly text: string,
    /** The rule's `-p`, whose service names -L shows. */
    private readonly protocol: number,
  ) {}

  test(packet: Packet, thoff: number, fragoff: number): MatchResult {
    if (fragoff !== 0) return MatchResult.NO;
    const buf = packet.buf;
    if (thoff + 4 > buf.length) return MatchResult.HOTDROP;
    // Source and destination port lead the header of every protocol multiport accepts.
    const src = readU16(buf, thoff);
    const dst = readU16(buf, thoff + 2);
    const ranges = this.ranges;
    const direction = this.direction;
    for (let i = 0; i < ranges.length; i += 2) {
      const low = ranges[i];
      const high = ranges[i + 1];
      if (
        (direction !== Direction.DESTINATION && src >= low && src <= high) ||
        (direction !== Direction.SOURCE && dst >= low && dst <= high)
      ) {
        return this.invert ? MatchResult.NO : MatchResult.YES;
      }
    }
    return this.invert ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m multiport${this.invert ? ' !' : ''} --${OPTION_OF[this.direction]} ${this.text}`;
  }

  /** `multiport dports 53,1000:2000`; inverted, libxt_multiport prints ` !` after the space: `dports  !53`. */
  print(format: ListFormat): string {
    const protocol = protocolName(this.protocol);
    const ranges = this.ranges;
    const shown: string[] = [];
    for (let i = 0; i < ranges.length; i += 2) {
      const low = printPort(ranges[i]!, protocol, format);
      shown.push(ranges[i] === ranges[i + 1] ? low : `${low}:${printPort(ranges[i + 1]!, protocol, format)}`);
    }
    return ` multiport ${OPTION_OF[this.direction]} ${this.invert ? ' !' : ''}${shown.join(',')}`;
  }
}

function parsePortList(text: string): { ranges: number[]; canonical: string } {
  const ranges: number[] = [];
  const shown: string[] = [];
  let count = 0;
  for (const item of text.split(',')) {
    const colon = item.indexOf(':');
    if (colon < 0) {
      const port = parsePort(item);
      ranges.push(port, port);
      shown.push(`${port}`);
      count += 1;
    } else {
      const low = parsePort(item.slice(0, colon));
      const high = parsePort(item.slice(colon + 1));
      if (low >= high) throw new OptionError(item, `invalid port range "${item}" (multiport needs low < high)`);
      ranges.push(low, high);
      shown.push(`${low}:${high}`);
      count += 2;
    }
  }
  if (count > MAX_PORTS) throw new OptionError(text, `too many ports in "${text}" (at most ${MAX_PORTS}, a range counts as 2)`);
  return { ranges, canonical: shown.join(',') };
}

class MultiportBuilder implements MatchBuilder {
  private direction: Direction | -1 = -1;
  private list: { ranges: number[]; canonical: string } | null = null;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean, written: string): void {
    if (this.direction !== -1) throw new OptionError(written, 'multiport takes only one of --sports, --dports and --ports');
    this.direction = name === 'source-ports' ? Direction.SOURCE : name === 'destination-ports' ? Direction.DESTINATION : Direction.EITHER;
    this.list = parsePortList(args[0]!);
    this.invert = invert;
  }

  build(header: RuleHeader): Match {
    if (!PORT_PROTOCOLS.includes(header.protocol) || header.invertProtocol) {
      throw new OptionError('multiport', 'the multiport match needs "-p tcp", "-p udp", "-p udplite", "-p sctp" or "-p dccp" (not inverted)');
    }
    if (this.direction === -1 || !this.list) throw new OptionError('multiport', 'the multiport match needs --sports, --dports or --ports');
    return new MultiportMatch(this.direction, Uint16Array.from(this.list.ranges), this.invert, this.list.canonical, header.protocol);
  }
}

export const multiportMatch: MatchType = {
  name: 'multiport',
  options: [
    { names: ['source-ports', 'sports'], args: 1, invertible: true },
    { names: ['destination-ports', 'dports'], args: 1, invertible: true },
    { names: ['ports'], args: 1, invertible: true },
  ],
  create: () => new MultiportBuilder(),
};
