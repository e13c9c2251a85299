/**
 * Starts `vrouter run` as a separate process the way users do, waits for its `ready` line, and
 * stops it with SIGTERM. Used by the integration tests, the demo and the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VROUTER_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../router/bin/vrouter.mjs');

export interface RouterProcess {
  child: ChildProcess;
  configFile: string;
  controlSocket: string;
  /** Everything the router printed so far. */
  output(): string;
  stop(): Promise<number | null>;
}

/** Writes `yaml` to a fresh temp dir and starts the router on it. */
export async function startRouterProcess(yaml: string, readyTimeoutMs = 20_000): Promise<RouterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'vrouter-'));
  const configFile = join(dir, 'router.yaml');
  writeFileSync(configFile, yaml);
  const controlSocket = /^control:\s*(?:\{\s*path:\s*)?([^\s,}]+)/m.exec(yaml)?.[1] ?? '';
  // VROUTER_CPU_PROFILE=DIR: each router writes a V8 CPU profile there when it stops (node refuses
  // --cpu-prof in NODE_OPTIONS), for a look at where a benchmark's time goes.
  const profile = process.env.VROUTER_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.VROUTER_CPU_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, VROUTER_BIN, 'run', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`router not ready after ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
    const check = (): void => {
      if (/\bready\b/.test(output)) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`router exited with ${code} before ready:\n${output}`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    cleanup();
    throw error;
  });
  return {
    child,
    configFile,
    controlSocket,
    output: () => output,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      cleanup();
      return code;
    },
  };
}
