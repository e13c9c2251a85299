/**
 * `-m length [!] --length N[:M]` (xt_length): the IP total length inside [N, M], XOR the inversion.
 * `N:` runs to 65535, `:M` from 0; a range with N > M is accepted and never matches, as iptables
 * and the kernel take it.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { ipv4TotalLength } from '../../../router/wire/ipv4.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';

const U16_MAX = 0xffff;

class LengthMatch implements Match {
  constructor(
    private readonly min: number,
    private readonly max: number,
    private readonly invert: boolean,
  ) {}

  test(packet: Packet): MatchResult {
    const length = ipv4TotalLength(packet.buf, 0);
    return (length >= this.min && length <= this.max) !== this.invert ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m length${this.invert ? ' !' : ''} --length ${this.rangeText()}`;
  }

  /** `length !1500`, `length 0:40`. */
  print(): string {
    return ` length ${this.invert ? '!' : ''}${this.rangeText()}`;
  }

  private rangeText(): string {
    return this.min === this.max ? `${this.min}` : `${this.min}:${this.max}`;
  }
}

/** XTTYPE_UINT16RC: one or two base-0 numbers split by `:`, an empty side meaning 0 or 65535. */
function parseLengthRange(text: string): [number, number] {
  const parts = text.split(':');
  if (parts.length > 2) throw new OptionError(text, `length: Too many components for option "--length" (max: 2) in "${text}"`);
  const value = (part: string, empty: number): number => {
    if (part === '' && parts.length === 2) return empty;
    const number = parseCNumber(part, U16_MAX);
    if (number < 0) throw new OptionError(text, `length: bad value for option "--length" near "${part}", or out of range (0-${U16_MAX})`);
    return number;
  };
  const min = value(parts[0]!, 0);
  return [min, parts.length === 2 ? value(parts[1]!, U16_MAX) : min];
}

class LengthBuilder implements MatchBuilder {
  private range: [number, number] | null = null;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean): void {
    this.range = parseLengthRange(args[0]!);
    this.invert = invert;
  }

  build(): Match {
    if (!this.range) throw new OptionError('length', 'length: option "--length" must be specified');
    return new LengthMatch(this.range[0], this.range[1], this.invert);
  }
}

export const lengthMatch: MatchType = {
  name: 'length',
  options: [{ names: ['length'], args: 1, invertible: true }],
  create: () => new LengthBuilder(),
};
