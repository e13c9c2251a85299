/**
 * Segment delivery: by next hop from routers, by destination (else the gateway) from hosts, host
 * to host without a router, point to point for two members; router-to-router delivery queued
 * after the sender's call; impaired delivery on the scheduler.
 */
import { describe, expect, it } from 'vitest';
import { NO_NEIGHBOUR, type Device, type Receiver } from '../../../router/core/device.ts';
import { seededRandom } from '../../../router/deploy/lab/random.ts';
import { Segment } from '../../../router/deploy/lab/segment.ts';
import { ip, udpPacket } from '../../support/packets.ts';
import { manualScheduler } from './support.ts';

/** A host's TUN: what the host sends is `send`, what reaches it is recorded. */
class FakeTun implements Device {
  readonly written: Buffer[] = [];
  private receiver: Receiver | null = null;
  transmit(buf: Uint8Array, offset: number, length: number): number {
    this.written.push(Buffer.from(buf.subarray(offset, offset + length)));
    return length;
  }
  setReceiver(receiver: Receiver | null): void {
    this.receiver = receiver;
  }
  send(buf: Buffer): void {
    this.receiver!(buf, 0, 0);
  }
}

const datagram = (src: string, dst: string, tag = 'x'): Buffer => udpPacket({ src, dst }, { srcPort: 1000, dstPort: 2000, payload: Buffer.from(tag) });

function home() {
  const segment = new Segment('home');
  const router: Buffer[] = [];
  const port = segment.attachRouter('home:lan0', ip('192.168.1.1'));
  port.setReceiver((buf) => void router.push(Buffer.from(buf)));
  const laptop = new FakeTun();
  const phone = new FakeTun();
  segment.attachHost('laptop:eth0', ip('192.168.1.10'), ip('192.168.1.1'), laptop);
  segment.attachHost('phone:eth0', ip('192.168.1.11'), ip('192.168.1.1'), phone);
  return { segment, port, router, laptop, phone };
}

describe('segment delivery', () => {
  it('delivers a host packet to the member owning its destination, host to host, without the router', () => {
    const lab = home();
    lab.laptop.send(datagram('192.168.1.10', '192.168.1.11'));
    expect(lab.phone.written).toHaveLength(1);
    expect(lab.router).toHaveLength(0);
  });

  it('sends what no member owns to the host gateway', () => {
    const lab = home();
    lab.laptop.send(datagram('192.168.1.10', '203.0.113.10'));
    expect(lab.router).toHaveLength(1);
    expect(lab.phone.written).toHaveLength(0);
  });

  it('delivers a router packet to the owner of the next hop, and counts a next hop nobody owns', () => {
    const lab = home();
    const packet = datagram('203.0.113.10', '192.168.1.11');
    lab.port.transmit(packet, 0, packet.length, ip('192.168.1.11'));
    expect(lab.phone.written).toEqual([packet]);
    expect(lab.laptop.written).toHaveLength(0);
    lab.port.transmit(packet, 0, packet.length, ip('192.168.1.99'));
    expect(lab.segment.counters.noNeighbour).toBe(1);
  });

  it('is point to point with two members for next hops beyond the router subnet: they go to the other end', () => {
    const segment = new Segment('p2p');
    const port = segment.attachRouter('r:wan0', ip('203.0.113.1'), 24);
    const server = new FakeTun();
    segment.attachHost('server:eth0', ip('203.0.113.2'), ip('203.0.113.1'), server);
    const packet = datagram('10.0.1.2', '198.51.100.7');
    expect(port.transmit(packet, 0, packet.length, ip('198.51.100.7'))).toBe(packet.length);
    expect(server.written).toEqual([packet]);
  });

  it('has no neighbour for a next hop on the router subnet that nobody owns (the network address), as ARP would fail', () => {
    const segment = new Segment('p2p');
    const port = segment.attachRouter('r:wan0', ip('203.0.113.1'), 24);
    const server = new FakeTun();
    segment.attachHost('server:eth0', ip('203.0.113.2'), ip('203.0.113.1'), server);
    for (const nextHop of ['203.0.113.0', '203.0.113.77']) {
      const packet = datagram('10.0.1.2', nextHop);
      expect(port.transmit(packet, 0, packet.length, ip(nextHop))).toBe(NO_NEIGHBOUR);
    }
    expect(server.written).toEqual([]);
    expect(segment.counters.noNeighbour).toBe(2);
  });

  it('queues router-to-router delivery until the sender has returned, in order', async () => {
    const segment = new Segment('carrier');
    const home = segment.attachRouter('home:wan0', ip('100.64.0.2'));
    const cgn = segment.attachRouter('cgn:in0', ip('100.64.0.1'));
    const seen: string[] = [];
    cgn.setReceiver((buf) => void seen.push(buf.subarray(28).toString()));
    const first = datagram('100.64.0.2', '203.0.113.10', 'one');
    home.transmit(first, 0, first.length, ip('100.64.0.1'));
    // The sender reuses its buffer at once: the queued copy must not change.
    first.fill(0);
    const second = datagram('100.64.0.2', '203.0.113.10', 'two');
    home.transmit(second, 0, second.length, ip('100.64.0.1'));
    expect(seen).toEqual([]);
    await Promise.resolve();
    expect(seen).toEqual(['one', 'two']);
  });

  it('contains a receiver that throws: the segment goes on with the next packet', async () => {
    const faults: unknown[] = [];
    const segment = new Segment('carrier', { onFault: (error) => faults.push(error) });
    const a = segment.attachRouter('a:x', ip('100.64.0.2'));
    const b = segment.attachRouter('b:y', ip('100.64.0.1'));
    let calls = 0;
    b.setReceiver(() => {
      calls++;
      if (calls === 1) throw new Error('bug');
    });
    const packet = datagram('100.64.0.2', '203.0.113.10');
    a.transmit(packet, 0, packet.length, 0);
    a.transmit(packet, 0, packet.length, 0);
    await Promise.resolve();
    expect([calls, faults.length]).toEqual([2, 1]);
  });

  it('holds impaired packets until their departure on the scheduler', () => {
    const { clock, scheduler } = manualScheduler();
    const segment = new Segment('slow', { impairment: { delay: 20 }, random: seededRandom(1), scheduler });
    const port = segment.attachRouter('r:wan0', ip('203.0.113.1'));
    const server = new FakeTun();
    segment.attachHost('server:eth0', ip('203.0.113.2'), ip('203.0.113.1'), server);
    const packet = datagram('203.0.113.1', '203.0.113.2');
    port.transmit(packet, 0, packet.length, ip('203.0.113.2'));
    clock.advanceTo(19.9);
    expect(server.written).toHaveLength(0);
    clock.advanceTo(20);
    expect(server.written).toEqual([packet]);
    segment.configure({ down: true });
    port.transmit(packet, 0, packet.length, ip('203.0.113.2'));
    clock.advanceTo(100);
    expect(server.written).toHaveLength(1);
    expect(segment.impairment.counters.down).toBe(1);
  });

  it('stops delivering to a member whose device is gone, and names the router it leaves alone', () => {
    const lab = home();
    const laptop = lab.segment.members.find((member) => member.name === 'laptop:eth0')!;
    const phone = lab.segment.members.find((member) => member.name === 'phone:eth0')!;
    expect(lab.segment.memberGone(laptop)).toBeNull();
    lab.port.transmit(datagram('203.0.113.2', '192.168.1.10'), 0, 28 + 1, ip('192.168.1.10'));
    expect(lab.laptop.written).toHaveLength(0);
    expect(lab.segment.memberGone(phone)).toBe(lab.port.member);
  });
});
