/**
 * `vrouter conntrack`: the conntrack-tools command line over the control socket.
 *
 *   -L [expect]  list          -E [expect] [-e NEW,UPDATE,DESTROY]  events until interrupted
 *   -D           delete        -F [expect]  flush                   -C [expect]  count
 *   -S           statistics (the kernel's counters, as `conntrack -S` prints them)
 * Filters: -p PROTO, -s/--orig-src, -d/--orig-dst, -r/--reply-src, -q/--reply-dst, --sport,
 * --dport, --reply-port-src, --reply-port-dst, --state STATE, -m/--mark MARK. `-o json` for scripts.
 * Entries go to stdout in conntrack's format; the summary line goes to stderr, as conntrack does.
 * -D and -F send this process's pid as the requester (netlink's portid): the DESTROY events they
 * cause end with ` [USERSPACE] portid=PID`, as conntrack-tools prints the kernel's.
 */
import { parseIpv4Address } from '../core/addresses.ts';
import { controlCall, controlRequest } from './control-client.ts';
import type { ConntrackFilter } from '../../netfilter/conntrack/conntrack-filter.ts';

import { UsageError } from './cli-errors.ts';


const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, gre: 47 };
const COMMANDS: Record<string, string> = {
  '-L': 'list',
  '--dump': 'list',
  '-E': 'events',
  '--event': 'events',
  '-D': 'delete',
  '--delete': 'delete',
  '-F': 'flush',
  '--flush': 'flush',
  '-C': 'count',
  '--count': 'count',
  '-S': 'stats',
  '--stats': 'stats',
};
const ADDRESS_OPTIONS: Record<string, keyof ConntrackFilter> = {
  '-s': 'origSrc',
  '--src': 'origSrc',
  '--orig-src': 'origSrc',
  '-d': 'origDst',
  '--dst': 'origDst',
  '--orig-dst': 'origDst',
  '-r': 'replySrc',
  '--reply-src': 'replySrc',
  '-q': 'replyDst',
  '--reply-dst': 'replyDst',
};
const PORT_OPTIONS: Record<string, keyof ConntrackFilter> = {
  '--sport': 'origSrcPort',
  '--orig-port-src': 'origSrcPort',
  '--dport': 'origDstPort',
  '--orig-port-dst': 'origDstPort',
  '--reply-port-src': 'replySrcPort',
  '--reply-port-dst': 'replyDstPort',
};

/**
 * conntrack -E's first line when its netlink socket overran (recv failed with ENOBUFS); it goes
 * on listening. The rest says what overran here: the router's queue for this listener.
 */
const ENOBUFS_WARNING =
  'WARNING: We have hit ENOBUFS! We are losing events.\n' +
  'This message means that this listener did not read events as fast as the router made them.\n';

interface Invocation {
  command: string;
  expect: boolean;
  json: boolean;
  events?: string[];
  filter: ConntrackFilter;
}

export function parseConntrackArgs(argv: string[]): Invocation {
  let command: string | undefined;
  let expect = false;
  let json = false;
  let events: string[] | undefined;
  const filter: ConntrackFilter = {};
  const value = (i: number, option: string): string => {
    const text = argv[i + 1];
    if (text === undefined) throw new UsageError(`${option} needs a value`);
    return text;
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (COMMANDS[word]) {
      if (command) throw new UsageError('only one command at a time');
      command = COMMANDS[word];
      if (argv[i + 1] === 'expect' || argv[i + 1] === 'conntrack') expect = argv[++i] === 'expect';
    } else if (ADDRESS_OPTIONS[word]) {
      const text = value(i++, word);
      try {
        (filter as Record<string, number>)[ADDRESS_OPTIONS[word]] = parseIpv4Address(text);
      } catch {
        throw new UsageError(`${word}: bad address "${text}"`);
      }
    } else if (PORT_OPTIONS[word]) {
      const text = value(i++, word);
      const port = Number(text);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${word}: bad port "${text}"`);
      (filter as Record<string, number>)[PORT_OPTIONS[word]] = port;
    } else if (word === '-p' || word === '--proto') {
      const text = value(i++, word).toLowerCase();
      const protocol = PROTOCOLS[text] ?? Number(text);
      if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) throw new UsageError(`-p: unknown protocol "${text}"`);
      filter.protocol = protocol;
    } else if (word === '--state') {
      filter.state = value(i++, word).toUpperCase();
    } else if (word === '-m' || word === '--mark') {
      const text = value(i++, word);
      const mark = Number(text);
      if (!/^(0x[0-9a-f]+|\d+)$/i.test(text) || mark > 0xffffffff) throw new UsageError(`${word}: bad mark "${text}"`);
      filter.mark = mark;
    } else if (word === '-e' || word === '--event-mask') {
      events = value(i++, word).split(',').map((e) => e.trim().toUpperCase());
      const unknown = events.find((e) => !['NEW', 'UPDATE', 'DESTROY', 'ALL'].includes(e));
      if (unknown) throw new UsageError(`-e: unknown event "${unknown}"`);
      if (events.includes('ALL')) events = undefined;
    } else if (word === '-o' || word === '--output') {
      const format = value(i++, word);
      if (format !== 'json') throw new UsageError(`-o: only "json" is supported (got "${format}")`);
      json = true;
    } else {
      throw new UsageError(`unknown argument "${word}"`);
    }
  }
  if (!command) throw new UsageError('no command: use -L, -E, -D, -F, -C or -S');
  return { command, expect, json, filter, ...(events ? { events } : {}) };
}

export async function runConntrack(socket: string, argv: string[]): Promise<void> {
  const call = parseConntrackArgs(argv);
  const summary = (text: string): boolean => process.stderr.write(`vrouter conntrack: ${text}\n`);
  switch (call.command) {
    case 'list': {
      const lines = (await controlCall(socket, call.expect ? 'conntrack-expect-list' : 'conntrack-list', { filter: call.filter, json: call.json })) as unknown[];
      if (call.json) process.stdout.write(`${JSON.stringify(lines, null, 2)}\n`);
      else for (const line of lines) process.stdout.write(`${String(line)}\n`);
      summary(`${lines.length} ${call.expect ? 'expectations' : 'flow entries'} have been shown.`);
      return;
    }
    case 'delete': {
      const lines = (await controlCall(socket, 'conntrack-delete', { filter: call.filter, portid: process.pid })) as string[];
      for (const line of lines) process.stdout.write(`${line}\n`);
      summary(`${lines.length} flow entries have been deleted.`);
      return;
    }
    case 'flush': {
      await controlCall(socket, 'conntrack-flush', { expect: call.expect, portid: process.pid });
      summary(call.expect ? 'expectation table has been emptied.' : 'connection tracking table has been emptied.');
      return;
    }
    case 'count':
      process.stdout.write(`${String(await controlCall(socket, 'conntrack-count', { expect: call.expect }))}\n`);
      return;
    case 'stats':
      for (const line of (await controlCall(socket, 'conntrack-stats', {})) as string[]) process.stdout.write(`${line}\n`);
      return;
    case 'events': {
      const stream = controlRequest(
        socket,
        'conntrack-events',
        { filter: call.filter, expect: call.expect, ...(call.events ? { events: call.events } : {}) },
        (line) => process.stdout.write(`${String(line)}\n`),
        () => process.stderr.write(ENOBUFS_WARNING),
      );
      const stop = (): void => stream.cancel();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await stream.done;
      return;
    }
  }
}
