import { afterEach, describe, expect, it } from 'vitest';
import { udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';
import { firewall, loaded, refused, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

const TYPES = ['UNICAST', 'LOCAL', 'BROADCAST', 'MULTICAST'] as const;

/**
 * mangle PREROUTING rules that OR one mark bit per destination type the packet has: bit i for
 * TYPES[i], bit 8 + i for the same with --limit-iface-in, bit 16 for a BROADCAST source.
 */
const MARKING = section(
  'mangle',
  [
    ...TYPES.map((type, i) => `-A PREROUTING -m addrtype --dst-type ${type} -j MARK --or-mark ${1 << i}`),
    ...TYPES.map((type, i) => `-A PREROUTING -m addrtype --dst-type ${type} --limit-iface-in -j MARK --or-mark ${1 << (8 + i)}`),
    '-A PREROUTING -m addrtype --src-type BROADCAST -j MARK --or-mark 0x10000',
  ].join('\n'),
);

/** The types -m addrtype gives a datagram to `dst` arriving on `on`: [without a device, with --limit-iface-in]. */
function typesOf(dst: string, on = 'lan0', src = '10.0.1.2'): [string[], string[]] {
  const { packet } = bench.receive(udpPacket({ src, dst }, { srcPort: 68, dstPort: 67, payload: Buffer.from('x') }), on);
  const mark = packet!.mark;
  return [TYPES.filter((_, i) => mark & (1 << i)), TYPES.filter((_, i) => mark & (1 << (8 + i)))];
}

describe('-m addrtype on a router built by buildRouter: the route type in its local table', () => {
  it.each([
    ['10.0.1.1', ['LOCAL'], ['LOCAL']],
    ['203.0.113.1', ['LOCAL'], ['UNICAST']],
    ['10.0.1.255', ['BROADCAST'], ['BROADCAST']],
    ['203.0.113.255', ['BROADCAST'], ['UNICAST']],
    ['255.255.255.255', ['BROADCAST'], ['BROADCAST']],
    ['0.1.2.3', ['BROADCAST'], ['BROADCAST']],
    ['224.0.0.5', ['MULTICAST'], ['MULTICAST']],
    ['239.255.255.250', ['MULTICAST'], ['MULTICAST']],
    ['127.0.0.1', ['LOCAL'], ['UNICAST']],
    ['127.255.255.255', ['BROADCAST'], ['UNICAST']],
    ['198.51.100.7', ['UNICAST'], ['UNICAST']],
    ['10.0.1.0', ['UNICAST'], ['UNICAST']],
  ])('a datagram to %s arriving on lan0 is %j, and %j with --limit-iface-in', (dst, types, limited) => {
    bench = firewall(MARKING);
    expect(typesOf(dst)).toEqual([types, limited]);
  });

  it('judges the source as well: the LAN broadcast address as source is BROADCAST', () => {
    bench = firewall(MARKING);
    expect(bench.receive(udpPacket({ src: '10.0.1.255', dst: '255.255.255.255' }, { srcPort: 68, dstPort: 67, payload: Buffer.from('x') }), 'lan0').packet!.mark & 0x10000).toBe(0x10000);
    expect(bench.receive(udpPacket({ src: '10.0.1.2', dst: '255.255.255.255' }, { srcPort: 68, dstPort: 67, payload: Buffer.from('x') }), 'lan0').packet!.mark & 0x10000).toBe(0);
  });

  it('a /31 has no broadcast address, as the kernel lays out the local table', () => {
    bench = new RouterBench({
      interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('p2p0', '192.0.2.0/31')],
      rules: { text: MARKING, origin: 'test.rules', firstLine: 0 },
    });
    expect(typesOf('192.0.2.1', 'p2p0', '192.0.2.1')).toEqual([['UNICAST'], ['UNICAST']]);
    expect(typesOf('192.0.2.0', 'p2p0', '192.0.2.1')).toEqual([['LOCAL'], ['LOCAL']]);
  });
});

describe('-m addrtype: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['INPUT', '--src-type LOCAL', '--src-type LOCAL'],
    ['INPUT', '--src-type local', '--src-type LOCAL'],
    ['INPUT', '--src-type U', '--src-type UNSPEC'],
    ['INPUT', '! --dst-type LOCAL,BROADCAST --limit-iface-in', '! --dst-type LOCAL,BROADCAST --limit-iface-in'],
    ['INPUT', '--dst-type UNICAST,MULTICAST,ANYCAST,BLACKHOLE,UNREACHABLE,PROHIBIT,THROW,NAT,XRESOLVE,UNSPEC', '--dst-type UNSPEC,UNICAST,ANYCAST,MULTICAST,BLACKHOLE,UNREACHABLE,PROHIBIT,THROW,NAT,XRESOLVE'],
    ['INPUT', '--src-type LOCAL --dst-type LOCAL --limit-iface-in', '--src-type LOCAL --dst-type LOCAL --limit-iface-in'],
    ['FORWARD', '--limit-iface-out --dst-type b', '--dst-type BROADCAST --limit-iface-out'],
  ])('in %s, -m addrtype %s saves as -m addrtype %s', (chain, options, saved) => {
    expect(savedRules(loaded(section('filter', `-A ${chain} -m addrtype ${options}`)).tables)).toEqual([`-A ${chain} -m addrtype ${saved}`]);
  });

  it.each([
    ['INPUT', '', 'addrtype: you must specify --src-type or --dst-type'],
    ['INPUT', '--src-type FOO', 'addrtype: bad type "FOO"'],
    ['INPUT', '--src-type LOCALX', 'addrtype: bad type "LOCALX"'],
    ['INPUT', '--src-type LOCAL,,UNICAST', 'addrtype: bad type ",UNICAST"'],
    ['INPUT', '--src-type LOCAL,', 'addrtype: bad type ""'],
    ['INPUT', '--src-type LOCAL --src-type UNICAST', 'option "--src-type" can only be used once'],
    ['FORWARD', '--src-type LOCAL --limit-iface-in --limit-iface-out', 'addrtype: option "--limit-iface-in" cannot be used together with "--limit-iface-out"'],
    ['INPUT', '--src-type LOCAL --limit-iface-out', 'addrtype: output interface limitation not valid in PREROUTING and INPUT'],
    ['OUTPUT', '--src-type LOCAL --limit-iface-in', 'addrtype: input interface limitation not valid in POSTROUTING and OUTPUT'],
  ])('in %s, refuses -m addrtype %s as iptables and the kernel do', (chain, options, reason) => {
    expect(refused(section('filter', `-A ${chain} -m addrtype ${options}`)).message).toContain(`test.rules:5: ${reason}`);
  });
});
