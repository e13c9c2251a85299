/**
 * A lab's control server on a socket in a fresh temporary directory, with the commands of a real
 * router built by the composition root (no TUNs: its interfaces are segment ports), and a raw
 * client that sends exactly the bytes a test gives and collects the reply lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { PacketFlag } from '../../../router/core/device.ts';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer } from '../../../router/deploy/control-server.ts';
import { controlSocketAt } from '../../../router/deploy/control-socket.ts';
import { DEFAULT_CONTROL_LIMITS, type ControlLimits } from '../../../router/deploy/control-connection.ts';
import { registerLabCommands } from '../../../router/deploy/lab/lab-commands.ts';
import { parseLabText } from '../../../router/deploy/lab/lab-file.ts';
import { Segment } from '../../../router/deploy/lab/segment.ts';
import { buildRouter, type BuiltRouter } from '../../../router/stack/build-router.ts';

const LAB = `name: ctl
routers:
  r1:
    interfaces:
      - { name: lan0, segment: lan, address: 10.0.1.1/24 }
      - { name: wan0, segment: wan, address: 203.0.113.1/24 }
    rules: |
      *nat
      -A POSTROUTING -o wan0 -j MASQUERADE
      COMMIT
`;

export interface TestControl {
  server: ControlServer;
  path: string;
  router: BuiltRouter;
  /** Hands a datagram to the router as arriving on its interface on `segment`. */
  receive(segment: string, datagram: Buffer): void;
  close(): void;
}

export async function startTestControl(limits: Partial<ControlLimits> = {}): Promise<TestControl> {
  const dir = mkdtempSync(join(tmpdir(), 'vrouter-control-'));
  const path = join(dir, 'control.sock');
  const lab = parseLabText(join(dir, 'lab.yaml'), LAB, { namespaceExists: () => true });
  const router = buildRouter(lab.routers[0]!.spec);
  const segments = new Map(lab.segments.map((spec) => [spec.name, new Segment(spec.name)]));
  lab.routers[0]!.spec.interfaces.forEach((link, i) => router.router.attach(router.router.interfaces[i]!, segments.get(lab.routers[0]!.segments[i]!)!.attachRouter(`r1:${link.name}`, link.address, link.prefixLength)));
  const server = new ControlServer(controlSocketAt(path), { ...DEFAULT_CONTROL_LIMITS, ...limits });
  registerLabCommands(server, lab, new Map([['r1', router]]), segments);
  await server.listen();
  return {
    server,
    path,
    router,
    receive: (segment, datagram) => segments.get(segment)!.members.find((member) => member.name.startsWith('r1:'))!.receiver!(datagram, PacketFlag.NONE, 0),
    close() {
      server.close();
      router.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReplyLine {
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Connects, sends `bytes` as they are, and resolves with the lines the server sent before closing. */
export function exchange(path: string, bytes: string | Buffer): Promise<ReplyLine[]> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as ReplyLine)));
  });
}
