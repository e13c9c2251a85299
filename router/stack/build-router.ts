/**
 * The composition root of one router: its packet path (interfaces, routes, ICMP limiter), its
 * netfilter and NAT, its rules, from a plain description. Production (`vrouter run`, labs) and
 * tests build routers only through here, so every test runs the real hook order; what differs is
 * only what is injected: the clock, the random source, the log sinks, and the devices attached to
 * the interfaces afterwards (`router.attach`).
 *
 * Throws RulesError for a refused rule, before anything outside the process exists.
 */
import { RateLimitedLog } from '../core/rate-limited-log.ts';
import type { RouterInterface } from '../core/interfaces.ts';
import { IcmpRateLimiter } from '../path/icmp-rate-limit.ts';
import { Router } from '../path/router.ts';
import { RoutingTable } from '../path/routing-table.ts';
import { NetfilterStack, type HelperName } from './netfilter-stack.ts';

export interface InterfaceSpec {
  name: string;
  address: number;
  prefixLength: number;
  mtu: number;
}

export interface RouteSpec {
  to: number;
  prefixLength: number;
  dev: string;
  /** 0: no gateway (a connected destination). */
  via: number;
}

export interface RulesSpec {
  /** iptables-restore text. */
  text: string;
  /** Where the text came from, for error messages: the rules file, or `config.yaml (rules)`. */
  origin: string;
  /** Line of the origin on which the text starts (0 for a file of its own). */
  firstLine: number;
}

export interface ConntrackSpec {
  always: boolean;
  max: number;
  buckets: number;
  autoHelpers: boolean;
  checksum: boolean;
  tcpLoose: boolean;
  tcpBeLiberal: boolean;
}

export const DEFAULT_CONNTRACK: ConntrackSpec = {
  always: false,
  max: 262144,
  buckets: 65536,
  autoHelpers: false,
  checksum: true,
  tcpLoose: true,
  tcpBeLiberal: false,
};

export interface RouterSpec {
  interfaces: readonly InterfaceSpec[];
  routes?: readonly RouteSpec[];
  rules?: RulesSpec | null;
  conntrack?: Partial<ConntrackSpec>;
  helpers?: { ftp?: { ports: number[]; loose: boolean } };
}

/** What is injected; everything has the production default. */
export interface RouterEnvironment {
  /** ms; the conntrack clock and the ICMP rate limiter's. */
  now?: () => number;
  random?: () => number;
  /** Rate-limited diagnostics (helper faults, table full...). */
  log?: RateLimitedLog;
  /** LOG and TRACE target lines. */
  logSink?: (line: string) => void;
  /** The helpers to offer (default: all). */
  helpers?: readonly HelperName[];
}

export interface BuiltRouter {
  readonly router: Router;
  readonly netfilter: NetfilterStack;
  /** Stops the router's timers; devices are the caller's to close. */
  close(): void;
}

export function buildRouter(spec: RouterSpec, env: RouterEnvironment = {}): BuiltRouter {
  const interfaces: RouterInterface[] = spec.interfaces.map((link, index) => ({
    index,
    name: link.name,
    address: link.address,
    prefixLength: link.prefixLength,
    mtu: link.mtu,
    device: null,
    up: true,
  }));
  const routes = new RoutingTable();
  for (const link of interfaces) routes.add(link.address, link.prefixLength, link, 0, 'connected');
  for (const route of spec.routes ?? []) {
    const link = interfaces.find((candidate) => candidate.name === route.dev);
    if (!link) throw new Error(`route to ${route.to}/${route.prefixLength}: no interface ${route.dev}`);
    routes.add(route.to, route.prefixLength, link, route.via, 'static');
  }
  const router = new Router(interfaces, routes, {
    icmpLimiter: new IcmpRateLimiter(env.now),
    ...(env.random ? { random: env.random } : {}),
  });
  const conntrack = { ...DEFAULT_CONNTRACK, ...spec.conntrack };
  const netfilter = new NetfilterStack(router, {
    conntrack: { max: conntrack.max, buckets: conntrack.buckets, autoHelpers: conntrack.autoHelpers, checksum: conntrack.checksum },
    alwaysTrack: conntrack.always,
    trackers: { tcp: { loose: conntrack.tcpLoose, liberal: conntrack.tcpBeLiberal } },
    ...(spec.helpers?.ftp ? { ftp: spec.helpers.ftp } : {}),
    ...(env.helpers ? { helpers: env.helpers } : {}),
    ...(env.now ? { now: env.now } : {}),
    ...(env.random ? { random: env.random } : {}),
    log: env.log ?? new RateLimitedLog(),
    ...(env.logSink ? { logSink: env.logSink } : {}),
  });
  if (spec.rules) netfilter.loadRules(spec.rules.text, spec.rules.origin, spec.rules.firstLine);
  netfilter.attach();
  return {
    router,
    netfilter,
    close() {
      netfilter.close();
      router.close();
    },
  };
}
