/**
 * The control-socket commands behind `vrouter conntrack`: listing, events, deletion, flushing and
 * counting of connections and expectations, and the statistics. Lines are formatted here, where the clock and the
 * trackers are, exactly as conntrack-tools prints them.
 */
import { booleanArg, integerArg, listArg, oneOfArg, optional, recordArg, stringArg } from './control-args.ts';
import { defineCommand, type CommandRegistry } from './command-registry.ts';
import type { ConntrackCore } from '../../netfilter/conntrack/conntrack-core.ts';
import { matchesFilter, type ConntrackFilter } from '../../netfilter/conntrack/conntrack-filter.ts';
import { connectionJson, expectationJson, formatConnection, formatConnectionEvent, formatExpectation, formatExpectationEvent, formatStatistics } from '../../netfilter/conntrack/format.ts';

const address = optional(integerArg(0, 0xffffffff));
const port = optional(integerArg(0, 65535));

/** `conntrack`'s filters as the CLI sends them: addresses as 32-bit numbers. */
const FILTER = optional(
  recordArg({
    protocol: optional(integerArg(0, 255)),
    origSrc: address,
    origDst: address,
    replySrc: address,
    replyDst: address,
    origSrcPort: port,
    origDstPort: port,
    replySrcPort: port,
    replyDstPort: port,
    state: optional(stringArg),
    mark: optional(integerArg(0, 0xffffffff)),
  }),
);
/** The requesting client's id (the CLI sends its pid, as netlink's portid): its DESTROY events say so; absent: 0. */
const PORTID = optional(integerArg(0, 0xffffffff));
const EVENTS = ['NEW', 'UPDATE', 'DESTROY'] as const;

export function registerConntrackCommands(control: CommandRegistry, conntrack: ConntrackCore): void {
  const now = (): number => conntrack.now();
  const selected = (filter: ConntrackFilter = {}) => conntrack.list().filter((entry) => matchesFilter(entry, filter));

  control.register(
    'conntrack-list',
    defineCommand({ filter: FILTER, json: optional(booleanArg) }, (args) => {
      const entries = selected(args.filter);
      return args.json ? entries.map((entry) => connectionJson(entry, now())) : entries.map((entry) => formatConnection(entry, now()));
    }),
  );

  control.register(
    'conntrack-expect-list',
    defineCommand({ filter: FILTER, json: optional(booleanArg) }, (args) => {
      const list = conntrack.expectations.list().filter((e) => e.timeout > now());
      return args.json ? list.map((e) => expectationJson(e, now())) : list.map((e) => formatExpectation(e, now()));
    }),
  );

  control.register(
    'conntrack-delete',
    defineCommand({ filter: FILTER, portid: PORTID }, (args) => {
      const entries = selected(args.filter);
      const lines = entries.map((entry) => formatConnection(entry, now()));
      for (const entry of entries) conntrack.destroy(entry, args.portid ?? 0);
      return lines;
    }),
  );

  control.register(
    'conntrack-flush',
    defineCommand({ expect: optional(booleanArg), portid: PORTID }, (args) => (args.expect ? conntrack.expectations.flush() : conntrack.flush(args.portid ?? 0))),
  );

  control.register(
    'conntrack-stats',
    defineCommand({}, () => formatStatistics(conntrack.counters)),
  );

  control.register(
    'conntrack-count',
    defineCommand({ expect: optional(booleanArg) }, (args) => (args.expect ? conntrack.expectations.size : conntrack.list().length)),
  );

  control.register(
    'conntrack-events',
    defineCommand(
      { filter: FILTER, expect: optional(booleanArg), events: optional(listArg(oneOfArg(EVENTS), EVENTS.length)) },
      (args, reply) => {
        const wanted = new Set<string>(args.events ?? EVENTS);
        if (args.expect) {
          const unsubscribe = conntrack.expectations.subscribe((event, expectation, at) => {
            if (wanted.has(event)) reply.send(formatExpectationEvent(event, expectation, at));
          });
          reply.onClose(unsubscribe);
          return;
        }
        const filter = args.filter ?? {};
        const unsubscribe = conntrack.subscribe((event, entry, at, bits, portid) => {
          if (wanted.has(event) && matchesFilter(entry, filter)) reply.send(formatConnectionEvent(event, entry, at, bits, portid));
        });
        reply.onClose(unsubscribe);
      },
      { streaming: true },
    ),
  );
}
