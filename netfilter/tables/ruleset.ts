/**
 * A loaded table as the packet path walks it: chains of rules with resolved jumps, and one
 * Float64Array of packet/byte counters (built-in chain policies first, then the rules). Everything
 * but the counters is immutable once built.
 */
import type { HookPoint, Verdict } from '../../router/core/hooks.ts';
import type { Match, Target } from './extension.ts';
import type { TableId } from './tables.ts';

export const RuleKind = {
  /** No -j: count and go on. */
  NONE: 0,
  /** ACCEPT or DROP. */
  VERDICT: 1,
  RETURN: 2,
  JUMP: 3,
  GOTO: 4,
  /** An extension target (LOG, REJECT, ...). */
  TARGET: 5,
} as const;
export type RuleKind = (typeof RuleKind)[keyof typeof RuleKind];

export const Fragment = { ANY: 0, NON_FIRST: 1, NOT_NON_FIRST: 2 } as const;
export type Fragment = (typeof Fragment)[keyof typeof Fragment];

/** The kernel's struct ipt_ip: what every rule checks before its matches. */
export interface IpHeaderMatch {
  /** Already masked, as the kernel stores it. */
  readonly src: number;
  readonly srcMask: number;
  readonly invertSrc: boolean;
  readonly dst: number;
  readonly dstMask: number;
  readonly invertDst: boolean;
  /** `-i` without a trailing `+`, or null when any name goes. */
  readonly inName: string | null;
  /** The name ended in `+`: compare only its start. */
  readonly inWildcard: boolean;
  readonly invertIn: boolean;
  readonly outName: string | null;
  readonly outWildcard: boolean;
  readonly invertOut: boolean;
  /** 0: any. */
  readonly protocol: number;
  readonly invertProtocol: boolean;
  readonly fragment: Fragment;
}

export interface Rule {
  readonly ip: IpHeaderMatch;
  readonly matches: readonly Match[];
  readonly kind: RuleKind;
  /** For VERDICT. */
  readonly verdict: Verdict;
  /** For TARGET. */
  readonly target: Target | null;
  /** For JUMP and GOTO. */
  readonly chain: Chain | null;
  /** Index of the packet counter in the table's counters; bytes follow it. */
  readonly counter: number;
  /** iptables-save's text after `-A CHAIN`. */
  readonly text: string;
  /** What a drop by this rule is called in stats, captures and traces: `filter:FORWARD:rule:2 -A FORWARD ...`. */
  readonly origin: string;
}

export interface Chain {
  readonly name: string;
  /** -1 for a user-defined chain. */
  readonly hook: HookPoint | -1;
  /** Built-in chains only. */
  readonly policy: Verdict;
  readonly policyCounter: number;
  readonly rules: readonly Rule[];
  /** Built-in chains: what a drop by the policy is called (`filter:FORWARD:policy:3 DROP`). */
  readonly policyOrigin: string;
  /** User chains: the implicit return at their end, as TRACE names it (`filter:MYCHAIN:return:4`). */
  readonly returnOrigin: string;
}

export interface LoadedTable {
  readonly id: TableId;
  /** Built-in chains in hook order, then user chains in iptables-save's (byte) order. */
  readonly chains: readonly Chain[];
  /** By hook point; null where the table has no chain. */
  readonly builtin: readonly (Chain | null)[];
  readonly counters: Float64Array;
  /** The counters the rules text gave, which apply() starts from. */
  readonly initialCounters: Float64Array;
}

/** What parse() returns and apply() installs: the tables the text had, nothing else. */
export interface ParsedRuleset {
  readonly tables: readonly LoadedTable[];
}
