/**
 * `-j NFLOG [--nflog-group N] [--nflog-prefix P] [--nflog-size N] [--nflog-threshold N]`
 * (xt_NFLOG): the kernel hands the packet to a netlink group for a user-space logger (ulogd); the
 * router has none, so it writes the packet to its log as LOG does, in the same kernel format, the
 * line marked `NFLOG group=N` (and `prefix="P"` when there is one). The packet goes on.
 *
 * --nflog-size and --nflog-threshold only matter to the netlink queue; they are kept for
 * iptables-save. --nflog-range, which never worked, is taken and dropped as iptables-nft does
 * (it warns; iptables-save here prints neither it nor a threshold of 0, its default).
 */
import type { HookPoint } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { CONTINUE, type TablesEnv, type Target, type TargetBuilder, type TargetType } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';
import { saveString } from '../words.ts';
import { formatLogLine } from './log-format.ts';

/** NF_LOG_PREFIXLEN less the NUL: iptables cuts longer prefixes. */
const MAX_PREFIX = 127;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

class NflogTarget implements Target {
  readonly name = 'NFLOG';
  /** The line's start, made once per rule. */
  private readonly mark: string;

  constructor(
    private readonly sink: (line: string) => void,
    private readonly group: number,
    private readonly prefix: string,
    private readonly size: number,
    private readonly threshold: number,
  ) {
    this.mark = `NFLOG group=${group} ${prefix === '' ? '' : `prefix="${prefix}" `}`;
  }

  run(packet: Packet, hook: HookPoint): number {
    this.sink(formatLogLine(this.mark, 0, packet, hook));
    return CONTINUE;
  }

  save(): string {
    return ` -j NFLOG${this.options('--')}`;
  }

  /** The options as saved, without their dashes: `nflog-prefix "in: dropped" nflog-group 5`. */
  print(): string {
    return this.options('');
  }

  private options(dashes: string): string {
    let text = '';
    if (this.prefix !== '') text += ` ${dashes}nflog-prefix${saveString(this.prefix)}`;
    if (this.group !== 0) text += ` ${dashes}nflog-group ${this.group}`;
    if (this.size !== -1) text += ` ${dashes}nflog-size ${this.size}`;
    if (this.threshold !== 0) text += ` ${dashes}nflog-threshold ${this.threshold}`;
    return text;
  }
}

function parseNumber(text: string, option: string, max: number): number {
  const value = parseCNumber(text, max);
  if (value < 0) throw new OptionError(text, `NFLOG: bad value "${text}" for option "--${option}", or out of range (0-${max})`);
  return value;
}

class NflogBuilder implements TargetBuilder {
  private group = 0;
  private prefix = '';
  /** -1: no --nflog-size. */
  private size = -1;
  private range = false;
  private threshold = 0;

  constructor(private readonly env: TablesEnv) {}

  option(name: string, args: readonly string[]): void {
    const value = args[0]!;
    switch (name) {
      case 'nflog-group':
        this.group = parseNumber(value, name, U16_MAX);
        return;
      case 'nflog-prefix':
        if (value === '') throw new OptionError(value, 'NFLOG: empty --nflog-prefix (Argument must have a minimum length of 1 characters)');
        if (value.includes('\n')) throw new OptionError(value, 'NFLOG: Newlines not allowed in --log-prefix');
        this.prefix = value.slice(0, MAX_PREFIX);
        return;
      case 'nflog-range':
        parseNumber(value, name, U32_MAX);
        this.range = true;
        return;
      case 'nflog-size':
        this.size = parseNumber(value, name, U32_MAX);
        return;
      default:
        this.threshold = parseNumber(value, name, U16_MAX);
    }
  }

  build(): Target {
    if (this.range && this.size !== -1) throw new OptionError('--nflog-range', 'NFLOG: option "--nflog-range" cannot be used together with "--nflog-size"');
    return new NflogTarget(this.env.log, this.group, this.prefix, this.size, this.threshold);
  }
}

export const nflogTarget: TargetType = {
  name: 'NFLOG',
  options: [
    { names: ['nflog-group'], args: 1, invertible: false },
    { names: ['nflog-prefix'], args: 1, invertible: false },
    { names: ['nflog-range'], args: 1, invertible: false },
    { names: ['nflog-size'], args: 1, invertible: false },
    { names: ['nflog-threshold'], args: 1, invertible: false },
  ],
  create: (env) => new NflogBuilder(env),
};
