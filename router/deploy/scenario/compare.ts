/**
 * `--compare`: the same scenario on vrouter and on the kernel, one after the other, and a table
 * of each step's outcome on both (pass/fail and exit status) with, for tool steps, the difference
 * in their normalised output. A difference fails the comparison unless the step is marked
 * `differs: "reason"`, which is reported but accepted.
 */
import { lineDiff, normalizeToolOutput } from './normalize.ts';
import type { ScenarioResult, StepOutcome } from './runner.ts';

export interface ComparedStep {
  name: string;
  vrouter: string;
  kernel: string;
  /** Why the two differ, if they do; null when they agree. */
  difference: string[] | null;
  /** The scenario says this difference is expected, and why. */
  accepted: string | null;
}

function cell(o: StepOutcome | undefined): string {
  if (!o) return 'absent';
  if (o.outcome === 'skipped') return 'skipped';
  return o.exit === null ? o.outcome.replace('ed', '') : `${o.outcome === 'passed' ? 'pass' : 'fail'} (exit ${o.exit})`;
}

export function compareRuns(vrouter: ScenarioResult, kernel: ScenarioResult): ComparedStep[] {
  const rows: ComparedStep[] = [];
  const count = Math.max(vrouter.outcomes.length, kernel.outcomes.length);
  for (let i = 0; i < count; i++) {
    const ours = vrouter.outcomes[i];
    const theirs = kernel.outcomes[i];
    const name = ours?.kind === 'step' || !ours ? (ours ?? theirs)!.name : `${ours.kind} ${ours.name}`;
    const difference: string[] = [];
    if (cell(ours) !== cell(theirs)) difference.push(`outcome: vrouter ${cell(ours)}, kernel ${cell(theirs)}`);
    if (ours?.tool && theirs?.tool && ours.outcome !== 'skipped' && theirs.outcome !== 'skipped') {
      difference.push(...lineDiff(normalizeToolOutput(ours.tool, ours.stdout), normalizeToolOutput(theirs.tool, theirs.stdout)));
    }
    rows.push({ name, vrouter: cell(ours), kernel: cell(theirs), difference: difference.length ? difference : null, accepted: ours?.differs ?? theirs?.differs ?? null });
  }
  return rows;
}

export function formatComparison(rows: readonly ComparedStep[]): string[] {
  const width = Math.min(48, Math.max(4, ...rows.map((r) => r.name.length)));
  const lines = [`${'step'.padEnd(width)}  ${'vrouter'.padEnd(16)}  ${'kernel'.padEnd(16)}  verdict`];
  for (const row of rows) {
    const verdict = row.difference === null ? 'same' : row.accepted !== null ? `differs, as expected: ${row.accepted}` : 'DIFFERS';
    lines.push(`${row.name.slice(0, width).padEnd(width)}  ${row.vrouter.padEnd(16)}  ${row.kernel.padEnd(16)}  ${verdict}`);
    for (const line of row.difference ?? []) lines.push(`${' '.repeat(width)}    ${line}`);
  }
  return lines;
}

/** Differences the scenario did not expect. */
export function unexpectedDifferences(rows: readonly ComparedStep[]): number {
  return rows.filter((row) => row.difference !== null && row.accepted === null).length;
}
