/**
 * vrouter's iptables-save beside the real one, live: the ruleset with every match and target added
 * for real firewall configs (test/fixtures/rule-extensions.rules) is loaded with iptables-restore
 * into a scratch network namespace and read back with iptables-save, and vrouter must print the
 * same text (the `#` lines aside) for the same rules, as `vrouter iptables-save` shows them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, destroyNamespace, uniqueTag } from '../../scripts/netns-topology.ts';
import { buildRouter } from '../../router/stack/build-router.ts';
import { interfaceSpec } from '../support/router-bench.ts';

const RULES = readFileSync(new URL('../fixtures/rule-extensions.rules', import.meta.url), 'utf8');
const namespace = uniqueTag('vrx');
const withoutComments = (text: string): string =>
  text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');

beforeAll(() => createNamespace(namespace));
afterAll(() => destroyNamespace(namespace));

describe('iptables-save: vrouter and the kernel side by side', () => {
  it('prints what the real iptables-save prints for limit, connmark, CONNMARK, iprange, addrtype, length, ttl, recent, TCPMSS and NFLOG rules', () => {
    const restore = spawnSync('ip', ['netns', 'exec', namespace, 'iptables-restore'], { input: RULES, encoding: 'utf8' });
    expect(restore.status, restore.stderr).toBe(0);
    const real = spawnSync('ip', ['netns', 'exec', namespace, 'iptables-save'], { encoding: 'utf8' });
    expect(real.status, real.stderr).toBe(0);
    const built = buildRouter({ interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], rules: { text: RULES, origin: 'rule-extensions.rules', firstLine: 0 } });
    try {
      expect(withoutComments(built.netfilter.rules.save(false))).toBe(withoutComments(real.stdout));
    } finally {
      built.close();
    }
  });
});
