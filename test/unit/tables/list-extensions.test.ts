/**
 * `iptables -L` and `-S` for the extensions of real firewall configs (addrtype, connmark, iprange,
 * length, limit, recent, ttl; CONNMARK, NFLOG, TCPMSS, TRACE), as the real iptables prints them.
 * test/fixtures/rule-extensions.list is the output of iptables-nft 1.8.9 on this machine for
 * test/fixtures/rule-extensions.rules loaded with iptables-restore into a scratch network namespace,
 * plus `-t raw -A PREROUTING -j TRACE`: `iptables -t TABLE -L -n`, `-L` and `-S` for each table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listChains, listSpecs, type ListOptions } from '../../../netfilter/tables/list.ts';
import type { LoadedTable } from '../../../netfilter/tables/ruleset.ts';
import { tableIdOf } from '../../../netfilter/tables/tables.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { interfaceSpec } from '../../support/router-bench.ts';

const RULES = readFileSync(new URL('../../fixtures/rule-extensions.rules', import.meta.url), 'utf8');
const TRACE = '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j TRACE\nCOMMIT\n';
const LISTED = readFileSync(new URL('../../fixtures/rule-extensions.list', import.meta.url), 'utf8');

/** The fixture's sections by their `## ` title (`-t nat -L -n`), each the text up to the next title. */
function sections(text: string): ReadonlyMap<string, string> {
  const found = new Map<string, string>();
  for (const part of text.split(/^## /m).slice(1)) {
    const newline = part.indexOf('\n');
    found.set(part.slice(0, newline), part.slice(newline + 1));
  }
  return found;
}

/** The entries of netbase's /etc/services that the rules name. */
const SERVICES: Readonly<Record<string, string>> = { '22/tcp': 'ssh', '8080/tcp': 'http-alt' };

function format(numeric: boolean): ListOptions {
  return { numeric, verbose: false, exact: false, lineNumbers: false, serviceName: (port, protocol) => SERVICES[`${port}/${protocol}`] ?? null, hostName: () => null };
}

describe('iptables -L and -S for the extensions, against the real iptables', () => {
  const built = buildRouter({
    interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
    rules: { text: RULES + TRACE, origin: 'rule-extensions.rules', firstLine: 0 },
  });
  const table = (name: string): LoadedTable => built.netfilter.rules.table(tableIdOf(name) as 0 | 1 | 2 | 3)!;
  const expected = sections(LISTED);

  it.each(['mangle', 'nat', 'filter'])('%s: -L -n, -L and -S', (name) => {
    const loaded = table(name);
    expect(listChains(loaded, loaded.chains, format(true))).toBe(expected.get(`-t ${name} -L -n`));
    expect(listChains(loaded, loaded.chains, format(false))).toBe(expected.get(`-t ${name} -L (names)`));
    expect(listSpecs(loaded, loaded.chains, false)).toBe(expected.get(`-t ${name} -S`));
  });

  it('raw: TRACE prints nothing after the addresses', () => {
    expect(listChains(table('raw'), table('raw').chains, format(true))).toBe(expected.get('-t raw -L -n'));
  });
});
