/**
 * What a match or target unit is (the kernel's xt_match / xt_target with iptables' libxt_* half):
 * a type that names its options and builds an instance from them, validating as it goes. Instances
 * run on the packet path: they read the packet in place, never throw and never allocate (LOG and
 * NFLOG excepted: a log line is a string; a recent list allocates a slot's timestamps once). Their
 * configuration is immutable; limit's bucket and recent's lists are the state they keep.
 */
import type { HookPoint } from '../../router/core/hooks.ts';
import type { RouterInterface } from '../../router/core/interfaces.ts';
import type { Packet } from '../../router/core/packet.ts';
import type { RecentTables } from './matches/recent-table.ts';
import type { TableName } from './tables.ts';

export const MatchResult = { NO: 0, YES: 1, HOTDROP: 2 } as const;
/** YES, NO, or HOTDROP: the packet cannot be examined and is dropped at once (xt's par->hotdrop). */
export type MatchResult = (typeof MatchResult)[keyof typeof MatchResult];

/** XT_CONTINUE: a target that lets the packet go on to the next rule. */
export const CONTINUE = -1;

export interface OptionSpec {
  /** Long names without the dashes; the first is the canonical one builders receive. */
  readonly names: readonly string[];
  /** Words the option takes. */
  readonly args: 0 | 1 | 2;
  readonly invertible: boolean;
}

/** What units check about their rule when they are built (`-p tcp` for `-m tcp`, the chain for SNAT). */
export interface RuleHeader {
  /** The chain the rule is added to. */
  readonly chain: string;
  /** 0 when the rule has no `-p`. */
  readonly protocol: number;
  readonly invertProtocol: boolean;
}

/** How `iptables -L` is asked to show a rule: `-n`, and where names come from without it. */
export interface ListFormat {
  /** `-n`: numbers only, no names. */
  readonly numeric: boolean;
  /** getservbyport: the service name of `port` for `protocol` (`tcp`, `udp`, ...), or null. */
  serviceName(port: number, protocol: string): string | null;
  /** gethostbyaddr, then getnetbyaddr: a name for the address, or null. */
  hostName(address: number): string | null;
}

export interface Match {
  /** `thoff`: offset of the L4 header; `fragoff`: the fragment offset field (8-byte units). */
  test(packet: Packet, thoff: number, fragoff: number): MatchResult;
  /** As iptables-save prints it, from the leading ` -m name`. */
  save(): string;
  /**
   * The match reads the packet's connection, so a rule with it turns connection tracking on, as
   * its kernel checkentry takes conntrack for the namespace (nf_ct_netns_get). Absent: false.
   */
  readonly needsConntrack?: boolean;
  /** As `iptables -L` prints it after the addresses, from a leading space (libxt's print). */
  print(format: ListFormat): string;
}

/**
 * Collects one match's options. Methods throw OptionError for what they refuse; the parser has
 * already refused a second occurrence of an option and a `!` the option does not take. `name` is
 * the option's canonical name, `written` the word in the rule (for messages).
 */
export interface MatchBuilder {
  option(name: string, args: readonly string[], invert: boolean, written: string): void;
  build(header: RuleHeader): Match;
}

export interface MatchType {
  readonly name: string;
  readonly options: readonly OptionSpec[];
  /** The `-p` protocol that loads this match implicitly when one of its options appears. */
  readonly protocol?: number;
  create(context: ExtensionContext): MatchBuilder;
}

export interface Target {
  /** What `iptables -L` shows in its target column (NOTRACK is CT's alias there). */
  readonly name: string;
  /** A Verdict, or CONTINUE. */
  run(packet: Packet, hook: HookPoint): number;
  /** As iptables-save prints it, from the leading ` -j NAME`. */
  save(): string;
  /** As Match.needsConntrack (a nat table turns tracking on by itself). */
  readonly needsConntrack?: boolean;
  /** As `iptables -L` prints it after the matches, from a leading space (libxt's print). */
  print(format: ListFormat): string;
}

export interface TargetBuilder {
  option(name: string, args: readonly string[], invert: boolean, written: string): void;
  build(header: RuleHeader): Target;
}

export interface TargetType {
  readonly name: string;
  readonly options: readonly OptionSpec[];
  /** The tables the kernel accepts the target in; all when absent. */
  readonly tables?: readonly TableName[];
  create(env: ExtensionContext): TargetBuilder;
}

/** Sends what REJECT answers with; the router implements it. */
export interface RejectSender {
  sendIcmpError(packet: Packet, type: number, code: number): void;
  /** The reset for a TCP segment (router/tcp-reset.ts builds it); nothing for a reset or a bad segment. */
  sendTcpReset(packet: Packet): void;
}

export interface TablesEnv {
  reject: RejectSender;
  /** One kernel-format LOG line per call. */
  log: (line: string) => void;
  /** A TRACE line about a traced packet (the kernel logs it; `vrouter trace` shows it); default: `log`. */
  trace?: (packet: Packet, line: string) => void;
  /**
   * Whether conntrack has a helper of this name (`CT --helper`). The rule's `-p` protocol is passed
   * too, for a predicate that checks it as the kernel does (ftp is a TCP helper).
   */
  knownHelper: (name: string, protocol: number) => boolean;
  /**
   * Targets from the layers above netfilter, bound to this router (NAT's SNAT, DNAT, MASQUERADE,
   * REDIRECT), offered next to netfilter's own.
   */
  extraTargets?: readonly TargetType[];
  /** The router's clock in ms (limit, recent); default performance.now(). */
  now?: () => number;
  /** The router's interfaces, whose addresses are its own (addrtype LOCAL); none when absent. */
  interfaces?: readonly RouterInterface[];
}

/** What units are built with: the router's environment, its clock, and state the tables keep across loads. */
export interface ExtensionContext extends TablesEnv {
  readonly now: () => number;
  readonly interfaces: readonly RouterInterface[];
  /** `-m recent` lists by name, shared by every rule that names one (as xt_recent's per-namespace tables). */
  readonly recent: RecentTables;
}
