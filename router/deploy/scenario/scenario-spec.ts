/**
 * A scenario as the runner takes it, checked: the lab it runs in, services started before the
 * steps, and the steps. Durations are in ms.
 */
import type { ImpairmentSettings } from '../lab/impairment.ts';
import type { LabSpec } from '../lab/lab-spec.ts';

/** What to wait for before a service counts as started. */
export type Readiness = { tcp: number } | { udp: number } | { log: string } | { after: number };

/** A command: its words, or one line for `sh -c` when `shell` is set. */
export interface Command {
  argv: string[];
  shell: boolean;
  /** As written, for reports. */
  text: string;
}

export interface ServiceSpec {
  name: string;
  host: string;
  command: Command;
  ready: Readiness;
  /** How long readiness may take. */
  timeout: number;
  line: number;
}

export interface Expectation {
  exit?: number;
  exitNot?: number;
  stdout?: string;
  stdoutMatch?: RegExp;
  stderr?: string;
  stderrMatch?: RegExp;
}

interface StepBase {
  name: string;
  /** Line in the scenario file, for reports. */
  line: number;
  /** A failure does not stop the run. */
  continueOnFailure: boolean;
  /** For --compare: the outcome is expected to differ between vrouter and the kernel, and why. */
  differs: string | null;
}

export interface RunStep extends StepBase {
  kind: 'run';
  host: string;
  command: Command;
  stdin: string | null;
  timeout: number;
  expect: Expectation;
  /** Retry until the expectation holds or this much time has gone by (0: one try). */
  wait: number;
}

export interface ToolStep extends StepBase {
  kind: 'tool';
  /** The tool's words: `conntrack -L expect`, `iptables-save`, `iptables-restore --noflush`, ... */
  argv: string[];
  router: string | null;
  stdin: string | null;
  timeout: number;
  expect: Expectation;
  wait: number;
}

export interface LinkStep extends StepBase {
  kind: 'link';
  segment: string;
  settings: Partial<ImpairmentSettings>;
}

export interface SleepStep extends StepBase {
  kind: 'sleep';
  duration: number;
}

export type StepSpec = RunStep | ToolStep | LinkStep | SleepStep;

export interface ScenarioSpec {
  name: string;
  file: string;
  lab: LabSpec;
  services: ServiceSpec[];
  steps: StepSpec[];
}

/** The tools a `tool:` step may name, and whether the kernel has each (`--kernel` runs them there). */
export const SCENARIO_TOOLS: Readonly<Record<string, { kernel: boolean }>> = {
  conntrack: { kernel: true },
  'iptables-save': { kernel: true },
  'iptables-restore': { kernel: true },
  iptables: { kernel: true },
  stats: { kernel: false },
  interfaces: { kernel: false },
  routes: { kernel: false },
};
