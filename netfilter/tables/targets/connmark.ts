/**
 * `-j CONNMARK` (xt_CONNMARK revision 2): the connection's mark, set from the rule or saved from the
 * packet's mark, or the packet's mark restored from it.
 *
 *   --set-xmark V/M      ctmark = (ctmark & ~M) ^ V; --set-mark V/M is V/(V|M), --and-mark B is
 *                        0/~B, --or-mark B is B/B, --xor-mark B is B/0 (all saved as --set-xmark)
 *   --save-mark          ctmark = (ctmark & ~ctmask) ^ (mark & nfmask)
 *   --restore-mark       mark = (mark & ~nfmask) ^ (ctmark & ctmask)
 *   --nfmask, --ctmask (both all ones by default), or --mask M for both; --left-shift-mark N and
 *   --right-shift-mark N shift the value before it is combined.
 *
 * Options apply in the order given, as iptables parses them (so `--set-mark 1 --mask 3` is 0x1/0x3).
 * A packet without a connection is left alone. A changed connection mark is reported as the
 * kernel's IPCT_MARK event (an UPDATE in `vrouter conntrack -E`). Needs connection tracking.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { CtEvent } from '../../conntrack/status.ts';
import { OptionError } from '../errors.ts';
import { CONTINUE, type Target, type TargetBuilder, type TargetType } from '../extension.ts';
import { parseMarkMask, parseMarkValue } from '../matches/mark.ts';
import { hex, parseCNumber } from '../numbers.ts';

const U32_MAX = 0xffffffff;
const Mode = { SET: 0, SAVE: 1, RESTORE: 2 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** Operations in libxt_CONNMARK's table order, with their option ids (for its conflict message). */
const OPERATIONS: readonly (readonly [string, number])[] = [
  ['set-xmark', 8],
  ['set-mark', 0],
  ['and-mark', 3],
  ['or-mark', 4],
  ['xor-mark', 5],
  ['save-mark', 1],
  ['restore-mark', 2],
];
const MASKS = ['ctmask', 'nfmask', 'mask'] as const;
const SHIFTS = ['left-shift-mark', 'right-shift-mark'] as const;

class ConnmarkTarget implements Target {
  readonly name = 'CONNMARK';
  readonly needsConntrack = true;
  constructor(
    private readonly mode: Mode,
    /** SET: the value and mask; SAVE and RESTORE: unused. */
    private readonly ctmark: number,
    private readonly ctmask: number,
    private readonly nfmask: number,
    private readonly shiftRight: boolean,
    private readonly shiftBits: number,
  ) {}

  run(packet: Packet): number {
    const entry = packet.conntrack;
    if (entry === null) return CONTINUE;
    switch (this.mode) {
      case Mode.SET:
        return this.setConnectionMark(packet, this.shift(((entry.mark & ~this.ctmask) ^ this.ctmark) >>> 0), true);
      case Mode.SAVE:
        return this.setConnectionMark(packet, this.shift((packet.mark & this.nfmask) >>> 0), false);
      default:
        packet.mark = ((packet.mark & ~this.nfmask) ^ this.shift((entry.mark & this.ctmask) >>> 0)) >>> 0;
        return CONTINUE;
    }
  }

  save(): string {
    let text = ' -j CONNMARK';
    if (this.mode === Mode.SET) text += ` --set-xmark ${hex(this.ctmark)}/${hex(this.ctmask)}`;
    else text += ` --${this.mode === Mode.SAVE ? 'save' : 'restore'}-mark --nfmask ${hex(this.nfmask)} --ctmask ${hex(this.ctmask)}`;
    if (this.shiftBits !== 0) text += ` --${SHIFTS[this.shiftRight ? 1 : 0]} ${this.shiftBits}`;
    return text;
  }

  /**
   * libxt_CONNMARK's print: the simplest spelling of a set (as MARK's), a mask for both sides, or
   * the two masks, the second with a `~` that is printed and does not negate; then the shift.
   */
  print(): string {
    let text = ' CONNMARK';
    const { ctmark, ctmask, nfmask } = this;
    if (this.mode === Mode.SET) {
      if (ctmark === 0) text += ` and ${hex(~ctmask)}`;
      else if (ctmark === ctmask) text += ` or ${hex(ctmark)}`;
      else if (ctmask === 0) text += ` xor ${hex(ctmark)}`;
      else if (ctmask === U32_MAX) text += ` set ${hex(ctmark)}`;
      else text += ` xset ${hex(ctmark)}/${hex(ctmask)}`;
    } else if (this.mode === Mode.SAVE) {
      if (nfmask === U32_MAX && ctmask === U32_MAX) text += ' save';
      else if (nfmask === ctmask) text += ` save mask ${hex(nfmask)}`;
      else text += ` save nfmask ${hex(nfmask)} ctmask ~${hex(ctmask)}`;
    } else if (nfmask === U32_MAX && ctmask === U32_MAX) text += ' restore';
    else if (nfmask === ctmask) text += ` restore mask ${hex(ctmask)}`;
    else text += ` restore ctmask ${hex(ctmask)} nfmask ~${hex(nfmask)}`;
    if (this.shiftBits !== 0) text += ` ${SHIFTS[this.shiftRight ? 1 : 0]} ${this.shiftBits}`;
    return text;
  }

  private shift(value: number): number {
    return this.shiftRight ? value >>> this.shiftBits : (value << this.shiftBits) >>> 0;
  }

  /** SET computes the whole new mark (shifted after); SAVE combines the shifted packet bits with the kept ones. */
  private setConnectionMark(packet: Packet, value: number, whole: boolean): number {
    const entry = packet.conntrack!;
    const mark = whole ? value : ((entry.mark & ~this.ctmask) ^ value) >>> 0;
    if (mark !== entry.mark) {
      entry.mark = mark;
      entry.events |= CtEvent.MARK;
    }
    return CONTINUE;
  }
}

class ConnmarkBuilder implements TargetBuilder {
  private mode: Mode | -1 = -1;
  private ctmark = 0;
  private ctmask = U32_MAX;
  private nfmask = U32_MAX;
  private shiftRight = false;
  private shiftBits = 0;
  private readonly given = new Set<string>();

  option(name: string, args: readonly string[]): void {
    this.given.add(name);
    const text = args[0] ?? '';
    switch (name) {
      case 'set-xmark':
        this.set(parseMarkMask(text, name));
        return;
      case 'set-mark': {
        const [value, mask] = parseMarkMask(text, name);
        this.set([value, (value | mask) >>> 0]);
        return;
      }
      case 'and-mark':
        this.set([0, ~parseMarkValue(text, name) >>> 0]);
        return;
      case 'or-mark': {
        const bits = parseMarkValue(text, name);
        this.set([bits, bits]);
        return;
      }
      case 'xor-mark':
        this.set([parseMarkValue(text, name), 0]);
        return;
      case 'save-mark':
        this.mode = Mode.SAVE;
        return;
      case 'restore-mark':
        this.mode = Mode.RESTORE;
        return;
      case 'ctmask':
        this.ctmask = parseMarkValue(text, name);
        return;
      case 'nfmask':
        this.nfmask = parseMarkValue(text, name);
        return;
      case 'mask':
        this.ctmask = this.nfmask = parseMarkValue(text, name);
        return;
      default: {
        const bits = parseCNumber(text, 32);
        if (bits < 0) throw new OptionError(text, `CONNMARK: bad value "${text}" for option "--${name}", or out of range (0-32)`);
        this.shiftRight = name === 'right-shift-mark';
        this.shiftBits = bits;
      }
    }
  }

  build(): Target {
    this.checkConflicts();
    if (this.mode === -1) throw new OptionError('CONNMARK', 'CONNMARK target: No operation specified');
    return new ConnmarkTarget(this.mode, this.ctmark, this.ctmask, this.nfmask, this.shiftRight, this.shiftBits);
  }

  private set([value, mask]: [number, number]): void {
    this.mode = Mode.SET;
    this.ctmark = value;
    this.ctmask = mask;
  }

  /** As xtables' check: the first option in table order that has a partner, named with the partner of the lowest id. */
  private checkConflicts(): void {
    const operations = OPERATIONS.filter(([name]) => this.given.has(name));
    if (operations.length > 1) {
      const [first, ...others] = operations;
      const other = others.reduce((low, next) => (next[1] < low[1] ? next : low));
      throw new OptionError(`--${first![0]}`, `CONNMARK: option "--${first![0]}" cannot be used together with "--${other[0]}"`);
    }
    const masks = MASKS.filter((name) => this.given.has(name));
    if (this.given.has('mask') && masks.length > 1) {
      throw new OptionError(`--${masks[0]}`, `CONNMARK: option "--${masks[0]}" cannot be used together with "--mask"`);
    }
  }
}

export const connmarkTarget: TargetType = {
  name: 'CONNMARK',
  options: [
    ...OPERATIONS.map(([name]) => ({ names: [name], args: name === 'save-mark' || name === 'restore-mark' ? (0 as const) : (1 as const), invertible: false })),
    ...SHIFTS.map((name) => ({ names: [name], args: 1 as const, invertible: false })),
    ...MASKS.map((name) => ({ names: [name], args: 1 as const, invertible: false })),
  ],
  create: () => new ConnmarkBuilder(),
};
