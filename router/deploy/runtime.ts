/**
 * Brings a router up from a checked config and takes it down again. Order matters for "a bad
 * config leaves nothing behind": everything that can be refused is checked before the first TUN
 * is made, and if a later step fails every TUN made so far is closed (which deletes it).
 */
import type { RouterConfig } from './config.ts';
import { ControlServer } from './control-server.ts';
import { setUpInterface, type NamespaceTun } from './netns-setup.ts';
import { RateLimitedLog } from '../core/rate-limited-log.ts';
import { Counter, DropReason } from '../core/stats.ts';
import { buildRouter, type BuiltRouter, type RouterSpec } from '../stack/build-router.ts';
import { registerRouterCommands } from './router-commands.ts';
import { TunPort } from './tun/tun-port.ts';

export interface RunningRouter extends BuiltRouter {
  readonly control: ControlServer;
}

/** The router a config describes, as the composition root takes it. */
export function routerSpecOf(config: RouterConfig): RouterSpec {
  return {
    interfaces: config.interfaces.map((link) => ({ name: link.name, address: link.address.address, prefixLength: link.address.prefixLength, mtu: link.mtu })),
    routes: config.routes.map((route) => ({ to: route.to.address, prefixLength: route.to.prefixLength, dev: route.dev, via: route.via })),
    rules: config.rules,
    conntrack: config.conntrack,
    helpers: config.helpers,
  };
}

export async function startRouter(config: RouterConfig, log = new RateLimitedLog()): Promise<RunningRouter> {
  await ControlServer.claim(config.control);
  const built = buildRouter(routerSpecOf(config), { log });
  const { router } = built;
  const ports: TunPort[] = [];
  const made: NamespaceTun[] = [];
  const closePorts = (): void => {
    for (let i = ports.length - 1; i >= 0; i--) {
      made[i]!.restoreDefaultRoute();
      ports[i]!.close();
    }
  };
  try {
    config.interfaces.forEach((link, index) => {
      const events = {
        onReadError: (errno: number) => {
          router.stats.count(Counter.READ_ERRORS);
          log.log(`read-${link.name}`, `reading from ${link.name} failed: errno ${errno}`);
        },
        onFault: (error: unknown) => {
          // A bug must cost one packet, not the router.
          router.stats.drop(DropReason.INTERNAL_ERROR);
          log.log('internal-error', (error as Error).stack ?? String(error));
        },
      };
      made.push(setUpInterface(link, index));
      ports.push(new TunPort(made[index]!.tun, events));
    });
  } catch (error) {
    closePorts();
    built.close();
    throw error;
  }
  const control = new ControlServer(config.control);
  registerRouterCommands(
    control,
    built,
    config.interfaces.map((link) => ({ segment: link.name, netns: link.netns, peer: link.peer.address })),
  );
  try {
    await control.listen();
  } catch (error) {
    closePorts();
    built.close();
    throw error;
  }
  router.interfaces.forEach((link, index) => router.attach(link, ports[index]!));
  return {
    ...built,
    control,
    close() {
      control.close();
      closePorts();
      built.close();
    },
  };
}
