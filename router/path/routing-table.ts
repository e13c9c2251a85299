/**
 * IPv4 routing table with longest-prefix-match lookup.
 *
 * Routes are kept sorted by prefix length, longest first, so the first match is the longest one.
 * A router here has a handful of routes; a linear scan over a sorted array beats a trie at that size.
 */
import { networkOf, prefixMask } from '../core/addresses.ts';
import type { RouterInterface } from '../core/interfaces.ts';

export interface Route {
  readonly network: number;
  readonly prefixLength: number;
  readonly mask: number;
  readonly outInterface: RouterInterface;
  /** Next hop, or 0 for a connected destination. Kept for display: a TUN link needs no neighbour. */
  readonly gateway: number;
  readonly kind: 'connected' | 'static';
}

export class RoutingTable {
  private routes: Route[] = [];

  add(network: number, prefixLength: number, outInterface: RouterInterface, gateway = 0, kind: Route['kind'] = 'static'): Route {
    const route: Route = {
      network: networkOf(network, prefixLength),
      prefixLength,
      mask: prefixMask(prefixLength),
      outInterface,
      gateway,
      kind,
    };
    const routes = [...this.routes, route];
    // Stable sort: among equal prefixes the first added wins, like the kernel's first-inserted route.
    routes.sort((a, b) => b.prefixLength - a.prefixLength);
    this.routes = routes;
    return route;
  }

  lookup(destination: number): Route | null {
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      if (((destination & route.mask) >>> 0) === route.network) return route;
    }
    return null;
  }

  list(): readonly Route[] {
    return this.routes;
  }
}
