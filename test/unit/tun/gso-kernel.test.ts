// Software segmentation (router/wire/gso.ts) against the kernel's own, on this machine (needs
// root). A super-packet written into a TUN of a forwarding namespace leaves through a TUN that
// offers no TSO, so the kernel segments it in software (validate_xmit_skb -> skb_gso_segment)
// and hands us the segments: with complete checksums where that TUN offers no checksum offload
// either, seeded ones (NEEDS_CSUM) where it offers TUN_F_CSUM. Ours must be the same bytes, after
// forwarding's TTL decrement. The super-packets are built by hand, and also made by the kernel's
// own TCP and UDP (UDP_SEGMENT) senders through TUNs that grant TSO and USO, the way a router's
// TUN will receive them.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TunDevice, TunOffload, type TunOptions } from '../../../router/deploy/tun/tun-device.ts';
import { writeU16 } from '../../../router/wire/bytes.ts';
import { GsoChecksum, GsoSegmenter } from '../../../router/wire/gso.ts';
import { IPV4_FLAG_DF, IpProtocol, decrementIpv4Ttl, emitIpv4Header, ipv4Dst, parseIpv4 } from '../../../router/wire/ipv4.ts';
import { TcpFlag, emitTcp } from '../../../router/wire/tcp.ts';
import { emitUdp } from '../../../router/wire/udp.ts';
import {
  VIRTIO_NET_HDR_LENGTH,
  VirtioGso,
  VirtioNetFlag,
  emitVirtioNetHeader,
  parseVirtioNetHeader,
  partialChecksumSeed,
  type VirtioNetRepr,
} from '../../../router/wire/virtio-net.ts';
import { Topology, uniqueTag } from '../../../scripts/netns-topology.ts';
import { ensurePrograms } from '../../../scripts/system-packages.ts';

interface Frame {
  header: VirtioNetRepr;
  /** The virtio-net header and the packet, as read. */
  raw: Buffer;
  packet: Buffer;
}

const IN = '10.77.1.1/24';
const OUT_FULL = '10.77.2.1/24';
const OUT_PARTIAL = '10.77.3.1/24';
const SENDER = '10.77.1.2';
const RECEIVER = '10.77.2.2';

let topology: Topology;
const opened: TunDevice[] = [];
let into: TunDevice;
let outFull: TunDevice;
let outPartial: TunDevice;
/** What the kernel hands to each egress TUN of the forwarding namespace. */
const egress = { full: [] as Frame[], partial: [] as Frame[] };
/** Super-packets the sender's TUN received (the kernel's TSO/USO output), in order. */
const fromSender: Frame[] = [];

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function open(tag: string, role: string, address: string, options: TunOptions): TunDevice {
  const dev = TunDevice.open(`${topology.tag}${tag}`.slice(-15), options);
  opened.push(dev);
  const ns = topology.ns(role);
  ip('link', 'set', dev.name, 'netns', ns);
  ip('-n', ns, 'addr', 'add', address, 'dev', dev.name);
  ip('-n', ns, 'link', 'set', dev.name, 'up');
  return dev;
}

function record(dev: TunDevice, into: Frame[], onFrame?: (frame: Frame, slab: Buffer, start: number, length: number) => void): void {
  dev.start((slab, lengths, count) => {
    for (let i = 0; i < count; i++) {
      const start = i * dev.slotSize;
      const length = lengths[i]!;
      const raw = Buffer.from(slab.subarray(start, start + VIRTIO_NET_HDR_LENGTH + length));
      const frame = { header: parseVirtioNetHeader(raw, 0), raw, packet: raw.subarray(VIRTIO_NET_HDR_LENGTH) };
      into.push(frame);
      onFrame?.(frame, slab, start, length);
    }
  });
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function headerBytes(repr: VirtioNetRepr): Buffer {
  const buf = Buffer.alloc(VIRTIO_NET_HDR_LENGTH);
  emitVirtioNetHeader(repr, buf, 0);
  return buf;
}

/** Our segments of `packet` as the forwarding namespace sends them on (TTL one less). */
function ourSegments(packet: Buffer, gsoType: number, gsoSize: number, checksum: number): Buffer[] {
  const forwarded = Buffer.from(packet);
  decrementIpv4Ttl(forwarded, 0);
  const segmenter = new GsoSegmenter();
  const count = segmenter.begin(forwarded, 0, forwarded.length, gsoType, gsoSize);
  expect(count).toBeGreaterThan(0);
  return Array.from({ length: count }, (_, i) => {
    const segment = Buffer.alloc(segmenter.segmentLength(i));
    expect(segmenter.writeSegment(i, segment, 0, checksum)).toBe(segment.length);
    return segment;
  });
}

/** Sends the super-packet through the forwarding namespace out of the full or partial TUN. */
async function kernelSegments(header: Buffer, packet: Buffer, expected: number, mode: 'full' | 'partial'): Promise<Frame[]> {
  const dst = ipv4Dst(packet, 0);
  const dstText = `${dst >>> 24}.${(dst >>> 16) & 255}.${(dst >>> 8) & 255}.${dst & 255}`;
  const out = mode === 'full' ? outFull : outPartial;
  ip('-n', topology.ns('fwd'), 'route', 'replace', `${dstText}/32`, 'dev', out.name);
  const frames = egress[mode];
  frames.length = 0;
  expect(into.writeWithHeader(header, 0, packet)).toBe(packet.length);
  await waitFor(() => frames.length >= expected, `${expected} segments from the kernel (${mode})`);
  await new Promise((r) => setTimeout(r, 20)); // nothing more may come
  return frames.splice(0);
}

/** Ours against the kernel's, in both checksum modes. */
async function expectKernelSegmentation(header: VirtioNetRepr, packet: Buffer): Promise<number> {
  const raw = headerBytes(header);
  const full = ourSegments(packet, header.gsoType, header.gsoSize, GsoChecksum.FULL);
  const kernelFull = await kernelSegments(raw, packet, full.length, 'full');
  expect(kernelFull.map((f) => f.packet.toString('hex'))).toEqual(full.map((s) => s.toString('hex')));
  for (const frame of kernelFull) expect(frame.header.flags & VirtioNetFlag.NEEDS_CSUM).toBe(0);

  const partial = ourSegments(packet, header.gsoType, header.gsoSize, GsoChecksum.PARTIAL);
  const kernelPartial = await kernelSegments(raw, packet, partial.length, 'partial');
  expect(kernelPartial.map((f) => f.packet.toString('hex'))).toEqual(partial.map((s) => s.toString('hex')));
  const ihl = (packet[0]! & 15) * 4;
  const csumOffset = packet[9] === IpProtocol.TCP ? 16 : 6;
  for (const frame of kernelPartial) {
    expect(frame.header).toMatchObject({ flags: VirtioNetFlag.NEEDS_CSUM, gsoType: VirtioGso.NONE, csumStart: ihl, csumOffset });
  }
  return full.length;
}

function pattern(length: number, seed: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return buf;
}

interface TcpSuper {
  ident: number;
  flagsFragment: number;
  ipOptions?: Buffer;
  seq: number;
  flags: number;
  tcpOptions?: Buffer;
  urgent?: number;
  payload: number;
  mss: number;
}

/** A TCP super-packet as a TSO sender leaves it: checksum field = seed for the whole length. */
function tcpSuperPacket(c: TcpSuper, dst = RECEIVER): { header: VirtioNetRepr; packet: Buffer } {
  const src = parseIpv4(SENDER);
  const to = parseIpv4(dst);
  const tcpOptions = c.tcpOptions?.length ?? 0;
  const tcpLength = 20 + tcpOptions + c.payload;
  const ihl = 20 + (c.ipOptions?.length ?? 0);
  const packet = Buffer.alloc(ihl + tcpLength);
  emitIpv4Header(
    { src, dst: to, protocol: IpProtocol.TCP, ttl: 64, ident: c.ident, flagsFragment: c.flagsFragment, options: c.ipOptions, payloadLength: tcpLength },
    packet,
    0,
  );
  emitTcp(
    { srcPort: 40001, dstPort: 5201, seq: c.seq, ack: 0x01020304, flags: c.flags, window: 502, urgent: c.urgent, options: c.tcpOptions, payload: pattern(c.payload, c.seq) },
    packet,
    ihl,
    src,
    to,
  );
  writeU16(packet, ihl + 16, partialChecksumSeed(src, to, IpProtocol.TCP, tcpLength));
  const gsoType = VirtioGso.TCPV4 | (c.flags & TcpFlag.CWR ? VirtioGso.ECN : 0);
  const header = { flags: VirtioNetFlag.NEEDS_CSUM, gsoType, hdrLen: ihl + 20 + tcpOptions, gsoSize: c.mss, csumStart: ihl, csumOffset: 16 };
  return { header, packet };
}

function udpSuperPacket(ident: number, flagsFragment: number, payload: number, mss: number): { header: VirtioNetRepr; packet: Buffer } {
  const src = parseIpv4(SENDER);
  const dst = parseIpv4(RECEIVER);
  const packet = Buffer.alloc(20 + 8 + payload);
  emitIpv4Header({ src, dst, protocol: IpProtocol.UDP, ttl: 64, ident, flagsFragment, payloadLength: 8 + payload }, packet, 0);
  emitUdp({ srcPort: 40002, dstPort: 5202, payload: pattern(payload, ident) }, packet, 20, src, dst);
  writeU16(packet, 26, partialChecksumSeed(src, dst, IpProtocol.UDP, 8 + payload));
  return { header: { flags: VirtioNetFlag.NEEDS_CSUM, gsoType: VirtioGso.UDP_L4, hdrLen: 28, gsoSize: mss, csumStart: 20, csumOffset: 6 }, packet };
}

const TIMESTAMPS = Buffer.from('0101080a0badcafe00c0ffee', 'hex');

beforeAll(() => {
  ensurePrograms({ python3: 'python3' });
  topology = new Topology(uniqueTag('ho'), ['fwd', 'snd', 'rcv']);
  for (const role of ['fwd', 'snd', 'rcv']) {
    // No IPv6 on devices moved in: only the packets a test sends come out of the TUNs.
    topology.exec(role, 'sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  topology.exec('fwd', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  into = open('i', 'fwd', IN, { vnetHeader: true });
  outFull = open('f', 'fwd', OUT_FULL, { vnetHeader: true, offloads: 0 });
  outPartial = open('p', 'fwd', OUT_PARTIAL, { vnetHeader: true, offloads: TunOffload.CSUM });
  record(outFull, egress.full);
  record(outPartial, egress.partial);

  // The sender's and receiver's TUNs grant TSO and USO; this process joins them, header and all.
  const sender = open('s', 'snd', `${SENDER}/24`, { vnetHeader: true });
  const receiver = open('r', 'rcv', `${RECEIVER}/24`, { vnetHeader: true });
  ip('-n', topology.ns('snd'), 'route', 'add', 'default', 'dev', sender.name);
  ip('-n', topology.ns('rcv'), 'route', 'add', 'default', 'dev', receiver.name);
  record(sender, fromSender, (_f, slab, start, length) => receiver.writeWithHeader(slab, start, slab, start + VIRTIO_NET_HDR_LENGTH, length));
  record(receiver, [], (_f, slab, start, length) => sender.writeWithHeader(slab, start, slab, start + VIRTIO_NET_HDR_LENGTH, length));
});

afterAll(() => {
  for (const dev of opened.splice(0)) dev.close();
  topology?.destroy();
});

describe('software GSO against the kernel (TUN without TSO in a forwarding namespace)', () => {
  it('TCPv4: ids and sequence numbers wrap, FIN/PSH only on the last segment, CWR only on the first, options copied', async () => {
    const { header, packet } = tcpSuperPacket({
      ident: 0xfffe,
      flagsFragment: IPV4_FLAG_DF,
      seq: 0xfffff000,
      flags: TcpFlag.ACK | TcpFlag.PSH | TcpFlag.FIN | TcpFlag.CWR | TcpFlag.ECE | TcpFlag.URG,
      urgent: 7,
      tcpOptions: TIMESTAMPS,
      payload: 3500,
      mss: 1000,
    });
    expect(await expectKernelSegmentation(header, packet)).toBe(4);
  });

  it('TCPv4 without DF still gets a new id per segment; IP options go into every segment', async () => {
    const { header, packet } = tcpSuperPacket({
      ident: 0x1234,
      flagsFragment: 0,
      ipOptions: Buffer.from('01010100', 'hex'), // NOP NOP NOP END
      seq: 1,
      flags: TcpFlag.ACK,
      payload: 6000,
      mss: 1200,
    });
    expect(await expectKernelSegmentation(header, packet)).toBe(5);
  });

  it('TCPv4 with an odd segment size (payload words split mid-word) and the largest IPv4 packet', async () => {
    const odd = tcpSuperPacket({ ident: 9, flagsFragment: IPV4_FLAG_DF, seq: 77, flags: TcpFlag.ACK | TcpFlag.PSH, payload: 4001, mss: 999 });
    expect(await expectKernelSegmentation(odd.header, odd.packet)).toBe(5);
    const largest = tcpSuperPacket({ ident: 100, flagsFragment: IPV4_FLAG_DF, seq: 5, flags: TcpFlag.ACK, tcpOptions: TIMESTAMPS, payload: 65535 - 52, mss: 1448 });
    expect(largest.packet.length).toBe(65535);
    expect(await expectKernelSegmentation(largest.header, largest.packet)).toBe(46); // ceil(65483 / 1448)
  });

  it('a super-packet no larger than one segment goes out as one packet', async () => {
    const { header, packet } = tcpSuperPacket({ ident: 3, flagsFragment: IPV4_FLAG_DF, seq: 5, flags: TcpFlag.ACK | TcpFlag.FIN | TcpFlag.CWR, payload: 800, mss: 1000 });
    expect(await expectKernelSegmentation(header, packet)).toBe(1);
  });

  it('UDP_L4 (USO): each segment a datagram with its own length and checksum', async () => {
    const { header, packet } = udpSuperPacket(0xffff, IPV4_FLAG_DF, 3000, 1200);
    expect(await expectKernelSegmentation(header, packet)).toBe(3);
    const exact = udpSuperPacket(40, 0, 2400, 800);
    expect(await expectKernelSegmentation(exact.header, exact.packet)).toBe(3);
  });
});

describe("the kernel's own super-packets (TCP and UDP_SEGMENT senders through a TUN granting TSO and USO)", () => {
  it('a TCP stream comes as GSO_TCPV4 super-packets with a seeded checksum, and segments as the kernel does', async () => {
    fromSender.length = 0;
    const server = topology.spawn('rcv', process.execPath, [
      '-e',
      `require('net').createServer((c) => { let n = 0; c.on('data', (d) => (n += d.length)); c.on('end', () => { console.log(n); process.exit(0); }); }).listen(5001, '${RECEIVER}', () => console.log('listening'));`,
    ]);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const client = topology.spawn('snd', process.execPath, [
      '-e',
      `const c = require('net').connect(5001, '${RECEIVER}', () => c.end(Buffer.alloc(1 << 20, 'vrouter ')));`,
    ]);
    const received = await new Promise<string>((resolve) => server.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
    await new Promise((r) => client.once('exit', r));
    expect(received).toBe(String(1 << 20));

    const supers = fromSender.filter((f) => f.header.gsoType !== VirtioGso.NONE);
    expect(supers.length).toBeGreaterThan(0);
    for (const { header, packet } of supers) {
      const ihl = (packet[0]! & 15) * 4;
      const tcpHeader = (packet[ihl + 12]! >>> 4) * 4;
      expect(header).toMatchObject({ flags: VirtioNetFlag.NEEDS_CSUM, gsoType: VirtioGso.TCPV4, hdrLen: ihl + tcpHeader, csumStart: ihl, csumOffset: 16 });
      expect(packet.length - ihl - tcpHeader).toBeGreaterThan(header.gsoSize);
      const seed = partialChecksumSeed(packet.readUInt32BE(12), packet.readUInt32BE(16), IpProtocol.TCP, packet.length - ihl);
      expect(packet.readUInt16BE(ihl + 16)).toBe(seed);
    }
    // The biggest ones, and one with FIN or PSH if there is one.
    const chosen = [...supers].sort((a, b) => b.packet.length - a.packet.length).slice(0, 3);
    const flagged = supers.find((f) => f.packet[(f.packet[0]! & 15) * 4 + 13]! & (TcpFlag.FIN | TcpFlag.PSH));
    if (flagged && !chosen.includes(flagged)) chosen.push(flagged);
    for (const { header, packet } of chosen) {
      await expectKernelSegmentation(header, packet);
    }
  }, 30_000);

  it('a UDP_SEGMENT send comes as one GSO_UDP_L4 super-packet, and segments as the kernel does', async () => {
    fromSender.length = 0;
    const send = topology.exec('snd', 'python3', [
      '-c',
      `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, 1000)  # UDP_SEGMENT
s.sendto(bytes(range(256)) * 14, ('${RECEIVER}', 5003))`,
    ]);
    expect(send.stderr).toBe('');
    await waitFor(() => fromSender.some((f) => f.packet[9] === IpProtocol.UDP), 'the UDP super-packet');
    const frame = fromSender.find((f) => f.packet[9] === IpProtocol.UDP)!;
    expect(frame.packet.length).toBe(20 + 8 + 256 * 14);
    expect(frame.header).toMatchObject({ flags: VirtioNetFlag.NEEDS_CSUM, gsoType: VirtioGso.UDP_L4, gsoSize: 1000, hdrLen: 28, csumStart: 20, csumOffset: 6 });
    expect(frame.packet.readUInt16BE(26)).toBe(partialChecksumSeed(frame.packet.readUInt32BE(12), frame.packet.readUInt32BE(16), IpProtocol.UDP, 8 + 256 * 14));
    expect(await expectKernelSegmentation(frame.header, frame.packet)).toBe(4);
  });
});
