/**
 * `vrouter scenario run FILE [--kernel | --compare] [--junit FILE] [--keep]` and
 * `vrouter scenario check FILE [--kernel]`.
 *
 * Exit codes: 0 every service and step passed (and, with --compare, no unexpected difference),
 * 1 something failed or differed, 2 the scenario file is refused (or asks the kernel for something
 * it lacks, with --kernel), 130 interrupted (everything made was removed).
 */
import { writeFileSync } from 'node:fs';
import { UsageError } from './cli-errors.ts';
import { kernelImpairmentProblem, kernelLabProblems } from './lab/kernel-lab.ts';
import { KernelBackend, VrouterBackend, type LabBackend } from './scenario/backends.ts';
import { compareRuns, formatComparison, unexpectedDifferences } from './scenario/compare.ts';
import { junitXml, type CaseResult, type SuiteResult } from './scenario/junit.ts';
import { ScenarioRun, summaryLine, type ScenarioResult } from './scenario/runner.ts';
import { loadScenarioFile } from './scenario/scenario-config.ts';
import { SCENARIO_TOOLS, type ScenarioSpec } from './scenario/scenario-spec.ts';

const USAGE = 'usage: vrouter scenario run FILE.yaml [--kernel | --compare] [--junit FILE] [--keep]\n       vrouter scenario check FILE.yaml [--kernel]';

interface Invocation {
  verb: 'run' | 'check';
  file: string;
  kernel: boolean;
  compare: boolean;
  junit: string | null;
  keep: boolean;
}

export function parseScenarioArgs(argv: readonly string[]): Invocation {
  const [verb, ...rest] = argv;
  if (verb !== 'run' && verb !== 'check') throw new UsageError(`scenario: expected run or check, got ${JSON.stringify(verb ?? '')}\n${USAGE}`);
  const invocation: Invocation = { verb, file: '', kernel: false, compare: false, junit: null, keep: false };
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    if (word === '--kernel') invocation.kernel = true;
    else if (word === '--compare' && verb === 'run') invocation.compare = true;
    else if (word === '--keep' && verb === 'run') invocation.keep = true;
    else if (word === '--junit' && verb === 'run') {
      const value = rest[++i];
      if (!value) throw new UsageError('scenario: --junit needs a file');
      invocation.junit = value;
    } else if (word.startsWith('-')) throw new UsageError(`scenario ${verb}: unknown option ${word}\n${USAGE}`);
    else if (invocation.file) throw new UsageError(`scenario ${verb}: one scenario file at a time (got ${invocation.file} and ${word})`);
    else invocation.file = word;
  }
  if (!invocation.file) throw new UsageError(`scenario ${verb}: which scenario file?\n${USAGE}`);
  if (invocation.kernel && invocation.compare) throw new UsageError('scenario run: --kernel and --compare exclude each other (--compare runs both)');
  if (invocation.keep && invocation.compare) throw new UsageError('scenario run: --keep leaves one lab up; it does not go with --compare');
  return invocation;
}

/** What the kernel cannot run of this scenario, one line each. */
export function kernelProblems(spec: ScenarioSpec): string[] {
  const problems = kernelLabProblems(spec.lab);
  for (const step of spec.steps) {
    if (step.kind === 'tool' && !SCENARIO_TOOLS[step.argv[0]!]!.kernel) problems.push(`step "${step.name}" (line ${step.line}): the kernel has no ${step.argv[0]} tool`);
    const impairment = step.kind === 'link' ? kernelImpairmentProblem(step.settings) : null;
    if (impairment) problems.push(`step "${step.name}" (line ${step.line}): ${impairment}`);
  }
  return problems;
}

class KernelRefusal extends Error {}

export async function runScenarioCommand(argv: readonly string[]): Promise<number> {
  const invocation = parseScenarioArgs(argv);
  const spec = loadScenarioFile(invocation.file);
  if (invocation.kernel || invocation.compare) {
    const problems = kernelProblems(spec);
    if (problems.length) throw new KernelRefusal(`${invocation.file}: this scenario cannot run on the kernel:\n  ${problems.join('\n  ')}`);
  }
  if (invocation.verb === 'check') {
    process.stdout.write(`${invocation.file}: scenario ${spec.name} is valid (${spec.services.length} services, ${spec.steps.length} steps, lab ${spec.lab.name})\n`);
    return 0;
  }
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  const modes: ('vrouter' | 'kernel')[] = invocation.compare ? ['vrouter', 'kernel'] : [invocation.kernel ? 'kernel' : 'vrouter'];
  const results: ScenarioResult[] = [];
  const suites: SuiteResult[] = [];
  for (const mode of modes) {
    const backend: LabBackend = mode === 'kernel' ? new KernelBackend(spec.lab) : new VrouterBackend(spec.lab);
    if (modes.length > 1) print(`== ${spec.name} on ${mode}`);
    const started = new Date();
    const run = new ScenarioRun(spec, backend, print);
    const interrupted = await withInterrupt(run, () => run.run({ keep: invocation.keep }));
    if (interrupted === null) {
      print('interrupted: everything the run made was removed');
      return 130;
    }
    results.push(interrupted);
    suites.push({ name: modes.length > 1 ? `${spec.name} (${mode})` : spec.name, cases: interrupted.outcomes.map(caseOf), timestamp: started, duration: interrupted.duration });
    print(summaryLine(interrupted));
    if (invocation.keep) {
      await untilSignal();
      backend.down();
    }
  }
  if (invocation.junit) writeFileSync(invocation.junit, junitXml(suites));
  if (invocation.compare) {
    const rows = compareRuns(results[0]!, results[1]!);
    print('');
    for (const line of formatComparison(rows)) print(line);
    const unexpected = unexpectedDifferences(rows);
    print(unexpected ? `${unexpected} unexpected difference${unexpected > 1 ? 's' : ''} between vrouter and the kernel` : 'vrouter and the kernel agree (apart from differences marked differs:)');
    if (unexpected) return 1;
  }
  return results.some((result) => result.failed > 0) ? 1 : 0;
}

export { KernelRefusal };

function caseOf(outcome: ScenarioResult['outcomes'][number]): CaseResult {
  return {
    name: outcome.name,
    kind: outcome.kind,
    outcome: outcome.outcome,
    duration: outcome.duration,
    ...(outcome.message ? { message: outcome.message, details: outcome.message } : {}),
    ...(outcome.stdout ? { stdout: outcome.stdout } : {}),
    ...(outcome.stderr ? { stderr: outcome.stderr } : {}),
  };
}

/** Runs `work`; SIGINT/SIGTERM meanwhile abort the run (its lab taken down) and give null. */
async function withInterrupt<T>(run: ScenarioRun, work: () => Promise<T>): Promise<T | null> {
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    run.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await work();
    return interrupted ? null : result;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
