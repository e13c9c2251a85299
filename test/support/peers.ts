/** Runs scripts/traffic-peer.mjs inside namespaces of a Topology and reads its JSON lines. */
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Topology } from '../../scripts/netns-topology.ts';

export const PEER = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/traffic-peer.mjs');

export function runPeer(topology: Topology, role: string, args: string[], timeoutMs = 30_000): Record<string, unknown> {
  const result = topology.exec(role, process.execPath, [PEER, ...args], timeoutMs);
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`peer ${args.join(' ')} in ${role} printed ${JSON.stringify(result.stdout)} (stderr ${JSON.stringify(result.stderr)})`);
  }
}

/** Starts a long-running peer and resolves once it printed its `listening` line. */
export async function startPeer(topology: Topology, role: string, args: string[]): Promise<{ child: ChildProcess; lines: Promise<Record<string, unknown>[]> }> {
  const child = topology.spawn(role, process.execPath, [PEER, ...args]);
  let output = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer ${args.join(' ')} did not start: ${output}`)), 10_000);
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`peer ${args.join(' ')} exited with ${code}: ${output}`)));
  });
  const lines = new Promise<Record<string, unknown>[]>((resolve) =>
    child.once('exit', () => resolve(output.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>))),
  );
  return { child, lines };
}

/**
 * `ping -c 1` from `role` to `to`: 'answered', the ICMP error it reported ('Time to live exceeded
 * from 10.0.1.1'), or 'nothing'. ping reports an error only if the datagram quoted is its own (to
 * `to`, with its echo id); `id` fixes that id, so that several pings share one connection.
 */
export function pingOutcome(topology: Topology, role: string, to: string, options: { ttl?: number; id?: number; waitSeconds?: number } = {}): string {
  const args = ['-c', '1', '-W', String(options.waitSeconds ?? 1), '-t', String(options.ttl ?? 64)];
  if (options.id !== undefined) args.push('-e', String(options.id));
  const run = topology.exec(role, 'ping', [...args, to]);
  if (run.status === 0) return 'answered';
  const error = /From (\S+) icmp_seq=\d+ (.+)$/m.exec(run.stdout);
  return error ? `${error[2]} from ${error[1]}` : 'nothing';
}
