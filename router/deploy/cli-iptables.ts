/**
 * `vrouter iptables-save [-c]` and `vrouter iptables-restore FILE` over the control socket.
 * A refused file is reported with its file name and line, and the running rules stay as they were.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { controlCall } from './control-client.ts';
import { UsageError } from './cli-errors.ts';

export async function runIptablesSave(socket: string, argv: string[]): Promise<void> {
  const counters = argv.includes('-c') || argv.includes('--counters');
  const unknown = argv.find((word) => word !== '-c' && word !== '--counters');
  if (unknown) throw new UsageError(`iptables-save: unknown argument "${unknown}"`);
  process.stdout.write(String(await controlCall(socket, 'iptables-save', { counters })));
}

export async function runIptablesRestore(socket: string, argv: string[]): Promise<void> {
  const counters = argv.includes('-c') || argv.includes('--counters');
  const files = argv.filter((word) => word !== '-c' && word !== '--counters');
  if (files.length !== 1) throw new UsageError('iptables-restore takes one rules file');
  const file = resolve(files[0]!);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`iptables-restore: cannot read ${file}: ${(error as Error).message}`);
  }
  await controlCall(socket, 'iptables-restore', { text, origin: file, counters });
}
