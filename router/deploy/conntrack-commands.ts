/**
 * The control-socket commands behind `vrouter conntrack`: listing, events, deletion, flushing and
 * counting of connections and expectations. Lines are formatted here, where the clock and the
 * trackers are, exactly as conntrack-tools prints them.
 */
import type { CommandRegistry } from './command-registry.ts';
import type { ConntrackCore } from '../../netfilter/conntrack/conntrack-core.ts';
import { matchesFilter, type ConntrackFilter } from '../../netfilter/conntrack/conntrack-filter.ts';
import { connectionJson, expectationJson, formatConnection, formatConnectionEvent, formatExpectation, formatExpectationEvent } from '../../netfilter/conntrack/format.ts';

interface ListArgs {
  filter?: ConntrackFilter;
  json?: boolean;
}

interface EventArgs {
  filter?: ConntrackFilter;
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
      return args.json ? entries.map((entry) => connectionJson(entry, now())) : entries.map((entry) => formatConnection(entry, now()));
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
      const entries = selected(raw as ListArgs);
      const lines = entries.map((entry) => formatConnection(entry, now()));
      for (const entry of entries) conntrack.destroy(entry);
      return lines;
    },
  });

  control.register('conntrack-flush', {
    handler: (raw) => ((raw as EventArgs).expect ? conntrack.expectations.flush() : conntrack.flush()),
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
        return;
      }
      const unsubscribe = conntrack.subscribe((event, entry, at) => {
        if (wanted.has(event) && matchesFilter(entry, args.filter ?? {})) reply.send(formatConnectionEvent(event, entry, at));
      });
      reply.onClose(unsubscribe);
    },
  });
}
