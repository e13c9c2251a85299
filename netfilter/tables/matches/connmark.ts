/**
 * `-m connmark [!] --mark VALUE[/MASK]` (xt_connmark revision 1): (connection mark & mask) ==
 * value, XOR the inversion. A packet without a connection never matches, inverted or not, as in
 * the kernel. Needs connection tracking.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { hex } from '../numbers.ts';
import { parseMarkMask } from './mark.ts';

const U32_MAX = 0xffffffff;

class ConnmarkMatch implements Match {
  readonly needsConntrack = true;
  constructor(
    private readonly value: number,
    private readonly mask: number,
    private readonly invert: boolean,
  ) {}

  test(packet: Packet): MatchResult {
    const entry = packet.conntrack;
    if (entry === null) return MatchResult.NO;
    return (((entry.mark & this.mask) >>> 0) === this.value) !== this.invert ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m connmark${this.invert ? ' !' : ''} --mark ${this.valueText()}`;
  }

  /** `connmark match ! 0x0/0xff`, and without the `!` two blanks before the value, as libxt_connmark prints it. */
  print(): string {
    return ` connmark match ${this.invert ? '!' : ''} ${this.valueText()}`;
  }

  private valueText(): string {
    return this.mask === U32_MAX ? hex(this.value) : `${hex(this.value)}/${hex(this.mask)}`;
  }
}

class ConnmarkBuilder implements MatchBuilder {
  private spec: [number, number] | null = null;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean): void {
    this.spec = parseMarkMask(args[0]!, name);
    this.invert = invert;
  }

  build(): Match {
    if (!this.spec) throw new OptionError('connmark', 'connmark: option "--mark" must be specified');
    return new ConnmarkMatch(this.spec[0], this.spec[1], this.invert);
  }
}

export const connmarkMatch: MatchType = {
  name: 'connmark',
  options: [{ names: ['mark'], args: 1, invertible: true }],
  create: () => new ConnmarkBuilder(),
};
