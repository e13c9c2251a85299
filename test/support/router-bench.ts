/**
 * A router built by the composition root (`buildRouter`, as production builds it) with a
 * CaptureLink on every interface, for unit tests that send datagrams through the real packet path
 * and hook chain and read what leaves which interface.
 *
 * A datagram enters on the interface its source lives behind: the one the router routes that
 * source to (so the routes decide, as they would for a reply). The only thing added to the router
 * is an observer at Priority.FIRST of PRE_ROUTING that keeps the router's own Packet for the
 * datagram, so a test can read what netfilter left on it (conntrack, ctinfo); it always accepts.
 */
import { Hook, Priority, Verdict } from '../../router/core/hooks.ts';
import type { RouterInterface } from '../../router/core/interfaces.ts';
import type { Packet } from '../../router/core/packet.ts';
import { Counter, DropReason } from '../../router/core/stats.ts';
import { formatIpv4Address, parseIpv4Prefix } from '../../router/core/addresses.ts';
import { ipv4Src } from '../../router/wire/ipv4.ts';
import { buildRouter, type BuiltRouter, type InterfaceSpec, type RouterEnvironment, type RouterSpec } from '../../router/stack/build-router.ts';
import { CaptureLink } from './packets.ts';

/** `name address/prefix`, MTU 1500: `interfaceSpec('lan0', '10.0.1.1/24')`. */
export function interfaceSpec(name: string, addressWithPrefix: string, mtu = 1500): InterfaceSpec {
  const { address, prefixLength } = parseIpv4Prefix(addressWithPrefix);
  return { name, address, prefixLength, mtu };
}

export interface Sent {
  /** The interface it left by. */
  via: string;
  /** A copy of the bytes as transmitted. */
  buf: Buffer;
  /** The PacketFlag bits it was handed over with, and a super-packet's segment size (else 0). */
  flags: number;
  gsoSize: number;
}

export interface Received {
  /** The router's Packet for the datagram, as its walk left it; null if it never reached PRE_ROUTING. */
  packet: Packet | null;
  /** Everything the router transmitted during the call (the datagram forwarded, or its answer), interface by interface. */
  sent: Sent[];
  /** The drop reasons counted during the call, one entry per drop. */
  drops: DropReason[];
  /** Whether the router forwarded the datagram (ip_forward ran for it). */
  forwarded: boolean;
}

const DROP_REASONS = Object.values(DropReason) as DropReason[];

export class RouterBench {
  readonly built: BuiltRouter;
  readonly links = new Map<string, CaptureLink>();
  private entered: Packet | null = null;

  /** `offloads`: the PacketFlag offloads every interface's device takes (none by default). */
  constructor(spec: RouterSpec, env: RouterEnvironment = {}, offloads = 0) {
    this.built = buildRouter(spec, env);
    for (const link of this.router.interfaces) {
      const device = new CaptureLink(offloads);
      this.links.set(link.name, device);
      this.router.attach(link, device);
    }
    this.router.register({
      hook: Hook.PRE_ROUTING,
      priority: Priority.FIRST,
      name: 'test-observer',
      fn: (packet) => {
        this.entered ??= packet;
        return Verdict.ACCEPT;
      },
    });
  }

  get router() {
    return this.built.router;
  }

  get netfilter() {
    return this.built.netfilter;
  }

  interfaceNamed(name: string): RouterInterface {
    const link = this.router.interfaces.find((candidate) => candidate.name === name);
    if (!link) throw new Error(`no interface ${name}`);
    return link;
  }

  /** The interface a datagram from `source` comes in by: the one the router would send to `source` by. */
  ingressFor(source: number): RouterInterface {
    const route = this.router.routes.lookup(source);
    if (!route) throw new Error(`test set-up: no route back to ${formatIpv4Address(source)}, so no side it could come from`);
    return route.outInterface;
  }

  /**
   * `router.receive` on the interface the source lives behind (or `on`), with the device's
   * PacketFlag bits and segment size, and what came of it.
   */
  receive(buf: Buffer, on: string | null = null, flags = 0, gsoSize = 0): Received {
    const link = on ? this.interfaceNamed(on) : this.ingressFor(ipv4Src(buf, 0));
    const stats = this.router.stats;
    const dropsBefore = DROP_REASONS.map((reason) => stats.dropped(reason));
    const forwardedBefore = stats.get(Counter.FORWARDED);
    for (const device of this.links.values()) device.take();
    this.entered = null;
    this.router.receive(link, buf, flags, gsoSize);
    // The router reuses its received packet object for the next one: keep what this one was.
    const packet = (this.entered as Packet | null)?.detached() ?? null;
    this.entered = null;
    const sent: Sent[] = [];
    for (const [via, device] of this.links) {
      const flags = device.flags.slice();
      const gsoSizes = device.gsoSizes.slice();
      device.take().forEach((out, i) => sent.push({ via, buf: out, flags: flags[i]!, gsoSize: gsoSizes[i]! }));
    }
    const drops: DropReason[] = [];
    DROP_REASONS.forEach((reason, i) => {
      for (let n = stats.dropped(reason) - dropsBefore[i]!; n > 0; n--) drops.push(reason);
    });
    return { packet, sent, drops, forwarded: stats.get(Counter.FORWARDED) > forwardedBefore };
  }

  close(): void {
    this.built.close();
  }
}
