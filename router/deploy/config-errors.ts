/**
 * Refusals of config, lab and scenario files: one ConfigError names the file, line, key path and
 * bad value; ConfigErrors carries every problem of a file at once, and ConfigProblems collects
 * them while the checks go on past each refusal.
 */
import type { ConfigReader, Path } from './config.ts';

/** A value is shown to say which one is meant, not to echo a whole block back. */
const MAX_SHOWN = 80;

function shortened(text: string): string {
  return text.length <= MAX_SHOWN ? text : `${text.slice(0, MAX_SHOWN - 3)}...`;
}

export class ConfigError extends Error {
  readonly code = 'EVROUTERCONFIG';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly keyPath: string,
    readonly value: unknown,
    readonly reason: string,
  ) {
    const where = line > 0 ? `${file}:${line}` : file;
    const key = keyPath ? ` ${keyPath}:` : '';
    const shown = value === undefined ? '' : ` (got ${shortened(JSON.stringify(value))})`;
    super(`${where}:${key} ${reason}${shown}`);
    this.name = 'ConfigError';
  }
}

/** Every problem of a file at once; its message has one line per problem. */
export class ConfigErrors extends Error {
  readonly code = 'EVROUTERCONFIG';
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((error) => error.message).join('\n'));
    this.name = 'ConfigErrors';
  }
}

/** Runs checks and keeps going past each refusal, collecting them. */
export class ConfigProblems {
  readonly errors: ConfigError[] = [];

  constructor(
    readonly reader: ConfigReader,
    /** Where the checked part is in the document: [] for a whole file, ['lab'] inside a scenario. */
    readonly root: Path = [],
  ) {}

  /**
   * The mapping at `at`, each unknown key reported on its own: the known keys are still read, so
   * one misspelt key does not hide the rest of the entry. Null (reported) when it is no mapping.
   */
  map(at: Path, allowed: readonly string[]): Record<string, unknown> | null {
    const found = this.reader.get(at);
    if (found === null || typeof found !== 'object' || Array.isArray(found)) {
      this.check(() => this.reader.fail(at, found, 'must be a mapping'), null);
      return null;
    }
    const record = found as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) this.check(() => this.reader.fail([...at, key], record[key], `unknown key (known: ${allowed.join(', ')})`), null);
    }
    return record;
  }

  /** Runs `check`; the ConfigError (or ConfigErrors) it throws is kept and `fallback` returned instead. */
  check<T>(check: () => T, fallback: T): T {
    try {
      return check();
    } catch (error) {
      if (error instanceof ConfigErrors) this.errors.push(...error.errors);
      else if (error instanceof ConfigError) this.errors.push(error);
      else throw error;
      return fallback;
    }
  }

  /** Throws ConfigErrors if anything was refused. */
  throwIfAny(): void {
    if (this.errors.length) throw new ConfigErrors(this.errors);
  }
}
