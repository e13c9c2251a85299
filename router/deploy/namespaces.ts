/**
 * Network namespaces as `ip netns` manages them (named, under /run/netns): made for a lab's hosts
 * and removed again, with whatever still runs in them killed first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function namespaceExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Creates the namespace with its loopback up. Throws with `ip`'s message. */
export function createNamespace(name: string): void {
  execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Kills whatever still runs in the namespace, then deletes it. Never throws. */
export function destroyNamespace(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout?.split(/\s+/).filter(Boolean) ?? [];
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  spawnSync('ip', ['netns', 'del', name]);
}
