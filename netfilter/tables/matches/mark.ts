/** `-m mark --mark VALUE[/MASK]` (xt_mark): (packet mark & mask) == value, XOR the inversion. */
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { hex, parseCNumber } from '../numbers.ts';

const U32_MAX = 0xffffffff;

/** `value[/mask]` as iptables' XTTYPE_MARKMASK32 reads it; the mask defaults to all ones. */
export function parseMarkMask(text: string, option: string): [number, number] {
  const slash = text.indexOf('/');
  const value = parseCNumber(slash < 0 ? text : text.slice(0, slash), U32_MAX);
  const mask = slash < 0 ? U32_MAX : parseCNumber(text.slice(slash + 1), U32_MAX);
  if (value < 0 || mask < 0) throw new OptionError(text, `bad value "${text}" for --${option} (expected VALUE[/MASK], 32-bit)`);
  return [value, mask];
}

export function parseMarkValue(text: string, option: string): number {
  const value = parseCNumber(text, U32_MAX);
  if (value < 0) throw new OptionError(text, `bad value "${text}" for --${option} (expected a 32-bit number)`);
  return value;
}

/** `[!] --mark VALUE[/MASK]` as mark and connmark take it: the test and its spelling. */
export class MarkCondition {
  constructor(
    readonly value: number,
    readonly mask: number,
    readonly invert: boolean,
  ) {}

  holds(mark: number): boolean {
    return (((mark & this.mask) >>> 0) === this.value) !== this.invert;
  }

  /** VALUE or VALUE/MASK in hex, as iptables saves and lists it. */
  text(): string {
    return this.mask === U32_MAX ? hex(this.value) : `${hex(this.value)}/${hex(this.mask)}`;
  }
}

/** Collects `[!] --mark VALUE[/MASK]` for a match made by `make`; `missing` is iptables' refusal without it. */
export class MarkConditionBuilder implements MatchBuilder {
  private condition: MarkCondition | null = null;

  constructor(
    private readonly matchName: string,
    private readonly missing: string,
    private readonly make: (condition: MarkCondition) => Match,
  ) {}

  option(name: string, args: readonly string[], invert: boolean): void {
    const [value, mask] = parseMarkMask(args[0]!, name);
    this.condition = new MarkCondition(value, mask, invert);
  }

  build(): Match {
    if (!this.condition) throw new OptionError(this.matchName, this.missing);
    return this.make(this.condition);
  }
}

class MarkMatch implements Match {
  constructor(private readonly condition: MarkCondition) {}

  test(packet: Packet): MatchResult {
    return this.condition.holds(packet.mark) ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m mark${this.condition.invert ? ' !' : ''} --mark ${this.condition.text()}`;
  }

  print(): string {
    return ` mark match ${this.condition.invert ? '! ' : ''}${this.condition.text()}`;
  }
}

export const markMatch: MatchType = {
  name: 'mark',
  options: [{ names: ['mark'], args: 1, invertible: true }],
  create: () => new MarkConditionBuilder('mark', 'the mark match needs --mark', (condition) => new MarkMatch(condition)),
};
