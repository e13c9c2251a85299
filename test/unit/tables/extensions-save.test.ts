/**
 * A ruleset using every match and target added for real firewall configs (limit, connmark,
 * CONNMARK, iprange, addrtype, length, ttl, recent, TCPMSS, NFLOG), saved by vrouter exactly as
 * the real iptables-save printed it. rule-extensions.saved was captured by loading
 * rule-extensions.rules with iptables-restore into a scratch network namespace and reading it back
 * with iptables-save (iptables 1.8.9, nf_tables backend, Linux 6.18), its `#` lines left out;
 * test/integration/rule-extensions.test.ts does the same live.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRouter, type BuiltRouter } from '../../../router/stack/build-router.ts';
import { interfaceSpec } from '../../support/router-bench.ts';

const FIXTURES = new URL('../../fixtures/', import.meta.url);
let built: BuiltRouter;
afterEach(() => built?.close());

/** What vrouter's iptables-save prints for `text`, without its `#` lines. */
function vrouterSave(text: string): string {
  built = buildRouter({ interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], rules: { text, origin: 'rule-extensions.rules', firstLine: 0 } });
  return built.netfilter.rules
    .save(false)
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');
}

describe('iptables-save of a ruleset with all the new matches and targets', () => {
  it('is what the real iptables-save printed for the same rules', () => {
    const rules = readFileSync(new URL('rule-extensions.rules', FIXTURES), 'utf8');
    const real = readFileSync(new URL('rule-extensions.saved', FIXTURES), 'utf8');
    expect(vrouterSave(rules)).toBe(real);
  });
});
