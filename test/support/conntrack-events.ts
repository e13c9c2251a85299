/**
 * `vrouter conntrack -E` as a script should start it: with `--ready-file` in a directory of its
 * own, handed to the test only once that file exists, that is once the router has subscribed it
 * (cli-conntrack.ts). A test that slept instead lost the first events whenever the machine was busy.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VROUTER_BIN } from '../../scripts/router-process.ts';

export interface EventListener {
  /** The --ready-file: the CLI removes it when -E ends. */
  readonly readyFile: string;
  stdout(): string;
  stderr(): string;
  /** The exit code, once the process has ended and its output has been read to the end. */
  readonly exited: Promise<number | null>;
  /** Ctrl-C (-E prints its count and exits 0), SIGKILL if still running after 2 s; then `exited`. */
  stop(): Promise<number | null>;
}

/**
 * Starts `vrouter conntrack -E ...args --socket socket` and resolves once it is subscribed: every
 * event after that is in its stdout. Rejects, with its stderr, if it ends first or is not
 * subscribed within `readyWithinMs`.
 */
export async function listenForEvents(socket: string, args: string[] = [], readyWithinMs = 20_000): Promise<EventListener> {
  const dir = mkdtempSync(join(tmpdir(), 'vrouter-events-'));
  const readyFile = join(dir, 'ready');
  const child = spawn(process.execPath, [VROUTER_BIN, 'conntrack', '-E', ...args, '--ready-file', readyFile, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let ended = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      ended = true;
      // Not recursive: a ready file the CLI failed to remove stays, for a test to find.
      try {
        rmdirSync(dir);
      } catch {
        // Still holds the ready file.
      }
      resolve(code);
    }),
  );
  const stop = async (): Promise<number | null> => {
    if (!ended) child.kill('SIGINT');
    let killed = false;
    const killer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, 2000);
    const code = await exited;
    clearTimeout(killer);
    // Killed, the CLI could not remove its ready file.
    if (killed) rmSync(dir, { recursive: true, force: true });
    return code;
  };
  const deadline = Date.now() + readyWithinMs;
  while (!existsSync(readyFile)) {
    if (ended) throw new Error(`conntrack -E ended (exit ${await stop()}) before it was subscribed: ${stderr}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`conntrack -E not subscribed after ${readyWithinMs} ms: ${stderr}`);
    }
    await new Promise((wake) => setTimeout(wake, 20));
  }
  return { readyFile, stdout: () => stdout, stderr: () => stderr, exited, stop };
}
