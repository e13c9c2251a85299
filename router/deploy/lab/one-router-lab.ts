/**
 * Today's one-router config as a lab: one router, and per interface a point-to-point segment to a
 * peer host in the existing namespace the interface names, whose TUN carries the interface's name
 * and the peer address, with its default route through the router. The lab is named after the
 * config file; no namespace is made or removed.
 */
import { basename } from 'node:path';
import type { RouterConfig } from '../config.ts';
import { routerSpecOf } from '../runtime.ts';
import type { LabSpec } from './lab-spec.ts';
import { seedOf } from './lab-spec.ts';

export const ONE_ROUTER_NAME = 'router';

export function labOfRouterConfig(config: RouterConfig): LabSpec {
  return {
    name: basename(config.file).replace(/\.ya?ml$/, ''),
    file: config.file,
    control: config.control,
    capture: config.capture,
    segments: config.interfaces.map((link) => ({ name: link.name, impairment: {}, seed: seedOf(link.name) })),
    hosts: config.interfaces.map((link) => ({
      name: link.netns,
      netns: link.netns,
      ownsNetns: false,
      interfaces: [{ name: link.name, segment: link.name, address: link.peer, gateway: link.address.address, mtu: link.mtu }],
    })),
    routers: [{ name: ONE_ROUTER_NAME, spec: routerSpecOf(config), segments: config.interfaces.map((link) => link.name) }],
  };
}
