/**
 * The control-socket commands of one router: counters, interfaces, routes, the rules
 * (iptables-save / iptables-restore) and connection tracking (see conntrack-commands.ts).
 */
import { formatIpv4Address, formatPrefix } from '../core/addresses.ts';
import type { BuiltRouter } from '../stack/build-router.ts';
import { booleanArg, listArg, optional, stringArg } from './control-args.ts';
import { defineCommand, type CommandRegistry } from './command-registry.ts';
import { registerConntrackCommands } from './conntrack-commands.ts';
import { tableIdOf } from '../../netfilter/tables/tables.ts';
import { runIptables } from '../../netfilter/tables/command.ts';
import { systemNames } from './system-names.ts';

/** More words than any iptables command line has; the request line is bounded anyway. */
const MAX_IPTABLES_WORDS = 4096;

/** What `vrouter interfaces` shows beyond the router's own view: where each interface leads. */
export interface InterfaceDescription {
  /** The lab segment it is attached to. */
  segment: string;
  /** When the segment leads to exactly one host: that host's namespace and address. */
  netns: string | null;
  peer: number;
}

export function registerRouterCommands(control: CommandRegistry, built: BuiltRouter, described: readonly InterfaceDescription[]): void {
  const { router, netfilter } = built;
  control.register(
    'stats',
    defineCommand({}, () => ({
      ...router.stats.snapshot(),
      hookDrops: router.stats.hookDropsByOrigin(),
      interfaces: router.stats.interfacesSnapshot(router.interfaces.map((link) => link.name)),
      conntrack: { ...netfilter.conntrack.counters, entries: netfilter.conntrack.table.size },
      defrag: netfilter.defrag.counters,
      helpers: netfilter.helperCounters(),
    })),
  );
  control.register(
    'interfaces',
    defineCommand({}, () =>
      router.interfaces.map((link, i) => ({
        name: link.name,
        segment: described[i]?.segment ?? null,
        netns: described[i]?.netns ?? null,
        address: `${formatIpv4Address(link.address)}/${link.prefixLength}`,
        peer: described[i]?.peer ? formatIpv4Address(described[i]!.peer) : null,
        mtu: link.mtu,
        state: link.up ? 'up' : 'down',
      })),
    ),
  );
  control.register(
    'routes',
    defineCommand({}, () =>
      router.routes.list().map((route) => ({
        to: formatPrefix({ address: route.network, prefixLength: route.prefixLength }),
        dev: route.outInterface.name,
        via: route.gateway ? formatIpv4Address(route.gateway) : null,
        kind: route.kind,
      })),
    ),
  );
  registerConntrackCommands(control, netfilter.conntrack);
  control.register(
    'iptables-save',
    defineCommand({ counters: optional(booleanArg), table: optional(stringArg) }, (args) => {
      if (args.table === undefined) return netfilter.rules.save(args.counters === true);
      const id = tableIdOf(args.table);
      if (id === -1) throw new Error(`Table \`${args.table}' does not exist`);
      return netfilter.rules.save(args.counters === true, new Date(), id);
    }),
  );
  control.register(
    'iptables-restore',
    defineCommand(
      { text: stringArg, origin: optional(stringArg), counters: optional(booleanArg), noflush: optional(booleanArg), test: optional(booleanArg) },
      (args) => {
        // --noflush edits the tables the text names instead of replacing them; --test only checks.
        const ruleset = netfilter.rules.parse(args.text, args.origin ?? 'iptables-restore', 0, { keepCounters: args.counters === true, noflush: args.noflush === true });
        if (args.test !== true) netfilter.applyRules(ruleset);
        return 'ok';
      },
    ),
  );
  // The iptables command: what it prints and its exit status, so the tool only passes them on.
  control.register(
    'iptables',
    defineCommand({ argv: listArg(stringArg, MAX_IPTABLES_WORDS) }, (args) =>
      runIptables(args.argv, { rules: netfilter.rules, apply: (ruleset) => netfilter.applyRules(ruleset), names: systemNames() }),
    ),
  );
}
