/**
 * What `iptables -L` and `iptables -S` print for a loaded table, as iptables-nft 1.8.9 prints it:
 * the column layout and number formats of xshared.c (print_header, print_rule_details,
 * xtables_print_num), the extensions' own print texts after the addresses, and for -S the
 * iptables-save form of each rule with `-P`/`-N` lines for its chains.
 *
 * -L shows built-in chains with their policy (and its counters with -v), user chains with how
 * many rules jump or go to them; -v adds the counter and interface columns, with K/M/G/T units
 * unless -x; -n shows numbers instead of names (protocols, services, host names, "anywhere");
 * --line-numbers numbers the rules from 1.
 */
import { formatIpv4Address } from '../../router/core/addresses.ts';
import { Verdict } from '../../router/core/hooks.ts';
import type { ListFormat } from './extension.ts';
import { maskText } from './parser.ts';
import { protocolName } from './protocols.ts';
import { Fragment, RuleKind, type Chain, type LoadedTable, type Rule } from './ruleset.ts';

export interface ListOptions extends ListFormat {
  /** -v: counters and interfaces. */
  readonly verbose: boolean;
  /** -x: exact counters instead of K/M/G/T. */
  readonly exact: boolean;
  /** --line-numbers. */
  readonly lineNumbers: boolean;
}

/** `iptables -L` for these chains of the table: each with its header, a blank line between two. */
export function listChains(table: LoadedTable, chains: readonly Chain[], options: ListOptions): string {
  return chains.map((chain) => chainHeader(table, chain, options) + chain.rules.map((rule, i) => ruleLine(table, rule, i + 1, options)).join('')).join('\n');
}

/** `iptables -L CHAIN N`: the rule's line alone, or nothing when the chain has no rule N. */
export function listRule(table: LoadedTable, chain: Chain, number: number, options: ListOptions): string {
  const rule = chain.rules[number - 1];
  return rule ? ruleLine(table, rule, number, options) : '';
}

/**
 * `iptables -S` for these chains: `-P` for the built-in ones and `-N` for the user ones first, then
 * their rules as iptables-save writes them; with -v (`verbose`) the counters as `-c PACKETS BYTES`.
 */
export function listSpecs(table: LoadedTable, chains: readonly Chain[], verbose: boolean): string {
  let out = '';
  for (const chain of chains) {
    if (chain.hook === -1) continue;
    out += `-P ${chain.name} ${chain.policy === Verdict.ACCEPT ? 'ACCEPT' : 'DROP'}${verbose ? counterWords(table, chain.policyCounter) : ''}\n`;
  }
  for (const chain of chains) if (chain.hook === -1) out += `-N ${chain.name}\n`;
  for (const chain of chains) for (const rule of chain.rules) out += ruleSpec(table, chain, rule, verbose);
  return out;
}

/** `iptables -S CHAIN N`: the rule alone, or nothing when the chain has no rule N. */
export function listSpec(table: LoadedTable, chain: Chain, number: number, verbose: boolean): string {
  const rule = chain.rules[number - 1];
  return rule ? ruleSpec(table, chain, rule, verbose) : '';
}

function ruleSpec(table: LoadedTable, chain: Chain, rule: Rule, verbose: boolean): string {
  if (!verbose) return `-A ${chain.name}${rule.text}\n`;
  // iptables -S -v puts the counters between the matches and the target.
  const target = targetText(rule);
  return `-A ${chain.name}${rule.text.slice(0, rule.text.length - target.length)}${counterWords(table, rule.counter)}${target}\n`;
}

/** The end of a rule's saved text that is its target: ` -j ACCEPT`, ` -g chain`, ` -j LOG ...`. */
function targetText(rule: Rule): string {
  switch (rule.kind) {
    case RuleKind.VERDICT:
      return rule.verdict === Verdict.ACCEPT ? ' -j ACCEPT' : ' -j DROP';
    case RuleKind.RETURN:
      return ' -j RETURN';
    case RuleKind.JUMP:
      return ` -j ${rule.chain!.name}`;
    case RuleKind.GOTO:
      return ` -g ${rule.chain!.name}`;
    case RuleKind.TARGET:
      return rule.target!.save();
    default:
      return '';
  }
}

function counterWords(table: LoadedTable, counter: number): string {
  return ` -c ${table.counters[counter]} ${table.counters[counter + 1]}`;
}

function chainHeader(table: LoadedTable, chain: Chain, options: ListOptions): string {
  let out = `Chain ${chain.name}`;
  if (chain.hook === -1) out += ` (${references(table, chain)} references)\n`;
  else {
    out += ` (policy ${chain.policy === Verdict.ACCEPT ? 'ACCEPT' : 'DROP'}`;
    if (options.verbose) {
      const counters = table.counters;
      out += ` ${inlineNumber(counters[chain.policyCounter]!, options.exact)}packets, ${inlineNumber(counters[chain.policyCounter + 1]!, options.exact)}bytes`;
    }
    out += ')\n';
  }
  if (options.lineNumbers) out += 'num  ';
  if (options.verbose) out += options.exact ? `${'pkts'.padStart(8)} ${'bytes'.padStart(10)} ` : ' pkts bytes ';
  out += 'target     prot opt';
  if (options.verbose) out += ' in     out    ';
  return `${out} ${'source'.padEnd(19)}  ${'destination'.padEnd(19)} \n`;
}

/** Rules of the table that jump or go to the chain. */
function references(table: LoadedTable, chain: Chain): number {
  let count = 0;
  for (const from of table.chains) for (const rule of from.rules) if (rule.chain === chain) count++;
  return count;
}

function ruleLine(table: LoadedTable, rule: Rule, number: number, options: ListOptions): string {
  const ip = rule.ip;
  let out = options.lineNumbers ? `${String(number).padEnd(4)} ` : '';
  if (options.verbose) out += columnNumber(table.counters[rule.counter]!, options.exact) + columnNumber(table.counters[rule.counter + 1]!, options.exact);
  out += `${targetName(rule).padEnd(9)} ${ip.invertProtocol ? '!' : ' '}${protocolColumn(ip.protocol, options.numeric).padEnd(4)} `;
  out += ip.fragment === Fragment.ANY ? '-- ' : ip.fragment === Fragment.NON_FIRST ? '-f ' : '!f ';
  if (options.verbose) {
    out += ` ${interfaceColumn(ip.inName, ip.inWildcard, ip.invertIn, options.numeric).padEnd(6)} `;
    out += `${interfaceColumn(ip.outName, ip.outWildcard, ip.invertOut, options.numeric).padEnd(6)} `;
  }
  out += `${ip.invertSrc ? '!' : ' '}${addressColumn(ip.src, ip.srcMask, options).padEnd(19)} `;
  out += `${ip.invertDst ? '!' : ' '}${addressColumn(ip.dst, ip.dstMask, options).padEnd(19)} `;
  if (rule.kind === RuleKind.GOTO) out += '[goto] ';
  for (const match of rule.matches) out += match.print(options);
  if (rule.target) out += rule.target.print(options);
  return `${out}\n`;
}

/** Numbers only: what the verbose echo of a rule uses. */
const NUMERIC: ListFormat = { numeric: true, serviceName: () => null, hostName: () => null };

/** xtables' chain_protos: the names iptables knows without /etc/protocols. */
const CHAIN_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [6, 'tcp'],
  [132, 'sctp'],
  [17, 'udp'],
  [136, 'udplite'],
  [1, 'icmp'],
  [58, 'icmpv6'],
  [50, 'esp'],
  [51, 'ah'],
  [135, 'mh'],
  [0, 'all'],
]);

/**
 * The line `iptables -v` prints for each rule -A, -I, -R or -D works on (print_firewall with
 * FMT_PRINT_RULE: no table, numbers, interfaces): `ACCEPT  tcp opt -- in lan0 out *  1.1.1.1  -> 0.0.0.0/0   tcp dpt:22`.
 */
export function echoRule(rule: Rule): string {
  const ip = rule.ip;
  let out = `${targetName(rule)} ${ip.invertProtocol ? '!' : ' '}${CHAIN_PROTOCOLS.get(ip.protocol) ?? ip.protocol} `;
  out += `opt ${ip.fragment === Fragment.ANY ? '--' : ip.fragment === Fragment.NON_FIRST ? '-f' : '!f'} `;
  out += `in ${interfaceColumn(ip.inName, ip.inWildcard, ip.invertIn, true)} out ${interfaceColumn(ip.outName, ip.outWildcard, ip.invertOut, true)} `;
  out += `${ip.invertSrc ? '!' : ' '}${addressColumn(ip.src, ip.srcMask, NUMERIC)} ${ip.invertDst ? '!' : ' '}-> ${addressColumn(ip.dst, ip.dstMask, NUMERIC)}  `;
  if (rule.kind === RuleKind.GOTO) out += '[goto] ';
  for (const match of rule.matches) out += match.print(NUMERIC);
  if (rule.target) out += rule.target.print(NUMERIC);
  return `${out}\n`;
}

function targetName(rule: Rule): string {
  switch (rule.kind) {
    case RuleKind.VERDICT:
      return rule.verdict === Verdict.ACCEPT ? 'ACCEPT' : 'DROP';
    case RuleKind.RETURN:
      return 'RETURN';
    case RuleKind.JUMP:
    case RuleKind.GOTO:
      return rule.chain!.name;
    case RuleKind.TARGET:
      return rule.target!.name;
    default:
      return '';
  }
}

/** -n prints the number (0 for any); else /etc/protocols' name, `all` for 0, or the number. */
function protocolColumn(protocol: number, numeric: boolean): string {
  if (numeric) return String(protocol);
  return protocol === 0 ? 'all' : protocolName(protocol);
}

function interfaceColumn(name: string | null, wildcard: boolean, invert: boolean, numeric: boolean): string {
  const shown = name === null ? (numeric ? '*' : 'any') : `${name}${wildcard ? '+' : ''}`;
  return `${invert ? '!' : ''}${shown}`;
}

/** `10.0.1.2`, `10.0.0.0/8`, `1.0.3.0/255.0.255.0`; without -n `anywhere` and host or network names. */
function addressColumn(address: number, mask: number, format: ListFormat): string {
  if (mask === 0 && !format.numeric) return 'anywhere';
  const shown = (format.numeric ? null : format.hostName(address)) ?? formatIpv4Address(address);
  return mask === 0xffffffff ? shown : `${shown}/${maskText(mask)}`;
}

/** xtables_print_num in a column: `%8llu ` with -x, else up to 99999 as `%5llu `, then K, M, G, T. */
function columnNumber(value: number, exact: boolean): string {
  if (exact) return `${String(value).padStart(8)} `;
  const [shown, unit] = scaled(value);
  return unit === '' ? `${shown.padStart(5)} ` : `${shown.padStart(4)}${unit} `;
}

/** xtables_print_num outside the table (a chain's policy counters): no padding. */
function inlineNumber(value: number, exact: boolean): string {
  if (exact) return `${value} `;
  const [shown, unit] = scaled(value);
  return `${shown}${unit} `;
}

/** Divides by 1000, rounding half up, until the number has at most four digits (five unscaled). */
function scaled(value: number): [string, string] {
  if (value <= 99999) return [String(value), ''];
  let scaledValue = value;
  for (const unit of ['K', 'M', 'G']) {
    scaledValue = Math.floor((scaledValue + 500) / 1000);
    if (scaledValue <= 9999) return [String(scaledValue), unit];
  }
  return [String(Math.floor((scaledValue + 500) / 1000)), 'T'];
}
