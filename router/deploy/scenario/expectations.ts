/**
 * Whether a command's result meets a step's expectation, and if not, one line saying what was
 * expected and what came instead. `stdout`/`stderr` compare the whole text after trimming;
 * the `_match` forms search with a regular expression.
 */
import type { Expectation } from './scenario-spec.ts';

export interface CommandResult {
  /** null when the command was killed (timeout) or could not start. */
  exit: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Why it could not start, if so. */
  error?: string;
}

/** null when everything holds; else the first thing that does not. */
export function unmet(expect: Expectation, result: CommandResult): string | null {
  if (result.error) return `could not run: ${result.error}`;
  if (result.timedOut) return 'timed out';
  if (expect.exit !== undefined && result.exit !== expect.exit) return `expected exit ${expect.exit}, got ${result.exit}`;
  if (expect.exitNot !== undefined && result.exit === expect.exitNot) return `expected an exit other than ${expect.exitNot}, got ${result.exit}`;
  for (const [stream, exact, pattern] of [
    ['stdout', expect.stdout, expect.stdoutMatch],
    ['stderr', expect.stderr, expect.stderrMatch],
  ] as const) {
    const text = result[stream];
    if (exact !== undefined && text.trim() !== exact.trim()) return `expected ${stream} ${JSON.stringify(exact.trim())}, got ${JSON.stringify(clip(text.trim()))}`;
    if (pattern && !pattern.test(text)) return `expected ${stream} to match /${pattern.source}/, got ${JSON.stringify(clip(text.trim()))}`;
  }
  return null;
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** The last `count` lines of a command's output, for a failure report. */
export function lastLines(text: string, count = 5): string[] {
  const lines = text.replace(/\s+$/, '').split('\n');
  return lines.slice(Math.max(0, lines.length - count)).filter((line) => line.length > 0);
}
