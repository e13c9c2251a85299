/**
 * Where a scenario's lab runs: in this process on vrouter (`startLab`), or on the kernel
 * (`startKernelLab`). The runner sees only this interface: bring the lab up, find a host's
 * namespace, turn a `tool:` step into a command, change a segment, take it down.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImpairmentSettings } from '../lab/impairment.ts';
import { startKernelLab, type KernelLab } from '../lab/kernel-lab.ts';
import { startLab, type RunningLab } from '../lab/lab-runtime.ts';
import type { LabSpec } from '../lab/lab-spec.ts';
import { RateLimitedLog } from '../../core/rate-limited-log.ts';
import type { Command, ToolStep } from './scenario-spec.ts';
import { SCENARIO_TOOLS } from './scenario-spec.ts';

export const VROUTER_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/vrouter.mjs');

export type Mode = 'vrouter' | 'kernel';

export interface LabBackend {
  readonly mode: Mode;
  up(): Promise<void>;
  hostNamespace(host: string): string;
  /** The command a tool step runs, and in which namespace (null: this one). */
  toolCommand(step: ToolStep): { netns: string | null; command: Command };
  link(segment: string, settings: Partial<ImpairmentSettings>): void;
  down(): void;
  /** For --keep: how a person enters the lab and takes it down. */
  keepInstructions(): string[];
}

function hostNamespaceOf(lab: LabSpec, host: string): string {
  const found = lab.hosts.find((h) => h.name === host);
  if (!found) throw new Error(`no host ${host} in lab ${lab.name}`);
  return found.netns;
}

function routerOf(lab: LabSpec, step: ToolStep): string {
  if (step.router) return step.router;
  if (lab.routers.length === 1) return lab.routers[0]!.name;
  throw new Error(`step "${step.name}": this lab has routers ${lab.routers.map((r) => r.name).join(', ')}: say which with router:`);
}

export class VrouterBackend implements LabBackend {
  readonly mode = 'vrouter';
  private running: RunningLab | null = null;

  constructor(
    readonly lab: LabSpec,
    private readonly log = new RateLimitedLog(),
  ) {}

  async up(): Promise<void> {
    this.running = await startLab(this.lab, this.log);
  }

  hostNamespace(host: string): string {
    return hostNamespaceOf(this.lab, host);
  }

  toolCommand(step: ToolStep): { netns: string | null; command: Command } {
    const argv = [process.execPath, VROUTER_BIN, ...step.argv, '--socket', this.lab.control.path, '--router', routerOf(this.lab, step)];
    return { netns: null, command: { argv, shell: false, text: step.argv.join(' ') } };
  }

  link(segment: string, settings: Partial<ImpairmentSettings>): void {
    const found = this.running?.segments.get(segment);
    if (!found) throw new Error(`no segment ${segment} in lab ${this.lab.name}`);
    found.configure(settings);
  }

  down(): void {
    this.running?.close();
    this.running = null;
  }

  keepInstructions(): string[] {
    return [
      ...this.lab.hosts.map((h) => `enter ${h.name}:  ip netns exec ${h.netns} bash`),
      `tools:       vrouter conntrack -L --socket ${this.lab.control.path} --router ${this.lab.routers[0]?.name ?? 'NAME'}`,
      `take it down: press Ctrl-C here, or kill ${process.pid}`,
    ];
  }
}

export class KernelBackend implements LabBackend {
  readonly mode = 'kernel';
  private running: KernelLab | null = null;

  constructor(readonly lab: LabSpec) {}

  async up(): Promise<void> {
    this.running = startKernelLab(this.lab);
  }

  hostNamespace(host: string): string {
    return hostNamespaceOf(this.lab, host);
  }

  toolCommand(step: ToolStep): { netns: string | null; command: Command } {
    const tool = step.argv[0]!;
    if (!SCENARIO_TOOLS[tool]?.kernel) throw new Error(`step "${step.name}": the kernel has no ${tool} tool`);
    const netns = this.running ? this.running.routerNamespace(routerOf(this.lab, step)) : `${this.lab.name}-${routerOf(this.lab, step)}`;
    return { netns, command: { argv: [...step.argv], shell: false, text: step.argv.join(' ') } };
  }

  link(segment: string, settings: Partial<ImpairmentSettings>): void {
    if (!this.running) throw new Error('the lab is not up');
    this.running.link(segment, settings);
  }

  down(): void {
    this.running?.close();
    this.running = null;
  }

  keepInstructions(): string[] {
    const namespaces = [...this.lab.hosts.filter((h) => h.ownsNetns).map((h) => h.netns), ...this.lab.routers.map((r) => `${this.lab.name}-${r.name}`), `${this.lab.name}-segments`];
    return [
      ...this.lab.hosts.map((h) => `enter ${h.name}:  ip netns exec ${h.netns} bash`),
      ...this.lab.routers.map((r) => `router ${r.name}:  ip netns exec ${this.lab.name}-${r.name} conntrack -L`),
      `take it down: ${namespaces.map((n) => `ip netns del ${n}`).join('; ')}`,
    ];
  }
}
