/**
 * `-j LOG` (xt_LOG): writes the packet in the kernel's format to the log sink and lets it go on.
 * --log-prefix (iptables cuts it to 29 characters), --log-level (0..7 or a syslog name; 4, warning,
 * is the default and is not printed), and the flags that add fields to the line.
 */
import type { HookPoint } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { CONTINUE, type ListFormat, type Target, type TargetBuilder, type TargetType, type TablesEnv } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';
import { saveString } from '../words.ts';
import { LogFlag, formatLogLine } from './log-format.ts';

const MAX_PREFIX = 29;
const DEFAULT_LEVEL = 4;
/** libxt_LOG's names, exact and lower case (it knows no `warn` or `err`). */
const LEVEL_NAMES: ReadonlyMap<string, number> = new Map([
  ['alert', 1],
  ['crit', 2],
  ['debug', 7],
  ['emerg', 0],
  ['error', 3],
  ['info', 6],
  ['notice', 5],
  ['panic', 0],
  ['warning', 4],
]);
/** Flag options in the order iptables-save prints them. */
const FLAG_OPTIONS: readonly (readonly [string, number])[] = [
  ['log-tcp-sequence', LogFlag.TCP_SEQUENCE],
  ['log-tcp-options', LogFlag.TCP_OPTIONS],
  ['log-ip-options', LogFlag.IP_OPTIONS],
  ['log-uid', LogFlag.UID],
  ['log-macdecode', LogFlag.MAC_DECODE],
];

/** syslog.h's prioritynames as libxt_LOG prints a level: the first name of each value. */
const LEVEL_PRINT_NAMES = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];
/** The flag options as -L names them, in its order. */
const FLAG_PRINT_NAMES: readonly (readonly [string, number])[] = FLAG_OPTIONS.map(([option, flag]) => [option.slice('log-'.length), flag]);

class LogTarget implements Target {
  readonly name = 'LOG';

  constructor(
    private readonly sink: (line: string) => void,
    private readonly prefix: string,
    private readonly level: number,
    private readonly flags: number,
  ) {}

  run(packet: Packet, hook: HookPoint): number {
    this.sink(formatLogLine(this.prefix, this.flags, packet, hook));
    return CONTINUE;
  }

  save(): string {
    let text = ' -j LOG';
    if (this.prefix !== '') text += ` --log-prefix${saveString(this.prefix)}`;
    if (this.level !== DEFAULT_LEVEL) text += ` --log-level ${this.level}`;
    for (const [option, flag] of FLAG_OPTIONS) if (this.flags & flag) text += ` --${option}`;
    return text;
  }

  /** `LOG flags 0 level 4 prefix "x"` with -n, else `LOG level warn tcp-options prefix "x"`. */
  print(format: ListFormat): string {
    let text = ' LOG';
    if (format.numeric) text += ` flags ${this.flags} level ${this.level}`;
    else {
      text += ` level ${LEVEL_PRINT_NAMES[this.level]}`;
      for (const [name, flag] of FLAG_PRINT_NAMES) if (this.flags & flag) text += ` ${name}`;
    }
    if (this.prefix !== '') text += ` prefix "${this.prefix}"`;
    return text;
  }
}

class LogBuilder implements TargetBuilder {
  private prefix = '';
  private level = DEFAULT_LEVEL;
  private flags = 0;

  constructor(private readonly env: TablesEnv) {}

  option(name: string, args: readonly string[]): void {
    const value = args[0]!;
    if (name === 'log-prefix') {
      if (value === '') throw new OptionError(value, 'empty --log-prefix (give at least one character)');
      this.prefix = value.slice(0, MAX_PREFIX);
    } else if (name === 'log-level') {
      const level = parseCNumber(value, 7);
      this.level = level >= 0 ? level : (LEVEL_NAMES.get(value) ?? -1);
      if (this.level < 0) throw new OptionError(value, `unknown log level "${value}"`);
    } else {
      this.flags |= FLAG_OPTIONS.find(([option]) => option === name)![1];
    }
  }

  build(): Target {
    return new LogTarget(this.env.log, this.prefix, this.level, this.flags);
  }
}

export const logTarget: TargetType = {
  name: 'LOG',
  options: [
    { names: ['log-prefix'], args: 1, invertible: false },
    { names: ['log-level'], args: 1, invertible: false },
    ...FLAG_OPTIONS.map(([option]) => ({ names: [option], args: 0 as const, invertible: false })),
  ],
  create: (env) => new LogBuilder(env),
};
