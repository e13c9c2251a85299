/**
 * `vrouter iptables-save [-c]`, `vrouter iptables-restore [-c] FILE` and `vrouter iptables ...`
 * over the control socket. A refused file is reported with its file name and line, and the
 * running rules stay as they were. As iptables-restore, the counters a file gives are kept only
 * with -c; without, they start at 0.
 */
import { resolve } from 'node:path';
import { controlCall } from './control-client.ts';
import { UsageError } from './cli-errors.ts';
import { readInputFile, readInputStream } from './input-file.ts';
import { IPTABLES_USAGE } from '../../netfilter/tables/command.ts';

export async function runIptablesSave(socket: string, argv: string[]): Promise<void> {
  let counters = false;
  let table: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '-c' || word === '--counters') counters = true;
    else if (word === '-t' || word === '--table') {
      table = argv[++i];
      if (table === undefined) throw new UsageError(`iptables-save: ${word} needs a table name`);
    } else throw new UsageError(`iptables-save: unknown argument "${word}"`);
  }
  process.stdout.write(String(await controlCall(socket, 'iptables-save', { counters, ...(table === undefined ? {} : { table }) })));
}

/** iptables-restore's flags that are not files: -c, -n/--noflush, -t/--test. */
const RESTORE_FLAGS = ['-c', '--counters', '-n', '--noflush', '-t', '--test'];

export async function runIptablesRestore(socket: string, argv: string[]): Promise<void> {
  const counters = argv.includes('-c') || argv.includes('--counters');
  const noflush = argv.includes('-n') || argv.includes('--noflush');
  const test = argv.includes('-t') || argv.includes('--test');
  const files = argv.filter((word) => !RESTORE_FLAGS.includes(word));
  if (files.length > 1) throw new UsageError('iptables-restore takes at most one rules file (none or - reads standard input)');
  // As iptables-restore: standard input when no file (or -) is named.
  const named = files[0] && files[0] !== '-' ? resolve(files[0]) : null;
  let text: string;
  try {
    text = named ? readInputFile(named) : await readInputStream(process.stdin);
  } catch (error) {
    throw new UsageError(`iptables-restore: cannot read ${named ?? 'standard input'}: ${(error as Error).message}`);
  }
  await controlCall(socket, 'iptables-restore', { text, origin: named ?? 'standard input', counters, noflush, test });
}

/** `vrouter iptables ARGS`: the router runs the command; its output and exit status are passed on. */
export async function runIptables(socket: string, argv: string[]): Promise<void> {
  if (argv.includes('-h') || argv.includes('--help')) return void process.stdout.write(IPTABLES_USAGE);
  const result = (await controlCall(socket, 'iptables', { argv })) as { status: number; stdout: string; stderr: string };
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.status;
}
