/**
 * The control socket's `capture` command: a live capture of the lab's interfaces, streamed as
 * pcapng on the request's own connection after one JSON reply line (which names the interfaces,
 * or says what was wrong with the request). The client going away ends the capture quietly.
 *
 * Arguments: `interfaces` (the -i selectors), `filter` (a tcpdump expression), `count`, and the
 * lab's `router` (only that router's interfaces).
 */
import { defineCommand } from '../command-registry.ts';
import { integerArg, listArg, optional, stringArg } from '../control-args.ts';
import type { ControlServer } from '../control-server.ts';
import { compileFilterFor } from './capture-filter.ts';
import type { CaptureHub } from './capture-hub.ts';
import { CaptureSession } from './capture-session.ts';
import { StreamSink } from './capture-sink.ts';

const MAX_SELECTORS = 256;

export function registerCaptureCommand(control: ControlServer, hub: CaptureHub): void {
  control.register(
    'capture',
    defineCommand(
      {
        interfaces: optional(listArg(stringArg, MAX_SELECTORS)),
        filter: optional(stringArg),
        count: optional(integerArg(0, Number.MAX_SAFE_INTEGER)),
        router: optional(stringArg),
      },
      (args, reply) => {
        const interfaces = args.interfaces ?? [];
        const router = args.router ?? null;
        const filter = compileFilterFor('capture', args.filter ?? '', (message) => new Error(message));
        const known = hub.interfaceNames().filter((name) => router === null || name.startsWith(`${router}:`));
        if (router !== null && known.length === 0) throw new Error(`no router ${JSON.stringify(router)} to capture on`);
        const unknown = interfaces.filter((selector) => !known.some((name) => name === selector || name.endsWith(`:${selector}`)));
        if (unknown.length) throw new Error(`no interface ${unknown.join(', ')} to capture on (interfaces: ${known.join(', ')})`);
        reply.send({ interfaces: known.filter((name) => interfaces.length === 0 || interfaces.some((s) => name === s || name.endsWith(`:${s}`))) });
        const session = new CaptureSession({ sink: new StreamSink(reply.raw()), filter, count: args.count ?? 0, interfaces, userApplication: 'vrouter capture' });
        hub.start(session, router);
        reply.onClose(() => void session.close());
        void session.done.then(() => reply.end());
      },
      { streaming: true },
    ),
  );
}
