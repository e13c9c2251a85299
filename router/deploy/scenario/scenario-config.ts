/**
 * A scenario file (README, "Scenarios"): checked completely before anything runs, every problem
 * reported with file, line, key path and value, exit 2. The lab is a lab file (relative to the
 * scenario) or a mapping inline.
 */
import { dirname, resolve } from 'node:path';
import { ConfigError, ConfigReader, readConfigText, type LoadOptions, type Path } from '../config.ts';
import { ConfigProblems } from '../config-errors.ts';
import { ImpairmentValueError, IMPAIRMENT_KEYS, parseDuration } from '../lab/impairment-words.ts';
import type { ImpairmentSettings } from '../lab/impairment.ts';
import { parseLab } from '../lab/lab-config.ts';
import { loadLabFile } from '../lab/lab-file.ts';
import type { LabSpec } from '../lab/lab-spec.ts';
import { ArgvError, splitArgv } from './argv.ts';
import { SCENARIO_TOOLS, type Command, type Expectation, type Readiness, type ScenarioSpec, type ServiceSpec, type StepSpec } from './scenario-spec.ts';

const DEFAULT_STEP_TIMEOUT_MS = 30_000;
const DEFAULT_READY_TIMEOUT_MS = 10_000;
const STEP_KEYS = ['name', 'host', 'run', 'shell', 'tool', 'router', 'link', 'set', 'sleep', 'stdin', 'timeout', 'expect', 'wait', 'continue', 'differs'];
const EXPECT_KEYS = ['exit', 'exit_not', 'stdout', 'stdout_match', 'stderr', 'stderr_match'];

export function loadScenarioFile(file: string, options: LoadOptions = {}): ScenarioSpec {
  return parseScenario(file, readConfigText(file), options);
}

/** The lab's problem collector, with the scenario's durations. */
class Collector extends ConfigProblems {
  duration(at: Path, value: unknown, fallback: number): number {
    if (value === undefined) return fallback;
    return this.check(() => {
      try {
        return parseDuration(value);
      } catch (error) {
        if (error instanceof ImpairmentValueError) this.reader.fail(at, value, error.message);
        throw error;
      }
    }, fallback);
  }
}

export function parseScenario(file: string, text: string, options: LoadOptions = {}): ScenarioSpec {
  const reader = new ConfigReader(file, text);
  const known = ['name', 'lab', 'services', 'steps'];
  reader.requireOwnDocument(known, 'not a scenario file: that is a mapping with name:, lab: and steps:');
  const c = new Collector(reader);
  const top = c.map([], known) ?? {};
  const name = c.check(() => reader.string(['name'], top.name), 'scenario');
  let lab: LabSpec | null = null;
  if (top.lab === undefined) c.check(() => reader.fail(['lab'], undefined, 'is required: a lab file, or the lab as a mapping'), null);
  else if (typeof top.lab === 'string') {
    const path = resolve(dirname(file), top.lab);
    lab = c.check(() => {
      try {
        return loadLabFile(path, options);
      } catch (error) {
        // A lab file that cannot be read is this file's problem, on the lab: line.
        if (error instanceof ConfigError && error.file === path && error.line === 0) reader.fail(['lab'], top.lab, error.reason);
        throw error;
      }
    }, null);
  } else lab = c.check(() => parseLab(reader, options, ['lab']), null);
  // Kept by index (null where refused) so that later checks name the right entry.
  const services = top.services === undefined ? [] : c.check(() => reader.requireList(['services']), []).map((_, i) => readService(c, i));
  if (top.steps === undefined) c.check(() => reader.fail(['steps'], undefined, 'is required: list the steps'), null);
  const steps = top.steps === undefined ? [] : c.check(() => reader.requireList(['steps']), []).map((_, i) => readStep(c, i));
  if (lab) checkNames(c, lab, services, steps);
  c.throwIfAny();
  return { name, file, lab: lab!, services: services.filter((x): x is ServiceSpec => x !== null), steps: steps.filter((x): x is StepSpec => x !== null) };
}

function readCommand(c: Collector, at: Path, value: unknown, shell: boolean): Command | null {
  return c.check(() => {
    const text = c.reader.string(at, value);
    if (shell) return { argv: ['sh', '-c', text], shell: true, text };
    try {
      const argv = splitArgv(text);
      if (argv.length === 0) c.reader.fail(at, value, 'names no command');
      return { argv, shell: false, text };
    } catch (error) {
      if (error instanceof ArgvError) c.reader.fail(at, value, `${error.message} (or say shell: true to run it with sh -c)`);
      throw error;
    }
  }, null);
}

function readService(c: Collector, i: number): ServiceSpec | null {
  const at: Path = ['services', i];
  const raw = c.map(at, ['name', 'host', 'run', 'shell', 'ready', 'timeout']);
  if (!raw) return null;
  const name = c.check(() => c.reader.string([...at, 'name'], raw.name), `service ${i + 1}`);
  const host = c.check(() => c.reader.string([...at, 'host'], raw.host), '');
  const shell = raw.shell === undefined ? false : c.check(() => c.reader.boolean([...at, 'shell'], raw.shell), false);
  const command = readCommand(c, [...at, 'run'], raw.run, shell);
  let ready: Readiness = { after: 0 };
  if (raw.ready !== undefined) {
    const r = c.map([...at, 'ready'], ['tcp', 'udp', 'log', 'after']);
    const keys = Object.keys(r ?? {});
    if (r && keys.length !== 1) c.check(() => c.reader.fail([...at, 'ready'], r, 'must name exactly one of tcp, udp, log, after'), null);
    else if (r) {
      const key = keys[0]!;
      const where: Path = [...at, 'ready', key];
      if (key === 'tcp' || key === 'udp') ready = (key === 'tcp' ? { tcp: c.check(() => c.reader.integer(where, r[key], 1, 65535), 0) } : { udp: c.check(() => c.reader.integer(where, r[key], 1, 65535), 0) });
      else if (key === 'log') ready = { log: c.check(() => c.reader.string(where, r[key]), '') };
      else ready = { after: c.duration(where, r[key], 0) };
    }
  }
  const timeout = c.duration([...at, 'timeout'], raw.timeout, DEFAULT_READY_TIMEOUT_MS);
  return command ? { name, host, command, ready, timeout, line: c.reader.lineOf(at) } : null;
}

function readExpect(c: Collector, at: Path, value: unknown): Expectation {
  const expect: Expectation = {};
  if (value === undefined) return expect;
  const raw = c.map(at, EXPECT_KEYS);
  if (!raw) return expect;
  const regex = (key: string): RegExp | undefined =>
    c.check(() => {
      const text = c.reader.string([...at, key], raw[key]);
      try {
        return new RegExp(text, 'm');
      } catch (error) {
        c.reader.fail([...at, key], raw[key], `not a regular expression: ${(error as Error).message}`);
      }
    }, undefined);
  if (raw.exit !== undefined) expect.exit = c.check(() => c.reader.integer([...at, 'exit'], raw.exit, 0, 255), 0);
  if (raw.exit_not !== undefined) expect.exitNot = c.check(() => c.reader.integer([...at, 'exit_not'], raw.exit_not, 0, 255), 0);
  // A number or a word in YAML is compared as the text it stands for.
  const text = (key: string): string => c.check(() => (typeof raw[key] === 'number' ? String(raw[key]) : typeof raw[key] === 'string' ? (raw[key] as string) : c.reader.fail([...at, key], raw[key], 'must be text')), '');
  if (raw.stdout !== undefined) expect.stdout = text('stdout');
  if (raw.stderr !== undefined) expect.stderr = text('stderr');
  if (raw.stdout_match !== undefined) expect.stdoutMatch = regex('stdout_match');
  if (raw.stderr_match !== undefined) expect.stderrMatch = regex('stderr_match');
  return expect;
}

function readStep(c: Collector, i: number): StepSpec | null {
  const at: Path = ['steps', i];
  const raw = c.map(at, STEP_KEYS);
  if (!raw) return null;
  const kinds = ['run', 'tool', 'link', 'sleep'].filter((key) => raw[key] !== undefined);
  if (kinds.length !== 1) {
    c.check(() => c.reader.fail(at, kinds, kinds.length === 0 ? 'a step needs one of run, tool, link, sleep' : `a step does one thing: ${kinds.join(' and ')} given`), null);
    return null;
  }
  const kind = kinds[0]!;
  const allowedFor: Record<string, readonly string[]> = {
    run: ['name', 'host', 'run', 'shell', 'stdin', 'timeout', 'expect', 'wait', 'continue', 'differs'],
    tool: ['name', 'tool', 'router', 'stdin', 'timeout', 'expect', 'wait', 'continue', 'differs'],
    link: ['name', 'link', 'set', 'continue', 'differs'],
    sleep: ['name', 'sleep', 'continue', 'differs'],
  };
  for (const key of Object.keys(raw)) {
    if (!allowedFor[kind]!.includes(key)) c.check(() => c.reader.fail([...at, key], raw[key], `does not go with ${kind}: (a ${kind} step takes ${allowedFor[kind]!.join(', ')})`), null);
  }
  const base = {
    name: c.check(() => c.reader.string([...at, 'name'], raw.name), `step ${i + 1}`),
    line: c.reader.lineOf(at),
    continueOnFailure: raw.continue === undefined ? false : c.check(() => c.reader.boolean([...at, 'continue'], raw.continue), false),
    differs: raw.differs === undefined ? null : c.check(() => c.reader.string([...at, 'differs'], raw.differs), null),
  };
  const stdin = raw.stdin === undefined ? null : c.check(() => (typeof raw.stdin === 'string' ? raw.stdin : c.reader.fail([...at, 'stdin'], raw.stdin, 'must be text')), null);
  const timeout = c.duration([...at, 'timeout'], raw.timeout, DEFAULT_STEP_TIMEOUT_MS);
  const wait = c.duration([...at, 'wait'], raw.wait, 0);
  const expect = readExpect(c, [...at, 'expect'], raw.expect);
  switch (kind) {
    case 'run': {
      const shell = raw.shell === undefined ? false : c.check(() => c.reader.boolean([...at, 'shell'], raw.shell), false);
      const command = readCommand(c, [...at, 'run'], raw.run, shell);
      const host = c.check(() => c.reader.string([...at, 'host'], raw.host), '');
      return command ? { ...base, kind: 'run', host, command, stdin, timeout, expect, wait } : null;
    }
    case 'tool': {
      const command = readCommand(c, [...at, 'tool'], raw.tool, false);
      if (command && !SCENARIO_TOOLS[command.argv[0]!]) {
        c.check(() => c.reader.fail([...at, 'tool'], raw.tool, `unknown tool ${command.argv[0]} (tools: ${Object.keys(SCENARIO_TOOLS).join(', ')})`), null);
        return null;
      }
      const router = raw.router === undefined ? null : c.check(() => c.reader.string([...at, 'router'], raw.router), null);
      return command ? { ...base, kind: 'tool', argv: command.argv, router, stdin, timeout, expect, wait } : null;
    }
    case 'link': {
      const segment = c.check(() => c.reader.string([...at, 'link'], raw.link), '');
      const settings: Partial<ImpairmentSettings> = {};
      const set = raw.set === undefined ? null : c.map([...at, 'set'], [...Object.keys(IMPAIRMENT_KEYS), 'down']);
      if (raw.set === undefined) c.check(() => c.reader.fail([...at, 'set'], undefined, 'is required: what to change, e.g. { loss: 20% } or { down: true }'), null);
      for (const [key, value] of Object.entries(set ?? {})) {
        c.check(() => {
          if (key === 'down') settings.down = c.reader.boolean([...at, 'set', key], value);
          else if (IMPAIRMENT_KEYS[key]) {
            try {
              Object.assign(settings, value === 0 || value === '0' ? { [key]: 0 } : IMPAIRMENT_KEYS[key]!(value));
            } catch (error) {
              if (error instanceof ImpairmentValueError) c.reader.fail([...at, 'set', key], value, error.message);
              throw error;
            }
          }
        }, null);
      }
      return { ...base, kind: 'link', segment, settings };
    }
    default:
      return { ...base, kind: 'sleep', duration: c.duration([...at, 'sleep'], raw.sleep, 0) };
  }
}

/** Hosts, routers and segments the services and steps name must be in the lab. */
function checkNames(c: Collector, lab: LabSpec, services: readonly (ServiceSpec | null)[], steps: readonly (StepSpec | null)[]): void {
  const hosts = lab.hosts.map((h) => h.name);
  const routers = lab.routers.map((r) => r.name);
  const segments = lab.segments.map((s) => s.name);
  const known = (at: Path, value: string, list: readonly string[], what: string): void => {
    if (!list.includes(value)) c.check(() => c.reader.fail(at, value, `no ${what} of that name in lab ${lab.name} (${what}s: ${list.join(', ') || 'none'})`), null);
  };
  services.forEach((service, i) => service && known(['services', i, 'host'], service.host, hosts, 'host'));
  steps.forEach((step, i) => {
    if (!step) return;
    if (step.kind === 'run') known(['steps', i, 'host'], step.host, hosts, 'host');
    if (step.kind === 'tool' && step.router) known(['steps', i, 'router'], step.router, routers, 'router');
    if (step.kind === 'tool' && !step.router && routers.length > 1) c.check(() => c.reader.fail(['steps', i, 'tool'], step.argv.join(' '), `the lab has routers ${routers.join(', ')}: say which with router:`), null);
    if (step.kind === 'link') known(['steps', i, 'link'], step.segment, segments, 'segment');
  });
}
