/**
 * `vrouter scenario` as CI and people run it: every shipped scenario passes on vrouter and on the
 * kernel with no unexpected difference (--compare runs both); a failing scenario reports the
 * step, what came instead and its output, exit 1, with JUnit; Ctrl-C in the middle removes
 * everything the run made, on either backend; --compare flags a planted difference; --keep
 * leaves the lab up until told; a refused file exits 2.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN } from '../../scripts/router-process.ts';

const SHIPPED = fileURLToPath(new URL('../../scripts/scenarios/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'scenarios-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scenario(name: string, text: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

const run = (args: string[], timeout = 300_000) => spawnSync(process.execPath, [VROUTER_BIN, 'scenario', ...args], { encoding: 'utf8', timeout });

/** A one-router lab whose namespaces all start with `tag`. */
const lab = (tag: string): string => `lab:
  name: ${tag}
  control: /tmp/${tag}.sock
  hosts:
    a: { segment: left, address: 10.9.1.10/24, gateway: 10.9.1.1 }
    b: { segment: right, address: 10.9.2.10/24, gateway: 10.9.2.1 }
  routers:
    r:
      interfaces:
        - { name: left0, segment: left, address: 10.9.1.1/24 }
        - { name: right0, segment: right, address: 10.9.2.1/24 }`;

/** Namespaces, bridges and veths left in the root namespace, and processes, from a tag. */
function leftovers(tag: string, marker: string): string[] {
  const namespaces = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`${tag}-`)) : [];
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(': ')[1]?.split('@')[0] ?? '')
    .filter((name) => /^(br|veth|vr\d+t)/.test(name) && name.includes(tag));
  const processes = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' }).stdout.trim();
  return [...namespaces, ...links, ...(processes ? [`processes ${processes}`] : []), ...(existsSync(`/tmp/${tag}.sock`) ? ['socket'] : [])];
}

describe('the shipped scenarios', () => {
  for (const file of readdirSync(SHIPPED).filter((name) => name.endsWith('.yaml')).sort()) {
    it(`${file} passes on vrouter and on the kernel, with no unexpected difference`, () => {
      const result = run(['run', join(SHIPPED, file), '--compare']);
      expect([result.status, result.stderr], result.stdout).toEqual([0, '']);
      expect(result.stdout).toMatch(/^\d+ passed, 0 failed$/m);
      expect(result.stdout).toContain('vrouter and the kernel agree');
    });
  }
});

describe('vrouter scenario', () => {
  it('reports a failing step with what was expected, what came and its output, skips the rest, writes JUnit, exits 1', () => {
    const tag = uniqueTag('sf');
    const file = scenario(
      'failing',
      `name: failing
${lab(tag)}
steps:
  - { name: a reaches b, host: a, run: ping -c 1 -W 2 10.9.2.10, expect: { exit: 0 } }
  - { name: says no, host: b, run: "sh -c 'echo first line; echo yes'", expect: { stdout: "no" } }
  - { name: never reached, sleep: 1s }
`,
    );
    const junit = join(dir, 'failing.xml');
    const result = run(['run', file, '--junit', junit]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^PASS a reaches b \(\d+\.\d\d s\)$/m);
    expect(result.stdout).toMatch(/^FAIL says no \(\d+\.\d\d s\)\n {5}expected stdout "no", got "first line\\nyes"\n {5}\| first line\n {5}\| yes$/m);
    expect(result.stdout).toMatch(/^SKIP never reached$/m);
    expect(result.stdout.trim().split('\n').at(-1)).toBe('1 passed, 1 failed, 1 skipped');
    const xml = readFileSync(junit, 'utf8');
    expect(execFileSync('xmllint', ['--noout', junit], { encoding: 'utf8' })).toBe('');
    expect(xml).toMatch(/<testsuite name="failing" tests="3" failures="1" errors="0" skipped="1"/);
    expect(xml).toContain('<failure message="expected stdout &quot;no&quot;, got &quot;first line\\nyes&quot;">');
    expect(leftovers(tag, tag)).toEqual([]);
  });

  for (const mode of ['vrouter', 'kernel'] as const) {
    it(`removes everything on Ctrl-C in the middle of a run (${mode})`, async () => {
      const tag = uniqueTag(mode === 'vrouter' ? 'si' : 'sk');
      const marker = `${Math.floor(Math.random() * 1e6) + 7_000_000}`;
      const file = scenario(
        `interrupted-${mode}`,
        `name: interrupted
${lab(tag)}
services:
  - { name: idle, host: b, run: sleep ${marker}, ready: { after: 100ms } }
steps:
  - { name: a reaches b, host: a, run: ping -c 1 -W 2 10.9.2.10, expect: { exit: 0 } }
  - { name: a long wait, host: a, run: sleep 60, timeout: 90s }
`,
      );
      const child = spawn(process.execPath, [VROUTER_BIN, 'scenario', 'run', file, ...(mode === 'kernel' ? ['--kernel'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      for (let i = 0; i < 200 && !output.includes('PASS a reaches b'); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(output).toContain('PASS a reaches b');
      expect(leftovers(tag, marker).length).toBeGreaterThan(0);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(output).toContain('interrupted: everything the run made was removed');
      expect(leftovers(tag, marker)).toEqual([]);
    });
  }

  it('flags a planted difference with --compare: a rule that exists only on the kernel side', () => {
    const tag = uniqueTag('sp');
    const file = scenario(
      'planted',
      `name: planted
${lab(tag)}
steps:
  - name: on the kernel only, the router drops what it forwards
    host: a
    shell: true
    run: "if [ -e /run/netns/${tag}-r ]; then ip netns exec ${tag}-r iptables -I FORWARD -j DROP; fi"
  - { name: a reaches b, host: a, run: ping -c 1 -W 2 10.9.2.10, expect: { exit: 0 }, continue: true }
  - { name: the rules, tool: iptables-save -t filter }
`,
    );
    const result = run(['run', file, '--compare']);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^a reaches b +pass \(exit 0\) +fail \(exit 1\) +DIFFERS$/m);
    expect(result.stdout).toMatch(/^ +\+ kernel: +-A FORWARD -j DROP$/m);
    expect(result.stdout).toContain('2 unexpected differences between vrouter and the kernel');
  });

  it('leaves the lab up with --keep, says how to enter it, and takes it down on Ctrl-C', async () => {
    const tag = uniqueTag('sq');
    const file = scenario('kept', `name: kept\n${lab(tag)}\nsteps:\n  - { name: a reaches b, host: a, run: ping -c 1 -W 2 10.9.2.10, expect: { exit: 0 } }\n`);
    const child = spawn(process.execPath, [VROUTER_BIN, 'scenario', 'run', file, '--keep'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (let i = 0; i < 200 && !output.includes('take it down'); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(output).toContain(`enter a:  ip netns exec ${tag}-a bash`);
    // Still up: b is reachable from a after the run ended.
    expect(spawnSync('ip', ['netns', 'exec', `${tag}-a`, 'ping', '-c', '1', '-W', '2', '10.9.2.10']).status).toBe(0);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(leftovers(tag, tag)).toEqual([]);
  });

  it('refuses a bad scenario file with every problem, exit 2, and checks a good one without running it', () => {
    const bad = scenario('bad', `name: bad\nlab: nowhere.yaml\nsteps:\n  - { name: x, host: a }\n`);
    const result = run(['check', bad]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`vrouter: ${bad}:2: lab: cannot read the config file`);
    expect(result.stderr).toContain(`vrouter: ${bad}:4: steps[0]: a step needs one of run, tool, link, sleep`);
    const good = run(['check', join(SHIPPED, 'ftp-double-nat.yaml'), '--kernel']);
    expect([good.status, good.stdout.trim()]).toEqual([0, `${join(SHIPPED, 'ftp-double-nat.yaml')}: scenario ftp-double-nat is valid (1 services, 10 steps, lab dnat)`]);
  });
});
