/**
 * A lab run as users run it: `vrouter run lab.yaml` in its own process (so the tests may block on
 * spawnSync while the lab forwards), with its hosts' namespaces reachable by host name. Stopping
 * it (SIGTERM) must leave nothing behind; `leftovers()` says what is still there.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import type { NamespaceRunner } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN, startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';

export class LabProcess implements NamespaceRunner {
  private readonly children = new Set<ChildProcess>();

  private constructor(
    /** The lab's name: its hosts live in `<tag>-<host>`. */
    readonly tag: string,
    readonly router: RouterProcess,
  ) {}

  static async start(tag: string, yaml: string): Promise<LabProcess> {
    return new LabProcess(tag, await startRouterProcess(yaml));
  }

  ns(host: string): string {
    return `${this.tag}-${host}`;
  }

  exec(host: string, command: string, args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync('ip', ['netns', 'exec', this.ns(host), command, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  spawn(host: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(host), command, ...args], { stdio: 'pipe', ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** A vrouter tool against this lab (`--socket` added). */
  tool(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [VROUTER_BIN, ...args, '--socket', this.router.controlSocket], { encoding: 'utf8', timeout: 30_000 });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  async stop(): Promise<number | null> {
    for (const child of this.children) child.kill('SIGKILL');
    return this.router.stop();
  }

  /** Namespaces of this lab, TUNs in this namespace and the socket, if any are still there. */
  leftovers(): string[] {
    return leftoversOf(this.tag, this.router.controlSocket, this.router.child.pid ?? 0);
  }
}

/** What a lab named `tag`, run by process `pid`, left: namespaces, its temporary TUN names, the socket. */
export function leftoversOf(tag: string, socket: string, pid: number): string[] {
  const namespaces = existsSync('/run/netns') ? readdirSync('/run/netns').filter((name) => name.startsWith(`${tag}-`)) : [];
  const tuns = spawnSync('ip', ['-o', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => line.split(': ')[1] ?? '')
    .filter((name) => name.startsWith(`vr${pid}t`));
  return [...namespaces.map((n) => `namespace ${n}`), ...tuns.map((t) => `tun ${t}`), ...(existsSync(socket) ? [`socket ${socket}`] : [])];
}
