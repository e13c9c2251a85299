/**
 * `-m ttl --ttl-eq N | ! --ttl-eq N | --ttl-lt N | --ttl-gt N` (ipt_ttl): the IP TTL compared with
 * N. Only --ttl-eq (and its old spelling --ttl) can be inverted; one comparison per match.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { ipv4Ttl } from '../../../router/wire/ipv4.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';

const Mode = { EQ: 0, NE: 1, LT: 2, GT: 3 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];
const SAVED = [' --ttl-eq', ' ! --ttl-eq', ' --ttl-lt', ' --ttl-gt'];
const PRINTED = ['==', '!=', '<', '>'];
/** libipt_ttl's option table order, for its conflict message. */
const OPTION_ORDER = ['ttl-lt', 'ttl-gt', 'ttl-eq', 'ttl'];

class TtlMatch implements Match {
  constructor(
    private readonly mode: Mode,
    private readonly ttl: number,
  ) {}

  test(packet: Packet): MatchResult {
    const ttl = ipv4Ttl(packet.buf, 0);
    let matches: boolean;
    switch (this.mode) {
      case Mode.EQ:
        matches = ttl === this.ttl;
        break;
      case Mode.NE:
        matches = ttl !== this.ttl;
        break;
      case Mode.LT:
        matches = ttl < this.ttl;
        break;
      default:
        matches = ttl > this.ttl;
    }
    return matches ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m ttl${SAVED[this.mode]} ${this.ttl}`;
  }

  /** `TTL match TTL != 64`. */
  print(): string {
    return ` TTL match TTL ${PRINTED[this.mode]} ${this.ttl}`;
  }
}

class TtlBuilder implements MatchBuilder {
  private mode: Mode | -1 = -1;
  private ttl = 0;
  private readonly given: string[] = [];

  option(name: string, args: readonly string[], invert: boolean): void {
    this.given.push(name);
    const ttl = parseCNumber(args[0]!, 255);
    if (ttl < 0) throw new OptionError(args[0]!, `ttl: bad value "${args[0]}" for option "--${name}", or out of range (0-255)`);
    this.ttl = ttl;
    this.mode = name === 'ttl-lt' ? Mode.LT : name === 'ttl-gt' ? Mode.GT : invert ? Mode.NE : Mode.EQ;
  }

  build(): Match {
    if (this.given.length > 1) {
      const [first, second] = OPTION_ORDER.filter((name) => this.given.includes(name));
      throw new OptionError(`--${first}`, `ttl: option "--${first}" cannot be used together with "--${second}"`);
    }
    if (this.mode === -1) throw new OptionError('ttl', "TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt'");
    return new TtlMatch(this.mode, this.ttl);
  }
}

export const ttlMatch: MatchType = {
  name: 'ttl',
  options: [
    { names: ['ttl-eq'], args: 1, invertible: true },
    { names: ['ttl-lt'], args: 1, invertible: false },
    { names: ['ttl-gt'], args: 1, invertible: false },
    { names: ['ttl'], args: 1, invertible: false },
  ],
  create: () => new TtlBuilder(),
};
