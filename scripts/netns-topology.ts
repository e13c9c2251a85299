/**
 * Network namespace topologies for tests, the demo and benchmarks: create uniquely named
 * namespaces, run programs in them, and always remove them (processes first) afterwards.
 *
 * As a command: `tsx scripts/netns-topology.ts up NAME...` / `down NAME...`.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Short and unique across concurrent runs: namespace names end up in interface and file names. */
export function uniqueTag(prefix: string): string {
  return `${prefix}${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

export { createNamespace, destroyNamespace, namespaceExists } from '../router/deploy/namespaces.ts';
import { createNamespace, destroyNamespace } from '../router/deploy/namespaces.ts';

/** What tests and tools need of a set of namespaces: run a program in one, by role. */
export interface NamespaceRunner {
  readonly tag: string;
  exec(role: string, command: string, args: string[], timeoutMs?: number): { status: number | null; stdout: string; stderr: string };
  spawn(role: string, command: string, args: string[], options?: SpawnOptions): ChildProcess;
}

export class Topology implements NamespaceRunner {
  private readonly names = new Map<string, string>();
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private readonly onExit = (): void => this.destroy();

  /** `roles` become namespaces named `${tag}-${role}`. */
  constructor(readonly tag: string, roles: string[]) {
    process.once('exit', this.onExit);
    try {
      for (const role of roles) {
        const name = `${tag}-${role}`;
        createNamespace(name);
        this.names.set(role, name);
      }
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  ns(role: string): string {
    const name = this.names.get(role);
    if (!name) throw new Error(`no namespace for role ${role}`);
    return name;
  }

  get namespaces(): string[] {
    return [...this.names.values()];
  }

  /** Runs a command in a namespace and waits for it. */
  exec(role: string, command: string, args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync('ip', ['netns', 'exec', this.ns(role), command, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  /** Starts a long-running program in a namespace; it is killed by `destroy`. */
  spawn(role: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(role), command, ...args], { stdio: 'pipe', ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.onExit);
    for (const child of this.children) child.kill('SIGKILL');
    for (const name of this.names.values()) destroyNamespace(name);
  }
}

function main(argv: string[]): void {
  const [verb, ...names] = argv;
  if ((verb !== 'up' && verb !== 'down') || names.length === 0) {
    process.stderr.write('usage: netns-topology.ts up|down NAME...\n');
    process.exit(2);
  }
  for (const name of names) {
    if (verb === 'up') createNamespace(name);
    else destroyNamespace(name);
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main(process.argv.slice(2));
