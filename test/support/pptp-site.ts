/**
 * A PPTP-through-NAT site for the integration tests: two PNS namespaces (pns0 on lan0, pns1 on lan1)
 * and one PAC namespace (on wan0) joined by a router, which is either vrouter (`vrouter run`) or the
 * kernel (scripts/kernel-router.ts) with the same interface names, addresses and iptables-restore
 * rules. The project's PPTP peers (scripts/pptp-peers/) run in the namespaces; their JSON lines are
 * collected. The router's expectations can be listed (`conntrack -L expect`) and watched
 * (`conntrack -E expect`) on either router, its rules replaced and its tables flushed.
 *
 * Traffic stays between the namespaces made here; `stop()` removes them (and kills what runs there).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setUpKernelRouter, type KernelLink } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { listenForEvents } from './conntrack-events.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;
const PAC_SCRIPT = `${ROOT}scripts/pptp-peers/pac-server.ts`;
const PNS_SCRIPT = `${ROOT}scripts/pptp-peers/pns-client.ts`;

export type RouterKind = 'vrouter' | 'kernel';

export const PAC_ADDRESS = '203.0.113.2';
export const PUBLIC_ADDRESS = '203.0.113.1';
export const PNS_ADDRESSES = ['10.0.1.2', '10.0.2.2'] as const;
export const PNS_ROLES = ['pns0', 'pns1'] as const;

export const LINKS: KernelLink[] = [
  { name: 'lan0', role: 'pns0', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'lan1', role: 'pns1', address: '10.0.2.1/24', peer: '10.0.2.2/24' },
  { name: 'wan0', role: 'pac', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

/**
 * One MASQUERADE on wan0, with or without the pptp helper attached by rule. The raw table is always
 * named, so that loading the rules without the helper empties it (iptables-restore replaces only
 * the tables its input names, on the kernel and on vrouter).
 */
export function pptpRules(helper: boolean): string {
  return `*raw
${helper ? '-A PREROUTING -p tcp --dport 1723 -j CT --helper pptp\n' : ''}COMMIT
*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
`;
}

/** One JSON line of a peer. */
export interface PeerLine {
  role: string;
  t: number;
  event: string;
  [field: string]: unknown;
}

export interface PeerRun {
  code: number | null;
  lines: PeerLine[];
  stderr: string;
}

/** A running peer: its lines so far, its end, and a way to wait for one of its events. */
export class Peer {
  readonly lines: PeerLine[] = [];
  readonly done: Promise<PeerRun>;
  private stderr = '';
  private readonly waiters: { test: (line: PeerLine) => boolean; resolve: (line: PeerLine | null) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!text.trim()) continue;
        let line: PeerLine;
        try {
          line = JSON.parse(text) as PeerLine;
        } catch {
          this.stderr += `unparsable stdout line: ${text}\n`;
          continue;
        }
        this.lines.push(line);
        for (const waiter of [...this.waiters]) {
          if (!waiter.test(line)) continue;
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.done = new Promise<PeerRun>((resolve) =>
      child.once('exit', (code) => {
        for (const waiter of this.waiters.splice(0)) waiter.resolve(null);
        resolve({ code, lines: this.lines, stderr: this.stderr });
      }),
    );
  }

  /** The first line (already printed or still to come) that passes `test`; null if the peer exits first. */
  waitFor(test: (line: PeerLine) => boolean): Promise<PeerLine | null> {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
}

export interface SessionRuns {
  pac: PeerRun;
  clients: PeerRun[];
}

export class PptpSite {
  private constructor(
    readonly kind: RouterKind,
    readonly topology: Topology,
    readonly router: RouterProcess | null,
  ) {}

  /** Namespaces, then the router (vrouter process, or the kernel in a `router` namespace). */
  static async start(kind: RouterKind, tagPrefix: string, rules: string): Promise<PptpSite> {
    const roles = kind === 'kernel' ? [...PNS_ROLES, 'pac', 'router'] : [...PNS_ROLES, 'pac'];
    const topology = new Topology(uniqueTag(tagPrefix), roles);
    try {
      if (kind === 'kernel') {
        setUpKernelRouter(topology, 'router', LINKS, rules);
        return new PptpSite(kind, topology, null);
      }
      const router = await startRouterProcess(`control: /tmp/${topology.tag}.sock
interfaces:
${LINKS.map((l) => `  - { name: ${l.name}, netns: ${topology.ns(l.role)}, address: ${l.address}, peer: ${l.peer} }`).join('\n')}
rules: |
${rules
  .trimEnd()
  .split('\n')
  .map((line) => `  ${line}`)
  .join('\n')}
`);
      return new PptpSite(kind, topology, router);
    } catch (error) {
      topology.destroy();
      throw error;
    }
  }

  /** Starts the PAC (listening on the wan side) or a PNS (`pns0`, `pns1`). */
  peer(role: string, args: string[]): Peer {
    const script = role === 'pac' ? PAC_SCRIPT : PNS_SCRIPT;
    return new Peer(this.topology.spawn(role, TSX, [script, ...args]));
  }

  /**
   * One PAC and a client per entry of `clients` (pns0, pns1, ...), all started at once as soon as
   * the PAC listens. `during` runs meanwhile with the peers (e.g. to look at the router mid-call).
   */
  async session(pacArgs: string[], clients: string[][], during?: (pac: Peer, clients: Peer[]) => Promise<void>): Promise<SessionRuns> {
    const pac = this.peer('pac', ['--listen', PAC_ADDRESS, '--timeout', '15000', ...pacArgs]);
    const listening = await pac.waitFor((line) => line.event === 'listening');
    if (!listening) {
      const run = await pac.done;
      throw new Error(`${this.kind}: the PAC did not start (exit ${run.code}): ${run.stderr}`);
    }
    const peers = clients.map((args, k) => this.peer(PNS_ROLES[k]!, ['--server', PAC_ADDRESS, '--timeout', '15000', ...args]));
    const watching = during?.(pac, peers);
    const [pacRun, ...clientRuns] = await Promise.all([pac.done, ...peers.map((p) => p.done)]);
    await watching;
    return { pac: pacRun!, clients: clientRuns };
  }

  private routerExec(command: string, args: string[]): string {
    const result = this.topology.exec('router', command, args);
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} in the kernel router: exit ${result.status}: ${result.stderr}`);
    return result.stdout;
  }

  /** `conntrack -L expect` lines. */
  async expectations(): Promise<string[]> {
    if (this.router) return (await controlCall(this.router.controlSocket, 'conntrack-expect-list', {})) as string[];
    return this.routerExec('conntrack', ['-L', 'expect'])
      .split('\n')
      .filter((line) => line.trim());
  }

  /** `conntrack -L` lines. */
  async connections(): Promise<string[]> {
    if (this.router) return (await controlCall(this.router.controlSocket, 'conntrack-list', {})) as string[];
    return this.routerExec('conntrack', ['-L'])
      .split('\n')
      .filter((line) => line.trim());
  }

  /** Empties the expectation and connection tables (`conntrack -F expect`, `conntrack -F`). */
  async flush(): Promise<void> {
    if (this.router) {
      await controlCall(this.router.controlSocket, 'conntrack-flush', { expect: true });
      await controlCall(this.router.controlSocket, 'conntrack-flush', {});
      return;
    }
    this.routerExec('conntrack', ['-F', 'expect']);
    this.routerExec('conntrack', ['-F']);
  }

  /** Replaces the tables `rules` names (iptables-restore). */
  async loadRules(rules: string): Promise<void> {
    if (this.router) {
      await controlCall(this.router.controlSocket, 'iptables-restore', { text: rules, origin: 'pptp-site' });
      return;
    }
    const result = spawnSync('ip', ['netns', 'exec', this.topology.ns('router'), 'iptables-restore'], { input: rules, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`iptables-restore in the kernel router: exit ${result.status}: ${result.stderr}`);
  }

  /** `conntrack -E expect`: see watchEvents. */
  watchExpectations(): Promise<{ stop: () => Promise<string[]> }> {
    return this.watchEvents('expect');
  }

  /**
   * Starts `conntrack -E` of `table` (vrouter's CLI on its control socket, or conntrack-tools in
   * the kernel router's namespace) and resolves once it listens; `stop` interrupts it and returns
   * the event lines it printed.
   */
  async watchEvents(table: 'conntrack' | 'expect'): Promise<{ stop: () => Promise<string[]> }> {
    const linesOf = (output: string): string[] => output.split('\n').filter((line) => line.trim());
    if (this.router) {
      const listener = await listenForEvents(this.router.controlSocket, [table]);
      return {
        stop: async () => {
          await listener.stop();
          return linesOf(listener.stdout());
        },
      };
    }
    const child = this.topology.spawn('router', 'conntrack', ['-E', table]);
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.resume();
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    // conntrack-tools says nothing when it has subscribed: give it time before anything happens.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return {
      stop: async () => {
        // conntrack-tools prints to a pipe through stdio buffers: SIGINT makes it exit (and flush).
        child.kill('SIGINT');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        return linesOf(output);
      },
    };
  }

  /** Stops the router and removes every namespace (killing what still runs there). Never throws. */
  async stop(): Promise<void> {
    try {
      await this.router?.stop();
    } finally {
      this.topology.destroy();
    }
  }
}
