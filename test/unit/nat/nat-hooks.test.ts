/**
 * NAT on the hooks with a real conntrack, in a router built by buildRouter: SNAT by rule decided on
 * the first packet, every later packet rewritten in both directions from the entry, ICMP errors
 * translated inside and out, all checksums valid after incremental updates.
 */
import { describe, expect, it } from 'vitest';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { internetChecksum } from '../../../router/wire/checksum.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { computeIpv4HeaderChecksum, ipv4Checksum, ipv4Dst, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpChecksumValid, tcpSrcPort, tcpDstPort } from '../../../router/wire/tcp.ts';
import { udpChecksum, udpChecksumValid, udpDstPort, udpSrcPort } from '../../../router/wire/udp.ts';
import { icmpPacket, tcpPacket, udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

const PUBLIC = '203.0.113.1';
const SNAT_RULE = '-A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.1';

/** lan0 10.0.1.1/24, wan0 203.0.113.1/24, and the nat table `SNAT_RULE`. */
function setup() {
  const bench = new RouterBench({
    interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
    rules: { text: `*nat\n${SNAT_RULE}\nCOMMIT\n`, origin: 'nat-hooks.rules', firstLine: 0 },
    conntrack: { buckets: 64 },
  });
  /** Forwarded: what left the router by the other side. */
  const forward = (buf: Buffer): { buf: Buffer } => {
    const arrivesBy = bench.ingressFor(ipv4Src(buf, 0)).name;
    const { sent, drops, forwarded } = bench.receive(buf);
    expect([forwarded, sent.length, drops]).toEqual([true, 1, []]);
    expect(sent[0]!.via).toBe(arrivesBy === 'lan0' ? 'wan0' : 'lan0');
    return { buf: sent[0]!.buf };
  };
  /** The nat table's chains with their packet counters, as `iptables-save -c` shows them. */
  const natCounters = (): string[] =>
    bench.netfilter.rules
      .save(true)
      .split('\n')
      .filter((line) => line.startsWith(':') || line.startsWith('['))
      .map((line) => line.replace(/\[(\d+):\d+\]/, '[$1]'));
  return { bench, forward, natCounters };
}

function ipValid(buf: Buffer, at = 0): boolean {
  return ipv4Checksum(buf, at) === computeIpv4HeaderChecksum(buf, at);
}

describe('NAT hooks', () => {
  it('SNATs the first packet by rule, then rewrites both directions from the entry', () => {
    const { forward, natCounters } = setup();
    const out = forward(udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 5000, dstPort: 53, payload: Buffer.from('query') }));
    expect([formatIpv4Address(ipv4Src(out.buf, 0)), udpSrcPort(out.buf, 20)]).toEqual([PUBLIC, 5000]);
    expect(ipValid(out.buf) && udpChecksumValid(out.buf, 20, out.buf.length - 20, ipv4Src(out.buf, 0), ipv4Dst(out.buf, 0))).toBe(true);
    // The first packet walked the nat table's PREROUTING (no rule: policy) and POSTROUTING (the SNAT rule).
    const afterFirst = [':PREROUTING ACCEPT [1]', ':INPUT ACCEPT [0]', ':OUTPUT ACCEPT [0]', ':POSTROUTING ACCEPT [0]', `[1] ${SNAT_RULE}`];
    expect(natCounters()).toEqual(afterFirst);
    const back = forward(udpPacket({ src: '203.0.113.2', dst: PUBLIC }, { srcPort: 53, dstPort: 5000, payload: Buffer.from('answer') }));
    expect([formatIpv4Address(ipv4Dst(back.buf, 0)), udpDstPort(back.buf, 20)]).toEqual(['10.0.1.2', 5000]);
    expect(ipValid(back.buf) && udpChecksumValid(back.buf, 20, back.buf.length - 20, ipv4Src(back.buf, 0), ipv4Dst(back.buf, 0))).toBe(true);
    // The nat table is consulted once per connection and manip type only.
    expect(natCounters()).toEqual(afterFirst);
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
