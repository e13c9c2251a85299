/**
 * Errors of the rule tables' configuration boundary. Nothing here is thrown on the packet path.
 */

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
  ) {
    super(reason);
    this.name = 'OptionError';
  }
}
