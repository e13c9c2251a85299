/**
 * Runs a scenario on one backend: the lab up, the services in order (each waited for), the
 * steps in order (a failure stops the run unless the step says `continue: true`; what is left is
 * skipped), then everything taken down again, also when something fails. Each service and step
 * is reported as it finishes.
 */
import { unmet, lastLines, type CommandResult } from './expectations.ts';
import type { LabBackend } from './backends.ts';
import { ProcessGroup, collect } from './processes.ts';
import type { ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import type { Readiness, ScenarioSpec, ServiceSpec, StepSpec } from './scenario-spec.ts';

export type Outcome = 'passed' | 'failed' | 'skipped';

export interface StepOutcome {
  name: string;
  kind: 'lab' | 'service' | 'step';
  outcome: Outcome;
  /** ms */
  duration: number;
  /** The command's exit status, where there was a command. */
  exit: number | null;
  /** What was expected and what came instead. */
  message: string | null;
  stdout: string;
  stderr: string;
  /** For tool steps: the tool's words (to normalise its output in --compare). */
  tool: string[] | null;
  differs: string | null;
}

export interface ScenarioResult {
  mode: string;
  outcomes: StepOutcome[];
  passed: number;
  failed: number;
  skipped: number;
  duration: number;
}

/** Between tries of a step with `wait:`. */
const RETRY_INTERVAL_MS = 250;
const READY_POLL_MS = 100;

export class ScenarioRun {
  private readonly processes: ProcessGroup;
  private readonly services: ChildProcess[] = [];
  private aborted = false;

  constructor(
    private readonly spec: ScenarioSpec,
    private readonly backend: LabBackend,
    private readonly print: (line: string) => void,
  ) {
    this.processes = new ProcessGroup(dirname(spec.file));
  }

  /** Stops everything now (Ctrl-C): programs killed, the lab taken down. */
  abort(): void {
    this.aborted = true;
    this.processes.killAll();
    this.backend.down();
  }

  async run(options: { keep?: boolean } = {}): Promise<ScenarioResult> {
    const started = Date.now();
    const outcomes: StepOutcome[] = [];
    const report = (outcome: StepOutcome): void => {
      outcomes.push(outcome);
      this.print(formatOutcome(outcome));
    };
    let stopped = false;
    const labStart = Date.now();
    try {
      await this.backend.up();
    } catch (error) {
      report(outcome('lab', `lab ${this.spec.lab.name}`, 'failed', labStart, { message: (error as Error).message }));
      stopped = true;
    }
    for (const service of this.spec.services) {
      if (stopped || this.aborted) {
        report(outcome('service', service.name, 'skipped', Date.now()));
        continue;
      }
      const result = await this.startService(service);
      report(result);
      if (result.outcome === 'failed') stopped = true;
    }
    for (const step of this.spec.steps) {
      if (stopped || this.aborted) {
        report({ ...outcome('step', step.name, 'skipped', Date.now()), differs: step.differs });
        continue;
      }
      const result = await this.runStep(step);
      report(result);
      if (result.outcome === 'failed' && !step.continueOnFailure) stopped = true;
    }
    for (const service of this.services.reverse()) await this.processes.stop(service);
    if (options.keep && !this.aborted) {
      this.print(`lab ${this.spec.lab.name} is left up (${this.backend.mode}):`);
      for (const line of this.backend.keepInstructions()) this.print(`  ${line}`);
    } else {
      this.processes.killAll();
      this.backend.down();
    }
    const count = (which: Outcome): number => outcomes.filter((o) => o.outcome === which).length;
    return { mode: this.backend.mode, outcomes, passed: count('passed'), failed: count('failed'), skipped: count('skipped'), duration: Date.now() - started };
  }

  private async startService(service: ServiceSpec): Promise<StepOutcome> {
    const start = Date.now();
    let netns: string;
    try {
      netns = this.backend.hostNamespace(service.host);
    } catch (error) {
      return outcome('service', service.name, 'failed', start, { message: (error as Error).message });
    }
    const child = this.processes.spawnIn(netns, service.command);
    this.services.push(child);
    child.stdin!.end();
    const output = collect(child);
    const problem = await this.waitReady(netns, service, child, output);
    const details = { stdout: output.stdout(), stderr: output.stderr() };
    if (problem) return outcome('service', service.name, 'failed', start, { ...details, message: problem });
    return outcome('service', service.name, 'passed', start, details);
  }

  private waitReady(netns: string, service: ServiceSpec, child: ChildProcess, output: ReturnType<typeof collect>): Promise<string | null> {
    const ready = service.ready;
    return new Promise((resolve) => {
      let settled = false;
      const done = (problem: string | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(poll);
        resolve(problem);
      };
      const deadline = setTimeout(() => done(`not ready after ${service.timeout / 1000} s (waiting for ${describeReadiness(ready)})`), service.timeout);
      let poll: NodeJS.Timeout | undefined;
      child.once('exit', (code, signal) => done(`exited (${signal ?? `status ${code}`}) before it was ready`));
      child.once('error', (error) => done(`could not start: ${error.message}`));
      if ('after' in ready) {
        setTimeout(() => done(null), ready.after);
      } else if ('log' in ready) {
        const check = (): void => {
          if (output.stdout().includes(ready.log) || output.stderr().includes(ready.log)) done(null);
        };
        output.onData(check);
      } else {
        const [flag, port] = 'tcp' in ready ? ['-Hltn', ready.tcp] : ['-Hlun', ready.udp];
        let checking = false;
        poll = setInterval(() => {
          if (checking) return;
          checking = true;
          void this.processes
            .run(netns, { argv: ['ss', flag, `sport = :${port}`], shell: false, text: 'ss' }, null, 2000)
            .then((result) => {
              checking = false;
              if (result.stdout.trim() !== '') done(null);
            });
        }, READY_POLL_MS);
      }
    });
  }

  private async runStep(step: StepSpec): Promise<StepOutcome> {
    const start = Date.now();
    try {
      switch (step.kind) {
        case 'sleep':
          await new Promise((resolve) => setTimeout(resolve, step.duration));
          return { ...outcome('step', step.name, 'passed', start), differs: step.differs };
        case 'link':
          this.backend.link(step.segment, step.settings);
          return { ...outcome('step', step.name, 'passed', start), differs: step.differs };
        case 'run':
        case 'tool': {
          const target = step.kind === 'run' ? { netns: this.backend.hostNamespace(step.host), command: step.command } : this.backend.toolCommand(step);
          let result: CommandResult;
          let problem: string | null;
          for (;;) {
            result = await this.processes.run(target.netns, target.command, step.stdin, step.timeout);
            problem = unmet(step.expect, result);
            if (!problem || this.aborted || Date.now() - start + RETRY_INTERVAL_MS > step.wait) break;
            await new Promise((resolve) => setTimeout(resolve, RETRY_INTERVAL_MS));
          }
          return {
            ...outcome('step', step.name, problem ? 'failed' : 'passed', start, { stdout: result.stdout, stderr: result.stderr, ...(problem ? { message: problem } : {}) }),
            exit: result.exit,
            tool: step.kind === 'tool' ? step.argv : null,
            differs: step.differs,
          };
        }
      }
    } catch (error) {
      return { ...outcome('step', step.name, 'failed', start, { message: (error as Error).message }), differs: step.differs };
    }
  }
}

function outcome(kind: StepOutcome['kind'], name: string, result: Outcome, start: number, extra: { message?: string; stdout?: string; stderr?: string } = {}): StepOutcome {
  return {
    name,
    kind,
    outcome: result,
    duration: result === 'skipped' ? 0 : Date.now() - start,
    exit: null,
    message: extra.message ?? null,
    stdout: extra.stdout ?? '',
    stderr: extra.stderr ?? '',
    tool: null,
    differs: null,
  };
}

function describeReadiness(ready: Readiness): string {
  if ('tcp' in ready) return `TCP port ${ready.tcp} to listen`;
  if ('udp' in ready) return `UDP port ${ready.udp} to be bound`;
  if ('log' in ready) return `"${ready.log}" in its output`;
  return `${ready.after} ms`;
}

const WORDS: Readonly<Record<Outcome, string>> = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIP' };

/** One report line (and, for a failure, what was expected and the last output lines). */
export function formatOutcome(o: StepOutcome): string {
  const label = o.kind === 'step' ? o.name : `${o.kind} ${o.name}`;
  let text = `${WORDS[o.outcome]} ${label}${o.outcome === 'skipped' ? '' : ` (${(o.duration / 1000).toFixed(2)} s)`}`;
  if (o.outcome === 'failed') {
    if (o.message) text += `\n     ${o.message}`;
    const tail = [...lastLines(o.stdout), ...lastLines(o.stderr)];
    for (const line of tail) text += `\n     | ${line}`;
  }
  return text;
}

/** The closing line CI systems read. */
export function summaryLine(result: { passed: number; failed: number; skipped: number }): string {
  return `${result.passed} passed, ${result.failed} failed${result.skipped ? `, ${result.skipped} skipped` : ''}`;
}
