/**
 * Makes sure the system programs a script needs are there; installs the missing ones from
 * Debian's packages (as root) and says so. Returns the list it installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** program -> Debian package that provides it */
export type ProgramPackages = Record<string, string>;

function present(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

export function ensurePrograms(needed: ProgramPackages, say: (line: string) => void = console.log): string[] {
  const missing = [...new Set(Object.entries(needed).filter(([program]) => !present(program)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return [];
  say(`installing missing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  return missing;
}
