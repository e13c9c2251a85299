/**
 * A transport checksum one router of a lab verified is not summed again by the next router the
 * segment hands the datagram to (as the kernel keeps skb->ip_summed across namespaces); one that
 * nobody verified, or that failed, still is.
 */
import { describe, expect, it } from 'vitest';
import { Hook, Priority, Verdict } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { Segment } from '../../../router/deploy/lab/segment.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { buildRouter, type RouterSpec } from '../../../router/stack/build-router.ts';
import { CaptureLink, ip, tcpPacket } from '../../support/packets.ts';
import { interfaceSpec } from '../../support/router-bench.ts';

const TRACKING = { text: '*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n', origin: 'test', firstLine: 0 };

/** home (lan0 | wan0) -- carrier -- (in0 | wan0) cgn; cgn always tracks, home only if asked. */
function doubleNat(homeTracks: boolean) {
  const home = buildRouter({
    interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '100.64.0.2/24')],
    routes: [{ to: 0, prefixLength: 0, via: ip('100.64.0.1'), dev: 'wan0' }],
    ...(homeTracks ? { rules: TRACKING } : {}),
  } as RouterSpec);
  const cgn = buildRouter({
    interfaces: [interfaceSpec('in0', '100.64.0.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
    routes: [{ to: ip('10.0.1.0'), prefixLength: 24, via: ip('100.64.0.2'), dev: 'in0' }],
    rules: TRACKING,
  });
  const carrier = new Segment('carrier');
  home.router.attach(home.router.interfaces[1]!, carrier.attachRouter('home:wan0', ip('100.64.0.2'), 24));
  cgn.router.attach(cgn.router.interfaces[0]!, carrier.attachRouter('cgn:in0', ip('100.64.0.1'), 24));
  const lan = new CaptureLink();
  const internet = new CaptureLink();
  home.router.attach(home.router.interfaces[0]!, lan);
  cgn.router.attach(cgn.router.interfaces[1]!, internet);
  const seenByCgn: boolean[] = [];
  cgn.router.register({ hook: Hook.PRE_ROUTING, priority: Priority.FIRST, name: 'test-observer', fn: (packet: Packet) => (seenByCgn.push(packet.checksumVerified), Verdict.ACCEPT) });
  const send = async (buf: Buffer): Promise<void> => {
    lan.receiver!(buf, 0, 0);
    await new Promise<void>((resolve) => queueMicrotask(resolve));
  };
  return { home, cgn, internet, seenByCgn, send };
}

const segment = (sport: number, corrupt = false): Buffer => {
  const buf = tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: sport, dstPort: 80, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1000 });
  if (corrupt) buf[36] ^= 0xff;
  return buf;
};

describe('a verified checksum across a lab segment', () => {
  it('is taken as verified by the second router when the first one summed it', async () => {
    const lab = doubleNat(true);
    await lab.send(segment(40000));
    expect(lab.seenByCgn).toEqual([true]);
    expect(lab.internet.take()).toHaveLength(1);
    expect(lab.cgn.netfilter.conntrack!.counters.invalid).toBe(0);
  });

  it('is summed by the second router when the first did not track, and a bad one found there', async () => {
    const lab = doubleNat(false);
    await lab.send(segment(40001, true));
    expect(lab.seenByCgn).toEqual([false]);
    expect(lab.cgn.netfilter.conntrack!.counters.invalid).toBe(1);
  });

  it('is summed again after a failed check: a bad checksum stays unverified through both', async () => {
    const lab = doubleNat(true);
    await lab.send(segment(40002, true));
    expect(lab.home.netfilter.conntrack!.counters.invalid).toBe(1);
    expect(lab.seenByCgn).toEqual([false]);
    expect(lab.cgn.netfilter.conntrack!.counters.invalid).toBe(1);
  });
});
