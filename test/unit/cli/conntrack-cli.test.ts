/**
 * `vrouter conntrack` as a process, against a control server over the connections of
 * test/support/conntrack-site.ts: what goes to stdout and stderr and the exit codes, which are
 * those the real conntrack v1.4.7 gave on this machine for the same command lines (-D that
 * deletes nothing: the summary and exit 1; -G that finds nothing, -L with a status filter of no
 * flag: "Operation failed", exit 1; a refused argument: exit 2).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VROUTER_BIN } from '../../../scripts/router-process.ts';
import { ControlServer } from '../../../router/deploy/control-server.ts';
import { registerConntrackCommands } from '../../../router/deploy/conntrack-commands.ts';
import { conntrackSite } from '../../support/conntrack-site.ts';

const TOOL = 'conntrack v1.4.7 (conntrack-tools)';
const dir = mkdtempSync(join(tmpdir(), 'vrouter-conntrack-cli-'));
const socket = join(dir, 'control.sock');
const site = conntrackSite();
const server = new ControlServer(socket);
registerConntrackCommands(server, site.conntrack);

beforeAll(() => server.listen());
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI without blocking this process, which answers its requests. */
function conntrack(args: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [VROUTER_BIN, 'conntrack', ...args.split(' '), '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('close', (status) => done({ status, stdout, stderr }));
  });
}

describe('vrouter conntrack exit codes and summaries', () => {
  it('-D that matches nothing prints conntrack\'s summary to stderr and exits 1', async () => {
    expect(await conntrack('-D -p tcp --dport 1')).toEqual({ status: 1, stdout: '', stderr: `${TOOL}: 0 flow entries have been deleted.\n` });
    expect((await conntrack('-D -s 192.0.2.0/24')).status).toBe(1);
  }, 30_000);

  it('-D that deletes prints the entries and exits 0', async () => {
    const result = await conntrack('-D -p udp --sport 40003 -o extended');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^ipv4 {5}2 udp {6}17 28 src=10\.0\.1\.2 dst=203\.0\.113\.2 sport=40003 dport=9999 \[UNREPLIED\] .* use=1\n$/);
    expect(result.stderr).toBe(`${TOOL}: 1 flow entries have been deleted.\n`);
  }, 30_000);

  it('-L prints the entries to stdout and how many to stderr', async () => {
    expect(await conntrack('-L -p tcp')).toEqual({
      status: 0,
      stdout: 'tcp      6 431998 ESTABLISHED src=10.0.1.2 dst=203.0.113.2 sport=41002 dport=5000 src=203.0.113.2 dst=203.0.113.1 sport=5000 dport=41002 [ASSURED] mark=0 use=1\n',
      stderr: `${TOOL}: 1 flow entries have been shown.\n`,
    });
    expect(await conntrack('-L expect')).toEqual({ status: 0, stdout: '', stderr: `${TOOL}: 0 expectations have been shown.\n` });
  }, 30_000);

  it('-G finds one connection by its tuple, or fails as conntrack does', async () => {
    const found = await conntrack('-G -p tcp -s 10.0.1.2 -d 203.0.113.2 --sport 41002 --dport 5000');
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(' [ASSURED] mark=0 use=2\n');
    expect(await conntrack('-G -p udp -s 10.0.1.2 -d 203.0.113.2 --sport 1 --dport 2')).toEqual({ status: 1, stdout: '', stderr: `${TOOL}: Operation failed: such conntrack doesn't exist\n` });
  }, 30_000);

  it('-L -u UNSET fails as the kernel refuses it; a refused argument exits 2', async () => {
    expect(await conntrack('-L -u UNSET')).toEqual({ status: 1, stdout: '', stderr: `${TOOL}: Operation failed: invalid parameters\n` });
    const refused = await conntrack('-L -r 203.0.113.0/24');
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/^vrouter: CIDR notation unavailable for `--reply-src'\n/);
  }, 30_000);
});
