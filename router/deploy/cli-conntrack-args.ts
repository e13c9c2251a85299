/**
 * The command line of `vrouter conntrack`, read as conntrack-tools 1.4.7 reads its own (checked
 * against the conntrack of this machine): the same commands, tables, filters and output types,
 * the same abbreviations (`-o ext`, `-u assured`: any case-insensitive prefix of the word), and
 * the same messages for what it refuses. vrouter's own additions: `-o json`, `--ready-file PATH`.
 *
 * Differences, each refused with a message rather than taken some other way: `-o xml` and
 * `-o save`; `-D expect` (deleting one expectation by its tuple); `-G` for protocols other than
 * TCP and UDP; a mark that is not a whole number (conntrack reads `-m abc` as mark 0).
 */
import { parseIpv4Address, prefixMask } from '../core/addresses.ts';
import type { ConntrackFilter, MaskedValue, NatMatch } from '../../netfilter/conntrack/conntrack-filter.ts';
import type { EventKind } from '../../netfilter/conntrack/format.ts';
import { Status } from '../../netfilter/conntrack/status.ts';
import { UsageError } from './cli-errors.ts';

export type ConntrackCommand = 'list' | 'get' | 'events' | 'delete' | 'flush' | 'count' | 'stats';
/** `dying` and `unconfirmed` are lists of conntrack's own; -L shows them (empty here, see the README). */
export type ConntrackTable = 'conntrack' | 'expect' | 'dying' | 'unconfirmed';

export interface OutputFormat {
  extended: boolean;
  id: boolean;
  timestamp: boolean;
  json: boolean;
}

export interface ConntrackInvocation {
  command: ConntrackCommand;
  table: ConntrackTable;
  output: OutputFormat;
  /** -e: the events to show; all when absent. */
  events?: EventKind[];
  /** The filter as this command applies it (see statusFor). */
  filter: ConntrackFilter;
  /** -u with no flag to filter on (UNSET alone): the kernel refuses such a dump filter. */
  emptyStatusMask: boolean;
  /** Warnings conntrack prints while reading its arguments (stderr), e.g. for `-u SRC_NAT`. */
  warnings: string[];
  /** -E: a file created once the router has subscribed this client. */
  readyFile?: string;
}

const COMMANDS: Record<string, ConntrackCommand> = {
  '-L': 'list',
  '--dump': 'list',
  '-G': 'get',
  '--get': 'get',
  '-E': 'events',
  '--event': 'events',
  '-D': 'delete',
  '--delete': 'delete',
  '-F': 'flush',
  '--flush': 'flush',
  '-C': 'count',
  '--count': 'count',
  '-S': 'stats',
  '--stats': 'stats',
};

const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, gre: 47 };

/** conntrack's -s/-d take a prefix length (kept as --mask-src/--mask-dst); -r/-q do not. */
const ADDRESS_OPTIONS: Record<string, { key: 'origSrc' | 'origDst' | 'replySrc' | 'replyDst'; long: string }> = {
  '-s': { key: 'origSrc', long: 'orig-src' },
  '--src': { key: 'origSrc', long: 'orig-src' },
  '--orig-src': { key: 'origSrc', long: 'orig-src' },
  '-d': { key: 'origDst', long: 'orig-dst' },
  '--dst': { key: 'origDst', long: 'orig-dst' },
  '--orig-dst': { key: 'origDst', long: 'orig-dst' },
  '-r': { key: 'replySrc', long: 'reply-src' },
  '--reply-src': { key: 'replySrc', long: 'reply-src' },
  '-q': { key: 'replyDst', long: 'reply-dst' },
  '--reply-dst': { key: 'replyDst', long: 'reply-dst' },
};

const PORT_OPTIONS: Record<string, 'origSrcPort' | 'origDstPort' | 'replySrcPort' | 'replyDstPort'> = {
  '--sport': 'origSrcPort',
  '--orig-port-src': 'origSrcPort',
  '--dport': 'origDstPort',
  '--orig-port-dst': 'origDstPort',
  '--reply-port-src': 'replySrcPort',
  '--reply-port-dst': 'replyDstPort',
};

const NAT_OPTIONS: Record<string, 'srcNat' | 'dstNat' | 'anyNat'> = {
  '-n': 'srcNat',
  '--src-nat': 'srcNat',
  '-g': 'dstNat',
  '--dst-nat': 'dstNat',
  '-j': 'anyNat',
  '--any-nat': 'anyNat',
};

/** conntrack's word lists, in its order: a prefix picks the first word it begins. */
type WordList = readonly (readonly [string, number])[];

const STATUS_WORDS: WordList = [
  ['ASSURED', Status.ASSURED],
  ['SEEN_REPLY', Status.SEEN_REPLY],
  ['UNSET', 0],
  ['FIXED_TIMEOUT', Status.FIXED_TIMEOUT],
  ['EXPECTED', Status.EXPECTED],
  ['OFFLOAD', 1 << 14],
  ['HW_OFFLOAD', 1 << 15],
];

const EVENT = { NEW: 1, UPDATE: 2, DESTROY: 4 } as const;
const EVENT_WORDS: WordList = [
  ['ALL', EVENT.NEW | EVENT.UPDATE | EVENT.DESTROY],
  ['NEW', EVENT.NEW],
  ['UPDATES', EVENT.UPDATE],
  ['DESTROY', EVENT.DESTROY],
];

const OUTPUT = { xml: 1, extended: 2, timestamp: 4, id: 8, ktimestamp: 16, labels: 32, userspace: 64, save: 128, json: 256 } as const;
/** conntrack's output types, then vrouter's json. */
const OUTPUT_WORDS: WordList = Object.entries(OUTPUT);

export function parseConntrackArgs(argv: readonly string[]): ConntrackInvocation {
  let command: ConntrackCommand | undefined;
  let table: ConntrackTable = 'conntrack';
  let outputBits = 0;
  let eventBits = 0;
  let status: { value: number; mask: number } | undefined;
  let readyFile: string | undefined;
  const filter: ConntrackFilter = {};
  const warnings: string[] = [];
  /** Long names of the filters given, for the commands that take only some. */
  const given = new Set<string>();
  const value = (i: number, option: string): string => {
    const text = argv[i + 1];
    if (text === undefined) throw new UsageError(`option \`${option}' requires an argument`);
    return text;
  };
  /** An optional argument, as conntrack takes one: the next word unless it is an option. */
  const optional = (i: number): string | undefined => {
    const text = argv[i + 1];
    return text !== undefined && !text.startsWith('-') && !text.startsWith('!') ? text : undefined;
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    const address = ADDRESS_OPTIONS[word];
    const port = PORT_OPTIONS[word];
    const nat = NAT_OPTIONS[word];
    if (COMMANDS[word]) {
      if (command) throw new UsageError('Invalid commands combination');
      command = COMMANDS[word];
      const name = optional(i);
      if (name !== undefined) {
        i++;
        table = tableNamed(name);
      }
    } else if (address) {
      const text = value(i++, word);
      const network = parseAddress(text, address.long);
      if (address.key === 'origSrc' || address.key === 'origDst') {
        filter[address.key] = network;
        if (network.mask !== 0xffffffff) given.add(address.key === 'origSrc' ? 'mask-src' : 'mask-dst');
      } else {
        filter[address.key] = network.address;
      }
    } else if (port) {
      const text = value(i++, word);
      const number = Number(text);
      if (!/^\d+$/.test(text) || number > 65535) throw new UsageError(`${word}: bad port "${text}"`);
      filter[port] = number;
    } else if (nat) {
      const text = optional(i);
      if (text !== undefined) i++;
      filter[nat] = text === undefined ? {} : parseNatAddress(text);
      given.add(nat);
    } else if (word === '-p' || word === '--proto' || word === '--protonum') {
      const text = value(i++, word).toLowerCase();
      const protocol = PROTOCOLS[text] ?? (/^\d+$/.test(text) ? Number(text) : NaN);
      if (!(protocol >= 0 && protocol <= 255)) throw new UsageError(`\`${text}' unsupported protocol`);
      filter.protocol = protocol;
    } else if (word === '--state') {
      filter.state = value(i++, word).toUpperCase();
      given.add('state');
    } else if (word === '-m' || word === '--mark') {
      filter.mark = parseMark(value(i++, word));
      given.add('mark');
    } else if (word === '-u' || word === '--status') {
      status = parseStatus(value(i++, word), warnings);
      given.add('status');
    } else if (word === '-e' || word === '--event-mask') {
      eventBits |= parseWords(value(i++, word), EVENT_WORDS, warnings);
    } else if (word === '-o' || word === '--output') {
      outputBits |= parseWords(value(i++, word), OUTPUT_WORDS, warnings);
    } else if (word === '--ready-file') {
      readyFile = value(i++, word);
    } else {
      throw new UsageError(`unknown option \`${word}'`);
    }
  }
  if (!command) throw new UsageError('no command: use -L, -G, -E, -D, -F, -C or -S');
  if ((table === 'dying' || table === 'unconfirmed') && command !== 'list') {
    throw new UsageError("Can't do that command with tables `dying' and `unconfirmed'");
  }
  if (command === 'delete' && table === 'expect') throw new UsageError('-D expect (deleting one expectation by its tuple) is not supported by vrouter');
  if (filter.anyNat && (filter.srcNat || filter.dstNat)) throw new UsageError("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'");
  if (readyFile !== undefined && command !== 'events') throw new UsageError('--ready-file is for -E only');
  if (command === 'get') checkGet(filter, given);
  if (status) filter.status = statusFor(command, status);
  return {
    command,
    table,
    output: outputFormat(outputBits),
    ...(eventBits ? { events: eventKinds(eventBits) } : {}),
    filter,
    emptyStatusMask: filter.status?.mask === 0,
    warnings,
    ...(readyFile !== undefined ? { readyFile } : {}),
  };
}

function tableNamed(name: string): ConntrackTable {
  // conntrack takes any beginning of a table's name, case and all.
  for (const table of ['expect', 'conntrack', 'dying', 'unconfirmed'] as const) if (table.startsWith(name)) return table;
  throw new UsageError(`unknown type \`${name}'`);
}

/** ADDRESS[/PREFIX-LENGTH]; a prefix only where conntrack takes one (-s, -d). */
function parseAddress(text: string, long: string): { address: number; mask: number } {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  let address: number;
  try {
    address = parseIpv4Address(addressText);
  } catch {
    throw new UsageError(`Invalid IP address \`${text}'`);
  }
  if (slash < 0) return { address, mask: 0xffffffff };
  if (long !== 'orig-src' && long !== 'orig-dst') throw new UsageError(`CIDR notation unavailable for \`--${long}'`);
  const length = text.slice(slash + 1);
  if (!/^\d+$/.test(length) || Number(length) > 32) throw new UsageError('Invalid netmask');
  return { address, mask: prefixMask(Number(length)) };
}

/** `--src-nat ADDRESS[:PORT]`. */
function parseNatAddress(text: string): NatMatch {
  const colon = text.indexOf(':');
  const addressText = colon < 0 ? text : text.slice(0, colon);
  let address: number;
  try {
    address = parseIpv4Address(addressText);
  } catch {
    throw new UsageError(`Invalid IP address \`${addressText}'`);
  }
  if (colon < 0) return { address };
  const port = text.slice(colon + 1);
  if (port === '') throw new UsageError("No port specified after `:'");
  if (!/^\d+$/.test(port) || Number(port) > 65535) throw new UsageError(`Invalid port \`${port}'`);
  return { address, port: Number(port) };
}

/** MARK[/MASK], each a C number (decimal, 0x hex, 0 octal) of 32 bits. */
function parseMark(text: string): MaskedValue {
  const [valueText, maskText, extra] = text.split('/');
  const number = (part: string | undefined): number => {
    const parsed = part !== undefined && /^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)$/i.test(part) ? Number(/^0[0-7]+$/.test(part) ? parseInt(part, 8) : part) : NaN;
    if (!(parsed <= 0xffffffff) || extra !== undefined) throw new UsageError(`-m: bad mark "${text}" (expected MARK or MARK/MASK, numbers up to 0xffffffff)`);
    return parsed;
  };
  return { value: number(valueText), mask: maskText === undefined ? 0xffffffff : number(maskText) };
}

/**
 * `-u FLAG[,FLAG...]` as conntrack's parse_parameter_mask: a flag sets its bit in the value (and,
 * unless something else already built the mask, in the mask); `!FLAG` and `UNREPLIED` set a bit
 * of the mask only (the flag must be clear).
 */
function parseStatus(text: string, warnings: string[]): { value: number; mask: number } {
  let value = 0;
  let mask = 0;
  const items = text.split(',');
  items.forEach((item, index) => {
    const negated = item.startsWith('!');
    const flag = negated ? item.slice(1) : item;
    if (!negated && flag.startsWith('UNREPLIED')) {
      mask |= Status.SEEN_REPLY;
      return;
    }
    const bit = wordBit(flag, STATUS_WORDS, warnings);
    if (bit === undefined) throw new UsageError(`Bad parameter \`${[flag, ...items.slice(index + 1)].join(',')}'`);
    if (negated) mask |= bit;
    else value |= bit;
  });
  return { value, mask: mask === 0 ? value : mask };
}

/**
 * The status filter as each command applies it: -L asks the kernel for `(status & mask) == value`;
 * -D and -E filter in conntrack, which only checks that the flags of `value` are all set (so
 * there `!SEEN_REPLY` and UNREPLIED filter nothing, as with conntrack-tools).
 */
function statusFor(command: ConntrackCommand, status: { value: number; mask: number }): MaskedValue {
  return command === 'list' ? status : { value: status.value, mask: status.value };
}

/** A comma-separated list of words from `words` (parse_parameter): the OR of their bits. */
function parseWords(text: string, words: WordList, warnings: string[]): number {
  let bits = 0;
  const items = text.split(',');
  items.forEach((item, index) => {
    const bit = wordBit(item, words, warnings);
    if (bit === undefined) throw new UsageError(`Bad parameter \`${items.slice(index).join(',')}'`);
    bits |= bit;
  });
  return bits;
}

/**
 * do_parse_parameter: the first word `item` begins (ignoring case). Before the list, conntrack
 * checks SRC_NAT and DST_NAT, taken by no option any more: they are ignored with a warning, so
 * `-u S` (or `-o s`) is SRC_NAT, not SEEN_REPLY (or save). Undefined: no word.
 */
function wordBit(item: string, words: WordList, warnings: string[]): number | undefined {
  if (item === '') return undefined;
  const begins = (word: string): boolean => word.toLowerCase().startsWith(item.toLowerCase());
  for (const [nat, option] of [['SRC_NAT', '--src-nat'], ['DST_NAT', '--dst-nat']] as const) {
    if (begins(nat)) {
      warnings.push(`WARNING: ignoring ${nat}, use ${option} instead`);
      return 0;
    }
  }
  return words.find(([word]) => begins(word))?.[1];
}

/**
 * The output types vrouter prints. ktimestamp and labels add nothing here, as on a kernel with
 * nf_conntrack_timestamp off (the default) and no labels; userspace is always on in 1.4.7.
 */
function outputFormat(bits: number): OutputFormat {
  for (const name of ['xml', 'save'] as const) {
    if (bits & OUTPUT[name]) throw new UsageError(`-o ${name} is not supported by vrouter (use -o json for scripts)`);
  }
  return {
    extended: (bits & OUTPUT.extended) !== 0,
    id: (bits & OUTPUT.id) !== 0,
    timestamp: (bits & OUTPUT.timestamp) !== 0,
    json: (bits & OUTPUT.json) !== 0,
  };
}

function eventKinds(bits: number): EventKind[] {
  return (Object.keys(EVENT) as EventKind[]).filter((kind) => bits & EVENT[kind]);
}

/** -G names one connection by its original tuple, as conntrack requires it. */
function checkGet(filter: ConntrackFilter, given: Set<string>): void {
  for (const option of ['mask-src', 'mask-dst', 'mark', 'status', 'state', 'srcNat', 'dstNat', 'anyNat']) {
    if (given.has(option)) throw new UsageError(`Illegal option \`--${option.replace(/Nat$/, '-nat')}' with this command`);
  }
  if (filter.protocol === undefined) throw new UsageError("You need to supply the `--protonum' option for this command");
  if (!filter.origSrc || !filter.origDst) throw new UsageError("you have to specify `--src' and `--dst'");
  if (filter.protocol !== PROTOCOLS.tcp && filter.protocol !== PROTOCOLS.udp) throw new UsageError('-G: vrouter looks up TCP and UDP connections only');
  if (filter.origSrcPort === undefined || filter.origDstPort === undefined) throw new UsageError("you have to specify `--sport' and `--dport'");
}
