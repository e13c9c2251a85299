/**
 * `vrouter conntrack`: conntrack-tools over the control socket (the arguments: cli-conntrack-args.ts).
 *
 *   -L [expect]  list          -E [expect] [-e NEW,UPDATE,DESTROY]  events until interrupted
 *   -G           get one       -D  delete       -F [expect]  flush          -C [expect]  count
 *   -S           statistics (the kernel's counters, as `conntrack -S` prints them)
 *   -o extended,id,timestamp (as conntrack) or json (vrouter's, for scripts)
 *
 * Entries go to stdout in conntrack's format; the summary line goes to stderr, word for word as
 * conntrack 1.4.7 writes it, and so do the exit codes: -D that deletes nothing and -G that finds
 * nothing exit 1. -D and -F send this process's pid as the requester (netlink's portid): the
 * DESTROY events they cause end with ` [USERSPACE] portid=PID`, as conntrack-tools prints the kernel's.
 *
 * -E writes nothing before the first event. `--ready-file PATH` exists exactly while the client
 * is subscribed: removed at the start, created (empty) once the router has subscribed this client
 * (no event after that is missed), removed again when -E ends.
 * Ctrl-C or SIGTERM ends it with conntrack's count of events shown, exit 0; if the router goes
 * away instead, it says so and exits 1.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { controlCall, controlRequest } from './control-client.ts';
import { parseConntrackArgs, type ConntrackInvocation } from './cli-conntrack-args.ts';
import { isSubscribed } from './conntrack-commands.ts';
import { eventTimestamp } from '../../netfilter/conntrack/format.ts';

/** The tool vrouter's output follows, as it names itself at the start of its messages. */
export const CONNTRACK_TOOLS = 'conntrack v1.4.7 (conntrack-tools)';

function summary(text: string): void {
  process.stderr.write(`${CONNTRACK_TOOLS}: ${text}\n`);
}

/** What conntrack reports as a failed operation: the message, exit code 1. */
function failed(text: string): void {
  summary(text);
  process.exitCode = 1;
}

/** The wall clock in microseconds, as gettimeofday gives conntrack its -o timestamp. */
function wallClockMicroseconds(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

function print(call: ConntrackInvocation, results: unknown[]): void {
  if (call.output.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else for (const line of results) process.stdout.write(`${String(line)}\n`);
}

export async function runConntrack(socket: string, argv: string[]): Promise<void> {
  const call = parseConntrackArgs(argv);
  for (const warning of call.warnings) process.stderr.write(`${warning}\n`);
  const args = { filter: call.filter, json: call.output.json, output: { extended: call.output.extended, id: call.output.id } };
  switch (call.command) {
    case 'list': {
      // The kernel refuses a dump filter on status with nothing in its mask (-u UNSET).
      if (call.emptyStatusMask && call.table === 'conntrack') return failed('Operation failed: invalid parameters');
      // vrouter tracks one packet at a time: between packets no entry is dying or unconfirmed.
      if (call.table === 'dying' || call.table === 'unconfirmed') return summary('0 flow entries have been shown.');
      if (call.table === 'expect') {
        const lines = (await controlCall(socket, 'conntrack-expect-list', args)) as unknown[];
        const stamp = (): string => (call.output.timestamp ? eventTimestamp(wallClockMicroseconds(), 'expect') : '');
        if (call.output.json) print(call, lines);
        else for (const line of lines) process.stdout.write(`${stamp()}${String(line)}\n`);
        return summary(`${lines.length} expectations have been shown.`);
      }
      const lines = (await controlCall(socket, 'conntrack-list', args)) as unknown[];
      print(call, lines);
      return summary(`${lines.length} flow entries have been shown.`);
    }
    case 'get': {
      const lines = (await controlCall(socket, 'conntrack-list', { ...args, get: true })) as unknown[];
      if (lines.length === 0) return failed("Operation failed: such conntrack doesn't exist");
      print(call, lines);
      return summary(`${lines.length} flow entries have been shown.`);
    }
    case 'delete': {
      const lines = (await controlCall(socket, 'conntrack-delete', { ...args, portid: process.pid })) as unknown[];
      print(call, lines);
      summary(`${lines.length} flow entries have been deleted.`);
      if (lines.length === 0) process.exitCode = 1;
      return;
    }
    case 'flush': {
      await controlCall(socket, 'conntrack-flush', { expect: call.table === 'expect', portid: process.pid });
      return summary(call.table === 'expect' ? 'expectation table has been emptied.' : 'connection tracking table has been emptied.');
    }
    case 'count':
      process.stdout.write(`${String(await controlCall(socket, 'conntrack-count', { expect: call.table === 'expect' }))}\n`);
      return;
    case 'stats':
      for (const line of (await controlCall(socket, 'conntrack-stats', {})) as string[]) process.stdout.write(`${line}\n`);
      return;
    case 'events':
      return runEvents(socket, call, args);
  }
}

/**
 * conntrack -E's first line when its netlink socket overran (recv failed with ENOBUFS); it goes
 * on listening. The rest says what overran here: the router's queue for this listener.
 */
const ENOBUFS_WARNING =
  'WARNING: We have hit ENOBUFS! We are losing events.\n' +
  'This message means that this listener did not read events as fast as the router made them.\n';

async function runEvents(socket: string, call: ConntrackInvocation, args: Record<string, unknown>): Promise<void> {
  const table = call.table === 'expect' ? 'expect' : 'conntrack';
  if (call.readyFile !== undefined) rmSync(call.readyFile, { force: true });
  let subscribed = false;
  let stopping = false;
  let problem: Error | null = null;
  let shown = 0;
  const stream = controlRequest(socket, 'conntrack-events', { ...args, expect: table === 'expect', ...(call.events ? { events: call.events } : {}) }, (result) => {
    if (!subscribed && isSubscribed(result)) {
      subscribed = true;
      if (call.readyFile === undefined) return;
      try {
        writeFileSync(call.readyFile, '');
      } catch (error) {
        problem = new Error(`--ready-file ${call.readyFile}: ${(error as Error).message}`);
        stop();
      }
      return;
    }
    shown++;
    const microseconds = wallClockMicroseconds();
    if (call.output.json) {
      const event = result as Record<string, unknown>;
      process.stdout.write(`${JSON.stringify(call.output.timestamp ? { timestamp: microseconds / 1e6, ...event } : event)}\n`);
    } else {
      process.stdout.write(`${call.output.timestamp ? eventTimestamp(microseconds, table) : ''}${String(result)}\n`);
    }
  }, () => process.stderr.write(ENOBUFS_WARNING));
  function stop(): void {
    stopping = true;
    stream.cancel();
  }
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await stream.done;
  } finally {
    // The file stands for a live subscription: it goes when the subscription does.
    if (call.readyFile !== undefined) rmSync(call.readyFile, { force: true });
  }
  if (problem) throw problem;
  if (!stopping) throw new Error(`conntrack -E: the router went away (control socket ${socket} closed)`);
  summary(`${shown} ${table === 'expect' ? 'expectation' : 'flow'} events have been shown.`);
}
