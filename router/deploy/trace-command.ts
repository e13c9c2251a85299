/**
 * The control socket's `trace` command (`vrouter trace [--router R] [FILTER-EXPR]`): while the
 * client listens, each router of the lab (or the one named) follows the packets the filter picks
 * (and any a `-j TRACE` rule marked), and every step of theirs comes back as one line, grouped by
 * packet id as nft monitor trace groups them:
 *
 *   trace gw:7 in lan0: tcp src=10.0.1.10 dst=203.0.113.10 sport=40000 dport=21 len=60 ttl=64
 *   trace gw:7 PREROUTING conntrack-in (-200) ACCEPT: NEW original id=3 tcp      6 120 SYN_SENT ...
 *   trace gw:7 TRACE: nat:POSTROUTING:rule:1 IN= OUT=wan0 SRC=10.0.1.10 ...
 *   trace gw:7 sent on wan0 to 203.0.113.10: tcp src=203.0.113.1 ...
 *
 * One trace at a time per router; it stops when the client goes away.
 */
import type { PacketTracer } from '../core/observer.ts';
import type { Router } from '../path/router.ts';
import { compileFilterFor } from './capture/capture-filter.ts';
import { defineCommand } from './command-registry.ts';
import { optional, stringArg } from './control-args.ts';
import type { ControlServer } from './control-server.ts';

export function registerTraceCommand(control: ControlServer, routers: ReadonlyMap<string, Router>): void {
  control.register(
    'trace',
    defineCommand(
      { filter: optional(stringArg), router: optional(stringArg) },
      (args, reply) => {
        const filter = compileFilterFor('trace', args.filter ?? '', (message) => new Error(message));
        const wanted = args.router ?? null;
        if (wanted !== null && !routers.has(wanted)) throw new Error(`no router ${JSON.stringify(wanted)} to trace (routers: ${[...routers.keys()].join(', ')})`);
        const traced = [...routers].filter(([name]) => wanted === null || name === wanted);
        const busy = traced.find(([, router]) => router.tracer !== null);
        if (busy) throw new Error(`router ${busy[0]} is already being traced`);
        const matches = filter.matches;
        for (const [name, router] of traced) {
          const tracer: PacketTracer = {
            wants: (buf) => matches(buf, 0, buf.length),
            line: (packet, text) => reply.send(`trace ${name}:${packet.id} ${text}`),
          };
          router.tracer = tracer;
        }
        reply.onClose(() => {
          for (const [, router] of traced) router.tracer = null;
        });
      },
      { streaming: true },
    ),
  );
}
