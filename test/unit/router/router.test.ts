import { beforeEach, describe, expect, it } from 'vitest';
import { Hook, HOOK_NAMES, Priority, Verdict } from '../../../router/core/hooks.ts';
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import { Ipv4Reassembler, ReassemblyResult } from '../../../router/wire/ipv4-reassembly.ts';
import { Router } from '../../../router/path/router.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { DropReason, Counter } from '../../../router/core/stats.ts';
import { ICMP, IcmpType, icmpType, icmpCode, icmpNextHopMtu, validateIcmp } from '../../../router/wire/icmp.ts';
import {
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IpProtocol,
  computeIpv4HeaderChecksum,
  ipv4Checksum,
  ipv4DontFragment,
  ipv4Dst,
  ipv4FragmentOffset,
  ipv4MoreFragments,
  ipv4Src,
  ipv4TotalLength,
  ipv4Ttl,
  validateIpv4,
} from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpAck, tcpChecksumValid, tcpDstPort, tcpFlags, tcpSeq } from '../../../router/wire/tcp.ts';
import { CaptureLink, icmpPacket, ip, rawPacket, tcpPacket, udpPacket } from '../../support/packets.ts';

interface Bench {
  router: Router;
  lan: CaptureLink;
  wan: CaptureLink;
  dmz: CaptureLink;
  now: { ms: number };
}

/** lan0 10.0.1.1/24, wan0 203.0.113.1/24 (+ 198.51.100.0/24), dmz0 192.0.2.1/24 with MTU 1280. */
function bench(): Bench {
  const lan = new CaptureLink();
  const wan = new CaptureLink();
  const dmz = new CaptureLink();
  const now = { ms: 1_000_000 };
  const { router } = buildRouter(
    {
      interfaces: [
        { name: 'lan0', address: ip('10.0.1.1'), prefixLength: 24, mtu: 1500 },
        { name: 'wan0', address: ip('203.0.113.1'), prefixLength: 24, mtu: 1500 },
        { name: 'dmz0', address: ip('192.0.2.1'), prefixLength: 24, mtu: 1280 },
      ],
      routes: [{ to: ip('198.51.100.0'), prefixLength: 24, dev: 'wan0', via: 0 }],
    },
    { now: () => now.ms },
  );
  [lan, wan, dmz].forEach((device, i) => router.attach(router.interfaces[i]!, device));
  return { router, lan, wan, dmz, now };
}

const lan0 = (b: Bench): RouterInterface => b.router.interfaces[0]!;
const echo = (src: string, dst: string, extra: { ttl?: number; size?: number; flagsFragment?: number } = {}): Buffer =>
  icmpPacket(
    { src, dst, ttl: extra.ttl ?? 64, flagsFragment: extra.flagsFragment ?? 0 },
    { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x0abc0001, data: Buffer.alloc(extra.size ?? 56, 0x61) },
  );

function expectValidIpv4(packet: Buffer): void {
  expect(validateIpv4(packet, 0, packet.length)).toBe(0);
}

/** The ICMP message inside a datagram the router sent, with its quote of the offending datagram. */
function icmpOf(packet: Buffer): { type: number; code: number; mtu: number; quoted: Buffer } {
  expectValidIpv4(packet);
  expect(validateIcmp(packet, 20, packet.length - 20)).toBe(0);
  return { type: icmpType(packet, 20), code: icmpCode(packet, 20), mtu: icmpNextHopMtu(packet, 20), quoted: packet.subarray(20 + ICMP.DATA) };
}

describe('router packet path', () => {
  let b: Bench;
  beforeEach(() => {
    b = bench();
  });

  it('forwards along the longest prefix with TTL decremented and the header checksum updated', () => {
    const packet = echo('10.0.1.2', '198.51.100.7');
    b.router.receive(lan0(b), packet);
    const [out] = b.wan.take();
    expect(out).toBeDefined();
    expect(ipv4Ttl(out!, 0)).toBe(63);
    expect(ipv4Checksum(out!, 0)).toBe(computeIpv4HeaderChecksum(out!, 0));
    expect(out!.subarray(20)).toEqual(packet.subarray(20));
    expect(b.router.stats.get(Counter.FORWARDED)).toBe(1);
  });

  it('trims link padding beyond the total length', () => {
    const packet = echo('10.0.1.2', '203.0.113.2');
    b.router.receive(lan0(b), Buffer.concat([packet, Buffer.alloc(6)]));
    expect(b.wan.take()[0]!.length).toBe(packet.length);
  });

  it('answers echo requests to any of its addresses, from that address', () => {
    for (const target of ['10.0.1.1', '203.0.113.1', '192.0.2.1']) {
      b.router.receive(lan0(b), echo('10.0.1.2', target));
      const [reply] = b.lan.take();
      const message = icmpOf(reply!);
      expect(message.type).toBe(IcmpType.ECHO_REPLY);
      expect(ipv4Src(reply!, 0)).toBe(ip(target));
      expect(ipv4Dst(reply!, 0)).toBe(ip('10.0.1.2'));
      expect(reply!.readUInt32BE(24)).toBe(0x0abc0001);
      expect(reply!.subarray(28)).toEqual(Buffer.alloc(56, 0x61));
    }
    expect(b.wan.sent).toHaveLength(0);
  });

  it('sends time exceeded for TTL 1, quoting the datagram, from the ingress address', () => {
    const packet = echo('10.0.1.2', '203.0.113.2', { ttl: 1 });
    b.router.receive(lan0(b), packet);
    expect(b.wan.sent).toHaveLength(0);
    const [error] = b.lan.take();
    const message = icmpOf(error!);
    expect([message.type, message.code]).toEqual([IcmpType.TIME_EXCEEDED, 0]);
    expect(ipv4Src(error!, 0)).toBe(ip('10.0.1.1'));
    expect(error![1]! & 0xe0).toBe(0xc0);
    expect(message.quoted).toEqual(packet);
    expect(b.router.stats.dropped(DropReason.TTL_EXCEEDED)).toBe(1);
  });

  it('sends net unreachable without a route', () => {
    b.router.receive(lan0(b), echo('10.0.1.2', '100.64.0.1'));
    const message = icmpOf(b.lan.take()[0]!);
    expect([message.type, message.code]).toEqual([IcmpType.DEST_UNREACHABLE, 0]);
    expect(b.router.stats.dropped(DropReason.NO_ROUTE)).toBe(1);
  });

  it('quotes at most what fits a 576-byte error', () => {
    b.router.receive(lan0(b), echo('10.0.1.2', '100.64.0.1', { size: 1400 }));
    const error = b.lan.take()[0]!;
    expect(error.length).toBe(576);
    expect(ipv4TotalLength(error, 0)).toBe(576);
  });

  it('sends fragmentation needed with the next-hop MTU for DF datagrams too big for the egress link', () => {
    const packet = echo('10.0.1.2', '192.0.2.2', { size: 1472 - 8 + 8, flagsFragment: IPV4_FLAG_DF });
    expect(packet.length).toBe(1500);
    b.router.receive(lan0(b), packet);
    expect(b.dmz.sent).toHaveLength(0);
    const message = icmpOf(b.lan.take()[0]!);
    expect([message.type, message.code, message.mtu]).toEqual([IcmpType.DEST_UNREACHABLE, 4, 1280]);
    // PMTU discovery is never rate-limited.
    for (let i = 0; i < 20; i++) b.router.receive(lan0(b), packet);
    expect(b.lan.take()).toHaveLength(20);
  });

  it('forwards a 1500-byte DF datagram whole where it fits', () => {
    b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2', { size: 1472, flagsFragment: IPV4_FLAG_DF }));
    const [out] = b.wan.take();
    expect(out!.length).toBe(1500);
    expect(ipv4DontFragment(out!, 0)).toBe(true);
  });

  it('fragments what does not fit when DF is clear, and the fragments reassemble to the original', () => {
    const packet = echo('10.0.1.2', '192.0.2.2', { size: 3972 });
    expect(packet.length).toBe(4000);
    b.router.receive(lan0(b), packet);
    const fragments = b.dmz.take();
    expect(fragments.map((f) => f.length)).toEqual([1276, 1276, 1276, 232]);
    expect(fragments.map((f) => ipv4FragmentOffset(f, 0))).toEqual([0, 1256, 2512, 3768]);
    expect(fragments.map((f) => ipv4MoreFragments(f, 0))).toEqual([true, true, true, false]);
    fragments.forEach(expectValidIpv4);
    const reassembler = new Ipv4Reassembler();
    const results = fragments.map((f) => reassembler.add(f));
    expect(results.at(-1)).toBe(ReassemblyResult.COMPLETE);
    const whole = reassembler.completed!.packet;
    expect(whole.subarray(20)).toEqual(packet.subarray(20));
    expect(ipv4Ttl(whole, 0)).toBe(63);
    expect(b.router.stats.get(Counter.FRAGMENTS_CREATED)).toBe(4);
  });

  it('refragments a fragment, keeping its offset and MF flag', () => {
    const fragment = rawPacket({ src: '10.0.1.2', dst: '192.0.2.2', flagsFragment: IPV4_FLAG_MF | (1480 / 8) }, IpProtocol.UDP, Buffer.alloc(1480, 7));
    b.router.receive(lan0(b), fragment);
    const parts = b.dmz.take();
    expect(parts.map((p) => [ipv4FragmentOffset(p, 0), ipv4MoreFragments(p, 0), p.length])).toEqual([
      [1480, true, 1276],
      [2736, true, 244],
    ]);
  });

  it('never sends an ICMP error about an ICMP error or a non-first fragment', () => {
    const error = icmpPacket({ src: '10.0.1.2', dst: '203.0.113.2', ttl: 1 }, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: Buffer.alloc(28) });
    b.router.receive(lan0(b), error);
    const laterFragment = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2', ttl: 1, flagsFragment: 100 }, IpProtocol.UDP, Buffer.alloc(100));
    b.router.receive(lan0(b), laterFragment);
    expect(b.lan.sent).toHaveLength(0);
    expect(b.router.stats.dropped(DropReason.TTL_EXCEEDED)).toBe(2);
  });

  it('rate-limits errors per destination like the kernel: a burst of 6, then one a second', () => {
    const send = (): number => {
      b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2', { ttl: 1 }));
      return b.lan.take().length;
    };
    const burst = Array.from({ length: 10 }, send).reduce((a, x) => a + x, 0);
    expect(burst).toBe(6);
    b.now.ms += 500;
    expect(send()).toBe(0);
    b.now.ms += 500;
    expect(send()).toBe(1);
    expect(send()).toBe(0);
    expect(b.router.stats.get(Counter.ICMP_ERRORS_RATE_LIMITED)).toBe(6);
    // Another destination has its own bucket; echo replies are not limited.
    b.router.receive(lan0(b), echo('10.0.1.3', '203.0.113.2', { ttl: 1 }));
    expect(b.lan.take()).toHaveLength(1);
    for (let i = 0; i < 10; i++) b.router.receive(lan0(b), echo('10.0.1.2', '10.0.1.1'));
    expect(b.lan.take()).toHaveLength(10);
  });

  it('answers UDP to its own address with port unreachable and other protocols with protocol unreachable', () => {
    b.router.receive(lan0(b), udpPacket({ src: '10.0.1.2', dst: '10.0.1.1' }, { srcPort: 5000, dstPort: 53, payload: Buffer.from('hi') }));
    expect(icmpOf(b.lan.take()[0]!)).toMatchObject({ type: 3, code: 3 });
    b.now.ms += 1000;
    b.router.receive(lan0(b), rawPacket({ src: '10.0.1.2', dst: '203.0.113.1' }, 132, Buffer.alloc(12)));
    expect(icmpOf(b.lan.take()[0]!)).toMatchObject({ type: 3, code: 2 });
  });

  it('resets TCP to its own address as tcp_v4_send_reset does', () => {
    b.router.receive(lan0(b), tcpPacket({ src: '10.0.1.2', dst: '10.0.1.1' }, { srcPort: 40000, dstPort: 80, seq: 0xfffffff0, ack: 0, flags: TcpFlag.SYN, window: 65535 }));
    const [reset] = b.lan.take();
    expectValidIpv4(reset!);
    expect(tcpChecksumValid(reset!, 20, reset!.length - 20, ipv4Src(reset!, 0), ipv4Dst(reset!, 0))).toBe(true);
    expect(tcpFlags(reset!, 20)).toBe(TcpFlag.RST | TcpFlag.ACK);
    expect(tcpAck(reset!, 20)).toBe(0xfffffff1);
    expect(tcpDstPort(reset!, 20)).toBe(40000);
    b.router.receive(lan0(b), tcpPacket({ src: '10.0.1.2', dst: '10.0.1.1' }, { srcPort: 40000, dstPort: 80, seq: 5, ack: 777, flags: TcpFlag.ACK, window: 100 }));
    const [second] = b.lan.take();
    expect([tcpFlags(second!, 20), tcpSeq(second!, 20)]).toEqual([TcpFlag.RST, 777]);
    b.router.receive(lan0(b), tcpPacket({ src: '10.0.1.2', dst: '10.0.1.1' }, { srcPort: 40000, dstPort: 80, seq: 5, ack: 0, flags: TcpFlag.RST, window: 0 }));
    expect(b.lan.sent).toHaveLength(0);
  });

  it('reassembles fragmented echo requests to itself', () => {
    const big = echo('10.0.1.2', '10.0.1.1', { size: 3972 });
    // Let the router fragment it towards dmz first, then feed the fragments back as if received.
    const toDmz = echo('10.0.1.2', '192.0.2.2', { size: 3972 });
    b.router.receive(lan0(b), toDmz);
    const fragments = b.dmz.take().map((f) => {
      f.writeUInt32BE(ip('10.0.1.1'), 16);
      f[8] = 64;
      f.writeUInt16BE(0, 10);
      f.writeUInt16BE(computeIpv4HeaderChecksum(f, 0), 10);
      return f;
    });
    fragments.reverse().forEach((f) => b.router.receive(lan0(b), f));
    // The 4000-byte reply does not fit lan0's MTU either: it leaves in fragments.
    const replyFragments = b.lan.take();
    expect(replyFragments.map((f) => f.length)).toEqual([1500, 1500, 1040]);
    const reassembler = new Ipv4Reassembler();
    replyFragments.forEach((f) => reassembler.add(f));
    const reply = reassembler.completed!.packet;
    expect(icmpOf(reply).type).toBe(IcmpType.ECHO_REPLY);
    expect(reply.subarray(28)).toEqual(big.subarray(28));
  });

  it('drops and counts malformed datagrams by reason without answering', () => {
    const good = echo('10.0.1.2', '203.0.113.2');
    const badChecksum = Buffer.from(good);
    badChecksum[10]! ^= 0xff;
    const badVersion = Buffer.from(good);
    badVersion[0] = 0x65;
    const shortHeader = Buffer.from(good);
    shortHeader[0] = 0x44;
    const longTotal = Buffer.from(good);
    longTotal.writeUInt16BE(good.length + 10, 2);
    longTotal.writeUInt16BE(0, 10);
    longTotal.writeUInt16BE(computeIpv4HeaderChecksum(longTotal, 0), 10);
    const ipv6 = Buffer.alloc(40);
    ipv6[0] = 0x60;
    const martian = echo('127.0.0.1', '203.0.113.2');
    for (const packet of [badChecksum, badVersion, shortHeader, longTotal, ipv6, Buffer.alloc(0), Buffer.alloc(7, 0x45), martian]) {
      b.router.receive(lan0(b), packet);
    }
    expect(b.wan.sent.length + b.lan.sent.length).toBe(0);
    const drops = b.router.stats.snapshot().drops;
    expect(drops).toEqual({
      'ipv4-bad-checksum': 1,
      'not-ipv4': 2,
      'ipv4-bad-header-length': 1,
      'ipv4-bad-total-length': 1,
      truncated: 2,
      'martian-source': 1,
    });
  });

  it('forwards unknown protocols untouched', () => {
    const packet = rawPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, 253, Buffer.from('opaque payload'));
    b.router.receive(lan0(b), packet);
    expect(b.wan.take()[0]!.subarray(20)).toEqual(packet.subarray(20));
  });
});

describe('hook points on the packet path', () => {
  it('calls the five hooks where the kernel does', () => {
    const b = bench();
    const seen: string[] = [];
    for (const hook of [Hook.PRE_ROUTING, Hook.LOCAL_IN, Hook.FORWARD, Hook.LOCAL_OUT, Hook.POST_ROUTING]) {
      b.router.register({ hook, priority: Priority.FILTER, name: 'trace', fn: (packet) => (seen.push(`${HOOK_NAMES[hook]}:${packet.inInterface?.name ?? '-'}>${packet.outInterface?.name ?? '-'}`), Verdict.ACCEPT) });
    }
    b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2'));
    expect(seen.splice(0)).toEqual(['PREROUTING:lan0>-', 'FORWARD:lan0>wan0', 'POSTROUTING:lan0>wan0']);
    b.router.receive(lan0(b), echo('10.0.1.2', '10.0.1.1'));
    expect(seen.splice(0)).toEqual(['PREROUTING:lan0>-', 'INPUT:lan0>-', 'OUTPUT:->lan0', 'POSTROUTING:->lan0']);
  });

  it('drops on DROP, forgets on STOLEN, and drops QUEUEd packets without a handler', () => {
    const b = bench();
    let verdict: Verdict = Verdict.DROP;
    b.router.register({ hook: Hook.FORWARD, priority: 0, name: 'v', fn: () => verdict });
    b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2'));
    verdict = Verdict.STOLEN;
    b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2'));
    verdict = Verdict.QUEUE;
    b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2'));
    expect(b.wan.sent).toHaveLength(0);
    expect(b.router.stats.dropped(DropReason.HOOK_DROP)).toBe(1);
    expect(b.router.stats.dropped(DropReason.QUEUE_NO_HANDLER)).toBe(1);
  });

  it('resumes a QUEUEd packet after the queueing op when the handler accepts it later', async () => {
    const b = bench();
    const order: string[] = [];
    b.router.register({ hook: Hook.FORWARD, priority: 0, name: 'q', fn: () => (order.push('queue'), Verdict.QUEUE) });
    b.router.register({ hook: Hook.FORWARD, priority: 10, name: 'after', fn: () => (order.push('after'), Verdict.ACCEPT) });
    b.router.queueHandler = (_packet, _hook, resume) => void setTimeout(() => resume(Verdict.ACCEPT), 1);
    b.router.receive(lan0(b), echo('10.0.1.2', '203.0.113.2'));
    expect(b.wan.sent).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['queue', 'after']);
    expect(b.wan.take()).toHaveLength(1);
  });

  it('reuses one object for received packets, and a QUEUEd one keeps its own while others pass', async () => {
    const b = bench();
    const seen = new Set<object>();
    b.router.register({ hook: Hook.PRE_ROUTING, priority: 0, name: 'seen', fn: (packet) => (seen.add(packet), Verdict.ACCEPT) });
    b.router.register({ hook: Hook.FORWARD, priority: 0, name: 'q', fn: (packet) => (ipv4Dst(packet.buf, 0) === ip('203.0.113.9') ? Verdict.QUEUE : Verdict.ACCEPT) });
    let kept: { buf: Buffer; mark: number } | null = null;
    b.router.queueHandler = (packet, _hook, resume) => {
      kept = packet;
      packet.mark = 7;
      setTimeout(() => resume(Verdict.ACCEPT), 1);
    };
    const queued = echo('10.0.1.2', '203.0.113.9');
    b.router.receive(lan0(b), queued);
    for (let i = 0; i < 3; i++) b.router.receive(lan0(b), echo('10.0.1.3', '203.0.113.2'));
    expect(seen.size).toBe(1);
    expect(b.wan.take()).toHaveLength(3);
    expect([...seen]).not.toContain(kept);
    expect(ipv4Dst(kept!.buf, 0)).toBe(ip('203.0.113.9'));
    await new Promise((r) => setTimeout(r, 10));
    const [out] = b.wan.take();
    expect(out && ipv4Dst(out, 0)).toBe(ip('203.0.113.9'));
    expect(kept!.mark).toBe(7);
  });
});
