/**
 * `vrouter exec --config LAB HOST -- CMD ARGS...`: runs CMD in the host's namespace and exits with
 * its status. `vrouter link --config LAB SEGMENT [down|up] [delay 50ms] [loss 5%] ...`: changes a
 * segment of the running lab.
 */
import { spawnSync } from 'node:child_process';
import { UsageError } from './cli-errors.ts';
import { controlCall } from './control-client.ts';
import { ImpairmentValueError, parseLinkWords } from './lab/impairment-words.ts';
import { loadLabFile } from './lab/lab-file.ts';

export function runExec(config: string | undefined, argv: string[]): void {
  if (!config) throw new UsageError('exec needs --config LAB.yaml (to find the host)');
  const dash = argv.indexOf('--');
  const host = argv[0];
  if (!host || host === '--' || dash !== 1 || argv.length < 3) throw new UsageError('usage: vrouter exec --config LAB.yaml HOST -- CMD [ARGS...]');
  const lab = loadLabFile(config, { namespaceExists: () => true });
  const found = lab.hosts.find((h) => h.name === host);
  if (!found) throw new UsageError(`no host ${JSON.stringify(host)} in ${config} (hosts: ${lab.hosts.map((h) => h.name).join(', ')})`);
  const result = spawnSync('ip', ['netns', 'exec', found.netns, ...argv.slice(2)], { stdio: 'inherit' });
  if (result.error) throw result.error;
  // A command killed by a signal exits as a shell reports it: 128 + the signal number.
  process.exitCode = result.status ?? 128 + (result.signal ? (signalNumbers[result.signal] ?? 0) : 0);
}

const signalNumbers: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

export async function runLink(socket: string, argv: string[]): Promise<void> {
  const [segment, ...words] = argv;
  if (!segment) throw new UsageError('usage: vrouter link SEGMENT [down|up] [delay 50ms] [jitter 5ms] [loss 5%] [duplicate 1%] [reorder 10%] [rate 10mbit] [limit N]');
  let settings;
  try {
    settings = parseLinkWords(words);
  } catch (error) {
    if (error instanceof ImpairmentValueError) throw new UsageError(`link ${segment}: ${error.message}`);
    throw error;
  }
  const result = (await controlCall(socket, 'link', { segment, settings })) as { segment: string; settings: Record<string, unknown> };
  process.stdout.write(`${formatSettings(result.segment, result.settings)}\n`);
}

function formatSettings(segment: string, s: Record<string, unknown>): string {
  const words = [`${segment}:`, s.down ? 'down' : 'up'];
  if (s.delay) words.push(`delay ${String(s.delay)}ms`);
  if (s.jitter) words.push(`jitter ${String(s.jitter)}ms`);
  for (const key of ['loss', 'duplicate', 'reorder']) if (s[key]) words.push(`${key} ${String(s[key])}%`);
  if (s.rate) words.push(`rate ${String(s.rate)}bit`);
  words.push(`limit ${String(s.limit)}`);
  return words.join(' ');
}
