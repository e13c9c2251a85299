/**
 * Brings a whole lab up in this process and takes it down again: every router built from its
 * spec (its own netfilter, conntrack table, rules and counters), every segment with its seeded
 * impairments, a namespace and a TUN per host interface, and one control socket for all.
 *
 * Everything that can be refused (rules included) is checked before anything outside the
 * process exists; if a later step fails, everything made so far is undone in reverse order, and
 * `close()` undoes all of it: the TUNs (closing one deletes it), the default routes they displaced
 * in namespaces the lab did not make (netns-setup.ts), the namespaces the lab made (with what
 * still runs in them), the socket. A namespace the lab did not make is left in place.
 *
 * A host's namespace deleted under the running lab takes the host's TUN with it (its read fails
 * with EBADFD): that is said once, and a router interface that no longer reaches anyone through
 * its segment is marked down (`vrouter interfaces`), so what is routed to it is dropped as
 * interface-down instead of written to a device that is gone.
 */
import { formatIpv4Address } from '../../core/addresses.ts';
import type { RouterInterface } from '../../core/interfaces.ts';
import { RateLimitedLog } from '../../core/rate-limited-log.ts';
import { buildRouter, type BuiltRouter } from '../../stack/build-router.ts';
import { CaptureHub } from '../capture/capture-hub.ts';
import { registerCaptureCommand } from '../capture/capture-command.ts';
import { CaptureSession } from '../capture/capture-session.ts';
import { openCaptureSink } from '../capture/capture-sink.ts';
import { ControlServer } from '../control-server.ts';
import { registerTraceCommand } from '../trace-command.ts';
import { createNamespace, destroyNamespace, namespaceExists } from '../namespaces.ts';
import { setUpInterface } from '../netns-setup.ts';
import { TunPort } from '../tun/tun-port.ts';
import { registerLabCommands } from './lab-commands.ts';
import type { LabSpec } from './lab-spec.ts';
import { seededRandom } from './random.ts';
import { Scheduler } from './scheduler.ts';
import { Segment, type SegmentMember } from './segment.ts';

export interface RunningLab {
  readonly spec: LabSpec;
  readonly routers: ReadonlyMap<string, BuiltRouter>;
  readonly segments: ReadonlyMap<string, Segment>;
  readonly control: ControlServer;
  readonly capture: CaptureHub;
  close(): void;
}

export class LabSetupError extends Error {
  readonly code = 'EVROUTERLAB';
}

export async function startLab(lab: LabSpec, log = new RateLimitedLog()): Promise<RunningLab> {
  await ControlServer.claim(lab.control);
  const undo: (() => void)[] = [];
  const undoAll = (): void => {
    while (undo.length) {
      try {
        undo.pop()!();
      } catch (error) {
        log.log('teardown', `cleaning up failed: ${(error as Error).message}`);
      }
    }
  };
  try {
    const routers = new Map<string, BuiltRouter>();
    for (const router of lab.routers) {
      const built = buildRouter(router.spec, { log });
      routers.set(router.name, built);
      undo.push(() => built.close());
    }
    const scheduler = new Scheduler();
    const segments = new Map<string, Segment>();
    for (const spec of lab.segments) {
      const segment = new Segment(spec.name, {
        impairment: spec.impairment,
        random: seededRandom(spec.seed),
        scheduler,
        onFault: (error) => log.log('internal-error', (error as Error).stack ?? String(error)),
      });
      segments.set(spec.name, segment);
      undo.push(() => segment.close());
    }
    for (const host of lab.hosts) {
      if (!host.ownsNetns) continue;
      if (namespaceExists(host.netns)) {
        throw new LabSetupError(`host ${host.name}: network namespace ${host.netns} already exists (another lab named ${lab.name} running? remove it with: ip netns del ${host.netns})`);
      }
      createNamespace(host.netns);
      undo.push(() => destroyNamespace(host.netns));
    }
    const routerLinks = new Map<SegmentMember, { router: string; link: RouterInterface }>();
    let tunCount = 0;
    for (const host of lab.hosts) {
      for (const link of host.interfaces) {
        const name = `${host.name}:${link.name}`;
        const segment = segments.get(link.segment)!;
        const made = setUpInterface(
          { name: link.name, netns: host.netns, address: { address: link.gateway, prefixLength: link.address.prefixLength }, peer: link.address, mtu: link.mtu },
          tunCount++,
        );
        let member: SegmentMember | null = null;
        const port = new TunPort(made.tun, {
          // Reading has stopped: the device is gone for the lab, whatever the cause.
          onReadError: (errno) => {
            const alone = member && segment.memberGone(member);
            const stranded = alone ? routerLinks.get(alone) : undefined;
            if (stranded) stranded.link.up = false;
            const gone = namespaceExists(host.netns) ? '' : `network namespace ${host.netns} is gone, `;
            const down = stranded ? `; router ${stranded.router} interface ${stranded.link.name} marked down` : '';
            log.log(`lost-${name}`, `host ${host.name} interface ${link.name}: ${gone}reading its TUN failed with errno ${errno}${down}`);
          },
          onFault: (error) => log.log('internal-error', (error as Error).stack ?? String(error)),
        });
        undo.push(() => {
          made.restoreDefaultRoute();
          port.close();
        });
        member = segment.attachHost(name, link.address.address, link.gateway, port);
      }
    }
    for (const router of lab.routers) {
      const built = routers.get(router.name)!;
      built.router.interfaces.forEach((link, i) => {
        const port = segments.get(router.segments[i]!)!.attachRouter(`${router.name}:${link.name}`, link.address, link.prefixLength);
        routerLinks.set(port.member, { router: router.name, link });
        built.router.attach(link, port);
      });
    }
    const capture = new CaptureHub(
      lab.routers.map((router) => ({
        name: router.name,
        router: routers.get(router.name)!.router,
        descriptions: router.spec.interfaces.map((link, i) => `${formatIpv4Address(link.address)}/${link.prefixLength} on segment ${router.segments[i]}`),
      })),
      [...segments.values()],
    );
    if (lab.capture) {
      const session = new CaptureSession({ sink: openCaptureSink(lab.capture), userApplication: `vrouter lab ${lab.name}` });
      capture.start(session);
      undo.push(() => void session.close());
    }
    const control = new ControlServer(lab.control);
    registerLabCommands(control, lab, routers, segments);
    registerCaptureCommand(control, capture);
    registerTraceCommand(control, new Map([...routers].map(([name, built]) => [name, built.router])));
    await control.listen();
    undo.push(() => control.close());
    return {
      spec: lab,
      routers,
      segments,
      control,
      capture,
      close: undoAll,
    };
  } catch (error) {
    undoAll();
    throw error;
  }
}

/** One line per router and host for the `ready` message. */
export function describeLab(lab: LabSpec): string {
  const routers = lab.routers.map((r) => `${r.name}(${r.spec.interfaces.map((link, i) => `${link.name}@${r.segments[i]}`).join(',')})`);
  const hosts = lab.hosts.map((h) => `${h.name}@${h.netns}(${h.interfaces.map((link) => `${formatIpv4Address(link.address.address)}@${link.segment}`).join(',')})`);
  return [...routers, ...hosts].join(' ');
}
