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

class MarkMatch implements Match {
  constructor(
    private readonly value: number,
    private readonly mask: number,
    private readonly invert: boolean,
  ) {}

  test(packet: Packet): MatchResult {
    return (((packet.mark & this.mask) >>> 0) === this.value) !== this.invert ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m mark${this.invert ? ' !' : ''} --mark ${this.valueText()}`;
  }

  print(): string {
    return ` mark match ${this.invert ? '! ' : ''}${this.valueText()}`;
  }

  private valueText(): string {
    return this.mask === U32_MAX ? hex(this.value) : `${hex(this.value)}/${hex(this.mask)}`;
  }
}

class MarkBuilder implements MatchBuilder {
  private spec: [number, number] | null = null;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean): void {
    this.spec = parseMarkMask(args[0]!, name);
    this.invert = invert;
  }

  build(): Match {
    if (!this.spec) throw new OptionError('mark', 'the mark match needs --mark');
    return new MarkMatch(this.spec[0], this.spec[1], this.invert);
  }
}

export const markMatch: MatchType = {
  name: 'mark',
  options: [{ names: ['mark'], args: 1, invertible: true }],
  create: () => new MarkBuilder(),
};
