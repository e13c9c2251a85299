/**
 * `iptables -L` and `-S` for the extensions of real firewall configs (addrtype, connmark, iprange,
 * length, limit, recent, ttl; CONNMARK, NFLOG, TCPMSS, TRACE), as the real iptables prints them.
 * test/fixtures/rule-extensions.list is the output of iptables-nft 1.8.9 on this machine for
 * test/fixtures/rule-extensions.rules loaded with iptables-restore into a scratch network namespace,
 * plus `-t raw -A PREROUTING -j TRACE`: `iptables -t TABLE -L -n`, `-L` and `-S` for each table.
 * The other spellings below were each loaded the same way alone and listed with `iptables -t TABLE
 * -L CHAIN 1 -n`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listChains, listRule, listSpecs, type ListOptions } from '../../../netfilter/tables/list.ts';
import type { LoadedTable } from '../../../netfilter/tables/ruleset.ts';
import { tableIdOf } from '../../../netfilter/tables/tables.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { interfaceSpec } from '../../support/router-bench.ts';
import { section } from './support.ts';

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

/** [table, rule as written, its `-L CHAIN 1 -n` line from the real iptables] */
const SPELLINGS: readonly (readonly [string, string, string])[] = [
  ["filter", "-A FORWARD -m limit --limit 1/day", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 1/day burst 5"],
  ["filter", "-A FORWARD -m limit --limit 7/hour", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 7/hour burst 5"],
  ["filter", "-A FORWARD -m limit --limit 25/hour", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 25/hour burst 5"],
  ["filter", "-A FORWARD -m limit --limit 59/min", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 59/min burst 5"],
  ["filter", "-A FORWARD -m limit --limit 61/min", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 61/min burst 5"],
  ["filter", "-A FORWARD -m limit --limit 13/min", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 13/min burst 5"],
  ["filter", "-A FORWARD -m limit --limit 100/hour", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 100/hour burst 5"],
  ["filter", "-A FORWARD -m limit --limit 10000/sec", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 10000/sec burst 5"],
  ["filter", "-A FORWARD -m limit --limit 9999/sec", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 10000/sec burst 5"],
  ["filter", "-A FORWARD -m limit --limit 4999/sec", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 5000/sec burst 5"],
  ["filter", "-A FORWARD -m limit --limit 1/sec --limit-burst 1", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 1/sec burst 1"],
  ["filter", "-A FORWARD -m limit --limit 2/day --limit-burst 10000", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 2/day burst 10000"],
  ["filter", "-A FORWARD -m limit --limit-burst 0", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 3/hour burst 5"],
  ["filter", "-A FORWARD -m limit --limit 3/s", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 3/sec burst 5"],
  ["filter", "-A FORWARD -m limit --limit 1441/day", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 1441/day burst 5"],
  ["filter", "-A FORWARD -m limit --limit 86400/day", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 1/sec burst 5"],
  ["filter", "-A FORWARD -m limit --limit 90/hour", "           0    --  0.0.0.0/0            0.0.0.0/0            limit: avg 90/hour burst 5"],
  ["filter", "-A FORWARD -m recent --set", "           0    --  0.0.0.0/0            0.0.0.0/0            recent: SET name: DEFAULT side: source mask: 255.255.255.255"],
  ["filter", "-A FORWARD -m recent ! --set", "           0    --  0.0.0.0/0            0.0.0.0/0            ! recent: SET name: DEFAULT side: source mask: 255.255.255.255"],
  ["filter", "-A FORWARD -m recent --rcheck --seconds 3000000000", "           0    --  0.0.0.0/0            0.0.0.0/0            recent: CHECK seconds: -1294967296 name: DEFAULT side: source mask: 255.255.255.255"],
  ["filter", "-A FORWARD -m recent --update --hitcount 20", "           0    --  0.0.0.0/0            0.0.0.0/0            recent: UPDATE hit_count: 20 name: DEFAULT side: source mask: 255.255.255.255"],
  ["filter", "-A FORWARD -m recent --rcheck --rttl", "           0    --  0.0.0.0/0            0.0.0.0/0            recent: CHECK TTL-Match name: DEFAULT side: source mask: 255.255.255.255"],
  ["filter", "-A FORWARD -m recent ! --remove --rdest --mask 255.0.0.0", "           0    --  0.0.0.0/0            0.0.0.0/0            ! recent: REMOVE name: DEFAULT side: dest mask: 255.0.0.0"],
  ["filter", "-A FORWARD -m recent --name x --rsource --rcheck --seconds 5 --reap --hitcount 2 --rttl", "           0    --  0.0.0.0/0            0.0.0.0/0            recent: CHECK seconds: 5 reap hit_count: 2 TTL-Match name: x side: source mask: 255.255.255.255"],
  ["filter", "-A FORWARD -m recent --set --mask 0.0.0.0", "           0    --  0.0.0.0/0            0.0.0.0/0            recent: SET name: DEFAULT side: source mask: 0.0.0.0"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-mark 5", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK set 0x5"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-mark 0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK and 0x0"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-mark 5/0xff", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK xset 0x5/0xff"],
  ["mangle", "-A PREROUTING -j CONNMARK --and-mark 0xf", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK and 0xf"],
  ["mangle", "-A PREROUTING -j CONNMARK --or-mark 0xf", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK or 0xf"],
  ["mangle", "-A PREROUTING -j CONNMARK --xor-mark 0xf", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK xor 0xf"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-xmark 0/0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK and 0xffffffff"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-xmark 0xffffffff/0xffffffff", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK or 0xffffffff"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-xmark 0x10/0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK xor 0x10"],
  ["mangle", "-A PREROUTING -j CONNMARK --save-mark", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK save"],
  ["mangle", "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xff", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK save nfmask 0xff ctmask ~0xffffffff"],
  ["mangle", "-A PREROUTING -j CONNMARK --save-mark --ctmask 0xf0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK save nfmask 0xffffffff ctmask ~0xf0"],
  ["mangle", "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xf0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK save nfmask 0xf ctmask ~0xf0"],
  ["mangle", "-A PREROUTING -j CONNMARK --restore-mark --mask 0xff", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK restore mask 0xff"],
  ["mangle", "-A PREROUTING -j CONNMARK --restore-mark --ctmask 0xff", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK restore ctmask 0xff nfmask ~0xffffffff"],
  ["mangle", "-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xf --ctmask 0xf0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK restore ctmask 0xf0 nfmask ~0xf"],
  ["mangle", "-A PREROUTING -j CONNMARK --save-mark --left-shift-mark 8", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK save left-shift-mark 8"],
  ["mangle", "-A PREROUTING -j CONNMARK --set-mark 1 --right-shift-mark 2", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK set 0x1 right-shift-mark 2"],
  ["mangle", "-A PREROUTING -j CONNMARK --restore-mark --left-shift-mark 0", "CONNMARK   0    --  0.0.0.0/0            0.0.0.0/0            CONNMARK restore"],
  ["mangle", "-A FORWARD -p tcp -j TCPMSS --set-mss 0", "TCPMSS     6    --  0.0.0.0/0            0.0.0.0/0            TCPMSS set 0"],
  ["mangle", "-A FORWARD -p tcp -j TCPMSS --set-mss 65515", "TCPMSS     6    --  0.0.0.0/0            0.0.0.0/0            TCPMSS set 65515"],
  ["mangle", "-A FORWARD -p tcp --syn -j TCPMSS --set-mss 536", "TCPMSS     6    --  0.0.0.0/0            0.0.0.0/0            tcp flags:0x17/0x02 TCPMSS set 536"],
  ["filter", "-A FORWARD -j NFLOG", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0           "],
  ["filter", "-A FORWARD -j NFLOG --nflog-size 0", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-size 0"],
  ["filter", "-A FORWARD -j NFLOG --nflog-threshold 1", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-threshold 1"],
  ["filter", "-A FORWARD -j NFLOG --nflog-threshold 0", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0           "],
  ["filter", "-A FORWARD -j NFLOG --nflog-group 65535 --nflog-size 4294967295", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-group 65535 nflog-size 4294967295"],
  ["filter", "-A FORWARD -j NFLOG --nflog-prefix 'a\\b'", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-prefix \"\\'a\\\\b\\'\""],
  ["filter", "-A FORWARD -j NFLOG --nflog-prefix \"it's\"", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-prefix \"it\\'s\""],
  ["filter", "-A FORWARD -j NFLOG --nflog-prefix a_b-9", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-prefix a_b-9"],
  ["filter", "-A FORWARD -j NFLOG --nflog-range 10", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0           "],
  ["filter", "-A FORWARD -j NFLOG --nflog-threshold 7 --nflog-size 9 --nflog-group 3 --nflog-prefix x", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            nflog-prefix x nflog-group 3 nflog-size 9 nflog-threshold 7"],
  ["filter", "-A FORWARD -m addrtype --src-type UNICAST --limit-iface-out", "           0    --  0.0.0.0/0            0.0.0.0/0            ADDRTYPE match src-type UNICAST limit-out"],
  ["filter", "-A FORWARD -m addrtype ! --dst-type LOCAL,UNICAST", "           0    --  0.0.0.0/0            0.0.0.0/0            ADDRTYPE match dst-type !UNICAST,LOCAL"],
  ["filter", "-A FORWARD -m addrtype ! --src-type BLACKHOLE ! --dst-type ANYCAST --limit-iface-in", "           0    --  0.0.0.0/0            0.0.0.0/0            ADDRTYPE match src-type !BLACKHOLE dst-type !ANYCAST limit-in"],
  ["filter", "-A FORWARD -m addrtype --src-type UNSPEC,UNICAST,LOCAL,BROADCAST,ANYCAST,MULTICAST,BLACKHOLE,UNREACHABLE,PROHIBIT,THROW,NAT,XRESOLVE", "           0    --  0.0.0.0/0            0.0.0.0/0            ADDRTYPE match src-type UNSPEC,UNICAST,LOCAL,BROADCAST,ANYCAST,MULTICAST,BLACKHOLE,UNREACHABLE,PROHIBIT,THROW,NAT,XRESOLVE"],
  ["filter", "-A OUTPUT -m addrtype --dst-type local --limit-iface-out", "           0    --  0.0.0.0/0            0.0.0.0/0            ADDRTYPE match dst-type LOCAL limit-out"],
  ["filter", "-A FORWARD -m ttl --ttl-eq 0", "           0    --  0.0.0.0/0            0.0.0.0/0            TTL match TTL == 0"],
  ["filter", "-A FORWARD -m ttl --ttl 5", "           0    --  0.0.0.0/0            0.0.0.0/0            TTL match TTL == 5"],
  ["filter", "-A FORWARD -m ttl ! --ttl-eq 255", "           0    --  0.0.0.0/0            0.0.0.0/0            TTL match TTL != 255"],
  ["filter", "-A FORWARD -m ttl --ttl-gt 0", "           0    --  0.0.0.0/0            0.0.0.0/0            TTL match TTL > 0"],
  ["filter", "-A FORWARD -m ttl --ttl-lt 255", "           0    --  0.0.0.0/0            0.0.0.0/0            TTL match TTL < 255"],
  ["filter", "-A FORWARD -m iprange --src-range 1.2.3.4", "           0    --  0.0.0.0/0            0.0.0.0/0            source IP range 1.2.3.4-1.2.3.4"],
  ["filter", "-A FORWARD -m iprange ! --dst-range 10.0.0.9-10.0.0.1", "           0    --  0.0.0.0/0            0.0.0.0/0            destination IP range ! 10.0.0.9-10.0.0.1"],
  ["filter", "-A FORWARD -m iprange ! --src-range 0.0.0.0-255.255.255.255 ! --dst-range 1.1.1.1-1.1.1.2", "           0    --  0.0.0.0/0            0.0.0.0/0            source IP range ! 0.0.0.0-255.255.255.255 destination IP range ! 1.1.1.1-1.1.1.2"],
  ["filter", "-A FORWARD -m length --length 5", "           0    --  0.0.0.0/0            0.0.0.0/0            length 5"],
  ["filter", "-A FORWARD -m length --length :100", "           0    --  0.0.0.0/0            0.0.0.0/0            length 0:100"],
  ["filter", "-A FORWARD -m length ! --length 10:20", "           0    --  0.0.0.0/0            0.0.0.0/0            length !10:20"],
  ["filter", "-A FORWARD -m length --length 20:10", "           0    --  0.0.0.0/0            0.0.0.0/0            length 20:10"],
  ["filter", "-A FORWARD -m length --length 0:65535", "           0    --  0.0.0.0/0            0.0.0.0/0            length 0:65535"],
  ["filter", "-A FORWARD -m connmark --mark 5", "           0    --  0.0.0.0/0            0.0.0.0/0            connmark match  0x5"],
  ["filter", "-A FORWARD -m connmark ! --mark 5", "           0    --  0.0.0.0/0            0.0.0.0/0            connmark match ! 0x5"],
  ["filter", "-A FORWARD -m connmark --mark 0xffffffff/0xffffffff", "           0    --  0.0.0.0/0            0.0.0.0/0            connmark match  0xffffffff"],
  ["filter", "-A FORWARD -m connmark --mark 0/0", "           0    --  0.0.0.0/0            0.0.0.0/0            connmark match  0x0/0x0"],
  ["filter", "-A FORWARD -m connmark ! --mark 0x10/0x10 -m ttl --ttl-lt 3 -m limit -m length --length 9 -j NFLOG --nflog-group 2", "NFLOG      0    --  0.0.0.0/0            0.0.0.0/0            connmark match ! 0x10/0x10 TTL match TTL < 3 limit: avg 3/hour burst 5 length 9 nflog-group 2"],
  ["raw", "-A PREROUTING -p tcp --dport 22 -j TRACE", "TRACE      6    --  0.0.0.0/0            0.0.0.0/0            tcp dpt:22"],
];

describe('iptables -L for each spelling of the extensions, against the real iptables', () => {
  it.each(SPELLINGS)('%s: %s', (name, rule, line) => {
    const built = buildRouter({ interfaces: [], rules: { text: section(name, rule), origin: 'test.rules', firstLine: 0 } });
    const loaded = built.netfilter.rules.table(tableIdOf(name) as 0 | 1 | 2 | 3)!;
    const chain = loaded.chains.find((candidate) => candidate.rules.length > 0)!;
    expect(listRule(loaded, chain, 1, format(true))).toBe(`${line}\n`);
  });
});
