/**
 * The control-socket commands behind `vrouter conntrack`: listing, events, deletion, flushing and
 * counting of connections and expectations, and the statistics. Lines are formatted here, where the clock and the
 * trackers are, exactly as conntrack-tools prints them (with `-o extended` and `-o id` when asked).
 *
 * `conntrack-events` sends `{ "subscribed": true }` as its first result, once its listener is in
 * place: every event after that reaches the client, so the CLI can tell a script it is ready.
 */
import type { CommandRegistry } from './command-registry.ts';
import type { ConntrackCore } from '../../netfilter/conntrack/conntrack-core.ts';
import { matchesFilter, type ConntrackFilter } from '../../netfilter/conntrack/conntrack-filter.ts';
import {
  connectionEventJson,
  connectionJson,
  expectationJson,
  formatConnection,
  formatConnectionEvent,
  formatExpectation,
  formatExpectationEvent,
  formatStatistics,
  type LineOptions,
} from '../../netfilter/conntrack/format.ts';

/** The first result of `conntrack-events`: the listener is subscribed. */
export const SUBSCRIBED = { subscribed: true } as const;

/** Whether a result of `conntrack-events` is SUBSCRIBED rather than an event. */
export function isSubscribed(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { subscribed?: unknown }).subscribed === SUBSCRIBED.subscribed;
}

interface ListArgs {
  filter?: ConntrackFilter;
  json?: boolean;
  /** -o extended / -o id. */
  output?: LineOptions;
  /** -G: the kernel's lookup holds a reference while it answers, and says so in use=. */
  get?: boolean;
}

interface ChangeArgs extends ListArgs {
  expect?: boolean;
  /** The requesting client's id (the CLI sends its pid, as netlink's portid): its DESTROY events say so. */
  portid?: unknown;
}

interface EventArgs {
  filter?: ConntrackFilter;
  json?: boolean;
  output?: LineOptions;
  expect?: boolean;
  /** Which events: any of NEW, UPDATE, DESTROY; all when absent. */
  events?: string[];
}

export function registerConntrackCommands(control: CommandRegistry, conntrack: ConntrackCore): void {
  const now = (): number => conntrack.now();
  const selected = (args: ListArgs) => conntrack.list().filter((entry) => matchesFilter(entry, args.filter ?? {}));

  control.register('conntrack-list', {
    handler: (raw) => {
      const args = raw as ListArgs;
      const entries = selected(args);
      return args.json ? entries.map((entry) => connectionJson(entry, now())) : entries.map((entry) => formatConnection(entry, now(), args.output, args.get ? 1 : 0));
    },
  });

  control.register('conntrack-expect-list', {
    handler: (raw) => {
      const args = raw as ListArgs;
      const list = conntrack.expectations.list().filter((e) => e.timeout > now());
      return args.json ? list.map((e) => expectationJson(e, now())) : list.map((e) => formatExpectation(e, now()));
    },
  });

  control.register('conntrack-delete', {
    handler: (raw) => {
      const args = raw as ChangeArgs;
      const portid = portidOf(args);
      const entries = selected(args);
      const lines = args.json ? entries.map((entry) => connectionJson(entry, now())) : entries.map((entry) => formatConnection(entry, now(), args.output));
      for (const entry of entries) conntrack.destroy(entry, portid);
      return lines;
    },
  });

  control.register('conntrack-flush', {
    handler: (raw) => {
      const args = raw as ChangeArgs;
      const portid = portidOf(args);
      return args.expect ? conntrack.expectations.flush() : conntrack.flush(portid);
    },
  });

  control.register('conntrack-stats', {
    handler: () => formatStatistics(conntrack.counters),
  });

  control.register('conntrack-count', {
    handler: (raw) => ((raw as EventArgs).expect ? conntrack.expectations.size : conntrack.list().length),
  });

  control.register('conntrack-events', {
    streaming: true,
    handler: (raw, reply) => {
      const args = raw as EventArgs;
      const wanted = new Set(args.events ?? ['NEW', 'UPDATE', 'DESTROY']);
      if (args.expect) {
        const unsubscribe = conntrack.expectations.subscribe((event, expectation, at) => {
          if (wanted.has(event)) reply.send(formatExpectationEvent(event, expectation, at));
        });
        reply.onClose(unsubscribe);
        reply.send(SUBSCRIBED);
        return;
      }
      const unsubscribe = conntrack.subscribe((event, entry, at, bits, portid) => {
        if (!wanted.has(event) || !matchesFilter(entry, args.filter ?? {})) return;
        reply.send(args.json ? connectionEventJson(event, entry, at, portid) : formatConnectionEvent(event, entry, at, bits, portid, args.output));
      });
      reply.onClose(unsubscribe);
      reply.send(SUBSCRIBED);
    },
  });
}

/** A netlink portid is a 32-bit number; absent means the request names no client (0). */
function portidOf(args: ChangeArgs): number {
  const portid = args.portid;
  if (portid === undefined) return 0;
  if (typeof portid !== 'number' || !Number.isInteger(portid) || portid < 0 || portid > 0xffffffff) {
    throw new Error(`portid must be a whole number from 0 to 4294967295, got ${JSON.stringify(portid)}`);
  }
  return portid;
}
