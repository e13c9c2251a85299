/**
 * `vrouter conntrack -E` as a script uses it, against a running `vrouter run`: it prints nothing
 * until there is an event; `--ready-file` appears once the router has subscribed it, so the
 * first connection a script makes after that is seen; Ctrl-C ends it with conntrack's count of
 * events (exit 0); the router going away ends it with a message and exit 1.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { listenForEvents } from '../support/conntrack-events.ts';

const topology = new Topology(uniqueTag('ev'), ['client', 'server']);
let router: RouterProcess;

async function startRouter(): Promise<RouterProcess> {
  return startRouterProcess(`control: /tmp/${topology.tag}.sock
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('server')}, address: 203.0.113.1/24, peer: 203.0.113.2/24 }
rules: |
  *nat
  -A POSTROUTING -o wan0 -j MASQUERADE
  COMMIT
`);
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((wake) => setTimeout(wake, 20));
  }
}

beforeEach(async () => {
  if (!router || router.child.exitCode !== null) router = await startRouter();
});

afterAll(async () => {
  await router?.stop();
  topology.destroy();
});

describe('vrouter conntrack -E', () => {
  it('is subscribed once its ready file exists: the first ping after it is an event; Ctrl-C prints the count', async () => {
    const listener = await listenForEvents(router.controlSocket, ['-o', 'timestamp']);
    expect(listener.stdout()).toBe('');
    expect(topology.exec('client', 'ping', ['-c', '1', '-W', '2', '203.0.113.2']).status).toBe(0);
    await until(() => listener.stdout().split('\n').length >= 3, 'the NEW and UPDATE events');
    const [created, updated] = listener.stdout().split('\n');
    expect(created).toMatch(/^\[\d{10}\.\d{6}\]\t {4}\[NEW\] icmp {5}1 30 src=10\.0\.1\.2 dst=203\.0\.113\.2 type=8 code=0 id=\d+ \[UNREPLIED\] src=203\.0\.113\.2 dst=203\.0\.113\.1 /);
    expect(updated).toMatch(/^\[\d{10}\.\d{6}\]\t \[UPDATE\] icmp {5}1 30 /);
    expect(await listener.stop()).toBe(0);
    expect(listener.stderr()).toMatch(/^conntrack v1\.4\.7 \(conntrack-tools\): [23] flow events have been shown\.\n$/);
    expect(existsSync(listener.readyFile)).toBe(false);
  });

  it('exits 1 saying so when the router goes away', async () => {
    const listener = await listenForEvents(router.controlSocket);
    await router.stop();
    expect(await listener.exited).toBe(1);
    expect(listener.stderr()).toBe(`vrouter: conntrack -E: the router went away (control socket ${router.controlSocket} closed)\n`);
    expect(listener.stdout()).toBe('');
    expect(existsSync(listener.readyFile)).toBe(false);
  });
});
