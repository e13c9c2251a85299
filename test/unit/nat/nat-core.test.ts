import { describe, expect, it } from 'vitest';
import { ConntrackCore } from '../../../netfilter/conntrack/conntrack-core.ts';
import { formatConnection } from '../../../netfilter/conntrack/format.ts';
import { Status } from '../../../netfilter/conntrack/status.ts';
import { createTrackers, genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { HelperRegistry } from '../../../netfilter/helpers/helper-registry.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import { ManipType, NatCore } from '../../../nat/nat-core.ts';
import { NatRangeFlag, parseNatRange } from '../../../nat/nat-range.ts';
import { Packet } from '../../../router/core/packet.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { icmpPacket, tcpPacket, udpPacket } from '../../support/packets.ts';

function setup() {
  const clock = { ms: 1_000_000 };
  const core = new ConntrackCore({ trackers: createTrackers(), generic: genericTracker, helpers: new HelperRegistry(), now: () => clock.ms, buckets: 64 });
  let seed = 1;
  // A repeatable "random" so a failure can be reproduced.
  const nat = new NatCore(core, () => ((seed = (seed * 48271) % 2147483647) / 2147483647));
  /** Tracks a new connection's first packet (not yet confirmed). */
  const first = (buf: Buffer): Packet => {
    const packet = new Packet(buf, null);
    expect(core.track(packet, Hook.PRE_ROUTING)).toBe(Verdict.ACCEPT);
    return packet;
  };
  const confirm = (packet: Packet): void => void core.confirm(packet);
  return { core, nat, first, confirm, clock };
}

const syn = (src: string, sport: number, dst = '203.0.113.2', dport = 80): Buffer =>
  tcpPacket({ src, dst }, { srcPort: sport, dstPort: dport, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 });

describe('NAT bindings', () => {
  it('SNAT keeps a free source port and records the mapping in the reply tuple', () => {
    const { nat, first, clock } = setup();
    const packet = first(syn('10.0.1.2', 40000));
    const entry = packet.conntrack!;
    expect(nat.setup(entry, parseNatRange('203.0.113.1'), ManipType.SRC)).toBe(true);
    expect(entry.status & (Status.SRC_NAT | Status.SRC_NAT_DONE)).toBe(Status.SRC_NAT | Status.SRC_NAT_DONE);
    expect(formatConnection(entry, clock.ms)).toBe(
      'tcp      6 120 SYN_SENT src=10.0.1.2 dst=203.0.113.2 sport=40000 dport=80 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=80 dport=40000 mark=0 use=1',
    );
  });

  it('moves the port when another connection holds the mapped tuple, keeping the port class', () => {
    const { nat, first, confirm } = setup();
    for (const [sport, low, high] of [
      [40000, 1024, 65535],
      [800, 600, 1023],
      [300, 1, 511],
    ] as const) {
      const a = first(syn('10.0.1.2', sport));
      nat.setup(a.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
      confirm(a);
      const b = first(syn('10.0.1.3', sport));
      nat.setup(b.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
      const mapped = b.conntrack!.tuples[1].dstPort;
      expect(mapped).not.toBe(sport);
      expect(mapped).toBeGreaterThanOrEqual(low);
      expect(mapped).toBeLessThanOrEqual(high);
    }
  });

  it('honours a port range, and maps a client to the same address of an address range every time', () => {
    const { nat, first } = setup();
    const a = first(syn('10.0.1.2', 40000));
    nat.setup(a.conntrack!, parseNatRange('198.51.100.10-198.51.100.20:5000-5010'), ManipType.SRC);
    const reply = a.conntrack!.tuples[1];
    expect(reply.dstPort).toBeGreaterThanOrEqual(5000);
    expect(reply.dstPort).toBeLessThanOrEqual(5010);
    const address = formatIpv4Address(reply.dst);
    const b = first(syn('10.0.1.2', 40001));
    nat.setup(b.conntrack!, parseNatRange('198.51.100.10-198.51.100.20:5000-5010'), ManipType.SRC);
    expect(formatIpv4Address(b.conntrack!.tuples[1].dst)).toBe(address);
  });

  /**
   * What a kernel 6.x chose for UDP from 10.0.1.2..9 (conntrack -L): SNAT --to-source
   * 198.51.100.10-198.51.100.13 towards 203.0.113.2 and 203.0.113.77, the same with --persistent
   * (the destination no longer counts), and DNAT --to-destination 203.0.113.10-203.0.113.13 of
   * traffic to 198.18.0.1. The last octet of the chosen address for sources .2 to .9.
   */
  it.each([
    ['SNAT', '198.51.100.10-198.51.100.13', '203.0.113.2', [13, 11, 12, 13, 12, 10, 12, 13]],
    ['SNAT', '198.51.100.10-198.51.100.13', '203.0.113.77', [13, 12, 12, 11, 12, 10, 12, 11]],
    ['SNAT --persistent', '198.51.100.10-198.51.100.13', '203.0.113.2', [13, 12, 13, 12, 12, 11, 11, 10]],
    ['SNAT --persistent', '198.51.100.10-198.51.100.13', '203.0.113.77', [13, 12, 13, 12, 12, 11, 11, 10]],
    ['DNAT', '203.0.113.10-203.0.113.13', '198.18.0.1', [10, 12, 12, 10, 11, 10, 11, 12]],
  ] as const)('%s to %s towards %s picks the address the kernel picks', (target, to, dst, kernelChoice) => {
    const { nat, first } = setup();
    const range = parseNatRange(to);
    if (target.endsWith('--persistent')) range.flags |= NatRangeFlag.PERSISTENT;
    const manip = target.startsWith('SNAT') ? ManipType.SRC : ManipType.DST;
    const chosen = [2, 3, 4, 5, 6, 7, 8, 9].map((host) => {
      const packet = first(udpPacket({ src: `10.0.1.${host}`, dst }, { srcPort: 40000, dstPort: 5002 }));
      nat.setup(packet.conntrack!, range, manip);
      const reply = packet.conntrack!.tuples[1];
      return Number(formatIpv4Address(manip === ManipType.SRC ? reply.dst : reply.src).split('.')[3]);
    });
    expect(chosen).toEqual(kernelChoice);
  });

  it('reuses the mapping an earlier connection from the same source got (endpoint-independent)', () => {
    const { nat, first, confirm } = setup();
    const udp = (dst: string): Buffer => udpPacket({ src: '10.0.1.2', dst }, { srcPort: 5060, dstPort: 5060, payload: Buffer.from('x') });
    // Another host holds 203.0.113.1:5060, so the first mapping moves the port...
    const other = first(udpPacket({ src: '10.0.1.9', dst: '203.0.113.2' }, { srcPort: 5060, dstPort: 5060 }));
    nat.setup(other.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
    confirm(other);
    const a = first(udp('203.0.113.2'));
    nat.setup(a.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
    confirm(a);
    const mapped = a.conntrack!.tuples[1].dstPort;
    expect(mapped).not.toBe(5060);
    // ...and the same source towards another destination gets that same mapped port.
    const b = first(udp('203.0.113.3'));
    nat.setup(b.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
    expect(b.conntrack!.tuples[1].dstPort).toBe(mapped);
  });

  it('DNAT rewrites the destination and keeps the port without a port range', () => {
    const { nat, first, clock } = setup();
    const packet = first(syn('198.51.100.7', 50000, '203.0.113.1', 21));
    nat.setup(packet.conntrack!, parseNatRange('10.0.1.2'), ManipType.DST);
    expect(formatConnection(packet.conntrack!, clock.ms)).toContain('[UNREPLIED] src=10.0.1.2 dst=198.51.100.7 sport=21 dport=50000');
    expect(packet.conntrack!.status & Status.DST_NAT).toBeTruthy();
  });

  it('translates ICMP echo ids on a clash', () => {
    const { nat, first, confirm } = setup();
    const ping = (src: string): Buffer => icmpPacket({ src, dst: '203.0.113.2' }, { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x00070001 });
    const a = first(ping('10.0.1.2'));
    nat.setup(a.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
    confirm(a);
    const b = first(ping('10.0.1.3'));
    nat.setup(b.conntrack!, parseNatRange('203.0.113.1'), ManipType.SRC);
    expect(a.conntrack!.tuples[1].srcPort).toBe(7);
    expect(b.conntrack!.tuples[1].srcPort).not.toBe(7);
  });

  it('makes a null binding that only moves a clashing port', () => {
    const { nat, first, confirm } = setup();
    const a = first(syn('10.0.1.2', 40000));
    nat.setup(a.conntrack!, parseNatRange('10.0.1.3'), ManipType.SRC);
    confirm(a);
    const b = first(syn('10.0.1.3', 40000));
    expect(nat.setupNull(b.conntrack!, ManipType.SRC)).toBe(true);
    expect(formatIpv4Address(b.conntrack!.tuples[1].dst)).toBe('10.0.1.3');
    expect(b.conntrack!.tuples[1].dstPort).not.toBe(40000);
    const c = first(syn('10.0.1.4', 40000));
    nat.setupNull(c.conntrack!, ManipType.SRC);
    expect(c.conntrack!.status & Status.SRC_NAT).toBe(0);
    expect(c.conntrack!.status & Status.SRC_NAT_DONE).toBeTruthy();
  });
});
