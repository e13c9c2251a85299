/**
 * NAT on the hooks with a real conntrack: a MASQUERADE-like SNAT decided on the first packet,
 * every later packet rewritten in both directions from the entry, ICMP errors translated inside
 * and out, all checksums valid after incremental updates.
 */
import { describe, expect, it } from 'vitest';
import { ConntrackCore } from '../../../netfilter/conntrack/conntrack-core.ts';
import { createTrackers, genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { HelperRegistry } from '../../../netfilter/helpers/helper-registry.ts';
import { Hook, Verdict, type HookPoint } from '../../../router/core/hooks.ts';
import { ManipType, NatCore } from '../../../nat/nat-core.ts';
import { NatHooks } from '../../../nat/nat-hooks.ts';
import { parseNatRange } from '../../../nat/nat-range.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { Packet } from '../../../router/core/packet.ts';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { computeIpv4HeaderChecksum, ipv4Checksum, ipv4Dst, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpChecksumValid, tcpSrcPort, tcpDstPort } from '../../../router/wire/tcp.ts';
import { udpChecksum, udpChecksumValid, udpDstPort, udpSrcPort } from '../../../router/wire/udp.ts';
import { icmpPacket, tcpPacket, udpPacket } from '../../support/packets.ts';

const PUBLIC = '203.0.113.1';

function setup() {
  const core = new ConntrackCore({ trackers: createTrackers(), generic: genericTracker, helpers: new HelperRegistry(), buckets: 64 });
  const nat = new NatCore(core);
  const chainRuns: HookPoint[] = [];
  const hooks = new NatHooks(nat, {
    hasNatTable: () => true,
    // The nat table: -A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.1
    runNatChain: (hook, packet) => {
      chainRuns.push(hook);
      if (hook === Hook.POST_ROUTING && packet.conntrack) nat.setup(packet.conntrack, parseNatRange(PUBLIC), ManipType.SRC);
      return Verdict.ACCEPT;
    },
  });
  /** Forwarded: PRE_ROUTING (conntrack, DNAT), POST_ROUTING (SNAT, confirm). */
  const forward = (buf: Buffer): Packet => {
    const packet = new Packet(buf, null);
    core.track(packet, Hook.PRE_ROUTING);
    expect(hooks.nat(packet, Hook.PRE_ROUTING)).toBe(Verdict.ACCEPT);
    expect(hooks.nat(packet, Hook.POST_ROUTING)).toBe(Verdict.ACCEPT);
    core.confirm(packet);
    return packet;
  };
  return { core, forward, chainRuns };
}

function ipValid(buf: Buffer, at = 0): boolean {
  return ipv4Checksum(buf, at) === computeIpv4HeaderChecksum(buf, at);
}

describe('NAT hooks', () => {
  it('SNATs the first packet by rule, then rewrites both directions from the entry', () => {
    const { forward, chainRuns } = setup();
    const out = forward(udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 5000, dstPort: 53, payload: Buffer.from('query') }));
    expect([formatIpv4Address(ipv4Src(out.buf, 0)), udpSrcPort(out.buf, 20)]).toEqual([PUBLIC, 5000]);
    expect(ipValid(out.buf) && udpChecksumValid(out.buf, 20, out.buf.length - 20, ipv4Src(out.buf, 0), ipv4Dst(out.buf, 0))).toBe(true);
    expect(chainRuns).toEqual([Hook.PRE_ROUTING, Hook.POST_ROUTING]);
    const back = forward(udpPacket({ src: '203.0.113.2', dst: PUBLIC }, { srcPort: 53, dstPort: 5000, payload: Buffer.from('answer') }));
    expect([formatIpv4Address(ipv4Dst(back.buf, 0)), udpDstPort(back.buf, 20)]).toEqual(['10.0.1.2', 5000]);
    expect(ipValid(back.buf) && udpChecksumValid(back.buf, 20, back.buf.length - 20, ipv4Src(back.buf, 0), ipv4Dst(back.buf, 0))).toBe(true);
    // The nat table is consulted once per connection and manip type only.
    expect(chainRuns).toHaveLength(2);
  });

  it('keeps a zero UDP checksum zero, and keeps TCP checksums right', () => {
    const { forward } = setup();
    const noChecksum = udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 7000, dstPort: 53, payload: Buffer.from('q') });
    noChecksum.writeUInt16BE(0, 26);
    expect(udpChecksum(forward(noChecksum).buf, 20)).toBe(0);
    const syn = forward(tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 40000, dstPort: 80, seq: 9, ack: 0, flags: TcpFlag.SYN, window: 100 })).buf;
    expect(tcpSrcPort(syn, 20)).toBe(40000);
    expect(tcpChecksumValid(syn, 20, syn.length - 20, ipv4Src(syn, 0), ipv4Dst(syn, 0))).toBe(true);
    const synAck = forward(tcpPacket({ src: '203.0.113.2', dst: PUBLIC }, { srcPort: 80, dstPort: 40000, seq: 7, ack: 10, flags: TcpFlag.SYN | TcpFlag.ACK, window: 100 })).buf;
    expect([formatIpv4Address(ipv4Dst(synAck, 0)), tcpDstPort(synAck, 20)]).toEqual(['10.0.1.2', 40000]);
    expect(tcpChecksumValid(synAck, 20, synAck.length - 20, ipv4Src(synAck, 0), ipv4Dst(synAck, 0))).toBe(true);
  });

  it('translates an ICMP error about a NATed datagram, outside and in the quote', () => {
    const { forward } = setup();
    const out = forward(udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 5000, dstPort: 9999, payload: Buffer.from('knock') }));
    // The server answers what it saw (from 203.0.113.1) with port unreachable, quoting it.
    const error = forward(icmpPacket({ src: '203.0.113.2', dst: PUBLIC }, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: out.buf.subarray(0, 28) })).buf;
    expect(formatIpv4Address(ipv4Dst(error, 0))).toBe('10.0.1.2');
    const inner = 28;
    expect([formatIpv4Address(ipv4Src(error, inner)), udpSrcPort(error, inner + 20)]).toEqual(['10.0.1.2', 5000]);
    expect(ipValid(error) && ipValid(error, inner)).toBe(true);
    expect(internetChecksum(error, 20, error.length - 20)).toBe(0);
  });
});
