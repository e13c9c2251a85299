/**
 * The command line as a person meets it: help for every command (exit 0), wrong usage refused
 * with a message and exit 2, before any router is asked; and the stats table.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { VROUTER_BIN } from '../../../scripts/router-process.ts';
import { formatStatsTable } from '../../../router/deploy/stats-table.ts';

const vrouter = (...args: string[]) => spawnSync(process.execPath, [VROUTER_BIN, ...args, '--socket', '/nonexistent/vrouter-usage-test.sock'], { encoding: 'utf8' });

describe('vrouter usage', () => {
  it('refuses no command, an unknown one, and unknown arguments with exit 2', () => {
    for (const args of [[], ['frobnicate'], ['stats', '--bogus'], ['stats', '-o', 'xml'], ['routes', 'extra'], ['trace', 'port', 'ninety'], ['capture', 'icmp']]) {
      const result = vrouter(...args);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toMatch(/^vrouter: /);
    }
  }, 30_000);

  it('prints each command its own help with exit 0', () => {
    for (const command of ['stats', 'trace', 'capture', 'conntrack', 'link', 'scenario']) {
      const result = vrouter(command, '--help');
      expect({ command, status: result.status }).toEqual({ command, status: 0 });
      expect(result.stdout).toMatch(new RegExp(`^  vrouter ${command}`));
    }
  }, 30_000);
});

describe('the stats table', () => {
  it('puts names left and figures right, a section per group, interfaces in columns', () => {
    const text = formatStatsTable({
      counters: { received: 12, forwarded: 10 },
      drops: { 'hook-drop': 2 },
      hookDrops: { 'filter:FORWARD:policy:3 DROP': 2 },
      interfaces: { lan0: { 'rx-packets': 12, 'rx-bytes': 1000, 'rx-dropped': 2, 'tx-packets': 5, 'tx-bytes': 500, 'tx-errors': 0 } },
    });
    expect(text).toBe(
      [
        'packets:',
        '  received           12',
        '  forwarded          10',
        'drops by reason:',
        '  hook-drop           2',
        'drops by rule or hook op:',
        '  filter:FORWARD:policy:3 DROP           2',
        'interfaces:',
        '  interface  rx-packets    rx-bytes  rx-dropped  tx-packets    tx-bytes   tx-errors',
        '  lan0               12        1000           2           5         500           0',
        '',
      ].join('\n'),
    );
  });
});
