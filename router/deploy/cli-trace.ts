/**
 * `vrouter trace [--router R] [FILTER-EXPR]`: prints every step of the packets the filter picks
 * (and of those a `-j TRACE` rule marks), one line each, until interrupted.
 */
import { compileFilterFor } from './capture/capture-filter.ts';
import { UsageError } from './cli-errors.ts';
import { controlRequest } from './control-client.ts';

export const TRACE_USAGE = 'usage: vrouter trace [--router R] [FILTER-EXPR]';

export async function runTrace(socketPath: string, argv: string[]): Promise<void> {
  if (argv.includes('-h') || argv.includes('--help')) throw new UsageError(TRACE_USAGE);
  const filter = argv.join(' ');
  compileFilterFor('trace', filter, (message) => new UsageError(message));
  const request = controlRequest(
    socketPath,
    'trace',
    { filter },
    (line) => process.stdout.write(`${String(line)}\n`),
    (lost) => process.stderr.write(`vrouter trace: ${lost} lines lost: this listener did not read them as fast as the router made them\n`),
  );
  process.once('SIGINT', request.cancel);
  process.once('SIGTERM', request.cancel);
  // A reader that goes away (`| head`) ends the trace quietly.
  process.stdout.on('error', request.cancel);
  await request.done;
}
