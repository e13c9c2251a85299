/**
 * The programs a scenario runs, each in a namespace and its own process group, so that a timeout,
 * the end of the run or a Ctrl-C kills the program and everything it started. Never blocks the
 * event loop: in vrouter mode the lab's routers run in this very process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { CommandResult } from './expectations.ts';
import type { Command } from './scenario-spec.ts';

/** Output kept per stream; more is cut (a chatty program must not grow the runner without bound). */
const MAX_OUTPUT = 1 << 20;
const KILL_GRACE_MS = 2000;

export class ProcessGroup {
  private readonly live = new Set<ChildProcess>();

  /** Commands run in `cwd` (the scenario file's folder, so its relative paths work). */
  constructor(private readonly cwd: string) {}

  /** `ip netns exec NS` + the command (through `sh -c` when it asks for a shell). */
  spawnIn(netns: string | null, command: Command): ChildProcess {
    const argv = command.shell ? ['sh', '-c', command.text] : command.argv;
    const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
    const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true, cwd: this.cwd });
    this.live.add(child);
    child.once('exit', () => this.live.delete(child));
    child.once('error', () => this.live.delete(child));
    return child;
  }

  /** Runs to the end (or the timeout) and collects the output. */
  run(netns: string | null, command: Command, stdin: string | null, timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve) => {
      const child = this.spawnIn(netns, command);
      const out = collect(child);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child, 'SIGKILL');
      }, timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        resolve({ exit: null, stdout: out.stdout(), stderr: out.stderr(), timedOut: false, error: error.message });
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ exit: timedOut ? null : code, stdout: out.stdout(), stderr: out.stderr(), timedOut });
      });
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(stdin ?? '');
    });
  }

  /** Stops a program: SIGTERM to its group, SIGKILL if it is still there after a grace period. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
    await gone;
    clearTimeout(timer);
  }

  /** Kills everything still running at once (Ctrl-C, the end of the run). */
  killAll(): void {
    for (const child of this.live) killGroup(child, 'SIGKILL');
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Collects a child's stdout and stderr, each up to MAX_OUTPUT characters. */
export function collect(child: ChildProcess): { stdout(): string; stderr(): string; onData(listener: (text: string) => void): void } {
  let stdout = '';
  let stderr = '';
  const listeners: ((text: string) => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    if (stdout.length < MAX_OUTPUT) stdout += chunk;
    for (const listener of listeners) listener(chunk);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < MAX_OUTPUT) stderr += chunk;
    for (const listener of listeners) listener(chunk);
  });
  return { stdout: () => stdout, stderr: () => stderr, onData: (listener) => listeners.push(listener) };
}
