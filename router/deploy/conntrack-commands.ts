/**
 * The control-socket commands behind `vrouter conntrack`: listing, events, deletion, flushing and
 * counting of connections and expectations, and the statistics. Lines are formatted here, where the clock and the
 * trackers are, exactly as conntrack-tools prints them (with `-o extended` and `-o id` when asked).
 *
 * `conntrack-events` sends `{ "subscribed": true }` as its first result, once its listener is in
 * place: every event after that reaches the client, so the CLI can tell a script it is ready.
 */
import { booleanArg, integerArg, listArg, oneOfArg, optional, recordArg, stringArg } from './control-args.ts';
import { defineCommand, type CommandRegistry } from './command-registry.ts';
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
} from '../../netfilter/conntrack/format.ts';

/** The first result of `conntrack-events`: the listener is subscribed. */
export const SUBSCRIBED = { subscribed: true } as const;

/** Whether a result of `conntrack-events` is SUBSCRIBED rather than an event. */
export function isSubscribed(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { subscribed?: unknown }).subscribed === SUBSCRIBED.subscribed;
}

const u32 = integerArg(0, 0xffffffff);
const address = optional(u32);
const port = optional(integerArg(0, 65535));
/** A network (`-s 10.0.1.0/24`): the address and its prefix's mask. */
const network = optional(recordArg({ address: u32, mask: u32 }));
/** `(field & mask) == value` (-m, -u). */
const masked = optional(recordArg({ value: u32, mask: u32 }));
/** `--src-nat [ADDRESS[:PORT]]`: neither means any NATed connection. */
const nat = optional(recordArg({ address, port }));

/** `conntrack`'s filters as the CLI sends them (conntrack-filter.ts): addresses as 32-bit numbers. */
const FILTER = optional(
  recordArg({
    protocol: optional(integerArg(0, 255)),
    origSrc: network,
    origDst: network,
    replySrc: address,
    replyDst: address,
    origSrcPort: port,
    origDstPort: port,
    replySrcPort: port,
    replyDstPort: port,
    state: optional(stringArg),
    mark: masked,
    status: masked,
    srcNat: nat,
    dstNat: nat,
    anyNat: nat,
  }),
);
/** -o extended / -o id. */
const OUTPUT = optional(recordArg({ extended: optional(booleanArg), id: optional(booleanArg) }));
/** The requesting client's id (the CLI sends its pid, as netlink's portid): its DESTROY events say so; absent: 0. */
const PORTID = optional(u32);
const EVENTS = ['NEW', 'UPDATE', 'DESTROY'] as const;

export function registerConntrackCommands(control: CommandRegistry, conntrack: ConntrackCore): void {
  const now = (): number => conntrack.now();
  const selected = (filter: ConntrackFilter = {}) => conntrack.list().filter((entry) => matchesFilter(entry, filter));

  control.register(
    'conntrack-list',
    // get: -G, whose kernel lookup holds a reference while it answers, and says so in use=.
    defineCommand({ filter: FILTER, json: optional(booleanArg), output: OUTPUT, get: optional(booleanArg) }, (args) => {
      const entries = selected(args.filter);
      return args.json ? entries.map((entry) => connectionJson(entry, now())) : entries.map((entry) => formatConnection(entry, now(), args.output, args.get ? 1 : 0));
    }),
  );

  control.register(
    'conntrack-expect-list',
    defineCommand({ filter: FILTER, json: optional(booleanArg), output: OUTPUT }, (args) => {
      const list = conntrack.expectations.list().filter((e) => e.timeout > now());
      return args.json ? list.map((e) => expectationJson(e, now())) : list.map((e) => formatExpectation(e, now()));
    }),
  );

  control.register(
    'conntrack-delete',
    defineCommand({ filter: FILTER, json: optional(booleanArg), output: OUTPUT, portid: PORTID }, (args) => {
      const entries = selected(args.filter);
      const lines = args.json ? entries.map((entry) => connectionJson(entry, now())) : entries.map((entry) => formatConnection(entry, now(), args.output));
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
      { filter: FILTER, json: optional(booleanArg), output: OUTPUT, expect: optional(booleanArg), events: optional(listArg(oneOfArg(EVENTS), EVENTS.length)) },
      (args, reply) => {
        const wanted = new Set<string>(args.events ?? EVENTS);
        if (args.expect) {
          const unsubscribe = conntrack.expectations.subscribe((event, expectation, at) => {
            if (wanted.has(event)) reply.send(formatExpectationEvent(event, expectation, at));
          });
          reply.onClose(unsubscribe);
          reply.send(SUBSCRIBED);
          return;
        }
        const filter = args.filter ?? {};
        const unsubscribe = conntrack.subscribe((event, entry, at, bits, portid) => {
          if (!wanted.has(event) || !matchesFilter(entry, filter)) return;
          reply.send(args.json ? connectionEventJson(event, entry, at, portid) : formatConnectionEvent(event, entry, at, bits, portid, args.output));
        });
        reply.onClose(unsubscribe);
        reply.send(SUBSCRIBED);
      },
      { streaming: true },
    ),
  );
}
