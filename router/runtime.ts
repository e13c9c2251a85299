/**
 * Brings a router up from a checked config and takes it down again. Order matters for "a bad
 * config leaves nothing behind": everything that can be refused is checked before the first TUN
 * is made, and if a later step fails every TUN made so far is closed (which deletes it).
 */
import { formatIpv4Address, formatPrefix } from './addresses.ts';
import type { RouterConfig } from './config.ts';
import { ControlServer } from './control-server.ts';
import type { RouterInterface } from './interfaces.ts';
import { setUpInterface } from './netns-setup.ts';
import { RateLimitedLog } from './rate-limited-log.ts';
import { Router } from './router.ts';
import { NetfilterStack } from '../netfilter/netfilter-stack.ts';
import { RoutingTable } from './routing-table.ts';
import { Counter, DropReason } from './stats.ts';
import type { TunDevice } from './tun/tun-device.ts';

export interface RunningRouter {
  readonly router: Router;
  readonly netfilter: NetfilterStack;
  readonly control: ControlServer;
  close(): void;
}

/**
 * The router with netfilter attached and the config's rules loaded. Throws (RulesError) on a bad
 * rule before anything outside this process exists.
 */
export function buildRouterWithNetfilter(config: RouterConfig, log: RateLimitedLog): { router: Router; netfilter: NetfilterStack } {
  const router = buildRouter(config);
  const netfilter = new NetfilterStack(router, {
    conntrack: { max: config.conntrack.max, buckets: config.conntrack.buckets, autoHelpers: config.conntrack.autoHelpers, checksum: config.conntrack.checksum },
    alwaysTrack: config.conntrack.always,
    trackers: { tcp: { loose: config.conntrack.tcpLoose, liberal: config.conntrack.tcpBeLiberal } },
    ftp: config.helpers.ftp,
    log,
  });
  if (config.rules) netfilter.loadRules(config.rules.text, config.rules.origin, config.rules.firstLine);
  netfilter.attach();
  return { router, netfilter };
}

export function buildRouter(config: RouterConfig): Router {
  const interfaces: RouterInterface[] = config.interfaces.map((link, index) => ({
    index,
    name: link.name,
    netns: link.netns,
    address: link.address.address,
    prefixLength: link.address.prefixLength,
    peer: link.peer.address,
    mtu: link.mtu,
    device: null,
  }));
  const routes = new RoutingTable();
  for (const link of interfaces) routes.add(link.address, link.prefixLength, link, 0, 'connected');
  for (const route of config.routes) {
    routes.add(route.to.address, route.to.prefixLength, interfaces.find((link) => link.name === route.dev)!, route.via, 'static');
  }
  return new Router(interfaces, routes);
}

export async function startRouter(config: RouterConfig, log = new RateLimitedLog()): Promise<RunningRouter> {
  await ControlServer.claimPath(config.control);
  const { router, netfilter } = buildRouterWithNetfilter(config, log);
  const devices: TunDevice[] = [];
  const closeDevices = (): void => {
    for (const device of devices) device.close();
  };
  try {
    config.interfaces.forEach((link, index) => devices.push(setUpInterface(link, index)));
  } catch (error) {
    closeDevices();
    throw error;
  }
  const control = new ControlServer(config.control);
  registerRouterCommands(control, router, netfilter);
  netfilter.registerCommands(control);
  try {
    await control.listen();
  } catch (error) {
    closeDevices();
    netfilter.close();
    throw error;
  }
  router.interfaces.forEach((link, index) => {
    const device = devices[index]!;
    link.device = device;
    startReading(router, link, device, log);
  });
  return {
    router,
    netfilter,
    control,
    close() {
      control.close();
      closeDevices();
      netfilter.close();
      router.close();
    },
  };
}

function startReading(router: Router, link: RouterInterface, device: TunDevice, log: RateLimitedLog): void {
  const slotSize = device.slotSize;
  const headerLength = device.headerLength;
  device.start((slab, lengths, count) => {
    if (count < 0) {
      router.stats.count(Counter.READ_ERRORS);
      log.log(`read-${link.name}`, `reading from ${link.name} failed: errno ${-count}`);
      return;
    }
    for (let i = 0; i < count; i++) {
      const start = i * slotSize + headerLength;
      try {
        router.receive(link, slab.subarray(start, start + lengths[i]!));
      } catch (error) {
        // A bug must cost one packet, not the router.
        router.stats.drop(DropReason.INTERNAL_ERROR);
        log.log('internal-error', (error as Error).stack ?? String(error));
      }
    }
  });
}

function registerRouterCommands(control: ControlServer, router: Router, netfilter: NetfilterStack): void {
  control.register('stats', {
    handler: () => ({ ...router.stats.snapshot(), conntrack: { ...netfilter.conntrack.counters, entries: netfilter.conntrack.table.size }, defrag: netfilter.defrag.counters }),
  });
  control.register('interfaces', {
    handler: () =>
      router.interfaces.map((link) => ({
        name: link.name,
        netns: link.netns,
        address: `${formatIpv4Address(link.address)}/${link.prefixLength}`,
        peer: formatIpv4Address(link.peer),
        mtu: link.mtu,
      })),
  });
  control.register('routes', {
    handler: () =>
      router.routes.list().map((route) => ({
        to: formatPrefix({ address: route.network, prefixLength: route.prefixLength }),
        dev: route.outInterface.name,
        via: route.gateway ? formatIpv4Address(route.gateway) : null,
        kind: route.kind,
      })),
  });
}
