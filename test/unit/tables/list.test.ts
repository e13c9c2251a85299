/**
 * `iptables -L` and `iptables -S` as the real iptables prints them. Every expected text here was
 * captured from iptables v1.8.9 (nf_tables) on this machine: the rules were loaded with
 * iptables-restore into a scratch network namespace and listed with `iptables -t TABLE -L -n -v
 * --line-numbers`, `iptables -L -v` (names) and `iptables -S`; the counters with iptables-restore -c.
 */
import { describe, expect, it } from 'vitest';
import { listChains, listRule, listSpec, listSpecs, type ListOptions } from '../../../netfilter/tables/list.ts';
import type { LoadedTable } from '../../../netfilter/tables/ruleset.ts';
import { tableIdOf } from '../../../netfilter/tables/tables.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { ip } from '../../support/packets.ts';
import { MIXED_RULES, section } from './support.ts';

/** The entries of netbase 6.4's /etc/services, /etc/hosts and /etc/networks that the rules below name. */
const SERVICES: Readonly<Record<string, string>> = { '1/tcp': 'tcpmux', '21/tcp': 'ftp', '22/tcp': 'ssh', '80/tcp': 'http', '2000/tcp': 'cisco-sccp', '53/udp': 'domain' };
const HOSTS: ReadonlyMap<number, string> = new Map([
  [ip('127.0.0.1'), 'localhost'],
  [ip('0.0.0.0'), 'default'],
  [ip('127.0.0.0'), 'loopback'],
  [ip('169.254.0.0'), 'link-local'],
]);

function options(flags: Partial<ListOptions>): ListOptions {
  return {
    numeric: false,
    verbose: false,
    exact: false,
    lineNumbers: false,
    serviceName: (port, protocol) => SERVICES[`${port}/${protocol}`] ?? null,
    hostName: (address) => HOSTS.get(address) ?? null,
    ...flags,
  };
}

/** The rules loaded with iptables-restore -c into a router as production builds it (NAT targets included). */
function tablesOf(text: string): (name: string) => LoadedTable {
  const built = buildRouter({ interfaces: [] });
  built.netfilter.loadRules(text, 'test.rules', 0, { keepCounters: true });
  return (name) => built.netfilter.rules.table(tableIdOf(name) as 0 | 1 | 2 | 3)!;
}

function listAll(table: LoadedTable, flags: Partial<ListOptions>): string {
  return listChains(table, table.chains, options(flags));
}

/** [table, rule as written, `-L -n -v` lines, `-L -v` lines] */
const LINES: readonly (readonly [string, string, readonly string[], readonly string[]])[] = [
  ["filter", "-A FORWARD -i lan0 -s 10.0.1.2 -p tcp --dport 80 -j ACCEPT", ["    0     0 ACCEPT     6    --  lan0   *       10.0.1.2             0.0.0.0/0            tcp dpt:80"], ["    0     0 ACCEPT     tcp  --  lan0   any     10.0.1.2             anywhere             tcp dpt:http"]],
  ["filter", "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", ["    0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED"], ["    0     0 ACCEPT     all  --  any    any     anywhere             anywhere             ctstate RELATED,ESTABLISHED"]],
  ["filter", "-A FORWARD -p tcp --sport 1000:2000 -d 10.0.0.0/8 -o wan+ -j ACCEPT", ["    0     0 ACCEPT     6    --  *      wan+    0.0.0.0/0            10.0.0.0/8           tcp spts:1000:2000"], ["    0     0 ACCEPT     tcp  --  any    wan+    anywhere             10.0.0.0/8           tcp spts:1000:cisco-sccp"]],
  ["filter", "-A FORWARD ! -p udp ! -s 10.0.0.1/24 -j LOG --log-prefix \"x y \" --log-level 4", ["    0     0 LOG       !17   --  *      *      !10.0.0.0/24          0.0.0.0/0            LOG flags 0 level 4 prefix \"x y \""], ["    0     0 LOG       !udp  --  any    any    !10.0.0.0/24          anywhere             LOG level warn prefix \"x y \""]],
  ["filter", "-A FORWARD -p 6", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            tcp  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p TCP", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            tcp  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p all", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            all  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p 47", ["    0     0            47   --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            gre  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p gre", ["    0     0            47   --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            gre  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p 132", ["    0     0            132  --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            sctp --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p 200", ["    0     0            200  --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            200  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p 4", ["    0     0            4    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            ipencap --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p 010", ["    0     0            8    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            egp  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p icmpv6", ["    0     0            58   --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            ipv6-icmp --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD ! -p tcp", ["    0     0           !6    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0           !tcp  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -s 10.0.0.0/0", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            all  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -d 1.2.3.4/255.255.0.0", ["    0     0            0    --  *      *       0.0.0.0/0            1.2.0.0/16          "], ["    0     0            all  --  any    any     anywhere             1.2.0.0/16          "]],
  ["filter", "-A FORWARD ! -d 1.2.3.4/16", ["    0     0            0    --  *      *       0.0.0.0/0           !1.2.0.0/16          "], ["    0     0            all  --  any    any     anywhere            !1.2.0.0/16          "]],
  ["filter", "-A FORWARD -s 1.2.3.4/255.0.255.0", ["    0     0            0    --  *      *       1.0.3.0/255.0.255.0  0.0.0.0/0           "], ["    0     0            all  --  any    any     1.0.3.0/255.0.255.0  anywhere            "]],
  ["filter", "-A FORWARD -s 1.1.1.1/010", ["    0     0            0    --  *      *       1.0.0.0/8            0.0.0.0/0           "], ["    0     0            all  --  any    any     1.0.0.0/8            anywhere            "]],
  ["filter", "-A FORWARD -s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4", ["    0     0            0    --  *      *       1.1.1.1              3.3.3.3             ","    0     0            0    --  *      *       1.1.1.1              4.4.4.4             ","    0     0            0    --  *      *       2.2.2.2              3.3.3.3             ","    0     0            0    --  *      *       2.2.2.2              4.4.4.4             "], ["    0     0            all  --  any    any     1.1.1.1              3.3.3.3             ","    0     0            all  --  any    any     1.1.1.1              4.4.4.4             ","    0     0            all  --  any    any     2.2.2.2              3.3.3.3             ","    0     0            all  --  any    any     2.2.2.2              4.4.4.4             "]],
  ["filter", "-I FORWARD -s 1.1.1.1,2.2.2.2", ["    0     0            0    --  *      *       2.2.2.2              0.0.0.0/0           ","    0     0            0    --  *      *       1.1.1.1              0.0.0.0/0           "], ["    0     0            all  --  any    any     2.2.2.2              anywhere            ","    0     0            all  --  any    any     1.1.1.1              anywhere            "]],
  ["filter", "-A FORWARD ! -i lan0 ! -o wan+", ["    0     0            0    --  !lan0  !wan+   0.0.0.0/0            0.0.0.0/0           "], ["    0     0            all  --  !lan0  !wan+   anywhere             anywhere            "]],
  ["filter", "-A FORWARD -i +", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            all  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD ! -i +", ["    0     0            0    --  !+     *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            all  --  !+     any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -f -p tcp -s 1.1.1.1 -o x -d 2.2.2.2 -i y", ["    0     0            6    -f  y      x       1.1.1.1              2.2.2.2             "], ["    0     0            tcp  -f  y      x       1.1.1.1              2.2.2.2             "]],
  ["filter", "-A FORWARD ! -f", ["    0     0            0    !f  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0            all  !f  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -p tcp -f --dport 80", ["    0     0            6    -f  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:80"], ["    0     0            tcp  -f  any    any     anywhere             anywhere             tcp dpt:http"]],
  ["filter", "-A FORWARD -p tcp --sport 80", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp spt:80"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp spt:http"]],
  ["filter", "-A FORWARD -p tcp ! --sport 80", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp spt:!80"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp spt:!http"]],
  ["filter", "-A FORWARD -p tcp --dport 100:", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpts:100:65535"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp dpts:100:65535"]],
  ["filter", "-A FORWARD -p tcp --dport :100", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpts:0:100"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp dpts:0:100"]],
  ["filter", "-A FORWARD -p tcp --dport 0:65535", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp"]],
  ["filter", "-A FORWARD -p tcp --dport 80:80", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:80"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp dpt:http"]],
  ["filter", "-A FORWARD -p tcp --dport 010", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:8"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp dpt:8"]],
  ["filter", "-A FORWARD -p udp --dport 53 --sport 1024:65535", ["    0     0            17   --  *      *       0.0.0.0/0            0.0.0.0/0            udp spts:1024:65535 dpt:53"], ["    0     0            udp  --  any    any     anywhere             anywhere             udp spts:1024:65535 dpt:domain"]],
  ["filter", "-A FORWARD -p udp -m udp ! --dport 53", ["    0     0            17   --  *      *       0.0.0.0/0            0.0.0.0/0            udp dpt:!53"], ["    0     0            udp  --  any    any     anywhere             anywhere             udp dpt:!domain"]],
  ["filter", "-A FORWARD -p tcp --syn -j REJECT --reject-with tcp-reset", ["    0     0 REJECT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x17/0x02 reject-with tcp-reset"], ["    0     0 REJECT     tcp  --  any    any     anywhere             anywhere             tcp flags:FIN,SYN,RST,ACK/SYN reject-with tcp-reset"]],
  ["filter", "-A FORWARD -p tcp ! --syn", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:!0x17/0x02"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp flags:!FIN,SYN,RST,ACK/SYN"]],
  ["filter", "-A FORWARD -p tcp --tcp-flags ALL NONE", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x3F/0x00"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp flags:FIN,SYN,RST,PSH,ACK,URG/NONE"]],
  ["filter", "-A FORWARD -p tcp --tcp-flags ALL ALL", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x3F/0x3F"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp flags:FIN,SYN,RST,PSH,ACK,URG/FIN,SYN,RST,PSH,ACK,URG"]],
  ["filter", "-A FORWARD -p tcp ! --tcp-flags SYN,RST SYN", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:!0x06/0x02"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp flags:!SYN,RST/SYN"]],
  ["filter", "-A FORWARD -p tcp --tcp-flags syn,ack syn", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x12/0x02"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp flags:SYN,ACK/SYN"]],
  ["filter", "-A FORWARD -p tcp --tcp-flags SYN,ACK,FIN SYN -m comment --comment \"hello world\" -j DROP", ["    0     0 DROP       6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x13/0x02 /* hello world */"], ["    0     0 DROP       tcp  --  any    any     anywhere             anywhere             tcp flags:FIN,SYN,ACK/SYN /* hello world */"]],
  ["filter", "-A FORWARD -p tcp --dp 1", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:1"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp dpt:tcpmux"]],
  ["filter", "--append FORWARD --src 1.1.1.1 --dst 2.2.2.2 --protocol tcp --in-interface a --out-interface b --fragment --jump ACCEPT", ["    0     0 ACCEPT     6    -f  a      b       1.1.1.1              2.2.2.2             "], ["    0     0 ACCEPT     tcp  -f  a      b       1.1.1.1              2.2.2.2             "]],
  ["filter", "-A FORWARD -m comment --comment c -p tcp --dport 22 -s 1.1.1.1 -j DROP", ["    0     0 DROP       6    --  *      *       1.1.1.1              0.0.0.0/0            /* c */ tcp dpt:22"], ["    0     0 DROP       tcp  --  any    any     1.1.1.1              anywhere             /* c */ tcp dpt:ssh"]],
  ["filter", "-A FORWARD -p tcp -m multiport --sports 1,2,3", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            multiport sports 1,2,3"], ["    0     0            tcp  --  any    any     anywhere             anywhere             multiport sports tcpmux,2,3"]],
  ["filter", "-A FORWARD -p tcp -m multiport --ports 1,2:3", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            multiport ports 1,2:3"], ["    0     0            tcp  --  any    any     anywhere             anywhere             multiport ports tcpmux,2:3"]],
  ["filter", "-A FORWARD -p udp -m multiport ! --dports 53,1000:2000", ["    0     0            17   --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports  !53,1000:2000"], ["    0     0            udp  --  any    any     anywhere             anywhere             multiport dports  !domain,1000:2000"]],
  ["filter", "-A FORWARD -p tcp -m multiport --destination-ports 010,0x10", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports 8,16"], ["    0     0            tcp  --  any    any     anywhere             anywhere             multiport dports 8,16"]],
  ["filter", "-A FORWARD -p icmp --icmp-type echo-request -j REJECT", ["    0     0 REJECT     1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 8 reject-with icmp-port-unreachable"], ["    0     0 REJECT     icmp --  any    any     anywhere             anywhere             icmp echo-request reject-with icmp-port-unreachable"]],
  ["filter", "-A FORWARD -p icmp --icmp-type any", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 255"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp any"]],
  ["filter", "-A FORWARD -p icmp --icmp-type 3/4", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 3 code 4"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp fragmentation-needed"]],
  ["filter", "-A FORWARD -p icmp --icmp-type 3", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 3"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp destination-unreachable"]],
  ["filter", "-A FORWARD -p icmp --icmp-type port-unreachable", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 3 code 3"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp port-unreachable"]],
  ["filter", "-A FORWARD -p icmp ! --icmp-type echo-reply", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmp !type 0"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp !echo-reply"]],
  ["filter", "-A FORWARD -p icmp --icmp-type 255", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 255"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp any"]],
  ["filter", "-A FORWARD -p icmp --icmp-type 8/0", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 8 code 0"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmptype 8 code 0"]],
  ["filter", "-A FORWARD -p icmp --icmp-type echo-req", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 8"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp echo-request"]],
  ["filter", "-A FORWARD -m icmp --icmp-type 8 -p icmp", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 8"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp echo-request"]],
  ["filter", "-A FORWARD -m conntrack --ctstate INVALID,NEW,ESTABLISHED,RELATED,UNTRACKED,SNAT,DNAT", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT"], ["    0     0            all  --  any    any     anywhere             anywhere             ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT"]],
  ["filter", "-A FORWARD -m conntrack ! --ctstate NEW", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ! ctstate NEW"], ["    0     0            all  --  any    any     anywhere             anywhere             ! ctstate NEW"]],
  ["filter", "-A FORWARD -m conntrack --ctstate e,n", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate NEW,ESTABLISHED"], ["    0     0            all  --  any    any     anywhere             anywhere             ctstate NEW,ESTABLISHED"]],
  ["filter", "-A FORWARD -m conntrack --ctstatus ASSURED,SEEN_REPLY", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstatus SEEN_REPLY,ASSURED"], ["    0     0            all  --  any    any     anywhere             anywhere             ctstatus SEEN_REPLY,ASSURED"]],
  ["filter", "-A FORWARD -m conntrack --ctstatus NONE", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstatus NONE"], ["    0     0            all  --  any    any     anywhere             anywhere             ctstatus NONE"]],
  ["filter", "-A FORWARD -m conntrack --ctstatus seen", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstatus SEEN_REPLY"], ["    0     0            all  --  any    any     anywhere             anywhere             ctstatus SEEN_REPLY"]],
  ["filter", "-A FORWARD -m conntrack --ctstate NEW --ctstatus ASSURED", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate NEW ctstatus ASSURED"], ["    0     0            all  --  any    any     anywhere             anywhere             ctstate NEW ctstatus ASSURED"]],
  ["filter", "-A FORWARD -m conntrack ! --ctstatus CONFIRMED", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ! ctstatus CONFIRMED"], ["    0     0            all  --  any    any     anywhere             anywhere             ! ctstatus CONFIRMED"]],
  ["filter", "-A FORWARD -m state --state NEW -j ACCEPT", ["    0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            state NEW"], ["    0     0 ACCEPT     all  --  any    any     anywhere             anywhere             state NEW"]],
  ["filter", "-A FORWARD -m state ! --state est,inv", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ! state INVALID,ESTABLISHED"], ["    0     0            all  --  any    any     anywhere             anywhere             ! state INVALID,ESTABLISHED"]],
  ["filter", "-A FORWARD -m helper --helper ftp -j ACCEPT", ["    0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            helper match \"ftp\""], ["    0     0 ACCEPT     all  --  any    any     anywhere             anywhere             helper match \"ftp\""]],
  ["filter", "-A FORWARD -m helper ! --helper \"ftp-21\"", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            helper match ! \"ftp-21\""], ["    0     0            all  --  any    any     anywhere             anywhere             helper match ! \"ftp-21\""]],
  ["filter", "-A FORWARD -m helper --helper 123456789012345678901234567890", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            helper match \"12345678901234567890123456789\""], ["    0     0            all  --  any    any     anywhere             anywhere             helper match \"12345678901234567890123456789\""]],
  ["filter", "-A FORWARD -m comment --comment x", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            /* x */"], ["    0     0            all  --  any    any     anywhere             anywhere             /* x */"]],
  ["filter", "-A FORWARD -m comment --comment \"a \\\"b\\\" c\"", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            /* a \"b\" c */"], ["    0     0            all  --  any    any     anywhere             anywhere             /* a \"b\" c */"]],
  ["filter", "-A FORWARD -m comment --comment \"\"", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            /*  */"], ["    0     0            all  --  any    any     anywhere             anywhere             /*  */"]],
  ["filter", "-A FORWARD -m comment --comment \"a\\\\b'c\"", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            /* a\\b'c */"], ["    0     0            all  --  any    any     anywhere             anywhere             /* a\\b'c */"]],
  ["filter", "-A FORWARD -m mark --mark 1", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x1"], ["    0     0            all  --  any    any     anywhere             anywhere             mark match 0x1"]],
  ["filter", "-A FORWARD -m mark --mark 0x1/0xff -j ACCEPT", ["    0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x1/0xff"], ["    0     0 ACCEPT     all  --  any    any     anywhere             anywhere             mark match 0x1/0xff"]],
  ["filter", "-A FORWARD -m mark ! --mark 0x10/0x10", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match ! 0x10/0x10"], ["    0     0            all  --  any    any     anywhere             anywhere             mark match ! 0x10/0x10"]],
  ["filter", "-A FORWARD -m mark --mark 010", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x8"], ["    0     0            all  --  any    any     anywhere             anywhere             mark match 0x8"]],
  ["filter", "-A FORWARD -m mark --mark 0x1/0xffffffff", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x1"], ["    0     0            all  --  any    any     anywhere             anywhere             mark match 0x1"]],
  ["filter", "-A FORWARD -j LOG", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4"], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level warn"]],
  ["filter", "-A FORWARD -j LOG --log-level 7 --log-prefix \"p:\"", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 7 prefix \"p:\""], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level debug prefix \"p:\""]],
  ["filter", "-A FORWARD -j LOG --log-level debug", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 7"], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level debug"]],
  ["filter", "-A FORWARD -j LOG --log-level warning", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4"], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level warn"]],
  ["filter", "-A FORWARD -j LOG --log-level panic", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 0"], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level emerg"]],
  ["filter", "-A FORWARD -j LOG --log-prefix 123456789012345678901234567890", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4 prefix \"12345678901234567890123456789\""], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level warn prefix \"12345678901234567890123456789\""]],
  ["filter", "-A FORWARD -j LOG --log-prefix \"a\\\\b\"", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4 prefix \"a\\b\""], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level warn prefix \"a\\b\""]],
  ["filter", "-A FORWARD -j LOG --log-macdecode --log-uid --log-ip-options --log-tcp-options --log-tcp-sequence --log-level 5 --log-prefix a", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 47 level 5 prefix \"a\""], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level notice tcp-sequence tcp-options ip-options uid macdecode prefix \"a\""]],
  ["filter", "-A FORWARD -j LOG --log-prefix x -p tcp --dport 1", ["    0     0 LOG        6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:1 LOG flags 0 level 4 prefix \"x\""], ["    0     0 LOG        tcp  --  any    any     anywhere             anywhere             tcp dpt:tcpmux LOG level warn prefix \"x\""]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-net-unreachable", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-net-unreachable"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-net-unreachable"]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-host-unreachable", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-host-unreachable"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-host-unreachable"]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-port-unreachable", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-port-unreachable"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-port-unreachable"]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-proto-unreachable", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-proto-unreachable"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-proto-unreachable"]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-net-prohibited", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-net-prohibited"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-net-prohibited"]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-host-prohibited", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-host-prohibited"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-host-prohibited"]],
  ["filter", "-A FORWARD -j REJECT --reject-with icmp-admin-prohibited", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-admin-prohibited"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-admin-prohibited"]],
  ["filter", "-A FORWARD -j REJECT --reject-with host-prohib", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-host-prohibited"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-host-prohibited"]],
  ["filter", "-A FORWARD -j REJECT --reject-with ICMP-NET-PROHIB", ["    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-net-prohibited"], ["    0     0 REJECT     all  --  any    any     anywhere             anywhere             reject-with icmp-net-prohibited"]],
  ["filter", "-A FORWARD -p tcp -j REJECT --reject-with tcp-rst", ["    0     0 REJECT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with tcp-reset"], ["    0     0 REJECT     tcp  --  any    any     anywhere             anywhere             reject-with tcp-reset"]],
  ["filter", "-A FORWARD -j DROP -s 1.1.1.1", ["    0     0 DROP       0    --  *      *       1.1.1.1              0.0.0.0/0           "], ["    0     0 DROP       all  --  any    any     1.1.1.1              anywhere            "]],
  ["filter", "-A FORWARD -j MARK --set-mark 1", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK set 0x1"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK set 0x1"]],
  ["filter", "-A FORWARD -j RETURN", ["    0     0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0 RETURN     all  --  any    any     anywhere             anywhere            "]],
  ["filter", "-A FORWARD -c 1 2 -s 1.1.1.1", ["    1     2            0    --  *      *       1.1.1.1              0.0.0.0/0           "], ["    1     2            all  --  any    any     1.1.1.1              anywhere            "]],
  ["raw", "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp", ["    0     0 CT         6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:21 CT helper ftp"], ["    0     0 CT         tcp  --  any    any     anywhere             anywhere             tcp dpt:ftp CT helper ftp"]],
  ["raw", "-A PREROUTING -j CT", ["    0     0 CT         0    --  *      *       0.0.0.0/0            0.0.0.0/0            CT"], ["    0     0 CT         all  --  any    any     anywhere             anywhere             CT"]],
  ["raw", "-A PREROUTING -p udp -j CT --notrack", ["    0     0 CT         17   --  *      *       0.0.0.0/0            0.0.0.0/0            CT notrack"], ["    0     0 CT         udp  --  any    any     anywhere             anywhere             CT notrack"]],
  ["raw", "-A PREROUTING -p tcp -j CT --helper ftp --notrack", ["    0     0 CT         6    --  *      *       0.0.0.0/0            0.0.0.0/0            CT notrack helper ftp"], ["    0     0 CT         tcp  --  any    any     anywhere             anywhere             CT notrack helper ftp"]],
  ["raw", "-A PREROUTING -p gre -j NOTRACK", ["    0     0 CT         47   --  *      *       0.0.0.0/0            0.0.0.0/0            NOTRACK"], ["    0     0 CT         gre  --  any    any     anywhere             anywhere             NOTRACK"]],
  ["raw", "-A OUTPUT -j LOG", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4"], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level warn"]],
  ["mangle", "-A PREROUTING -j MARK --set-mark 5", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK set 0x5"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK set 0x5"]],
  ["mangle", "-A PREROUTING -j MARK --set-mark 5/0xff", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK xset 0x5/0xff"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK xset 0x5/0xff"]],
  ["mangle", "-A PREROUTING -j MARK --set-xmark 5/0xff", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK xset 0x5/0xff"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK xset 0x5/0xff"]],
  ["mangle", "-A PREROUTING -j MARK --and-mark 0xf0", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK and 0xf0"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK and 0xf0"]],
  ["mangle", "-A PREROUTING -j MARK --or-mark 0xf0", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK or 0xf0"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK or 0xf0"]],
  ["mangle", "-A PREROUTING -j MARK --xor-mark 0xf0", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK xor 0xf0"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK xor 0xf0"]],
  ["mangle", "-A PREROUTING -j MARK --set-mark 0", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK and 0x0"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK and 0x0"]],
  ["mangle", "-A FORWARD -p tcp --dport 21 -j MARK --set-mark 1", ["    0     0 MARK       6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:21 MARK set 0x1"], ["    0     0 MARK       tcp  --  any    any     anywhere             anywhere             tcp dpt:ftp MARK set 0x1"]],
  ["nat", "-A PREROUTING -s 1.2.3.4 -j ACCEPT", ["    0     0 ACCEPT     0    --  *      *       1.2.3.4              0.0.0.0/0           "], ["    0     0 ACCEPT     all  --  any    any     1.2.3.4              anywhere            "]],
  ["nat", "-A PREROUTING -j RETURN", ["    0     0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0           "], ["    0     0 RETURN     all  --  any    any     anywhere             anywhere            "]],
  ["nat", "-A POSTROUTING -j LOG", ["    0     0 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4"], ["    0     0 LOG        all  --  any    any     anywhere             anywhere             LOG level warn"]],
  ["nat", "-A PREROUTING -j MARK --set-mark 1", ["    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK set 0x1"], ["    0     0 MARK       all  --  any    any     anywhere             anywhere             MARK set 0x1"]],
  ["filter", "-A FORWARD -p tcp --tcp-flags NONE NONE", ["    0     0            6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp"], ["    0     0            tcp  --  any    any     anywhere             anywhere             tcp"]],
  ["filter", "-A FORWARD -s 127.0.0.1 -d 169.254.0.0/16", ["    0     0            0    --  *      *       127.0.0.1            169.254.0.0/16      "], ["    0     0            all  --  any    any     localhost            link-local/16       "]],
  ["filter", "-A FORWARD -s 0.0.0.0/32 -d 127.0.0.0/8", ["    0     0            0    --  *      *       0.0.0.0              127.0.0.0/8         "], ["    0     0            all  --  any    any     default              loopback/8          "]],
  ["filter", "-A FORWARD -p sctp -m multiport --dports 80,9", ["    0     0            132  --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports 80,9"], ["    0     0            sctp --  any    any     anywhere             anywhere             multiport dports 80,9"]],
  ["filter", "-A FORWARD -p icmp --icmp-type 3/0", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 3 code 0"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp network-unreachable"]],
  ["filter", "-A FORWARD -p icmp ! --icmp-type 3/4", ["    0     0            1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmp !type 3 code 4"], ["    0     0            icmp --  any    any     anywhere             anywhere             icmp !fragmentation-needed"]],
  ["filter", "-A FORWARD -m conntrack ! --ctstate NEW ! --ctstatus ASSURED --ctdir ORIGINAL", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ! ctstate NEW ! ctstatus ASSURED ctdir ORIGINAL"], ["    0     0            all  --  any    any     anywhere             anywhere             ! ctstate NEW ! ctstatus ASSURED ctdir ORIGINAL"]],
  ["filter", "-A FORWARD -m state --state UNTRACKED", ["    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            state UNTRACKED"], ["    0     0            all  --  any    any     anywhere             anywhere             state UNTRACKED"]],
  ["nat", "-A PREROUTING -i wan0 -p tcp --dport 5001 -j DNAT --to-destination 10.0.2.2:5001", ["    0     0 DNAT       6    --  wan0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:5001 to:10.0.2.2:5001"], ["    0     0 DNAT       tcp  --  wan0   any     anywhere             anywhere             tcp dpt:5001 to:10.0.2.2:5001"]],
  ["nat", "-A POSTROUTING -o wan0 -j MASQUERADE", ["    0     0 MASQUERADE  0    --  *      wan0    0.0.0.0/0            0.0.0.0/0           "], ["    0     0 MASQUERADE  all  --  any    wan0    anywhere             anywhere            "]],
  ["nat", "-A POSTROUTING -j MASQUERADE --random", ["    0     0 MASQUERADE  0    --  *      *       0.0.0.0/0            0.0.0.0/0            random"], ["    0     0 MASQUERADE  all  --  any    any     anywhere             anywhere             random"]],
  ["nat", "-A POSTROUTING -j MASQUERADE --random-fully", ["    0     0 MASQUERADE  0    --  *      *       0.0.0.0/0            0.0.0.0/0            random-fully"], ["    0     0 MASQUERADE  all  --  any    any     anywhere             anywhere             random-fully"]],
  ["nat", "-A POSTROUTING -p udp -j MASQUERADE --to-ports 5000", ["    0     0 MASQUERADE  17   --  *      *       0.0.0.0/0            0.0.0.0/0            masq ports: 5000"], ["    0     0 MASQUERADE  udp  --  any    any     anywhere             anywhere             masq ports: 5000"]],
  ["nat", "-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1000-2000", ["    0     0 MASQUERADE  6    --  *      *       0.0.0.0/0            0.0.0.0/0            masq ports: 1000-2000"], ["    0     0 MASQUERADE  tcp  --  any    any     anywhere             anywhere             masq ports: 1000-2000"]],
  ["nat", "-A POSTROUTING -o wan1 -j SNAT --to-source 1.2.3.4", ["    0     0 SNAT       0    --  *      wan1    0.0.0.0/0            0.0.0.0/0            to:1.2.3.4"], ["    0     0 SNAT       all  --  any    wan1    anywhere             anywhere             to:1.2.3.4"]],
  ["nat", "-A POSTROUTING -j SNAT --to-source 1.2.3.4-1.2.3.9", ["    0     0 SNAT       0    --  *      *       0.0.0.0/0            0.0.0.0/0            to:1.2.3.4-1.2.3.9"], ["    0     0 SNAT       all  --  any    any     anywhere             anywhere             to:1.2.3.4-1.2.3.9"]],
  ["nat", "-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4:1000-2000 --random --persistent", ["    0     0 SNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            to:1.2.3.4:1000-2000 random persistent"], ["    0     0 SNAT       tcp  --  any    any     anywhere             anywhere             to:1.2.3.4:1000-2000 random persistent"]],
  ["nat", "-A POSTROUTING -p tcp -j SNAT --to-source :1000-2000", ["    0     0 SNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            to::1000-2000"], ["    0     0 SNAT       tcp  --  any    any     anywhere             anywhere             to::1000-2000"]],
  ["nat", "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.2.2", ["    0     0 DNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            to:10.0.2.2"], ["    0     0 DNAT       tcp  --  any    any     anywhere             anywhere             to:10.0.2.2"]],
  ["nat", "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.2.2-10.0.2.3:80", ["    0     0 DNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            to:10.0.2.2-10.0.2.3:80"], ["    0     0 DNAT       tcp  --  any    any     anywhere             anywhere             to:10.0.2.2-10.0.2.3:80"]],
  ["nat", "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.2.2:80-81 --random", ["    0     0 DNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            to:10.0.2.2:80-81 random"], ["    0     0 DNAT       tcp  --  any    any     anywhere             anywhere             to:10.0.2.2:80-81 random"]],
  ["nat", "-A OUTPUT -p tcp -j DNAT --to-destination 10.0.2.2 --persistent", ["    0     0 DNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            to:10.0.2.2 persistent"], ["    0     0 DNAT       tcp  --  any    any     anywhere             anywhere             to:10.0.2.2 persistent"]],
];

/** The rules save.test.ts checks, and a nat table. */
const MIXED = `${MIXED_RULES}*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -p tcp --dport 5001 -j DNAT --to-destination 10.0.2.2:5001
-A POSTROUTING -o wan0 -j MASQUERADE
-A POSTROUTING -o wan1 -j SNAT --to-source 1.2.3.4
COMMIT
`;

const MIXED_FILTER_NV = `Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain FORWARD (policy DROP 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
1        0     0 ACCEPT     6    --  lan0   *       10.0.1.2             0.0.0.0/0            tcp dpt:80
2        0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED
3        0     0 lan-in     6    --  *      wan+    0.0.0.0/0            10.0.0.0/8           tcp spts:1000:2000
4        0     0 LOG       !17   --  *      *      !10.0.0.0/24          0.0.0.0/0            LOG flags 0 level 4 prefix "x y "
5        0     0 REJECT     1    --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 8 reject-with icmp-port-unreachable
6        0     0 REJECT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x17/0x02 reject-with tcp-reset
7        0     0 DROP       6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x13/0x02 /* hello world */
8        0     0 ACCEPT     17   --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports 53,1000:2000
9        0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            state NEW
10       0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            helper match "ftp"
11       0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x1/0xff
12       0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstatus SEEN_REPLY,ASSURED
13       0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate NEW ctstatus ASSURED ctdir REPLY
14       0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctdir ORIGINAL
15       0     0 lan-in     0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto] 

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain lan-in (2 references)
num   pkts bytes target     prot opt in     out     source               destination         
1        0     0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0           
`;

const MIXED_RAW_NV = `Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
1        0     0 CT         6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:21 CT helper ftp
2        0     0 CT         17   --  *      *       0.0.0.0/0            0.0.0.0/0            CT notrack
3        0     0 CT         47   --  *      *       0.0.0.0/0            0.0.0.0/0            NOTRACK

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
`;

const MIXED_MANGLE_NV = `Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
1        0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK set 0x5

Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
`;

const MIXED_NAT_NV = `Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
1        0     0 DNAT       6    --  wan0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:5001 to:10.0.2.2:5001

Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         

Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination         
1        0     0 MASQUERADE  0    --  *      wan0    0.0.0.0/0            0.0.0.0/0           
2        0     0 SNAT       0    --  *      wan1    0.0.0.0/0            0.0.0.0/0            to:1.2.3.4
`;

const MIXED_FILTER_PLAIN = `Chain INPUT (policy ACCEPT)
target     prot opt source               destination         

Chain FORWARD (policy DROP)
target     prot opt source               destination         
ACCEPT     tcp  --  10.0.1.2             anywhere             tcp dpt:http
ACCEPT     all  --  anywhere             anywhere             ctstate RELATED,ESTABLISHED
lan-in     tcp  --  anywhere             10.0.0.0/8           tcp spts:1000:cisco-sccp
LOG       !udp  -- !10.0.0.0/24          anywhere             LOG level warn prefix "x y "
REJECT     icmp --  anywhere             anywhere             icmp echo-request reject-with icmp-port-unreachable
REJECT     tcp  --  anywhere             anywhere             tcp flags:FIN,SYN,RST,ACK/SYN reject-with tcp-reset
DROP       tcp  --  anywhere             anywhere             tcp flags:FIN,SYN,ACK/SYN /* hello world */
ACCEPT     udp  --  anywhere             anywhere             multiport dports domain,1000:2000
ACCEPT     all  --  anywhere             anywhere             state NEW
ACCEPT     all  --  anywhere             anywhere             helper match "ftp"
ACCEPT     all  --  anywhere             anywhere             mark match 0x1/0xff
ACCEPT     all  --  anywhere             anywhere             ctstatus SEEN_REPLY,ASSURED
ACCEPT     all  --  anywhere             anywhere             ctstate NEW ctstatus ASSURED ctdir REPLY
           all  --  anywhere             anywhere             ctdir ORIGINAL
lan-in     all  --  anywhere             anywhere            [goto] 

Chain OUTPUT (policy ACCEPT)
target     prot opt source               destination         

Chain lan-in (2 references)
target     prot opt source               destination         
RETURN     all  --  anywhere             anywhere            
`;

const MIXED_SPECS = `-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N lan-in
-A FORWARD -s 10.0.1.2/32 -i lan0 -p tcp -m tcp --dport 80 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -d 10.0.0.0/8 -o wan+ -p tcp -m tcp --sport 1000:2000 -j lan-in
-A FORWARD ! -s 10.0.0.0/24 ! -p udp -j LOG --log-prefix "x y "
-A FORWARD -p icmp -m icmp --icmp-type 8 -j REJECT --reject-with icmp-port-unreachable
-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REJECT --reject-with tcp-reset
-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,ACK SYN -m comment --comment "hello world" -j DROP
-A FORWARD -p udp -m multiport --dports 53,1000:2000 -j ACCEPT
-A FORWARD -m state --state NEW -j ACCEPT
-A FORWARD -m helper --helper ftp -j ACCEPT
-A FORWARD -m mark --mark 0x1/0xff -j ACCEPT
-A FORWARD -m conntrack --ctstatus SEEN_REPLY,ASSURED -j ACCEPT
-A FORWARD -m conntrack --ctstate NEW --ctstatus ASSURED --ctdir REPLY -j ACCEPT
-A FORWARD -m conntrack --ctdir ORIGINAL
-A FORWARD -g lan-in
-A lan-in -j RETURN
-P PREROUTING ACCEPT
-P OUTPUT ACCEPT
-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp
-A PREROUTING -p udp -j CT --notrack
-A PREROUTING -p gre -j NOTRACK
-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-A PREROUTING -j MARK --set-xmark 0x5/0xffffffff
-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-A PREROUTING -i wan0 -p tcp -m tcp --dport 5001 -j DNAT --to-destination 10.0.2.2:5001
-A POSTROUTING -o wan0 -j MASQUERADE
-A POSTROUTING -o wan1 -j SNAT --to-source 1.2.3.4
`;

/** Counters past each unit, from iptables-restore -c. */
const COUNTED = `*filter
:INPUT ACCEPT [123456:7890123]
:FORWARD DROP [99999:100000]
:OUTPUT ACCEPT [9999500000:99999999999999]
:zeta - [0:0]
:alpha - [0:0]
:Beta - [0:0]
[9999499:9999500] -A FORWARD -j zeta
[1234567890123456:9007199254740991] -A FORWARD -j alpha
[100000:99999] -A FORWARD -g alpha
-A zeta -j RETURN
COMMIT
`;

const COUNTED_V = `Chain INPUT (policy ACCEPT 123K packets, 7890K bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain FORWARD (policy DROP 99999 packets, 100K bytes)
 pkts bytes target     prot opt in     out     source               destination         
9999K   10M zeta       all  --  any    any     anywhere             anywhere            
1235T 9007T alpha      all  --  any    any     anywhere             anywhere            
 100K 99999 alpha      all  --  any    any     anywhere             anywhere            [goto] 

Chain OUTPUT (policy ACCEPT 10G packets, 100T bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain Beta (0 references)
 pkts bytes target     prot opt in     out     source               destination         

Chain alpha (2 references)
 pkts bytes target     prot opt in     out     source               destination         

Chain zeta (1 references)
 pkts bytes target     prot opt in     out     source               destination         
    0     0 RETURN     all  --  any    any     anywhere             anywhere            
`;

const COUNTED_VX_LINES = `Chain INPUT (policy ACCEPT 123456 packets, 7890123 bytes)
num      pkts      bytes target     prot opt in     out     source               destination         

Chain FORWARD (policy DROP 99999 packets, 100000 bytes)
num      pkts      bytes target     prot opt in     out     source               destination         
1     9999499  9999500 zeta       all  --  any    any     anywhere             anywhere            
2    1234567890123456 9007199254740991 alpha      all  --  any    any     anywhere             anywhere            
3      100000    99999 alpha      all  --  any    any     anywhere             anywhere            [goto] 

Chain OUTPUT (policy ACCEPT 9999500000 packets, 99999999999999 bytes)
num      pkts      bytes target     prot opt in     out     source               destination         

Chain Beta (0 references)
num      pkts      bytes target     prot opt in     out     source               destination         

Chain alpha (2 references)
num      pkts      bytes target     prot opt in     out     source               destination         

Chain zeta (1 references)
num      pkts      bytes target     prot opt in     out     source               destination         
1           0        0 RETURN     all  --  any    any     anywhere             anywhere            
`;

const COUNTED_SPECS_V = `-P INPUT ACCEPT -c 123456 7890123
-P FORWARD DROP -c 99999 100000
-P OUTPUT ACCEPT -c 9999500000 99999999999999
-N Beta
-N alpha
-N zeta
-A FORWARD -c 9999499 9999500 -j zeta
-A FORWARD -c 1234567890123456 9007199254740991 -j alpha
-A FORWARD -c 100000 99999 -g alpha
-A zeta -c 0 0 -j RETURN
`;

describe('iptables -L, line by line as iptables prints each rule', () => {
  it.each(LINES)('%s: %s', (tableName, rule, numeric, named) => {
    const table = tablesOf(section(tableName, rule))(tableName);
    const chain = table.chains.find((candidate) => candidate.rules.length > 0)!;
    const lines = (flags: Partial<ListOptions>): string[] => chain.rules.map((_, i) => listRule(table, chain, i + 1, options({ verbose: true, ...flags })));
    expect(lines({ numeric: true })).toEqual(numeric.map((line) => `${line}\n`));
    expect(lines({})).toEqual(named.map((line) => `${line}\n`));
  });
});

describe('iptables -L, whole tables', () => {
  const table = tablesOf(MIXED);

  it('lists every chain with -n -v --line-numbers: policies with counters, references, goto, each extension', () => {
    const flags = { numeric: true, verbose: true, lineNumbers: true };
    expect(listAll(table('filter'), flags)).toBe(MIXED_FILTER_NV);
    expect(listAll(table('raw'), flags)).toBe(MIXED_RAW_NV);
    expect(listAll(table('mangle'), flags)).toBe(MIXED_MANGLE_NV);
    expect(listAll(table('nat'), flags)).toBe(MIXED_NAT_NV);
  });

  it('lists without -v and -n: no counter or interface columns, names for protocols, ports and anywhere', () => {
    expect(listAll(table('filter'), {})).toBe(MIXED_FILTER_PLAIN);
  });

  it('prints -S as -P and -N lines, then the rules as iptables-save writes them', () => {
    const specs = ['filter', 'raw', 'mangle', 'nat'].map((name) => listSpecs(table(name), table(name).chains, false)).join('');
    expect(specs).toBe(MIXED_SPECS);
  });
});

describe('iptables -L -v counters', () => {
  const table = tablesOf(COUNTED)('filter');
  const forward = table.chains.find((chain) => chain.name === 'FORWARD')!;
  const zeta = table.chains.find((chain) => chain.name === 'zeta')!;

  it('scales by 1000 with rounding into K, M, G and T, in the policy line too', () => {
    expect(listAll(table, { verbose: true })).toBe(COUNTED_V);
  });

  it('prints exact numbers with -x, in columns iptables does not widen', () => {
    expect(listAll(table, { verbose: true, exact: true, lineNumbers: true })).toBe(COUNTED_VX_LINES);
  });

  it('puts -S -v counters between the matches and the target', () => {
    expect(listSpecs(table, table.chains, true)).toBe(COUNTED_SPECS_V);
  });

  it('lists one chain, and one rule of a chain alone (nothing when it has no such rule)', () => {
    expect(listRule(table, forward, 3, options({ verbose: true, numeric: true }))).toBe(` 100K 99999 alpha      0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto] 
`);
    expect(listRule(table, forward, 4, options({}))).toBe('');
    expect(listSpec(table, forward, 2, true)).toBe(`-A FORWARD -c 1234567890123456 9007199254740991 -j alpha
`);
    expect(listSpecs(table, [zeta], false)).toBe(`-N zeta
-A zeta -j RETURN
`);
    expect(listChains(table, [zeta], options({ numeric: true, lineNumbers: true }))).toBe(`Chain zeta (1 references)
num  target     prot opt source               destination         
1    RETURN     0    --  0.0.0.0/0            0.0.0.0/0           
`);
  });
});
