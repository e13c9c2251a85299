/**
 * The composition of a router's netfilter (NetfilterStack) with options a plain RouterSpec does
 * not carry: conntrack timeouts reach every tracker, the generic one included.
 */
import { describe, expect, it } from 'vitest';
import { formatConnection } from '../../../netfilter/conntrack/format.ts';
import { parseIpv4Address } from '../../../router/core/addresses.ts';
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import { Router } from '../../../router/path/router.ts';
import { RoutingTable } from '../../../router/path/routing-table.ts';
import { NetfilterStack } from '../../../router/stack/netfilter-stack.ts';
import { CaptureLink, rawPacket } from '../../support/packets.ts';

/** lan0 10.0.1.1/24 and wan0 203.0.113.1/24, tracking everything, on a clock the test holds. */
function trackingRouter(options: ConstructorParameters<typeof NetfilterStack>[1]) {
  const interfaces: RouterInterface[] = [
    { index: 0, name: 'lan0', address: parseIpv4Address('10.0.1.1'), prefixLength: 24, mtu: 1500, device: null, up: true },
    { index: 1, name: 'wan0', address: parseIpv4Address('203.0.113.1'), prefixLength: 24, mtu: 1500, device: null, up: true },
  ];
  const routes = new RoutingTable();
  for (const link of interfaces) routes.add(link.address, link.prefixLength, link, 0, 'connected');
  const router = new Router(interfaces, routes);
  for (const link of interfaces) router.attach(link, new CaptureLink());
  const clock = { ms: 1_000_000 };
  const netfilter = new NetfilterStack(router, { alwaysTrack: true, now: () => clock.ms, ...options });
  netfilter.attach();
  return { router, netfilter, lan: interfaces[0]!, clock };
}

describe('NetfilterStack', () => {
  it('gives a protocol without a tracker of its own the configured generic timeout', () => {
    const { router, netfilter, lan, clock } = trackingRouter({ trackers: { timeouts: { generic: 60 } } });
    // SCTP (132) has no tracker here: the generic one takes it.
    router.receive(lan, rawPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, 132, new Uint8Array(12)));
    const listing = netfilter.conntrack.table.all().map((entry) => formatConnection(entry, clock.ms));
    expect(listing).toEqual(['unknown  132 60 src=10.0.1.2 dst=203.0.113.2 [UNREPLIED] src=203.0.113.2 dst=10.0.1.2 mark=0 use=1']);
    netfilter.close();
    router.close();
  });
});
