/** Shared by the rule table tests: an env that records what REJECT and LOG do, packets with interfaces, hook runs. */
import { natTargetTypes } from '../../../nat/nat-targets.ts';
import { Conntrack } from '../../../netfilter/conntrack/conntrack-entry.ts';
import { genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { Tuple } from '../../../netfilter/conntrack/tuple.ts';
import { HookRegistry, Verdict, runChain, type HookPoint } from '../../../router/core/hooks.ts';
import { RuleTables, RulesError, type TablesEnv } from '../../../netfilter/tables/index.ts';
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import { Packet } from '../../../router/core/packet.ts';
import { ip } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

export const LAN: RouterInterface = { index: 0, name: 'lan0', address: ip('10.0.1.1'), prefixLength: 24, mtu: 1500, device: null, up: true };
export const WAN: RouterInterface = { index: 1, name: 'wan0', address: ip('203.0.113.1'), prefixLength: 24, mtu: 1500, device: null, up: true };

export class Recorder implements TablesEnv {
  readonly icmpErrors: { packet: Packet; type: number; code: number }[] = [];
  readonly resets: Packet[] = [];
  readonly lines: string[] = [];
  readonly helperQueries: [string, number][] = [];
  /** NAT's targets as a router built without the NAT engine offers them. */
  readonly extraTargets = natTargetTypes(null);
  onLog: ((line: string) => void) | null = null;

  readonly reject = {
    sendIcmpError: (packet: Packet, type: number, code: number): void => void this.icmpErrors.push({ packet, type, code }),
    sendTcpReset: (packet: Packet): void => void this.resets.push(packet),
  };

  readonly log = (line: string): void => {
    this.lines.push(line);
    this.onLog?.(line);
  };

  readonly knownHelper = (name: string, protocol: number): boolean => {
    this.helperQueries.push([name, protocol]);
    return (name === 'ftp' && protocol === 6) || (name === 'tftp' && protocol === 17);
  };
}

const HEADERS: Readonly<Record<string, string>> = {
  raw: ':PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]',
  mangle: ':PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]',
  nat: ':PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]',
  filter: ':INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]',
};

/** A whole `*table` section with all built-in chains at ACCEPT, then `body`. */
export function section(table: string, body: string): string {
  return `*${table}\n${HEADERS[table]}\n${body}\nCOMMIT\n`;
}

/** `keepCounters`: as iptables-restore -c. */
export function loaded(text: string, recorder = new Recorder(), keepCounters = false): { tables: RuleTables; recorder: Recorder } {
  const tables = new RuleTables(recorder);
  tables.load(text, 'test.rules', 0, { keepCounters });
  return { tables, recorder };
}

/** The `-A` lines iptables-save prints for a single section. */
export function savedRules(tables: RuleTables, withCounters = false): string[] {
  return tables
    .save(withCounters)
    .split('\n')
    .filter((line) => line.startsWith('-A') || line.startsWith('['));
}

/**
 * Runs one hook's chain of the tables' own ops (raw, mangle, filter at their own priorities) on the
 * router's HookRegistry and runChain, as the router walks a hook. A component harness for the rule
 * tables, not a stack: nothing else is on the chain, so a test can hand the tables a packet with
 * the interfaces and conntrack state it is about (tests of packets through a whole router use
 * buildRouter, see test/support/router-bench.ts).
 */
export function runHook(tables: RuleTables, hook: HookPoint, packet: Packet): Verdict {
  const registry = new HookRegistry();
  for (const ops of tables.hookOps()) registry.register(ops);
  return runChain(registry.chain(hook), 0, packet, hook, { verdict: Verdict.ACCEPT, stoppedAt: 0 }).verdict;
}

export function packet(buf: Buffer, input: RouterInterface | null = LAN, output: RouterInterface | null = WAN): Packet {
  const made = new Packet(buf, input);
  made.outInterface = output;
  return made;
}

export function connection(status = 0): Conntrack {
  const entry = new Conntrack(genericTracker, new Tuple(1, 2, 47), new Tuple(2, 1, 47));
  entry.status = status;
  return entry;
}

/** The RulesError `text` is refused with (it fails the test if the text loads). */
export function refused(text: string, origin = 'test.rules'): RulesError {
  try {
    new RuleTables(new Recorder()).parse(text, origin);
  } catch (error) {
    if (error instanceof RulesError) return error;
    throw error;
  }
  throw new Error(`accepted: ${text}`);
}

/** A clock a test moves by hand, in ms, for the rules' and conntrack's time. */
export class ManualClock {
  ms = 1_000_000;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * A router built by buildRouter: lan0 10.0.1.1/24 and wan0 203.0.113.1/24 (default route via
 * 203.0.113.2), the given iptables-restore text, the clock and a LOG/NFLOG line list.
 */
export function firewall(rules: string, clock = new ManualClock(), lines: string[] = []): RouterBench {
  return new RouterBench(
    {
      interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
      routes: [{ to: 0, prefixLength: 0, via: ip('203.0.113.2'), dev: 'wan0' }],
      rules: { text: rules, origin: 'test.rules', firstLine: 0 },
    },
    { now: clock.now, logSink: (line) => void lines.push(line) },
  );
}

/** Tables in file order filter, raw, mangle; user chains and -g: a rule of every match and target iptables-save and -L were checked on. */
export const MIXED_RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:lan-in - [0:0]
-A FORWARD -i lan0 -s 10.0.1.2 -p tcp --dport 80 -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -p tcp --sport 1000:2000 -d 10.0.0.0/8 -o wan+ -j lan-in
-A FORWARD ! -p udp ! -s 10.0.0.1/24 -j LOG --log-prefix "x y " --log-level 4
-A FORWARD -p icmp --icmp-type echo-request -j REJECT
-A FORWARD -p tcp --syn -j REJECT --reject-with tcp-reset
-A FORWARD -p tcp --tcp-flags SYN,ACK,FIN SYN -m comment --comment "hello world" -j DROP
-A FORWARD -p udp -m multiport --dports 53,1000:2000 -j ACCEPT
-A FORWARD -m state --state NEW -j ACCEPT
-A FORWARD -m helper --helper ftp -j ACCEPT
-A FORWARD -m mark --mark 0x1/0xff -j ACCEPT
-A FORWARD -m conntrack --ctstatus ASSURED,SEEN_REPLY -j ACCEPT
-A FORWARD -m conntrack --ctstate NEW --ctstatus ASSURED --ctdir reply -j ACCEPT
-A FORWARD -m conntrack --ctdir ORIGINAL
-A lan-in -j RETURN
-A FORWARD -g lan-in
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp --dport 21 -j CT --helper ftp
-A PREROUTING -p udp -j CT --notrack
-A PREROUTING -p gre -j NOTRACK
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j MARK --set-mark 5
COMMIT
`;
