/**
 * Files a user names (config, lab, scenario, rules, iptables-restore FILE) are read only when
 * they are regular files, and only up to 16 MiB: `rules: /dev/zero`, a FIFO nobody writes to or
 * a huge file are refused at once with the file and the reason, exit code 2. A file named by
 * mistake (`rules: /etc/shadow`) is refused without quoting its content back.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors, loadConfigFile, parseConfig } from '../../../router/deploy/config.ts';
import { MAX_INPUT_BYTES } from '../../../router/deploy/input-file.ts';
import { loadLabFile } from '../../../router/deploy/lab/lab-file.ts';
import { loadScenarioFile } from '../../../router/deploy/scenario/scenario-config.ts';
import { routerSpecOf } from '../../../router/deploy/runtime.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { VROUTER_BIN } from '../../../scripts/router-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'input-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const options = { namespaceExists: () => true };
/** Looks like /etc/shadow: the hash must never appear in a message. */
const SECRET = 'S3cr3tHash';
const shadow = join(dir, 'shadow');
writeFileSync(shadow, `root:$y$j9T$${SECRET}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n`);
const ROUTER = 'interfaces:\n  - { name: lan0, netns: client, address: 10.0.1.1/24, peer: 10.0.1.2/24 }\n';

function fifo(): string {
  const path = join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
  expect(spawnSync('mkfifo', [path]).status).toBe(0);
  return path;
}

/** A sparse file one byte over the limit: nothing is written, and nothing may be read. */
function oversized(): string {
  const path = join(dir, 'huge.rules');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, MAX_INPUT_BYTES + 1);
  closeSync(fd);
  return path;
}

function thrown(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('accepted');
}

function refusal(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof ConfigErrors) return error.message;
    throw error;
  }
  throw new Error('accepted');
}

describe('files named by the user', () => {
  it.each([
    ['a character device', () => '/dev/zero', 'it is a character device, not a regular file'],
    ['a directory', () => dir, 'it is a directory, not a regular file'],
    ['a FIFO (without waiting for a writer)', fifo, 'it is a FIFO, not a regular file'],
    ['a file over 16 MiB', oversized, 'it is larger than 16 MiB'],
  ])('refuses %s as a rules file, on the rules: line', (_, make, reason) => {
    const path = make();
    const message = refusal(() => parseConfig('router.yaml', `${ROUTER}rules: ${path}\n`, options));
    expect(message).toBe(`router.yaml:3: rules: cannot read the rules file: ${reason} (got "${path}")`);
  });

  it('refuses the same as a config, lab or scenario file', () => {
    const path = fifo();
    for (const load of [loadConfigFile, loadLabFile, loadScenarioFile]) {
      expect(refusal(() => load('/dev/zero', options))).toBe('/dev/zero: cannot read the config file: it is a character device, not a regular file');
      expect(refusal(() => load(path, options))).toBe(`${path}: cannot read the config file: it is a FIFO, not a regular file`);
    }
  });

  it('still reads a rules file of up to 16 MiB', () => {
    const path = join(dir, 'ok.rules');
    writeFileSync(path, '*filter\nCOMMIT\n');
    expect(parseConfig('router.yaml', `${ROUTER}rules: ${path}\n`, options).rules).toEqual({ text: '*filter\nCOMMIT\n', origin: path, firstLine: 0 });
  });

  // Two vrouter processes: more than the default 5 s on a loaded machine.
  it('vrouter iptables-restore refuses /dev/zero and endless standard input with exit code 2', { timeout: 30_000 }, () => {
    const socket = join(dir, 'no-router.sock');
    const named = spawnSync(process.execPath, [VROUTER_BIN, 'iptables-restore', '--socket', socket, '/dev/zero'], { encoding: 'utf8', timeout: 20_000 });
    expect(named.stderr).toContain('iptables-restore: cannot read /dev/zero: it is a character device, not a regular file');
    expect(named.status).toBe(2);
    const zeros = openSync('/dev/zero', 'r');
    try {
      const piped = spawnSync(process.execPath, [VROUTER_BIN, 'iptables-restore', '--socket', socket], { stdio: [zeros, 'pipe', 'pipe'], encoding: 'utf8', timeout: 20_000 });
      expect(piped.stderr).toContain('iptables-restore: cannot read standard input: it is larger than 16 MiB');
      expect(piped.status).toBe(2);
    } finally {
      closeSync(zeros);
    }
  });
});

describe('a file named by mistake', () => {
  it('as the rules file: refused on its line 1 without quoting it', () => {
    const config = parseConfig('router.yaml', `${ROUTER}rules: ${shadow}\n`, options);
    expect(thrown(() => buildRouter(routerSpecOf(config)))).toBe(`${shadow}:1: this line is not iptables-restore text (a rules file starts a table with *raw, *mangle, *filter or *nat)`);
  });

  it('as a config, lab or scenario file: refused without quoting it', () => {
    expect(refusal(() => loadLabFile(shadow, options))).toBe(`${shadow}:1: not a vrouter config: that is a mapping with interfaces: (or, for a lab, name:, hosts:, routers:)`);
    expect(refusal(() => loadConfigFile(shadow, options))).not.toContain(SECRET);
    expect(refusal(() => loadScenarioFile(shadow, options))).toBe(`${shadow}:1: not a scenario file: that is a mapping with name:, lab: and steps:`);
    const prose = join(dir, 'notes.txt');
    writeFileSync(prose, `my password is ${SECRET}\nand more lines\n`);
    expect(refusal(() => loadLabFile(prose, options))).toBe(`${prose}:1: not a vrouter config: that is a mapping with interfaces: (or, for a lab, name:, hosts:, routers:)`);
  });

  it('shows a long bad value shortened, not whole', () => {
    const message = refusal(() => parseConfig('router.yaml', `interfaces: ${'x'.repeat(10_000)}\n`, options));
    expect(message).toBe(`router.yaml:1: interfaces: must be a list (got "${'x'.repeat(76)}...)`);
  });
});
