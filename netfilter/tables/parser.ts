/**
 * iptables-restore text to a ParsedRuleset, refusing (with origin, absolute line and the word) what
 * iptables or the kernel would refuse and what this router does not support; nothing is skipped.
 *
 * Accepted: `*table` ... `COMMIT` sections for raw, mangle, filter and nat; `:CHAIN POLICY [p:b]`
 * (`-` for user chains); `-N CHAIN`, `-P CHAIN POLICY`; `[p:b] -A CHAIN rule...` and
 * `-I CHAIN [N] rule...`; the other commands iptables-restore takes, `-D CHAIN rule|N`,
 * `-R CHAIN N rule`, `-F [CHAIN]`, `-X [CHAIN]`, `-Z [CHAIN [N]]`, `-E OLD NEW`; `#` comments and
 * blank lines. With `current` (iptables-restore --noflush, and the iptables command, which is one
 * such line), a table starts as it is loaded now instead of empty, its counters included, and a
 * `:CHAIN - [0:0]` line for a user chain it has flushes that chain, as iptables-restore does. Options are iptables' short and long
 * spellings, long ones also as unique abbreviations (getopt does that for iptables). Option
 * dispatch follows iptables: a target's options after its -j, then the match instances in order,
 * then the match `-p` loads implicitly (`-p tcp --dport 80` is `-p tcp -m tcp --dport 80`).
 *
 * Stricter than iptables-restore, on purpose: a rule outside a table, a table given twice, a
 * built-in chain without a policy, trailing words and bad counters are refused instead of being
 * ignored; every `-j` cycle is refused, reachable or not (jumps.ts).
 */
import { formatIpv4Address, parseIpv4Address, prefixMask } from '../../router/core/addresses.ts';
import { HOOK_NAMES, Verdict, type HookPoint } from '../../router/core/hooks.ts';
import { OptionError, Refusal, RulesError, type IptablesRefusal } from './errors.ts';
import { checkJumps } from './jumps.ts';
import type { ExtensionContext, Match, MatchBuilder, MatchType, OptionSpec, RuleHeader, TablesEnv, Target, TargetBuilder, TargetType } from './extension.ts';
import { parseCNumber } from './numbers.ts';
import { parseProtocol, protocolName } from './protocols.ts';
import { MATCH_TYPES, TARGET_TYPES } from './registry.ts';
import { Fragment, RuleKind, type Chain, type IpHeaderMatch, type LoadedTable, type ParsedRuleset, type Rule } from './ruleset.ts';
import { TABLE_HOOKS, TABLE_NAMES, builtinHook, isHookName, tableIdOf, type TableId, type TableName } from './tables.ts';
import { splitWords } from './words.ts';

/** XT_EXTENSION_MAXNAMELEN less the NUL. */
const MAX_CHAIN_NAME = 28;
/** IFNAMSIZ less the NUL. */
const MAX_INTERFACE_NAME = 15;
const COUNTERS = /^\[(\d+):(\d+)\]$/;

/** The tables as loaded now, by id (null for one that is not), for --noflush. */
export type CurrentTables = (id: TableId) => LoadedTable | null;

/**
 * `keepCounters`: iptables-restore -c. Without it the kernel starts every counter at zero, and
 * the `[p:b]` of policies and rules are checked but not kept; a rule's own `-c P B` is kept.
 * `current`: iptables-restore --noflush, the text edits these tables.
 */
export function parseRuleset(
  text: string,
  origin: string,
  firstLine: number,
  env: ExtensionContext,
  { keepCounters = false, current = null }: { keepCounters?: boolean; current?: CurrentTables | null } = {},
): ParsedRuleset {
  const parser = new RulesetParser(origin, env, keepCounters, current);
  const lines = text.split('\n');
  // A separate file starts at line 1; inline text at the config line the caller gives.
  const base = firstLine > 0 ? firstLine : 1;
  for (let i = 0; i < lines.length; i++) parser.line(lines[i]!, base + i);
  return parser.finish();
}

interface ChainDraft {
  readonly name: string;
  readonly hook: HookPoint | -1;
  policy: Verdict;
  packets: number;
  bytes: number;
  declared: boolean;
  readonly rules: RuleDraft[];
}

interface RuleDraft {
  readonly ip: IpHeaderMatch;
  readonly matches: readonly Match[];
  readonly kind: RuleKind;
  readonly verdict: Verdict;
  readonly target: Target | null;
  readonly jump: ChainDraft | null;
  readonly packets: number;
  readonly bytes: number;
  readonly line: number;
  readonly text: string;
}

interface TableDraft {
  readonly id: TableId;
  readonly name: TableName;
  readonly line: number;
  readonly chains: Map<string, ChainDraft>;
}

class RulesetParser {
  private table: TableDraft | null = null;
  private readonly tables: LoadedTable[] = [];
  private readonly seen = new Set<TableId>();

  constructor(
    private readonly origin: string,
    private readonly env: ExtensionContext,
    private readonly keepCounters: boolean,
    private readonly current: CurrentTables | null,
  ) {}

  line(raw: string, line: number): void {
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return;
    try {
      this.statement(text, line);
    } catch (error) {
      if (error instanceof OptionError) throw new RulesError(this.origin, line, error.word, error.reason, error.refusal);
      throw error;
    }
  }

  finish(): ParsedRuleset {
    const open = this.table;
    if (open) throw new RulesError(this.origin, open.line, `*${open.name}`, `*${open.name} has no COMMIT`);
    return { tables: this.tables };
  }

  private statement(text: string, line: number): void {
    if (text.startsWith('*')) return this.startTable(text, line);
    const table = this.table;
    if (text === 'COMMIT') {
      if (!table) throw new OptionError(text, 'COMMIT without a table');
      this.tables.push(withRefusal(() => compileTable(table, this.origin), Refusal.JUMPS));
      this.table = null;
      return;
    }
    if (!table) {
      const word = text.split(/[ \t]/)[0]!;
      // Not quoted unless it is a rules word: a file named by mistake (/etc/shadow) must not be echoed.
      if (!/^[-:[]/.test(word)) throw new OptionError(word, 'this line is not iptables-restore text (a rules file starts a table with *raw, *mangle, *filter or *nat)');
      throw new OptionError(word, `"${word}" outside a table (start one with *raw, *mangle, *filter or *nat)`);
    }
    if (text.startsWith(':')) return this.chainLine(table, text);
    this.ruleLine(table, text, line);
  }

  private startTable(text: string, line: number): void {
    if (this.table) throw new OptionError(text, `${text} before the COMMIT of *${this.table.name}`);
    const name = text.slice(1);
    const id = tableIdOf(name);
    if (id === -1) {
      const reason = name === 'security' ? 'table security is not supported' : `unknown table "${name}" (raw, mangle, filter or nat)`;
      throw new OptionError(text, reason);
    }
    if (this.seen.has(id)) throw new OptionError(text, `table ${name} appears twice`);
    this.seen.add(id);
    const loaded = this.current?.(id) ?? null;
    let chains: Map<string, ChainDraft>;
    if (loaded) chains = draftsOf(loaded);
    else {
      chains = new Map<string, ChainDraft>();
      for (const { hook } of TABLE_HOOKS[id]!) chains.set(HOOK_NAMES[hook], newChain(HOOK_NAMES[hook], hook));
    }
    this.table = { id, name: TABLE_NAMES[id], line, chains };
  }

  private chainLine(table: TableDraft, text: string): void {
    const [name = '', policy, counters, extra] = text.slice(1).split(/[ \t]+/);
    if (name === '') throw new OptionError(text, `chain line "${text}" without a chain name`);
    if (policy === undefined) {
      throw new OptionError(name, `chain ${name} needs a policy (":${name} ACCEPT [0:0]" for a built-in chain, ":${name} - [0:0]" for a user-defined one)`);
    }
    if (extra !== undefined) throw new OptionError(extra, `unexpected word "${extra}" after the chain's counters`);
    const parsed = counters === undefined ? null : parseCounters(counters);
    const [packets, bytes] = parsed && this.keepCounters ? parsed : [0, 0];
    if (builtinHook(table.id, name) !== -1) {
      const chain = table.chains.get(name)!;
      if (chain.declared) throw new OptionError(name, `chain ${name} is declared twice`);
      chain.declared = true;
      chain.policy = parsePolicy(name, policy);
      chain.packets = packets;
      chain.bytes = bytes;
      return;
    }
    checkUserChainName(table, name, this.env);
    if (policy !== '-') throw new OptionError(policy, `user-defined chain ${name} cannot have a policy (write "-" instead of "${policy}")`);
    const existing = table.chains.get(name);
    if (existing?.declared || (existing && !this.current)) throw new OptionError(name, `chain ${name} is declared twice`);
    // The kernel keeps no counters for a user-defined chain: iptables-save prints [0:0] for it.
    if (existing) existing.rules.length = 0;
    else table.chains.set(name, newChain(name, -1));
    table.chains.get(name)!.declared = true;
  }

  private ruleLine(table: TableDraft, text: string, line: number): void {
    let rest = text;
    let counters: [number, number] | null = null;
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      counters = parseCounters(close < 0 ? rest : rest.slice(0, close + 1));
      rest = rest.slice(close + 1);
    }
    const words = splitWords(rest);
    if (words.length === 0) throw new OptionError(text, 'counters without a rule');
    const command = resolveCommand(words[0]!);
    if (counters && command !== 'append' && command !== 'insert' && command !== 'replace') {
      throw new OptionError(text.slice(0, text.indexOf(']') + 1), `counters before ${words[0]} (they belong to -A, -I and -R rules)`);
    }
    switch (command) {
      case 'new-chain':
        return this.newChain(table, words);
      case 'policy':
        return this.policy(table, words);
      case 'flush':
        return this.flush(table, words);
      case 'zero':
        return this.zero(table, words);
      case 'delete-chain':
        return this.deleteChain(table, words);
      case 'rename-chain':
        return this.renameChain(table, words);
    }
    const chainName = words[1];
    if (chainName === undefined) throw new OptionError(words[0]!, `${words[0]} needs a chain name`);
    const chain = chainNamed(table, chainName);
    const build = (from: number, withCounters: [number, number] | null): RuleDraft[] => new RuleBuilder(table, chain, this.env, line).parse(words, from, withCounters);
    if (command === 'delete') return deleteRules(chain, words, build);
    if (command === 'replace') return replaceRule(chain, words, (from) => build(from, counters));
    let from = 2;
    let position = chain.rules.length;
    if (command === 'insert') {
      position = 0;
      const number = words[2];
      if (number !== undefined && /^[0-9]+$/.test(number)) {
        const n = ruleNumber(number, words[0]!);
        if (n - 1 > chain.rules.length) {
          throw new OptionError(number, `rule position ${number} is past the end of chain ${chainName} (${chain.rules.length} rules)`, Refusal.INSERTION_TOO_BIG);
        }
        position = n - 1;
        from = 3;
      }
    }
    const rules = build(from, this.keepCounters ? counters : null);
    chain.rules.splice(position, 0, ...(command === 'insert' ? rules.reverse() : rules));
  }

  /** `-F [CHAIN]`: the chain's rules, or every chain's; policies and their counters stay. */
  private flush(table: TableDraft, words: string[]): void {
    for (const chain of chainsNamed(table, words)) chain.rules.length = 0;
  }

  /** `-Z [CHAIN [N]]`: counters to zero: rule N, or the chain's rules and policy, or all of them. */
  private zero(table: TableDraft, words: string[]): void {
    const number = words[2];
    if (number !== undefined) {
      if (words.length > 3) throw new OptionError(words[3]!, `unexpected word "${words[3]}" after ${words.slice(0, 3).join(' ')}`);
      const chain = chainNamed(table, words[1]!);
      const n = ruleNumber(number, words[0]!);
      if (n > chain.rules.length) throw new OptionError(number, `chain ${chain.name} has no rule ${n} (${chain.rules.length} rules)`, Refusal.COUNTER_TOO_BIG);
      chain.rules[n - 1] = { ...chain.rules[n - 1]!, packets: 0, bytes: 0 };
      return;
    }
    for (const chain of chainsNamed(table, words)) {
      chain.packets = 0;
      chain.bytes = 0;
      for (let i = 0; i < chain.rules.length; i++) chain.rules[i] = { ...chain.rules[i]!, packets: 0, bytes: 0 };
    }
  }

  /** `-X [CHAIN]`: a user chain, or all of them; each must be empty and unreferenced, as nf_tables wants. */
  private deleteChain(table: TableDraft, words: string[]): void {
    if (words[1] !== undefined && builtinHook(table.id, words[1]) !== -1) {
      throw new OptionError(words[1], `${words[1]} is a built-in chain, which cannot be deleted`, Refusal.BUILTIN_DELETE);
    }
    const doomed = chainsNamed(table, words).filter((chain) => chain.hook === -1);
    for (const chain of doomed) {
      if (chain.rules.length > 0) throw new OptionError(chain.name, `chain ${chain.name} still has ${chain.rules.length} rules (flush it first with -F ${chain.name})`, Refusal.chainBusy(chain.name));
      const from = [...table.chains.values()].find((other) => other.rules.some((rule) => rule.jump === chain));
      if (from) throw new OptionError(chain.name, `chain ${chain.name} is still jumped to from chain ${from.name}`, Refusal.chainBusy(chain.name));
    }
    for (const chain of doomed) table.chains.delete(chain.name);
  }

  /** `-E OLD NEW`: a user chain's new name, in every rule that jumps or goes to it too. */
  private renameChain(table: TableDraft, words: string[]): void {
    const [command, oldName, newName, extra] = words;
    if (oldName === undefined || newName === undefined) throw new OptionError(command!, `${command} needs the old and the new chain name`);
    if (extra !== undefined) throw new OptionError(extra, `unexpected word "${extra}" after ${command} ${oldName} ${newName}`);
    const chain = table.chains.get(oldName);
    if (!chain || chain.hook !== -1) throw new OptionError(oldName, `no user-defined chain "${oldName}" in table ${table.name}`, Refusal.NO_CHAIN);
    if (table.chains.has(newName)) throw new OptionError(newName, `chain ${newName} already exists in table ${table.name}`, Refusal.NAME_TAKEN);
    checkUserChainName(table, newName, this.env);
    const renamed: ChainDraft = { ...chain, name: newName };
    table.chains.delete(oldName);
    table.chains.set(newName, renamed);
    for (const other of table.chains.values()) {
      for (let i = 0; i < other.rules.length; i++) {
        const rule = other.rules[i]!;
        // The saved text of a jump ends in ` -j OLD` or ` -g OLD`.
        if (rule.jump === chain) other.rules[i] = { ...rule, jump: renamed, text: rule.text.slice(0, rule.text.length - oldName.length) + newName };
      }
    }
  }

  private newChain(table: TableDraft, words: string[]): void {
    const name = words[1];
    if (name === undefined) throw new OptionError(words[0]!, `${words[0]} needs a chain name`);
    if (words.length > 2) throw new OptionError(words[2]!, `unexpected word "${words[2]}" after ${words[0]} ${name}`);
    if (table.chains.has(name)) throw new OptionError(name, `chain ${name} already exists`, Refusal.CHAIN_EXISTS);
    checkUserChainName(table, name, this.env);
    table.chains.set(name, newChain(name, -1));
  }

  private policy(table: TableDraft, words: string[]): void {
    const [command, name, policy, extra] = words;
    if (name === undefined || policy === undefined) throw new OptionError(command!, `${command} needs a chain and a policy`);
    if (extra !== undefined) throw new OptionError(extra, `unexpected word "${extra}" after ${command} ${name} ${policy}`);
    const chain = table.chains.get(name);
    if (!chain || chain.hook === -1) throw new OptionError(name, `${command} needs a built-in chain of table ${table.name}, got "${name}"`, Refusal.BAD_BUILTIN);
    chain.policy = parsePolicy(name, policy, Refusal.BAD_POLICY);
    // As iptables does: setting a policy zeroes its counters.
    chain.packets = 0;
    chain.bytes = 0;
  }
}

function newChain(name: string, hook: HookPoint | -1): ChainDraft {
  return { name, hook, policy: Verdict.ACCEPT, packets: 0, bytes: 0, declared: false, rules: [] };
}

function parsePolicy(chain: string, policy: string, refusal: IptablesRefusal | null = null): Verdict {
  if (policy === 'ACCEPT') return Verdict.ACCEPT;
  if (policy === 'DROP') return Verdict.DROP;
  throw new OptionError(policy, `bad policy "${policy}" for built-in chain ${chain} (ACCEPT or DROP)`, refusal);
}

/** The chain a command names, refused as iptables refuses a name it does not know. */
function chainNamed(table: TableDraft, name: string): ChainDraft {
  const chain = table.chains.get(name);
  if (chain) return chain;
  const reason = isHookName(name) ? `table ${table.name} has no built-in chain ${name}` : `unknown chain "${name}" in table ${table.name}`;
  throw new OptionError(name, reason, Refusal.NO_CHAIN);
}

/** The chain of `-F`/`-Z`/`-X CHAIN`, or every chain of the table when the command names none. */
function chainsNamed(table: TableDraft, words: readonly string[]): ChainDraft[] {
  const [command, name, extra] = words;
  if (name === undefined) return [...table.chains.values()];
  if (extra !== undefined) throw new OptionError(extra, `unexpected word "${extra}" after ${command} ${name}`);
  return [chainNamed(table, name)];
}

/** A rule number of -I, -D, -R or -Z: 1 or more. */
function ruleNumber(word: string, command: string): number {
  const n = parseCNumber(word, Number.MAX_SAFE_INTEGER);
  if (n < 1) throw new OptionError(word, `bad rule number "${word}" for ${command} (rules are numbered from 1)`);
  return n;
}

/**
 * `-D CHAIN N`, or `-D CHAIN rule...`: each rule the words make (one per address of -s and -d)
 * must be in the chain; the first rule with the same saved text goes.
 */
function deleteRules(chain: ChainDraft, words: readonly string[], build: (from: number, counters: null) => RuleDraft[]): void {
  const number = words[2];
  if (number !== undefined && /^[0-9]+$/.test(number)) {
    if (words.length > 3) throw new OptionError(words[3]!, `unexpected word "${words[3]}" after ${words.slice(0, 3).join(' ')}`);
    const n = ruleNumber(number, words[0]!);
    if (n > chain.rules.length) throw new OptionError(number, `chain ${chain.name} has no rule ${n} (${chain.rules.length} rules)`, Refusal.DELETION_TOO_BIG);
    chain.rules.splice(n - 1, 1);
    return;
  }
  for (const rule of build(2, null)) {
    const at = chain.rules.findIndex((candidate) => candidate.text === rule.text);
    if (at < 0) throw new OptionError(words[0]!, `no rule "-A ${chain.name}${rule.text}" in chain ${chain.name} to delete`, Refusal.BAD_RULE);
    chain.rules.splice(at, 1);
  }
}

/** `-R CHAIN N rule...`: rule N replaced by one rule, with the counters given or zero. */
function replaceRule(chain: ChainDraft, words: readonly string[], build: (from: number) => RuleDraft[]): void {
  const number = words[2];
  if (number === undefined || !/^[0-9]+$/.test(number)) throw new OptionError(words[0]!, `${words[0]} needs the number of the rule to replace`);
  const n = ruleNumber(number, words[0]!);
  const rules = build(3);
  if (rules.length !== 1) throw new OptionError(words[0]!, 'Replacement rule does not specify a unique address');
  if (n > chain.rules.length) throw new OptionError(number, `chain ${chain.name} has no rule ${n} (${chain.rules.length} rules)`, Refusal.REPLACEMENT_TOO_BIG);
  chain.rules[n - 1] = rules[0]!;
}

/** Runs `make`, giving a RulesError without a refusal this one (what the command prints for it). */
function withRefusal<T>(make: () => T, refusal: IptablesRefusal): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof RulesError && error.refusal === null) throw new RulesError(error.origin, error.line, error.word, error.reason, refusal);
    throw error;
  }
}

/**
 * A loaded table back as drafts, for --noflush: the same chains, rules (their matches and targets
 * are immutable, so shared) and the counters they have now.
 */
function draftsOf(table: LoadedTable): Map<string, ChainDraft> {
  const counters = table.counters;
  const drafts = new Map<Chain, ChainDraft>();
  for (const chain of table.chains) {
    const draft = newChain(chain.name, chain.hook);
    draft.policy = chain.policy;
    if (chain.hook !== -1) {
      draft.packets = counters[chain.policyCounter]!;
      draft.bytes = counters[chain.policyCounter + 1]!;
    }
    drafts.set(chain, draft);
  }
  for (const [chain, draft] of drafts) {
    for (const rule of chain.rules) {
      const { ip, matches, kind, verdict, target, text } = rule;
      const jump = rule.chain ? drafts.get(rule.chain)! : null;
      draft.rules.push({ ip, matches, kind, verdict, target, jump, packets: counters[rule.counter]!, bytes: counters[rule.counter + 1]!, line: 0, text });
    }
  }
  return new Map([...drafts.values()].map((draft) => [draft.name, draft]));
}

/** netfilter's targets and those the router was built with (NAT's). */
function targetTypes(env: TablesEnv): readonly TargetType[] {
  return env.extraTargets ? [...TARGET_TYPES, ...env.extraTargets] : TARGET_TYPES;
}

function parseCounters(word: string): [number, number] {
  const found = COUNTERS.exec(word);
  const packets = found ? Number(found[1]) : NaN;
  const bytes = found ? Number(found[2]) : NaN;
  if (!(packets <= Number.MAX_SAFE_INTEGER && bytes <= Number.MAX_SAFE_INTEGER)) {
    throw new OptionError(word, `bad counters "${word}" (expected [PACKETS:BYTES])`);
  }
  return [packets, bytes];
}

function checkUserChainName(table: TableDraft, name: string, env: TablesEnv): void {
  if (isHookName(name)) throw new OptionError(name, `table ${table.name} has no built-in chain ${name}`);
  if (name.length > MAX_CHAIN_NAME) throw new OptionError(name, `chain name "${name}" is too long (at most ${MAX_CHAIN_NAME} characters)`);
  if (name.startsWith('-') || name.startsWith('!')) throw new OptionError(name, `chain name "${name}" may not start with "${name[0]}"`);
  if (/\s/.test(name)) throw new OptionError(name, `invalid chain name "${name}" (no blanks)`);
  if (name === 'ACCEPT' || name === 'DROP' || name === 'RETURN' || targetTypes(env).some((type) => type.name === name)) {
    throw new OptionError(name, `chain name "${name}" clashes with a target name`);
  }
}

type Command = 'append' | 'insert' | 'new-chain' | 'policy' | 'delete' | 'replace' | 'flush' | 'delete-chain' | 'zero' | 'rename-chain';

/** long name, short letter; those past `rename-chain` are iptables commands a rules file cannot use. */
const COMMANDS: readonly (readonly [string, string])[] = [
  ['append', 'A'],
  ['insert', 'I'],
  ['new-chain', 'N'],
  ['policy', 'P'],
  ['delete', 'D'],
  ['replace', 'R'],
  ['flush', 'F'],
  ['delete-chain', 'X'],
  ['zero', 'Z'],
  ['rename-chain', 'E'],
  ['list', 'L'],
  ['list-rules', 'S'],
  ['check', 'C'],
];
const SUPPORTED_COMMANDS = 10;

function resolveCommand(word: string): Command {
  let index = -1;
  if (/^-[A-Za-z]$/.test(word)) index = COMMANDS.findIndex(([, short]) => short === word[1]);
  else if (word.startsWith('--') && word.length > 2) {
    const name = word.slice(2);
    index = COMMANDS.findIndex(([long]) => long === name);
    if (index < 0) {
      const prefixed = COMMANDS.filter(([long]) => long.startsWith(name));
      if (prefixed.length > 1) throw new OptionError(word, `ambiguous command "${word}"`);
      if (prefixed.length === 1) index = COMMANDS.indexOf(prefixed[0]!);
    }
  }
  if (index < 0) throw new OptionError(word, `expected a command (-A, -I, -D, -R, -N, -P, -F, -X, -Z or -E), got "${word}"`);
  if (index >= SUPPORTED_COMMANDS) throw new OptionError(word, `command "${word}" is not supported in rules (use -A, -I, -D, -R, -N, -P, -F, -X, -Z or -E)`);
  return COMMANDS[index]![0] as Command;
}

/** The options of the rule itself, iptables' own (not an extension's). */
const CoreOption = {
  SOURCE: 0,
  DESTINATION: 1,
  PROTOCOL: 2,
  IN_INTERFACE: 3,
  OUT_INTERFACE: 4,
  FRAGMENT: 5,
  MATCH: 6,
  JUMP: 7,
  GOTO: 8,
  SET_COUNTERS: 9,
} as const;
type CoreOption = (typeof CoreOption)[keyof typeof CoreOption];

interface CoreSpec extends OptionSpec {
  readonly short: string;
  readonly id: CoreOption;
}

const CORE_OPTIONS: readonly CoreSpec[] = [
  { id: CoreOption.SOURCE, short: 's', names: ['source', 'src'], args: 1, invertible: true },
  { id: CoreOption.DESTINATION, short: 'd', names: ['destination', 'dst'], args: 1, invertible: true },
  { id: CoreOption.PROTOCOL, short: 'p', names: ['protocol'], args: 1, invertible: true },
  { id: CoreOption.IN_INTERFACE, short: 'i', names: ['in-interface'], args: 1, invertible: true },
  { id: CoreOption.OUT_INTERFACE, short: 'o', names: ['out-interface'], args: 1, invertible: true },
  { id: CoreOption.FRAGMENT, short: 'f', names: ['fragment'], args: 0, invertible: true },
  { id: CoreOption.MATCH, short: 'm', names: ['match'], args: 1, invertible: false },
  { id: CoreOption.JUMP, short: 'j', names: ['jump'], args: 1, invertible: false },
  { id: CoreOption.GOTO, short: 'g', names: ['goto'], args: 1, invertible: false },
  { id: CoreOption.SET_COUNTERS, short: 'c', names: ['set-counters'], args: 2, invertible: false },
];

interface MatchInstance {
  readonly type: MatchType;
  readonly builder: MatchBuilder;
  /** A later `-m` of the same name took over its options (iptables' "completed"). */
  completed: boolean;
}

/** Who an option word belongs to. */
type Owner = { core: CoreSpec } | { target: TargetBuilder } | { match: MatchInstance } | { implicit: MatchType };

interface Resolved {
  readonly owner: Owner;
  readonly spec: OptionSpec;
}

interface Address {
  readonly address: number;
  readonly mask: number;
}

const ANY_ADDRESS: readonly Address[] = [{ address: 0, mask: 0 }];

/** One -A/-I line; it yields several rules when -s or -d lists several addresses. */
class RuleBuilder {
  private invertNext = false;
  private readonly given = new Set<CoreOption>();
  private sources = ANY_ADDRESS;
  private invertSrc = false;
  private destinations = ANY_ADDRESS;
  private invertDst = false;
  private inInterface: string | null = null;
  private invertIn = false;
  private outInterface: string | null = null;
  private invertOut = false;
  private protocol = 0;
  private invertProtocol = false;
  private fragment: Fragment = Fragment.ANY;
  private readonly matches: MatchInstance[] = [];
  private implicitLoaded = false;
  private kind: RuleKind = RuleKind.NONE;
  private verdict: Verdict = Verdict.ACCEPT;
  private targetType: TargetType | null = null;
  private targetBuilder: TargetBuilder | null = null;
  private jump: ChainDraft | null = null;
  private counters: [number, number] | null = null;
  /** Extension options given so far, per builder: each may appear once, as in iptables. */
  private readonly used = new Map<object, Set<OptionSpec>>();

  constructor(
    private readonly table: TableDraft,
    private readonly chain: ChainDraft,
    private readonly env: ExtensionContext,
    private readonly line: number,
  ) {}

  parse(words: readonly string[], from: number, counters: [number, number] | null): RuleDraft[] {
    this.counters = counters;
    for (let i = from; i < words.length; ) {
      const word = words[i++]!;
      if (word === '!') {
        if (this.invertNext) throw new OptionError(word, 'two "!" in a row');
        this.invertNext = true;
        continue;
      }
      const { owner, spec } = this.resolve(word);
      const args = words.slice(i, i + spec.args);
      if (args.length < spec.args) {
        throw new OptionError(word, `option "${word}" needs ${spec.args === 1 ? 'an argument' : `${spec.args} arguments`}`);
      }
      i += spec.args;
      const invert = this.invertNext;
      this.invertNext = false;
      if (invert && !spec.invertible) throw new OptionError(word, `option "${word}" cannot be inverted with "!"`);
      if ('core' in owner) {
        this.core(owner.core, word, args, invert);
        continue;
      }
      let builder: MatchBuilder | TargetBuilder;
      if ('target' in owner) builder = owner.target;
      else if ('match' in owner) builder = owner.match.builder;
      else {
        const instance = { type: owner.implicit, builder: owner.implicit.create(this.env), completed: false };
        this.matches.push(instance);
        this.implicitLoaded = true;
        builder = instance.builder;
      }
      const used = this.used.get(builder) ?? new Set<OptionSpec>();
      if (used.has(spec)) throw new OptionError(word, `option "${word}" can only be used once`);
      this.used.set(builder, used.add(spec));
      builder.option(spec.names[0]!, args, invert, word);
    }
    if (this.invertNext) throw new OptionError('!', '"!" at the end of the rule, before no option');
    return this.build();
  }

  /** Finds the option's owner: exact names first, then a unique abbreviation of one. */
  private resolve(word: string): Resolved {
    if (/^-[A-Za-z]$/.test(word)) {
      const core = CORE_OPTIONS.find((spec) => spec.short === word[1]);
      if (!core) throw new OptionError(word, `unknown option "${word}"`);
      return { owner: { core }, spec: core };
    }
    if (!word.startsWith('--') || word.length === 2) throw new OptionError(word, `unexpected word "${word}"`);
    const name = word.slice(2);
    const exact = this.owner(name);
    if (exact) return exact;
    const candidates = new Set<OptionSpec>();
    for (const spec of this.knownSpecs()) if (spec.names.some((long) => long.startsWith(name))) candidates.add(spec);
    if (candidates.size > 1) {
      const spelled = [...candidates].map((spec) => `--${spec.names[0]}`).join(', ');
      throw new OptionError(word, `ambiguous option "${word}" (${spelled})`);
    }
    const [only] = candidates;
    const resolved = only ? this.owner(only.names[0]!) : null;
    if (!resolved) throw new OptionError(word, `unknown option "${word}"`);
    return resolved;
  }

  private owner(name: string): Resolved | null {
    const has = (spec: OptionSpec): boolean => spec.names.includes(name);
    const core = CORE_OPTIONS.find(has);
    if (core) return { owner: { core }, spec: core };
    const targetSpec = this.targetType?.options.find(has);
    if (targetSpec && this.targetBuilder) return { owner: { target: this.targetBuilder }, spec: targetSpec };
    for (const match of this.matches) {
      const spec = match.completed ? undefined : match.type.options.find(has);
      if (spec) return { owner: { match }, spec };
    }
    const implicit = this.implicitType();
    const spec = implicit?.options.find(has);
    return implicit && spec ? { owner: { implicit }, spec } : null;
  }

  /** The match `-p` loads on an unknown option, once per rule, as iptables' load_proto. */
  private implicitType(): MatchType | null {
    if (this.implicitLoaded || this.protocol === 0) return null;
    return MATCH_TYPES.find((type) => type.protocol === this.protocol) ?? null;
  }

  private *knownSpecs(): Generator<OptionSpec> {
    yield* CORE_OPTIONS;
    if (this.targetType && this.targetBuilder) yield* this.targetType.options;
    for (const match of this.matches) yield* match.type.options;
    const implicit = this.implicitType();
    if (implicit) yield* implicit.options;
  }

  private core(spec: CoreSpec, word: string, args: readonly string[], invert: boolean): void {
    const id = spec.id;
    if (id !== CoreOption.MATCH) {
      if (this.given.has(id) || (id === CoreOption.GOTO && this.given.has(CoreOption.JUMP)) || (id === CoreOption.JUMP && this.given.has(CoreOption.GOTO))) {
        throw new OptionError(word, `multiple ${id === CoreOption.GOTO || id === CoreOption.JUMP ? '-j/-g' : `-${spec.short}`} flags not allowed`);
      }
      this.given.add(id);
    }
    const value = args[0]!;
    switch (id) {
      case CoreOption.SOURCE:
        this.sources = parseAddressList(value, invert);
        this.invertSrc = invert;
        return;
      case CoreOption.DESTINATION:
        this.destinations = parseAddressList(value, invert);
        this.invertDst = invert;
        return;
      case CoreOption.PROTOCOL:
        this.protocol = parseProtocol(value);
        if (this.protocol === 0 && invert) throw new OptionError(value, `"! -p ${value}" would never match`);
        this.invertProtocol = invert;
        return;
      case CoreOption.IN_INTERFACE:
        this.inInterface = checkInterface(value);
        this.invertIn = invert;
        return;
      case CoreOption.OUT_INTERFACE:
        this.outInterface = checkInterface(value);
        this.invertOut = invert;
        return;
      case CoreOption.FRAGMENT:
        this.fragment = invert ? Fragment.NOT_NON_FIRST : Fragment.NON_FIRST;
        return;
      case CoreOption.MATCH:
        return this.loadMatch(value);
      case CoreOption.JUMP:
        return this.setJump(value);
      case CoreOption.GOTO:
        return this.setGoto(value);
      case CoreOption.SET_COUNTERS: {
        if (this.counters) throw new OptionError(word, 'counters given twice (as [p:b] and -c)');
        const packets = parseCNumber(value, Number.MAX_SAFE_INTEGER);
        const bytes = parseCNumber(args[1]!, Number.MAX_SAFE_INTEGER);
        if (packets < 0 || bytes < 0) throw new OptionError(`${value} ${args[1]}`, `bad counters "${value} ${args[1]}" for ${word}`);
        this.counters = [packets, bytes];
        return;
      }
    }
  }

  private loadMatch(name: string): void {
    const type = MATCH_TYPES.find((candidate) => candidate.name === name);
    if (!type) throw new OptionError(name, `unknown match "${name}"`);
    for (const match of this.matches) if (match.type === type) match.completed = true;
    this.matches.push({ type, builder: type.create(this.env), completed: false });
  }

  private setJump(name: string): void {
    if (name === 'ACCEPT' || name === 'DROP') {
      if (name === 'DROP' && this.table.name === 'nat') {
        throw new OptionError(name, 'the nat table is not intended for filtering: iptables inhibits DROP in it');
      }
      this.kind = RuleKind.VERDICT;
      this.verdict = name === 'ACCEPT' ? Verdict.ACCEPT : Verdict.DROP;
      return;
    }
    if (name === 'RETURN') {
      this.kind = RuleKind.RETURN;
      return;
    }
    const type = targetTypes(this.env).find((candidate) => candidate.name === name);
    if (type) {
      if (type.tables && !type.tables.includes(this.table.name)) {
        const tables = type.tables.join(' or ');
        throw new OptionError(name, `target ${name} is only valid in the ${tables} table, not in ${this.table.name}`);
      }
      this.kind = RuleKind.TARGET;
      this.targetBuilder = type.create(this.env);
      this.targetType = type;
      return;
    }
    this.kind = RuleKind.JUMP;
    this.jump = this.userChain(name, '-j');
  }

  private setGoto(name: string): void {
    this.kind = RuleKind.GOTO;
    this.jump = this.userChain(name, '-g');
  }

  private userChain(name: string, flag: string): ChainDraft {
    const chain = this.table.chains.get(name);
    if (chain && chain.hook !== -1) throw new OptionError(name, `${flag} ${name}: cannot jump to a built-in chain`);
    if (!chain) {
      const what = flag === '-g' ? 'chain' : 'target or chain';
      throw new OptionError(name, `unknown ${what} "${name}" in table ${this.table.name}`);
    }
    return chain;
  }

  private build(): RuleDraft[] {
    const chainName = this.chain.name;
    if (this.outInterface !== null && (chainName === 'PREROUTING' || chainName === 'INPUT')) {
      throw new OptionError('-o', `can't use -o with ${chainName}: packets there have no output interface yet`);
    }
    if (this.inInterface !== null && (chainName === 'POSTROUTING' || chainName === 'OUTPUT')) {
      throw new OptionError('-i', `can't use -i with ${chainName}: packets there have no input interface`);
    }
    const header: RuleHeader = { chain: chainName, protocol: this.protocol, invertProtocol: this.invertProtocol };
    const matches = this.matches.map((match) => match.builder.build(header));
    const target = this.targetBuilder ? this.targetBuilder.build(header) : null;
    const [packets, bytes] = this.counters ?? [0, 0];
    const rules: RuleDraft[] = [];
    for (const source of this.sources) {
      for (const destination of this.destinations) {
        const ip = this.ipHeader(source, destination);
        const text = ruleText(ip, matches, this.kind, this.verdict, target, this.jump);
        rules.push({ ip, matches, kind: this.kind, verdict: this.verdict, target, jump: this.jump, packets, bytes, line: this.line, text });
      }
    }
    return rules;
  }

  private ipHeader(source: Address, destination: Address): IpHeaderMatch {
    const [inName, inWildcard] = splitWildcard(this.inInterface, this.invertIn);
    const [outName, outWildcard] = splitWildcard(this.outInterface, this.invertOut);
    return Object.freeze({
      src: source.address,
      srcMask: source.mask,
      invertSrc: this.invertSrc,
      dst: destination.address,
      dstMask: destination.mask,
      invertDst: this.invertDst,
      inName,
      inWildcard,
      invertIn: this.invertIn,
      outName,
      outWildcard,
      invertOut: this.invertOut,
      protocol: this.protocol,
      invertProtocol: this.invertProtocol,
      fragment: this.fragment,
    });
  }
}

/** `lan+` is a prefix; a lone `+` without `!` matches every packet, so it constrains nothing. */
function splitWildcard(name: string | null, invert: boolean): [string | null, boolean] {
  if (name === null || (name === '+' && !invert)) return [null, false];
  return name.endsWith('+') ? [name.slice(0, -1), true] : [name, false];
}

function checkInterface(name: string): string {
  if (name === '') throw new OptionError(name, 'empty interface name');
  if (name.length > MAX_INTERFACE_NAME) throw new OptionError(name, `interface name "${name}" is too long (at most ${MAX_INTERFACE_NAME} characters)`);
  if (/[\s/]/.test(name)) throw new OptionError(name, `interface name "${name}" has a character the kernel does not allow`);
  return name;
}

/** `a.b.c.d[/len|/mask]`, comma-separated; host bits are cleared, as the kernel stores them. */
function parseAddressList(text: string, invert: boolean): Address[] {
  const list = text.split(',').map(parseAddress);
  if (invert && list.length > 1) throw new OptionError(text, `"!" is not allowed with several addresses ("${text}")`);
  if (invert && list[0]!.mask === 0) throw new OptionError(text, `"! ${text}" would never match`);
  return list;
}

function parseAddress(text: string): Address {
  const slash = text.indexOf('/');
  let address: number;
  try {
    address = parseIpv4Address(slash < 0 ? text : text.slice(0, slash));
  } catch (error) {
    throw new OptionError(text, `bad address "${text}": ${(error as Error).message}`);
  }
  let mask = 0xffffffff;
  if (slash >= 0) {
    const maskText = text.slice(slash + 1);
    if (maskText.includes('.')) {
      try {
        mask = parseIpv4Address(maskText);
      } catch (error) {
        throw new OptionError(text, `bad mask in "${text}": ${(error as Error).message}`);
      }
    } else {
      const length = parseCNumber(maskText, 32);
      if (length < 0) throw new OptionError(text, `bad mask in "${text}" (a prefix length 0..32 or a dotted mask)`);
      mask = prefixMask(length);
    }
  }
  return { address: (address & mask) >>> 0, mask };
}

/** A contiguous mask as its prefix length, any other as a dotted quad, as iptables-save prints it. */
export function maskText(mask: number): string {
  const host = ~mask >>> 0;
  // Contiguous when the host bits are all ones from the bottom (host + 1 is a power of two).
  if ((host & (host + 1)) !== 0) return formatIpv4Address(mask);
  let length = 32;
  for (let bits = host; bits !== 0; bits >>>= 1) length--;
  return `${length}`;
}

function addressText(flag: string, address: number, mask: number, invert: boolean): string {
  if (mask === 0 && !invert) return '';
  return `${invert ? ' !' : ''} ${flag} ${formatIpv4Address(address)}/${maskText(mask)}`;
}

function interfaceText(flag: string, name: string | null, wildcard: boolean, invert: boolean): string {
  if (name === null) return '';
  return `${invert ? ' !' : ''} ${flag} ${name}${wildcard ? '+' : ''}`;
}

/** iptables-save's order: addresses, interfaces, protocol, fragment, matches, target. */
function ruleText(ip: IpHeaderMatch, matches: readonly Match[], kind: RuleKind, verdict: Verdict, target: Target | null, jump: ChainDraft | null): string {
  let text = addressText('-s', ip.src, ip.srcMask, ip.invertSrc) + addressText('-d', ip.dst, ip.dstMask, ip.invertDst);
  text += interfaceText('-i', ip.inName, ip.inWildcard, ip.invertIn) + interfaceText('-o', ip.outName, ip.outWildcard, ip.invertOut);
  if (ip.protocol !== 0) text += `${ip.invertProtocol ? ' !' : ''} -p ${protocolName(ip.protocol)}`;
  if (ip.fragment !== Fragment.ANY) text += ip.fragment === Fragment.NON_FIRST ? ' -f' : ' ! -f';
  for (const match of matches) text += match.save();
  switch (kind) {
    case RuleKind.VERDICT:
      return `${text} -j ${verdict === Verdict.ACCEPT ? 'ACCEPT' : 'DROP'}`;
    case RuleKind.RETURN:
      return `${text} -j RETURN`;
    case RuleKind.JUMP:
      return `${text} -j ${jump!.name}`;
    case RuleKind.GOTO:
      return `${text} -g ${jump!.name}`;
    case RuleKind.TARGET:
      return text + target!.save();
    default:
      return text;
  }
}

/** At COMMIT: refuses -j/-g loops and jumps nested too deep, then lays the table out as the packet path walks it. */
function compileTable(table: TableDraft, origin: string): LoadedTable {
  checkJumps([...table.chains.values()], origin);
  const builtins = TABLE_HOOKS[table.id]!.map(({ hook }) => table.chains.get(HOOK_NAMES[hook])!);
  const users = [...table.chains.values()].filter((chain) => chain.hook === -1).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const drafts = [...builtins, ...users];
  const size = drafts.reduce((sum, chain) => sum + 2 * chain.rules.length, 2 * builtins.length);
  const initialCounters = new Float64Array(size);
  const compiled = new Map<ChainDraft, { -readonly [K in keyof Chain]: Chain[K] } & { rules: Rule[] }>();
  let next = 0;
  for (const draft of drafts) {
    const policyCounter = draft.hook === -1 ? -1 : next;
    if (draft.hook !== -1) {
      initialCounters[next] = draft.packets;
      initialCounters[next + 1] = draft.bytes;
      next += 2;
    }
    const policyOrigin = draft.hook === -1 ? '' : `${TABLE_NAMES[table.id]}:${draft.name}:policy:${draft.rules.length + 1} ${draft.policy === Verdict.DROP ? 'DROP' : 'ACCEPT'}`;
    const returnOrigin = `${TABLE_NAMES[table.id]}:${draft.name}:return:${draft.rules.length + 1}`;
    compiled.set(draft, { name: draft.name, hook: draft.hook, policy: draft.policy, policyCounter, rules: [], policyOrigin, returnOrigin });
  }
  for (const draft of drafts) {
    const rules = compiled.get(draft)!.rules;
    for (const [index, rule] of draft.rules.entries()) {
      initialCounters[next] = rule.packets;
      initialCounters[next + 1] = rule.bytes;
      rules.push(
        Object.freeze({
          ip: rule.ip,
          matches: rule.matches,
          kind: rule.kind,
          verdict: rule.verdict,
          target: rule.target,
          chain: rule.jump ? compiled.get(rule.jump)! : null,
          counter: next,
          text: rule.text,
          origin: `${TABLE_NAMES[table.id]}:${draft.name}:rule:${index + 1} -A ${draft.name}${rule.text}`,
        }),
      );
      next += 2;
    }
  }
  const chains = drafts.map((draft) => Object.freeze(compiled.get(draft)!));
  const builtin: (Chain | null)[] = [null, null, null, null, null];
  for (const chain of chains) if (chain.hook !== -1) builtin[chain.hook] = chain;
  return { id: table.id, chains, builtin, counters: Float64Array.from(initialCounters), initialCounters };
}
