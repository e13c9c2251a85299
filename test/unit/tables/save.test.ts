import { describe, expect, it } from 'vitest';
import { ctime } from '../../../netfilter/tables/save.ts';
import { RuleTables } from '../../../netfilter/tables/index.ts';
import { MIXED_RULES, Recorder, loaded } from './support.ts';

const withoutComments = (text: string): string =>
  text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');


const MIXED_SAVED = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j MARK --set-xmark 0x5/0xffffffff
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp
-A PREROUTING -p udp -j CT --notrack
-A PREROUTING -p gre -j NOTRACK
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:lan-in - [0:0]
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
COMMIT
`;

/** All four tables, counters, -I positions, user chains declared out of order; checked with iptables-restore -c / iptables-save -c. */
const COUNTED = `*nat
:PREROUTING ACCEPT [1:2]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -s 1.2.3.4 -j ACCEPT
COMMIT
*filter
:INPUT ACCEPT [5:6]
:FORWARD DROP [7:8]
:OUTPUT ACCEPT [0:0]
:b - [3:4]
:a - [0:0]
[10:20] -A FORWARD -j a
-A FORWARD -j b
-I FORWARD -s 1.1.1.1
-I FORWARD 2 -s 2.2.2.2
[1:100] -A b -j RETURN
-A a -j RETURN
-A b -j DROP
-I a 1 -s 3.3.3.3
-I a 3 -s 4.4.4.4
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j MARK --set-mark 5/0xff
-A PREROUTING -j MARK --and-mark 0xf0
COMMIT
`;

const COUNTED_SAVED = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -j MARK --set-xmark 0x5/0xff
[0:0] -A PREROUTING -j MARK --set-xmark 0x0/0xffffff0f
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [5:6]
:FORWARD DROP [7:8]
:OUTPUT ACCEPT [0:0]
:a - [0:0]
:b - [0:0]
[0:0] -A FORWARD -s 1.1.1.1/32
[0:0] -A FORWARD -s 2.2.2.2/32
[10:20] -A FORWARD -j a
[0:0] -A FORWARD -j b
[0:0] -A a -s 3.3.3.3/32
[0:0] -A a -j RETURN
[0:0] -A a -s 4.4.4.4/32
[1:100] -A b -j RETURN
[0:0] -A b -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [1:2]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -s 1.2.3.4/32 -j ACCEPT
COMMIT
`;

describe('save', () => {
  it('prints a whole ruleset exactly as iptables-save does, tables in its order', () => {
    const { tables } = loaded(MIXED_RULES);
    expect(withoutComments(tables.save(false))).toBe(MIXED_SAVED);
  });

  it('starts every counter at zero without iptables-restore -c, as the kernel; a rule\'s own -c is kept', () => {
    const { tables } = loaded(COUNTED.replace('-A a -j RETURN', '-A a -c 5 500 -j RETURN'));
    const saved = withoutComments(tables.save(true));
    expect(saved).toBe(COUNTED_SAVED.replace(/\[\d+:\d+\]/g, '[0:0]').replace('[0:0] -A a -j RETURN', '[5:500] -A a -j RETURN'));
  });

  it('prints counters as iptables-save -c does; policy counters print without -c too', () => {
    const { tables } = loaded(COUNTED, new Recorder(), true);
    expect(withoutComments(tables.save(true))).toBe(COUNTED_SAVED);
    const plain = withoutComments(tables.save(false));
    expect(plain).toContain(':FORWARD DROP [7:8]\n');
    expect(plain).toContain('\n-A FORWARD -j a\n');
    expect(plain).not.toContain('[10:20]');
  });

  it('round-trips: what save prints parses back to the same text', () => {
    for (const text of [MIXED_RULES, COUNTED]) {
      const { tables } = loaded(text, new Recorder(), true);
      const once = tables.save(true);
      const { tables: again } = loaded(once, new Recorder(), true);
      expect(again.save(true)).toBe(once);
    }
  });

  it('wraps each table in the header and footer comments, with ctime dates', () => {
    const { tables } = loaded(COUNTED);
    const when = new Date(2026, 10, 3, 9, 5, 7);
    const lines = tables.save(false, when).split('\n');
    expect(lines[0]).toBe('# Generated by vrouter on Tue Nov  3 09:05:07 2026');
    expect(lines[1]).toBe('*mangle');
    expect(lines.filter((line) => line === '# Completed on Tue Nov  3 09:05:07 2026')).toHaveLength(4);
    expect(lines.at(-1)).toBe('');
    expect(ctime(new Date(2026, 0, 25, 23, 59, 0))).toBe('Sun Jan 25 23:59:00 2026');
  });

  it('prints only the tables that were loaded; an empty section still shows its chains', () => {
    const tables = new RuleTables(new Recorder());
    expect(tables.save(true)).toBe('');
    tables.load('*raw\nCOMMIT\n', 'test.rules');
    expect(withoutComments(tables.save(true))).toBe('*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n');
  });

  it('sorts user chains by name in byte order, as iptables-save does', () => {
    const { tables } = loaded('*filter\n:zeta - [0:0]\n:alpha - [0:0]\n:Beta - [0:0]\n-A zeta -j RETURN\n-A alpha -j RETURN\nCOMMIT\n');
    const chainLines = tables.save(false).split('\n').filter((line) => line.startsWith(':'));
    expect(chainLines).toEqual([':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':Beta - [0:0]', ':alpha - [0:0]', ':zeta - [0:0]']);
    expect(tables.save(false)).toContain('-A alpha -j RETURN\n-A zeta -j RETURN\n');
  });
});
