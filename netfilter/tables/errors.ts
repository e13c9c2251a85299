/**
 * Errors of the rule tables' configuration boundary. Nothing here is thrown on the packet path.
 */

/**
 * How the real iptables refuses a command that is well formed but cannot be done to the tables
 * as they are (no such chain, no such rule, an index past the end): its message, after the
 * `iptables: ` it starts with, and its exit status (1, or 4 for what the kernel refused).
 * Problems with the words themselves have none: iptables calls them parameter problems (exit 2).
 */
export interface IptablesRefusal {
  readonly message: string;
  readonly status: 1 | 4;
}

const refusal = (message: string, status: 1 | 4 = 1): IptablesRefusal => Object.freeze({ message, status });

export const Refusal = {
  NO_CHAIN: refusal('No chain/target/match by that name.'),
  BAD_RULE: refusal('Bad rule (does a matching rule exist in that chain?).'),
  INSERTION_TOO_BIG: refusal('Index of insertion too big.'),
  DELETION_TOO_BIG: refusal('Index of deletion too big.'),
  REPLACEMENT_TOO_BIG: refusal('Index of replacement too big.'),
  COUNTER_TOO_BIG: refusal('Index of counter too big.'),
  CHAIN_EXISTS: refusal('Chain already exists.'),
  NAME_TAKEN: refusal('File exists.'),
  BAD_BUILTIN: refusal('Bad built-in chain name.'),
  BAD_POLICY: refusal("Bad policy name. Run `dmesg' for more information."),
  BUILTIN_DELETE: refusal("Invalid argument. Run `dmesg' for more information."),
  /** The table's jumps were refused at COMMIT (a loop, or nested too deep): ELOOP/EMLINK from the kernel. */
  JUMPS: refusal('Too many links.', 4),
  /** nf_tables refuses to delete a chain that has rules or is jumped to. */
  chainBusy: (chain: string): IptablesRefusal => refusal(`CHAIN_DEL failed (Device or resource busy): chain ${chain}`, 4),
} as const;

/** A rules text that cannot be loaded: where (origin and absolute line), which word, and why. */
export class RulesError extends Error {
  readonly code = 'EVROUTERRULES';
  constructor(
    /** The rules file, or e.g. `config.yaml (rules)` for inline text. */
    readonly origin: string,
    /** Absolute line in the origin; 0 when the problem is not on one line. */
    readonly line: number,
    /** The word that was not understood, as written. */
    readonly word: string,
    readonly reason: string,
    /** What the iptables command prints for it, when it is a refusal rather than bad words. */
    readonly refusal: IptablesRefusal | null = null,
  ) {
    super(`${line > 0 ? `${origin}:${line}` : origin}: ${reason}`);
    this.name = 'RulesError';
  }
}

/**
 * Thrown by the tokenizer and by match and target builders, which do not know the line they are
 * on; the parser turns it into a RulesError. `reason` already quotes `word`.
 */
export class OptionError extends Error {
  constructor(
    readonly word: string,
    readonly reason: string,
    readonly refusal: IptablesRefusal | null = null,
  ) {
    super(reason);
    this.name = 'OptionError';
  }
}
