/**
 * SNAT, DNAT and MASQUERADE as rules: accepted where the kernel accepts them, printed as
 * iptables-save prints them (the expected lines were taken from iptables-save 1.8.9 here), refused
 * where the kernel refuses them, and binding the connection when they run.
 */
import { describe, expect, it } from 'vitest';
import { ConntrackCore } from '../../../netfilter/conntrack/conntrack-core.ts';
import { createTrackers, genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { HelperRegistry } from '../../../netfilter/helpers/helper-registry.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import { RuleTables, RulesError } from '../../../netfilter/tables/index.ts';
import { NatCore } from '../../../nat/nat-core.ts';
import { natTargetTypes } from '../../../nat/nat-targets.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { Packet } from '../../../router/core/packet.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { tcpPacket } from '../../support/packets.ts';
import { LAN, Recorder, WAN, section } from '../tables/support.ts';

function tables() {
  const core = new ConntrackCore({ trackers: createTrackers(), generic: genericTracker, helpers: new HelperRegistry(), buckets: 64 });
  const nat = new NatCore(core);
  const recorder = new Recorder();
  return { core, rules: new RuleTables({ reject: recorder.reject, log: recorder.log, knownHelper: () => true, extraTargets: natTargetTypes(nat) }) };
}

const CANONICAL = [
  '-A PREROUTING -i wan0 -p tcp -m tcp --dport 21 -j DNAT --to-destination 10.0.1.2',
  '-A PREROUTING -i wan0 -p tcp -m tcp --dport 2121 -j DNAT --to-destination 10.0.1.2:21 --random --persistent',
  '-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.1.2-10.0.1.5:8080-8090',
  '-A POSTROUTING -o wan0 -j MASQUERADE',
  '-A POSTROUTING -o wan1 -p tcp -j MASQUERADE --to-ports 1024-2000 --random',
  '-A POSTROUTING -o wan3 -p udp -j SNAT --to-source :5000-6000',
  '-A POSTROUTING -o wan2 -j SNAT --to-source 203.0.113.1-203.0.113.5 --random-fully --persistent',
];

describe('NAT targets', () => {
  it('print as iptables-save prints them', () => {
    const { rules } = tables();
    rules.load(section('nat', CANONICAL.join('\n')), 'rules', 0);
    const saved = rules.save(false).split('\n').filter((line) => line.startsWith('-A'));
    expect(saved).toEqual(CANONICAL);
  });

  it.each([
    ['SNAT in PREROUTING', '-A PREROUTING -j SNAT --to-source 1.2.3.4', 'SNAT is only valid in the POSTROUTING and INPUT chains'],
    ['DNAT in POSTROUTING', '-A POSTROUTING -j DNAT --to-destination 1.2.3.4', 'DNAT is only valid in the PREROUTING and OUTPUT chains'],
    ['MASQUERADE in OUTPUT', '-A OUTPUT -j MASQUERADE', 'MASQUERADE is only valid in the POSTROUTING chains'],
    ['ports without a port protocol', '-A POSTROUTING -j SNAT --to-source 1.2.3.4:80', 'needs -p tcp, udp, sctp or dccp'],
    ['a bad address', '-A POSTROUTING -j SNAT --to-source 1.2.3.400', 'bad address "1.2.3.400"'],
    ['SNAT without --to-source', '-A POSTROUTING -j SNAT', 'SNAT needs --to-source'],
  ])('refuses %s', (_, rule, message) => {
    const { rules } = tables();
    expect(() => rules.load(section('nat', rule), 'rules', 0)).toThrow(RulesError);
    expect(() => rules.load(section('nat', rule), 'rules', 0)).toThrow(message);
  });

  it('MASQUERADE binds the connection to the egress interface address', () => {
    const { core, rules } = tables();
    rules.load(section('nat', '-A POSTROUTING -o wan0 -j MASQUERADE'), 'rules', 0);
    const packet = new Packet(tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 9 }), LAN);
    packet.outInterface = WAN;
    core.track(packet, Hook.PRE_ROUTING);
    expect(rules.runNatChain(Hook.POST_ROUTING, packet)).toBe(Verdict.ACCEPT);
    expect(formatIpv4Address(packet.conntrack!.tuples[1].dst)).toBe('203.0.113.1');
  });
});
