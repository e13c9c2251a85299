/**
 * `-m connmark [!] --mark VALUE[/MASK]` (xt_connmark revision 1): (connection mark & mask) ==
 * value, XOR the inversion. A packet without a connection never matches, inverted or not, as in
 * the kernel. Needs connection tracking.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { MatchResult, type Match, type MatchType } from '../extension.ts';
import { MarkConditionBuilder, type MarkCondition } from './mark.ts';

class ConnmarkMatch implements Match {
  readonly needsConntrack = true;
  constructor(private readonly condition: MarkCondition) {}

  test(packet: Packet): MatchResult {
    const entry = packet.conntrack;
    if (entry === null) return MatchResult.NO;
    return this.condition.holds(entry.mark) ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m connmark${this.condition.invert ? ' !' : ''} --mark ${this.condition.text()}`;
  }

  /** `connmark match ! 0x0/0xff`, and without the `!` two blanks before the value, as libxt_connmark prints it. */
  print(): string {
    return ` connmark match ${this.condition.invert ? '!' : ''} ${this.condition.text()}`;
  }
}

export const connmarkMatch: MatchType = {
  name: 'connmark',
  options: [{ names: ['mark'], args: 1, invertible: true }],
  create: () => new MarkConditionBuilder('connmark', 'connmark: option "--mark" must be specified', (condition) => new ConnmarkMatch(condition)),
};
