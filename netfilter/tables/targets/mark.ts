/**
 * `-j MARK` (xt_MARK revision 2): mark = (mark & ~mask) ^ value. Every spelling is saved as
 * iptables-save prints it, `--set-xmark VALUE/MASK`: --set-mark v/m is v/(v|m), --and-mark b is
 * 0/~b, --or-mark b is b/b, --xor-mark b is b/0. The kernel accepts MARK in every table.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { CONTINUE, type Target, type TargetBuilder, type TargetType } from '../extension.ts';
import { parseMarkMask, parseMarkValue } from '../matches/mark.ts';
import { hex } from '../numbers.ts';

class MarkTarget implements Target {
  readonly name = 'MARK';

  constructor(
    private readonly value: number,
    private readonly mask: number,
  ) {}

  run(packet: Packet): number {
    packet.mark = ((packet.mark & ~this.mask) ^ this.value) >>> 0;
    return CONTINUE;
  }

  save(): string {
    return ` -j MARK --set-xmark ${hex(this.value)}/${hex(this.mask)}`;
  }

  /** libxt_MARK's mark_tg_print: the simplest spelling of the operation, in its order of tests. */
  print(): string {
    const { value, mask } = this;
    if (value === 0) return ` MARK and ${hex(~mask)}`;
    if (value === mask) return ` MARK or ${hex(value)}`;
    if (mask === 0) return ` MARK xor ${hex(value)}`;
    if (mask === 0xffffffff) return ` MARK set ${hex(value)}`;
    return ` MARK xset ${hex(value)}/${hex(mask)}`;
  }
}

class MarkBuilder implements TargetBuilder {
  private spec: [number, number] | null = null;

  option(name: string, args: readonly string[], _invert: boolean, written: string): void {
    if (this.spec) throw new OptionError(written, 'MARK takes one of --set-xmark, --set-mark, --and-mark, --or-mark and --xor-mark');
    const text = args[0]!;
    switch (name) {
      case 'set-xmark':
        this.spec = parseMarkMask(text, name);
        break;
      case 'set-mark': {
        const [value, mask] = parseMarkMask(text, name);
        this.spec = [value, (value | mask) >>> 0];
        break;
      }
      case 'and-mark':
        this.spec = [0, ~parseMarkValue(text, name) >>> 0];
        break;
      case 'or-mark': {
        const bits = parseMarkValue(text, name);
        this.spec = [bits, bits];
        break;
      }
      default:
        this.spec = [parseMarkValue(text, name), 0];
    }
  }

  build(): Target {
    if (!this.spec) throw new OptionError('MARK', 'MARK needs --set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark');
    return new MarkTarget(this.spec[0], this.spec[1]);
  }
}

export const markTarget: TargetType = {
  name: 'MARK',
  options: [
    { names: ['set-xmark'], args: 1, invertible: false },
    { names: ['set-mark'], args: 1, invertible: false },
    { names: ['and-mark'], args: 1, invertible: false },
    { names: ['or-mark'], args: 1, invertible: false },
    { names: ['xor-mark'], args: 1, invertible: false },
  ],
  create: () => new MarkBuilder(),
};
