/**
 * `vrouter iptables-restore` and `iptables-save` as a user runs them (router/bin/vrouter.mjs),
 * against a router built in this process with its real control commands: exit codes, messages,
 * and what the rules look like afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../../router/deploy/control-server.ts';
import { registerRouterCommands } from '../../../router/deploy/router-commands.ts';
import { buildRouter, type BuiltRouter } from '../../../router/stack/build-router.ts';
import { ip } from '../../support/packets.ts';
import { VROUTER_BIN } from '../../../scripts/router-process.ts';

/** Each vrouter started takes a second or more on a loaded machine; a test starts several. */
const SPAWN_TIMEOUT_MS = 30_000;
const dir = mkdtempSync(join(tmpdir(), 'cli-iptables-'));
const socket = join(dir, 'control.sock');
let built: BuiltRouter;
let control: ControlServer;

beforeAll(async () => {
  built = buildRouter({ interfaces: [{ name: 'lan0', address: ip('10.0.1.1'), prefixLength: 24, mtu: 1500 }] });
  control = new ControlServer(socket);
  registerRouterCommands(control, built, [{ segment: 'lan0', netns: null, peer: 0 }]);
  await control.listen();
});

afterAll(() => {
  control.close();
  built.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs vrouter asynchronously: the router answering it runs on this process's event loop. */
function vrouter(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VROUTER_BIN, ...args, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function rulesFile(text: string): string {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.rules`);
  writeFileSync(file, text);
  return file;
}

describe('vrouter iptables-restore', { timeout: SPAWN_TIMEOUT_MS }, () => {
  it('exits 2 for a refused file, naming FILE:LINE, and keeps the rules it had', async () => {
    expect((await vrouter('iptables-restore', rulesFile('*filter\n:FORWARD DROP [0:0]\nCOMMIT\n'))).status).toBe(0);
    const bad = rulesFile('*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m frobnicate -j DROP\nCOMMIT\n');
    const refused = await vrouter('iptables-restore', bad);
    expect(refused.stderr).toBe(`vrouter: ${bad}:3: unknown match "frobnicate"\n`);
    expect(refused.status).toBe(2);
    expect(built.netfilter.rules.save(false)).toContain(':FORWARD DROP [0:0]\n');
    // No router answering is a runtime failure, not bad input.
    const unanswered = await new Promise<number | null>((resolve) => {
      spawn(process.execPath, [VROUTER_BIN, 'iptables-restore', '--socket', join(dir, 'nobody.sock'), bad]).on('close', resolve);
    });
    expect(unanswered).toBe(1);
  });

  it('keeps the counters a file gives only with -c, as iptables-restore', async () => {
    const file = rulesFile('*filter\n:FORWARD DROP [100:2000]\n[5:500] -A FORWARD -p tcp -j ACCEPT\nCOMMIT\n');
    expect((await vrouter('iptables-restore', file)).status).toBe(0);
    const plain = (await vrouter('iptables-save', '-c')).stdout;
    expect(plain).toContain(':FORWARD DROP [0:0]\n');
    expect(plain).toContain('\n[0:0] -A FORWARD -p tcp -j ACCEPT\n');
    expect((await vrouter('iptables-restore', '-c', file)).status).toBe(0);
    const counted = (await vrouter('iptables-save', '-c')).stdout;
    expect(counted).toContain(':FORWARD DROP [100:2000]\n');
    expect(counted).toContain('\n[5:500] -A FORWARD -p tcp -j ACCEPT\n');
  });
});

describe('output into a closed pipe (vrouter iptables-save | head -1)', { timeout: SPAWN_TIMEOUT_MS }, () => {
  /** Runs vrouter with its standard output's reading end closed before it writes anything. */
  function intoClosedPipe(...args: string[]): Promise<{ status: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [VROUTER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('close', (status) => resolve({ status, stderr }));
    });
  }

  it.each([
    ['iptables-save', ['iptables-save', '--socket', socket]],
    ['interfaces', ['interfaces', '--socket', socket]],
    ['the usage text', ['--help']],
  ])('%s ends quietly with exit code 0', async (_, args) => {
    expect(await intoClosedPipe(...args)).toEqual({ status: 0, stderr: '' });
  });
});
