/**
 * The control socket of a lab: every router's commands, reached by the request's `router`
 * argument (optional when the lab has one router), and the lab's own: `lab` (what is where) and
 * `link` (a segment's impairments at runtime).
 */
import { formatIpv4Address } from '../../core/addresses.ts';
import type { BuiltRouter } from '../../stack/build-router.ts';
import { CommandSet, defineCommand } from '../command-registry.ts';
import { booleanArg, integerArg, numberArg, optional, recordArg, stringArg } from '../control-args.ts';
import type { ControlServer } from '../control-server.ts';
import { registerRouterCommands, type InterfaceDescription } from '../router-commands.ts';
import type { ImpairmentSettings } from './impairment.ts';
import type { LabSpec } from './lab-spec.ts';
import { MemberKind, type Segment } from './segment.ts';

export function registerLabCommands(control: ControlServer, lab: LabSpec, routers: ReadonlyMap<string, BuiltRouter>, segments: ReadonlyMap<string, Segment>): void {
  const perRouter = new Map<string, CommandSet>();
  for (const router of lab.routers) {
    const set = new CommandSet();
    registerRouterCommands(set, routers.get(router.name)!, router.segments.map((name) => describeAttachment(lab, segments.get(name)!)));
    perRouter.set(router.name, set);
  }
  const pick = (wanted: string | undefined): CommandSet => {
    const names = [...perRouter.keys()];
    if (wanted === undefined) {
      if (names.length === 1) return perRouter.get(names[0]!)!;
      throw new Error(`this lab has routers ${names.join(', ')}: name one with --router NAME`);
    }
    const set = perRouter.get(wanted);
    if (!set) throw new Error(`no router ${JSON.stringify(wanted)} in lab ${lab.name} (routers: ${names.join(', ')})`);
    return set;
  };
  // Every tool sends --router when given one, also to the lab's own commands.
  const router = optional(stringArg);
  const first = perRouter.values().next().value as CommandSet | undefined;
  for (const [name, command] of first?.commands ?? []) {
    // Every router registers the same commands with the same arguments.
    control.register(name, {
      args: { ...command.args, router },
      handler: (args, reply) => pick(args.router as string | undefined).commands.get(name)!.handler(args, reply),
      ...(command.streaming ? { streaming: true } : {}),
    });
  }
  control.register('lab', defineCommand({ router }, () => describe(lab, segments)));
  control.register(
    'link',
    defineCommand({ segment: stringArg, settings: LINK_SETTINGS, router }, (args) => {
      const segment = segments.get(args.segment);
      if (!segment) throw new Error(`no segment ${JSON.stringify(args.segment)} in lab ${lab.name} (segments: ${[...segments.keys()].join(', ')})`);
      return { segment: segment.name, settings: segment.configure(args.settings) };
    }),
  );
}

/** `vrouter link`'s settings as the CLI sends them (impairment-words.ts parsed them): ms, %, bit/s. */
const duration = optional(numberArg(0, 3_600_000));
const percent = optional(numberArg(0, 100));
const LINK_SETTINGS: (value: unknown, name: string) => Partial<ImpairmentSettings> = recordArg({
  delay: duration,
  jitter: duration,
  loss: percent,
  duplicate: percent,
  reorder: percent,
  rate: optional(numberArg(0, 1e15)),
  limit: optional(integerArg(1, 1_000_000)),
  down: optional(booleanArg),
});

function describeAttachment(lab: LabSpec, segment: Segment): InterfaceDescription {
  const hosts = segment.members.filter((member) => member.kind === MemberKind.HOST);
  const only = segment.members.length === 2 && hosts.length === 1 ? hosts[0]! : null;
  const host = only ? lab.hosts.find((h) => only.name.startsWith(`${h.name}:`)) : undefined;
  return { segment: segment.name, netns: host?.netns ?? null, peer: only?.address ?? 0 };
}

function describe(lab: LabSpec, segments: ReadonlyMap<string, Segment>): Record<string, unknown> {
  return {
    name: lab.name,
    routers: lab.routers.map((router) => ({
      name: router.name,
      interfaces: router.spec.interfaces.map((link, i) => ({ name: link.name, address: `${formatIpv4Address(link.address)}/${link.prefixLength}`, segment: router.segments[i] })),
    })),
    hosts: lab.hosts.map((host) => ({
      name: host.name,
      netns: host.netns,
      interfaces: host.interfaces.map((link) => ({
        name: link.name,
        address: `${formatIpv4Address(link.address.address)}/${link.address.prefixLength}`,
        gateway: link.gateway ? formatIpv4Address(link.gateway) : null,
        segment: link.segment,
      })),
    })),
    segments: [...segments.values()].map((segment) => ({
      name: segment.name,
      members: segment.members.map((member) => member.name),
      impairment: { ...segment.impairment.settings },
      counters: { ...segment.counters, ...segment.impairment.counters },
    })),
  };
}
