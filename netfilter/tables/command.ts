/**
 * The `iptables` command against a router's tables: its command line read as iptables reads it
 * (getopt with bundled short options, `-L`'s optional chain and rule number), the listings of
 * list.ts, and the edits `-A -I -D -R -F -Z -N -X -P -E`.
 *
 * An edit is one iptables-restore line on the table as it is now (the parser's --noflush mode),
 * so it goes through the same rule parser and the same checks as a rules file, and is applied
 * whole or not at all: a refused edit changes nothing. What iptables refuses is reported as it
 * reports it: a problem with the words (iptables' parameter problem) with exit status 2, a
 * command the tables cannot take (no such chain or rule, an index too big) with its message and
 * status 1, what nf_tables itself refuses (a busy chain, a jump loop) with status 4.
 */
import { Refusal, RulesError } from './errors.ts';
import type { ListFormat } from './extension.ts';
import type { RuleTables } from './index.ts';
import { echoRule, listChains, listRule, listSpec, listSpecs, type ListOptions } from './list.ts';
import type { Chain, LoadedTable, ParsedRuleset, Rule } from './ruleset.ts';
import { emptyTable } from './save.ts';
import { TABLE_NAMES, TableId, tableIdOf } from './tables.ts';

export interface IptablesResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface IptablesHost {
  readonly rules: RuleTables;
  /** Installs an edited table (NetfilterStack.applyRules: hooks a new table in, starts tracking if it needs to). */
  apply(ruleset: ParsedRuleset): void;
  /** Where -L without -n finds names. */
  readonly names: Pick<ListFormat, 'serviceName' | 'hostName'>;
}

type CommandLetter = 'A' | 'I' | 'D' | 'R' | 'L' | 'S' | 'F' | 'Z' | 'N' | 'X' | 'P' | 'E';

const LONG_COMMANDS: Readonly<Record<string, CommandLetter>> = {
  append: 'A',
  insert: 'I',
  delete: 'D',
  replace: 'R',
  list: 'L',
  'list-rules': 'S',
  flush: 'F',
  zero: 'Z',
  'new-chain': 'N',
  new: 'N',
  'delete-chain': 'X',
  policy: 'P',
  'rename-chain': 'E',
};
const LONG_FLAGS: Readonly<Record<string, string>> = { table: 't', verbose: 'v', numeric: 'n', exact: 'x', 'line-numbers': '0', help: 'h' };
/** The letters a bundle like `-nvL` may hold: this module's flags and commands, none of a rule's. */
const BUNDLE = /^-[nvxhAIDRLSFZNXPE]{2,}$/;
/** The commands that take a rule (-D when it is not given a number). */
const RULE_COMMANDS: readonly CommandLetter[] = ['A', 'I', 'D', 'R'];
const NEEDS_CHAIN: readonly CommandLetter[] = ['A', 'I', 'D', 'R', 'N', 'P', 'E'];
const OPERATION: Partial<Record<CommandLetter, string>> = { A: 'RULE_APPEND', I: 'RULE_INSERT', R: 'RULE_REPLACE' };

/** A parameter problem: iptables prints it with a pointer to its help and exits 2. */
class UsageProblem extends Error {
  constructor(
    message: string,
    /** `iptables: ` before the message; iptables leaves it off `Bad argument`. */
    readonly prefixed = true,
  ) {
    super(message);
  }
}

/** A refusal of the command by the tables: printed as `iptables: MESSAGE`, exit status as given. */
class Refused extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface Invocation {
  table: TableId;
  command: CommandLetter | null;
  /** -Z given with -L: list, then zero. */
  zeroAfterList: boolean;
  chain: string | null;
  /** -P's policy or -E's new name. */
  second: string | null;
  ruleNumber: number | null;
  ruleWords: string[];
  verbose: boolean;
  numeric: boolean;
  exact: boolean;
  lineNumbers: boolean;
  help: boolean;
}

export const IPTABLES_USAGE = `usage: vrouter iptables [-t TABLE] COMMAND [options]
  -L [CHAIN [N]]   list the rules (-n numeric, -v counters and interfaces, -x exact counters, --line-numbers)
  -S [CHAIN [N]]   print the rules as iptables-save writes them (-v: with counters)
  -A CHAIN RULE    append                   -I CHAIN [N] RULE   insert at N (default 1)
  -D CHAIN RULE|N  delete                   -R CHAIN N RULE     replace rule N
  -F [CHAIN]       delete every rule        -Z [CHAIN [N]]      zero the counters
  -N CHAIN         new user chain           -X [CHAIN]          delete an empty, unreferenced user chain
  -P CHAIN POLICY  set a built-in chain's policy (ACCEPT or DROP)
  -E OLD NEW       rename a user chain
TABLE is filter (the default), nat, mangle or raw. RULE is written as in iptables-restore.
`;

export function runIptables(argv: readonly string[], host: IptablesHost): IptablesResult {
  let invocation: Invocation;
  try {
    invocation = parseArguments(argv);
  } catch (error) {
    return failure(error);
  }
  if (invocation.help) return { status: 0, stdout: IPTABLES_USAGE, stderr: '' };
  try {
    return { status: 0, stdout: execute(invocation, host), stderr: '' };
  } catch (error) {
    return failure(error);
  }
}

function failure(error: unknown): IptablesResult {
  if (error instanceof UsageProblem) {
    return { status: 2, stdout: '', stderr: `${error.prefixed ? 'iptables: ' : ''}${error.message}\nTry \`vrouter iptables --help' for more information.\n` };
  }
  if (error instanceof Refused) return { status: error.status, stdout: '', stderr: `iptables: ${error.message}\n` };
  throw error;
}

/**
 * This module's long options, spelled out: getopt would also take an abbreviation, but one like
 * `--in` could as well be the rule's `--in-interface`, which the rule parser resolves.
 */
function longName(word: string): string | null {
  const name = word.slice(2);
  return name in LONG_COMMANDS || name in LONG_FLAGS ? name : null;
}

function parseArguments(argv: readonly string[]): Invocation {
  const words: string[] = [];
  for (const word of argv) {
    if (BUNDLE.test(word)) for (const letter of word.slice(1)) words.push(`-${letter}`);
    else if (/^-t./.test(word)) words.push('-t', word.slice(2));
    else words.push(word);
  }
  const invocation: Invocation = {
    table: TableId.FILTER,
    command: null,
    zeroAfterList: false,
    chain: null,
    second: null,
    ruleNumber: null,
    ruleWords: [],
    verbose: false,
    numeric: false,
    exact: false,
    lineNumbers: false,
    help: false,
  };
  const given = new Set<string>();
  let tableGiven = false;
  let i = 0;
  /** The next word, if it can be an optional argument (getopt's `::` as iptables reads it). */
  const optional = (): string | null => {
    const next = words[i];
    if (next === undefined || next.startsWith('-') || next.startsWith('!')) return null;
    i++;
    return next;
  };
  while (i < words.length) {
    const word = words[i++]!;
    const long = word.startsWith('--') ? longName(word) : null;
    const letter = long ? (LONG_COMMANDS[long] ?? LONG_FLAGS[long]!) : /^-[A-Za-z]$/.test(word) ? word[1]! : null;
    if (letter === null || !'tvnxhAIDRLSFZNXPE0'.includes(letter)) {
      invocation.ruleWords.push(word);
      continue;
    }
    switch (letter) {
      case 't': {
        const name = words[i++];
        if (name === undefined) throw new UsageProblem(`option "${word}" requires an argument`);
        if (tableGiven) throw new UsageProblem('multiple -t flags not allowed');
        tableGiven = true;
        const id = tableIdOf(name);
        if (id === -1) throw new Refused(`table '${name}' does not exist\nPerhaps iptables or your kernel needs to be upgraded.`, 3);
        invocation.table = id;
        continue;
      }
      case 'v':
        invocation.verbose = true;
        continue;
      case 'n':
      case 'x':
      case '0':
        given.add(letter);
        if (letter === 'n') invocation.numeric = true;
        else if (letter === 'x') invocation.exact = true;
        else invocation.lineNumbers = true;
        continue;
      case 'h':
        invocation.help = true;
        continue;
    }
    const command = letter as CommandLetter;
    if (invocation.command !== null) {
      const pair = `${invocation.command}${command}`;
      if (pair !== 'LZ' && pair !== 'ZL') throw new UsageProblem(`Cannot use -${command} with -${invocation.command}`);
      invocation.command = 'L';
      invocation.zeroAfterList = true;
      // As iptables: the chain named last is the one listed and zeroed.
      invocation.chain = optional() ?? invocation.chain;
      continue;
    }
    invocation.command = command;
    if (NEEDS_CHAIN.includes(command)) {
      const chain = words[i++];
      if (chain === undefined) throw new UsageProblem(`option "${word}" requires an argument`);
      invocation.chain = chain;
    } else {
      invocation.chain = optional();
    }
    if (command === 'P' || command === 'E') {
      invocation.second = optional();
      if (invocation.second === null) {
        throw new UsageProblem(command === 'P' ? '-P requires a chain and a policy' : '-E requires old-chain-name and new-chain-name');
      }
    }
    const numbered = command === 'I' || command === 'D' || command === 'R' || ((command === 'L' || command === 'S' || command === 'Z') && invocation.chain !== null);
    if (numbered) {
      const number = optional();
      if (number !== null) invocation.ruleNumber = ruleNumber(number);
      else if (command === 'R') throw new UsageProblem('-R requires a rule number');
    }
  }
  checkCombination(invocation, given);
  return invocation;
}

/** parse_rulenumber: 1 to INT_MAX, in C's bases. */
function ruleNumber(word: string): number {
  const value = /^0[xX][0-9a-fA-F]+$/.test(word) ? parseInt(word, 16) : /^0[0-7]*$/.test(word) ? parseInt(word, 8) : /^[1-9][0-9]*$/.test(word) ? Number(word) : 0;
  if (!(value >= 1 && value <= 0x7fffffff)) throw new UsageProblem(`Invalid rule number \`${word}'`);
  return value;
}

/** -A, -I, -R, and -D unless it was given a rule number. */
function takesRule(invocation: Invocation): boolean {
  return RULE_COMMANDS.includes(invocation.command!) && !(invocation.command === 'D' && invocation.ruleNumber !== null);
}

/** iptables' commands_v_options: which options a command takes. */
function checkCombination(invocation: Invocation, given: ReadonlySet<string>): void {
  const command = invocation.command;
  if (invocation.help) return;
  if (command === null) throw new UsageProblem('no command specified');
  if (command !== 'L') {
    for (const [letter, spelled] of [['n', '-n'], ['x', '-x'], ['0', '--line-numbers']] as const) {
      if (given.has(letter)) throw new UsageProblem(`Illegal option \`${spelled}' with this command`);
    }
  }
  const stray = invocation.ruleWords[0];
  if (!takesRule(invocation) && stray !== undefined) {
    if (stray.startsWith('-') || stray === '!') throw new UsageProblem(`Illegal option \`${stray}' with this command`);
    throw new UsageProblem(`Bad argument \`${stray}'`, false);
  }
  for (const word of invocation.ruleWords) if (word.includes('\n')) throw new UsageProblem(`Bad argument \`${word}'`, false);
}

function execute(invocation: Invocation, host: IptablesHost): string {
  const command = invocation.command!;
  if (command === 'L' || command === 'S') return list(invocation, host);
  return edit(invocation, host, command);
}

function list(invocation: Invocation, host: IptablesHost): string {
  const table = host.rules.table(invocation.table) ?? emptyTable(invocation.table);
  const chains = chainsOf(table, invocation.chain);
  let out: string;
  if (invocation.command === 'S') {
    out = invocation.ruleNumber === null ? listSpecs(table, chains, invocation.verbose) : listSpec(table, chains[0]!, invocation.ruleNumber, invocation.verbose);
  } else {
    const options: ListOptions = { ...host.names, numeric: invocation.numeric, verbose: invocation.verbose, exact: invocation.exact, lineNumbers: invocation.lineNumbers };
    out = invocation.ruleNumber === null ? listChains(table, chains, options) : listRule(table, chains[0]!, invocation.ruleNumber, options);
  }
  if (invocation.zeroAfterList) out += edit(invocation, host, 'Z');
  return out;
}

function chainsOf(table: LoadedTable, name: string | null): readonly Chain[] {
  if (name === null) return table.chains;
  const chain = table.chains.find((candidate) => candidate.name === name);
  if (!chain) throw new Refused(Refusal.NO_CHAIN.message, Refusal.NO_CHAIN.status);
  return [chain];
}

/** One iptables-restore line on the table as it is, applied if the parser takes it. */
function edit(invocation: Invocation, host: IptablesHost, command: CommandLetter): string {
  const words = [`-${command}`];
  if (invocation.chain !== null) words.push(invocation.chain);
  if (invocation.second !== null) words.push(invocation.second);
  if (invocation.ruleNumber !== null) words.push(String(invocation.ruleNumber));
  words.push(...invocation.ruleWords);
  const name = TABLE_NAMES[invocation.table];
  const before = host.rules.table(invocation.table);
  let ruleset: ParsedRuleset;
  try {
    ruleset = host.rules.parse(`*${name}\n${words.map(restoreWord).join(' ')}\nCOMMIT\n`, 'iptables', 0, { noflush: true });
  } catch (error) {
    if (!(error instanceof RulesError)) throw error;
    if (error.refusal === Refusal.JUMPS) throw new Refused(`${OPERATION[command] ?? 'RULE_APPEND'} failed (Too many links): rule in chain ${invocation.chain}`, 4);
    if (error.refusal) throw new Refused(error.refusal.message, error.refusal.status);
    throw new UsageProblem(error.reason);
  }
  // -v prints each rule the words make, as iptables does before it does the command.
  const echoed = invocation.verbose && takesRule(invocation) ? rulesOfWords(invocation, host) : [];
  host.apply(ruleset);
  if (!invocation.verbose) return '';
  return echoed.map(echoRule).join('') + chainMessages(command, invocation.chain, before ?? emptyTable(invocation.table));
}

/** The rules the words of -A, -I, -R or -D make, in their order: as an -A on the tables as they are. */
function rulesOfWords(invocation: Invocation, host: IptablesHost): readonly Rule[] {
  const line = ['-A', invocation.chain!, ...invocation.ruleWords].map(restoreWord).join(' ');
  const appended = host.rules.parse(`*${TABLE_NAMES[invocation.table]}\n${line}\nCOMMIT\n`, 'iptables', 0, { noflush: true }).tables[0]!;
  const before = host.rules.table(invocation.table)?.chains.find((chain) => chain.name === invocation.chain)?.rules.length ?? 0;
  return appended.chains.find((chain) => chain.name === invocation.chain)!.rules.slice(before);
}

/** What -v adds to -F, -Z and -X: a line per chain they work on. */
function chainMessages(command: CommandLetter, chain: string | null, before: LoadedTable): string {
  const verb = command === 'F' ? 'Flushing' : command === 'Z' ? 'Zeroing' : command === 'X' ? 'Deleting' : null;
  if (verb === null) return '';
  const names = chain !== null ? [chain] : before.chains.filter((each) => command !== 'X' || each.hook === -1).map((each) => each.name);
  return names.map((each) => `${verb} chain \`${each}'\n`).join('');
}

/** A word as the iptables-restore tokenizer reads it back: quoted when it has blanks or quotes. */
function restoreWord(word: string): string {
  return word !== '' && !/[\s"]/.test(word) ? word : `"${word.replace(/["\\]/g, '\\$&')}"`;
}
