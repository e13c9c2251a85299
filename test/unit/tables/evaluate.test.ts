import { describe, expect, it } from 'vitest';
import { Hook, Priority, Verdict, type HookPoint } from '../../../router/core/hooks.ts';
import { RuleTables } from '../../../netfilter/tables/index.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { IPV4_FLAG_MF, IpProtocol } from '../../../router/wire/ipv4.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { icmpPacket, rawPacket, tcpPacket, udpPacket } from '../../support/packets.ts';
import { LAN, Recorder, WAN, loaded, packet, runHook, section } from './support.ts';

const tcp = (src: string, dst: string, srcPort: number, dstPort: number, flags: number = TcpFlag.SYN, payload?: Uint8Array): Buffer =>
  tcpPacket({ src, dst }, { srcPort, dstPort, seq: 1000, ack: flags & TcpFlag.ACK ? 5000 : 0, flags, window: 512, ...(payload ? { payload } : {}) });
const udp = (src: string, dst: string, srcPort: number, dstPort: number): Buffer => udpPacket({ src, dst }, { srcPort, dstPort, payload: Buffer.from('hi') });
const ping = (src: string, dst: string): Buffer => icmpPacket({ src, dst }, { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x00070001 });

const CLIENT_WEB = tcp('10.0.1.2', '203.0.113.2', 40000, 80);

/** A FORWARD chain that marks matches by LOG prefix "hit" and drops them; anything else is accepted. */
function forwardVerdict(rule: string, buf: Buffer, input = LAN, output = WAN): Verdict {
  const { tables } = loaded(section('filter', `-A FORWARD ${rule} -j DROP`));
  return runHook(tables, Hook.FORWARD, packet(buf, input, output));
}

const matches = (rule: string, buf: Buffer, input = LAN, output = WAN): boolean => forwardVerdict(rule, buf, input, output) === Verdict.DROP;

describe('matches on packets', () => {
  it('-s and -d: address, CIDR, dotted masks, inversion', () => {
    expect(matches('-s 10.0.1.2', CLIENT_WEB)).toBe(true);
    expect(matches('-s 10.0.1.3', CLIENT_WEB)).toBe(false);
    expect(matches('-s 10.0.1.0/24', CLIENT_WEB)).toBe(true);
    expect(matches('-s 10.0.2.0/24', CLIENT_WEB)).toBe(false);
    expect(matches('! -s 10.0.1.0/24', CLIENT_WEB)).toBe(false);
    expect(matches('! -s 10.0.2.0/24', CLIENT_WEB)).toBe(true);
    expect(matches('-d 203.0.113.0/255.255.255.0', CLIENT_WEB)).toBe(true);
    expect(matches('-d 0.0.113.0/0.255.255.0', CLIENT_WEB)).toBe(true);
    expect(matches('! -d 203.0.113.2', CLIENT_WEB)).toBe(false);
    expect(matches('-s 10.0.1.2,10.0.9.9', udp('10.0.9.9', '1.1.1.1', 1, 2))).toBe(true);
  });

  it('-i and -o: exact names, + wildcards, inversion', () => {
    expect(matches('-i lan0', CLIENT_WEB)).toBe(true);
    expect(matches('-i lan', CLIENT_WEB)).toBe(false);
    expect(matches('-i lan+', CLIENT_WEB)).toBe(true);
    expect(matches('-i wan+', CLIENT_WEB)).toBe(false);
    expect(matches('! -i lan0', CLIENT_WEB)).toBe(false);
    expect(matches('! -i wan0', CLIENT_WEB)).toBe(true);
    expect(matches('-o wan0', CLIENT_WEB)).toBe(true);
    expect(matches('! -o wan+', CLIENT_WEB)).toBe(false);
    expect(matches('-i + -o +', CLIENT_WEB)).toBe(true);
    expect(matches('! -i +', CLIENT_WEB)).toBe(false);
  });

  it('-i and -o see the devices the kernel hands each hook', () => {
    // A user chain escapes iptables' chain-name checks on -i and -o, so every hook can test both.
    const { tables } = loaded(section('mangle', ':chk - [0:0]\n-A PREROUTING -j chk\n-A OUTPUT -j chk\n-A POSTROUTING -j chk\n-A chk -i lan0 -j MARK --or-mark 1\n-A chk -o wan0 -j MARK --or-mark 2'));
    const markAt = (hook: HookPoint): number => {
      const made = packet(CLIENT_WEB, LAN, WAN);
      runHook(tables, hook, made);
      return made.mark;
    };
    // No output device before routing; none for input on OUTPUT; both on POSTROUTING, where a
    // forwarded packet keeps its input device (Linux 6.18 logs IN=lan0 OUT=wan0 there).
    expect(markAt(Hook.PRE_ROUTING)).toBe(1);
    expect(markAt(Hook.LOCAL_OUT)).toBe(2);
    expect(markAt(Hook.POST_ROUTING)).toBe(3);
  });

  it('-p by name and number, with inversion; -p all matches anything', () => {
    const gre = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, IpProtocol.GRE, Buffer.from([0x20, 0x01, 0x88, 0x0b, 0, 0, 0, 1]));
    expect(matches('-p tcp', CLIENT_WEB)).toBe(true);
    expect(matches('-p 6', CLIENT_WEB)).toBe(true);
    expect(matches('-p udp', CLIENT_WEB)).toBe(false);
    expect(matches('! -p udp', CLIENT_WEB)).toBe(true);
    expect(matches('! -p tcp', CLIENT_WEB)).toBe(false);
    expect(matches('-p gre', gre)).toBe(true);
    expect(matches('-p 47', gre)).toBe(true);
    expect(matches('-p icmp', gre)).toBe(false);
    expect(matches('-p all', gre)).toBe(true);
  });

  it('--sport and --dport: single ports, ranges, open ranges, inversion (tcp and udp)', () => {
    expect(matches('-p tcp --dport 80', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp --dport 81', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp --dport 1:80', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp --dport 81:', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp --sport 40000:', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp ! --dport 80', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp ! --sport :39999', CLIENT_WEB)).toBe(true);
    expect(matches('-p udp --dport 53', udp('10.0.1.2', '9.9.9.9', 5353, 53))).toBe(true);
    expect(matches('-p udp --sport 5353 --dport 54', udp('10.0.1.2', '9.9.9.9', 5353, 53))).toBe(false);
    expect(matches('-p udp ! --dport 53', udp('10.0.1.2', '9.9.9.9', 5353, 53))).toBe(false);
    expect(matches('-p tcp --dport 53', udp('10.0.1.2', '9.9.9.9', 5353, 53))).toBe(false);
  });

  it('--tcp-flags and --syn, with inversion', () => {
    const synAck = tcp('203.0.113.2', '10.0.1.2', 80, 40000, TcpFlag.SYN | TcpFlag.ACK);
    expect(matches('-p tcp --syn', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp --syn', synAck)).toBe(false);
    expect(matches('-p tcp ! --syn', synAck)).toBe(true);
    expect(matches('-p tcp --tcp-flags SYN,ACK SYN,ACK', synAck)).toBe(true);
    expect(matches('-p tcp --tcp-flags ALL SYN', synAck)).toBe(false);
    expect(matches('-p tcp ! --tcp-flags ALL SYN', synAck)).toBe(true);
    expect(matches('-p tcp --tcp-flags ALL NONE', tcp('1.1.1.1', '2.2.2.2', 1, 2, 0))).toBe(true);
  });

  it('-m multiport: --sports, --dports, --ports with ranges and inversion', () => {
    expect(matches('-p tcp -m multiport --dports 22,80,443', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp -m multiport --dports 22,443', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp -m multiport --dports 22,79:81', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp -m multiport --sports 80', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp -m multiport --ports 40000,1', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp -m multiport --ports 22,80', CLIENT_WEB)).toBe(true);
    expect(matches('-p tcp -m multiport --ports 1:79', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp -m multiport ! --dports 80', CLIENT_WEB)).toBe(false);
    expect(matches('-p tcp -m multiport ! --dports 81', CLIENT_WEB)).toBe(true);
    expect(matches('-p udp -m multiport --dports 53', udp('10.0.1.2', '9.9.9.9', 5353, 53))).toBe(true);
  });

  it('--icmp-type: names, numbers, type/code, any, inversion', () => {
    const echo = ping('10.0.1.2', '203.0.113.2');
    const portUnreachable = icmpPacket({ src: '203.0.113.2', dst: '10.0.1.2' }, { type: 3, code: 3, data: echo.subarray(0, 28) });
    expect(matches('-p icmp --icmp-type echo-request', echo)).toBe(true);
    expect(matches('-p icmp --icmp-type ping', echo)).toBe(true);
    expect(matches('-p icmp --icmp-type echo-reply', echo)).toBe(false);
    expect(matches('-p icmp --icmp-type 8/0', echo)).toBe(true);
    expect(matches('-p icmp --icmp-type 8/1', echo)).toBe(false);
    expect(matches('-p icmp --icmp-type any', echo)).toBe(true);
    expect(matches('-p icmp ! --icmp-type echo-request', echo)).toBe(false);
    expect(matches('-p icmp --icmp-type destination-unreachable', portUnreachable)).toBe(true);
    expect(matches('-p icmp --icmp-type port-unreachable', portUnreachable)).toBe(true);
    expect(matches('-p icmp --icmp-type host-unreachable', portUnreachable)).toBe(false);
    expect(matches('-p icmp --icmp-type 3/3', portUnreachable)).toBe(true);
  });

  it('-m mark: value, mask, inversion; -m comment always matches', () => {
    const marked = (mark: number): boolean => {
      const { tables } = loaded(section('filter', '-A FORWARD -m mark --mark 0x10/0xf0 -m comment --comment "mark 1x" -j DROP'));
      const made = packet(CLIENT_WEB);
      made.mark = mark;
      return runHook(tables, Hook.FORWARD, made) === Verdict.DROP;
    };
    expect(marked(0x1f)).toBe(true);
    expect(marked(0x20)).toBe(false);
    const { tables } = loaded(section('filter', '-A FORWARD -m mark ! --mark 7 -j DROP'));
    const seven = packet(CLIENT_WEB);
    seven.mark = 7;
    expect(runHook(tables, Hook.FORWARD, seven)).toBe(Verdict.ACCEPT);
    expect(runHook(tables, Hook.FORWARD, packet(CLIENT_WEB))).toBe(Verdict.DROP);
  });
});

describe('fragments and short headers', () => {
  // A non-first fragment of a TCP datagram: offset 185 (1480 bytes), carrying payload bytes only.
  const laterFragment = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2', flagsFragment: 185 }, IpProtocol.TCP, Buffer.alloc(40, 0x50));
  const firstFragment = tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2', flagsFragment: IPV4_FLAG_MF }, { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: TcpFlag.ACK, window: 1 });

  it('port, flag and multiport matches never match a non-first fragment; -p tcp still does', () => {
    expect(matches('-p tcp', laterFragment)).toBe(true);
    expect(matches('-p tcp --dport 0:65535', laterFragment)).toBe(false);
    expect(matches('-p tcp ! --dport 80', laterFragment)).toBe(false);
    expect(matches('-p tcp -m multiport ! --dports 80', laterFragment)).toBe(false);
    const udpLater = rawPacket({ src: '10.0.1.2', dst: '9.9.9.9', flagsFragment: 100 }, IpProtocol.UDP, Buffer.alloc(16));
    expect(matches('-p udp ! --dport 53', udpLater)).toBe(false);
    expect(matches('-p tcp --dport 80', firstFragment)).toBe(true);
  });

  it('-f matches second and later fragments only; ! -f the rest', () => {
    expect(matches('-f', laterFragment)).toBe(true);
    expect(matches('-f', firstFragment)).toBe(false);
    expect(matches('! -f', firstFragment)).toBe(true);
    expect(matches('! -f', laterFragment)).toBe(false);
  });

  it('a TCP fragment at offset 1 and a cut-short header are dropped at once (hotdrop), whatever follows', () => {
    const offsetOne = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2', flagsFragment: 1 }, IpProtocol.TCP, Buffer.alloc(12));
    const shortTcp = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, IpProtocol.TCP, Buffer.alloc(12));
    const shortUdp = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, IpProtocol.UDP, Buffer.alloc(6));
    const { tables } = loaded(section('filter', '-A FORWARD -p tcp ! --dport 1 -j ACCEPT\n-A FORWARD -p udp --dport 1 -j ACCEPT\n-A FORWARD -j ACCEPT'));
    expect(runHook(tables, Hook.FORWARD, packet(offsetOne))).toBe(Verdict.DROP);
    expect(runHook(tables, Hook.FORWARD, packet(shortTcp))).toBe(Verdict.DROP);
    expect(runHook(tables, Hook.FORWARD, packet(shortUdp))).toBe(Verdict.DROP);
    expect(tables.save(true)).toContain('[0:0] -A FORWARD -j ACCEPT');
    const later = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2', flagsFragment: 2 }, IpProtocol.TCP, Buffer.alloc(12));
    expect(runHook(tables, Hook.FORWARD, packet(later))).toBe(Verdict.ACCEPT);
  });
});

describe('chains, policies and counters', () => {
  const TEXT = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
:ssh - [0:0]
:tail - [0:0]
-A FORWARD -p tcp --dport 80 -j web
-A FORWARD -p tcp --dport 22 -g ssh
-A FORWARD -p udp -j RETURN
-A FORWARD -p tcp --dport 443 -j ACCEPT
-A web -s 10.0.1.99 -j DROP
-A web -j LOG --log-prefix web
-A web -s 10.0.1.2 -j RETURN
-A web -j ACCEPT
-A ssh -j tail
-A ssh -s 10.0.1.2 -j RETURN
-A ssh -j ACCEPT
-A tail -j LOG --log-prefix tail
COMMIT
`;

  it('-j runs a chain and RETURN comes back after the jump; the chain end does too', () => {
    const { tables, recorder } = loaded(TEXT);
    expect(runHook(tables, Hook.FORWARD, packet(CLIENT_WEB))).toBe(Verdict.DROP);
    expect(recorder.lines).toHaveLength(1);
    expect(runHook(tables, Hook.FORWARD, packet(tcp('10.0.1.3', '203.0.113.2', 40000, 80)))).toBe(Verdict.ACCEPT);
    expect(runHook(tables, Hook.FORWARD, packet(tcp('10.0.1.99', '203.0.113.2', 40000, 80)))).toBe(Verdict.DROP);
    expect(recorder.lines).toHaveLength(2);
  });

  it('-g replaces the chain: its RETURN goes to the policy, not back to the rule after the -g', () => {
    const { tables, recorder } = loaded(TEXT.replace(':FORWARD DROP', ':FORWARD ACCEPT').replace('-A FORWARD -p udp -j RETURN', '-A FORWARD -p tcp -j DROP'));
    expect(runHook(tables, Hook.FORWARD, packet(tcp('10.0.1.2', '203.0.113.2', 40000, 22)))).toBe(Verdict.ACCEPT);
    expect(recorder.lines.map((line) => line.slice(0, 4))).toEqual(['tail']);
    expect(runHook(tables, Hook.FORWARD, packet(tcp('10.0.1.3', '203.0.113.2', 40000, 22)))).toBe(Verdict.ACCEPT);
  });

  it('RETURN in a built-in chain and its end both apply the policy', () => {
    const { tables } = loaded(TEXT);
    expect(runHook(tables, Hook.FORWARD, packet(udp('10.0.1.2', '9.9.9.9', 1, 53)))).toBe(Verdict.DROP);
    expect(runHook(tables, Hook.FORWARD, packet(ping('10.0.1.2', '9.9.9.9')))).toBe(Verdict.DROP);
    expect(runHook(tables, Hook.FORWARD, packet(tcp('10.0.1.2', '9.9.9.9', 1, 443)))).toBe(Verdict.ACCEPT);
  });

  it('counts packets and IP total-length bytes on each rule that matched and on the policy', () => {
    const { tables } = loaded(TEXT);
    const web = packet(tcp('10.0.1.3', '203.0.113.2', 40000, 80, TcpFlag.ACK, Buffer.alloc(60)));
    runHook(tables, Hook.FORWARD, web);
    runHook(tables, Hook.FORWARD, packet(udp('10.0.1.2', '9.9.9.9', 1, 53)));
    runHook(tables, Hook.FORWARD, packet(ping('10.0.1.2', '9.9.9.9')));
    const saved = tables.save(true);
    expect(saved).toContain(':FORWARD DROP [2:58]\n');
    expect(saved).toContain('[1:100] -A FORWARD -p tcp -m tcp --dport 80 -j web\n');
    expect(saved).toContain('[1:30] -A FORWARD -p udp -j RETURN\n');
    expect(saved).toContain('[0:0] -A web -s 10.0.1.99/32 -j DROP\n');
    expect(saved).toContain('[1:100] -A web -j LOG --log-prefix web\n');
    expect(saved).toContain('[0:0] -A web -s 10.0.1.2/32 -j RETURN\n');
    expect(saved).toContain('[1:100] -A web -j ACCEPT\n');
    expect(saved).toContain(':INPUT ACCEPT [0:0]\n');
  });

  it('starts counters from the text with iptables-restore -c, and apply() starts them there again', () => {
    const text = '*filter\n:FORWARD ACCEPT [10:1000]\n[5:500] -A FORWARD -p tcp\nCOMMIT\n';
    const tables = new RuleTables(new Recorder());
    const ruleset = tables.parse(text, 'test.rules', 0, { keepCounters: true });
    tables.apply(ruleset);
    runHook(tables, Hook.FORWARD, packet(CLIENT_WEB));
    expect(tables.save(true)).toContain(':FORWARD ACCEPT [11:1040]\n');
    expect(tables.save(true)).toContain('\n[6:540] -A FORWARD -p tcp\n');
    tables.apply(ruleset);
    expect(tables.save(true)).toContain(':FORWARD ACCEPT [10:1000]\n');
    expect(tables.save(true)).toContain('\n[5:500] -A FORWARD -p tcp\n');
  });
});

describe('hooks', () => {
  it('registers raw, mangle and filter at the kernel priorities; nat is run by the NAT hooks', () => {
    const tables = new RuleTables(new Recorder());
    const ops = tables.hookOps().map((op) => [op.name, op.hook, op.priority]);
    expect(ops).toEqual([
      ['iptables raw PREROUTING', Hook.PRE_ROUTING, Priority.RAW],
      ['iptables raw OUTPUT', Hook.LOCAL_OUT, Priority.RAW],
      ['iptables mangle PREROUTING', Hook.PRE_ROUTING, Priority.MANGLE],
      ['iptables mangle INPUT', Hook.LOCAL_IN, Priority.MANGLE],
      ['iptables mangle FORWARD', Hook.FORWARD, Priority.MANGLE],
      ['iptables mangle OUTPUT', Hook.LOCAL_OUT, Priority.MANGLE],
      ['iptables mangle POSTROUTING', Hook.POST_ROUTING, Priority.MANGLE],
      ['iptables filter INPUT', Hook.LOCAL_IN, Priority.FILTER],
      ['iptables filter FORWARD', Hook.FORWARD, Priority.FILTER],
      ['iptables filter OUTPUT', Hook.LOCAL_OUT, Priority.FILTER],
    ]);
    expect(Priority.RAW).toBe(-300);
    expect(Priority.MANGLE).toBe(-150);
  });

  it('runs each table on its own hooks, raw before mangle before filter on OUTPUT', () => {
    const { tables, recorder } = loaded(
      section('filter', '-A OUTPUT -j LOG --log-prefix filter') + section('raw', '-A OUTPUT -j LOG --log-prefix raw') + section('mangle', '-A OUTPUT -j LOG --log-prefix mangle'),
    );
    const local = packet(ping('203.0.113.1', '203.0.113.2'), null, null);
    expect(runHook(tables, Hook.LOCAL_OUT, local)).toBe(Verdict.ACCEPT);
    expect(recorder.lines.map((line) => line.split('IN=')[0])).toEqual(['raw', 'mangle', 'filter']);
    for (const hook of [Hook.PRE_ROUTING, Hook.LOCAL_IN, Hook.FORWARD, Hook.POST_ROUTING] as HookPoint[]) runHook(tables, hook, packet(CLIENT_WEB));
    expect(recorder.lines).toHaveLength(3);
  });

  it('lets everything through while no table is loaded, and the nat chains only once nat is', () => {
    const tables = new RuleTables(new Recorder());
    expect(runHook(tables, Hook.FORWARD, packet(CLIENT_WEB))).toBe(Verdict.ACCEPT);
    expect(tables.hasNatTable()).toBe(false);
    expect(tables.runNatChain(Hook.PRE_ROUTING, packet(CLIENT_WEB))).toBe(Verdict.ACCEPT);
    tables.load(section('nat', '-A PREROUTING -p tcp --dport 80 -j LOG --log-prefix nat\n-A POSTROUTING -j RETURN'), 'test.rules');
    expect(tables.hasNatTable()).toBe(true);
    expect(tables.runNatChain(Hook.PRE_ROUTING, packet(CLIENT_WEB, LAN, null))).toBe(Verdict.ACCEPT);
    expect(tables.runNatChain(Hook.POST_ROUTING, packet(CLIENT_WEB))).toBe(Verdict.ACCEPT);
    expect(tables.save(true)).toContain('[1:40] -A PREROUTING -p tcp -m tcp --dport 80 -j LOG --log-prefix nat\n');
    expect(tables.save(true)).toContain(':POSTROUTING ACCEPT [1:40]\n');
  });
});

describe('apply() while a packet is in a chain', () => {
  it('the packet finishes on the old ruleset; the next one walks the new', () => {
    const recorder = new Recorder();
    const tables = new RuleTables(recorder);
    tables.load(section('filter', '-A FORWARD -j LOG --log-prefix old\n-A FORWARD -j DROP'), 'old.rules');
    const next = tables.parse(section('filter', '-A FORWARD -j LOG --log-prefix new\n-A FORWARD -j ACCEPT'), 'new.rules');
    recorder.onLog = (line) => {
      if (line.startsWith('old')) tables.apply(next);
    };
    expect(runHook(tables, Hook.FORWARD, packet(CLIENT_WEB))).toBe(Verdict.DROP);
    expect(runHook(tables, Hook.FORWARD, packet(CLIENT_WEB))).toBe(Verdict.ACCEPT);
    expect(recorder.lines.map((line) => line.slice(0, 3))).toEqual(['old', 'new']);
    expect(tables.save(true)).toContain('[1:40] -A FORWARD -j LOG --log-prefix new\n[1:40] -A FORWARD -j ACCEPT\n');
  });
});

describe('hook ops of loaded tables only', () => {
  it('lists the ops of the tables loaded so far, as the kernel hooks in a table when it is created', () => {
    const tables = new RuleTables(new Recorder());
    expect(tables.loadedHookOps()).toEqual([]);
    tables.load(section('filter', '-A FORWARD -j ACCEPT'), 'rules', 0);
    expect(tables.loadedHookOps().map((op) => op.name)).toEqual(['iptables filter INPUT', 'iptables filter FORWARD', 'iptables filter OUTPUT']);
    tables.load(section('raw', '-A PREROUTING -j ACCEPT'), 'rules', 0);
    expect(tables.loadedHookOps()).toHaveLength(5);
  });
});
