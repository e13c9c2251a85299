/**
 * The packet path's own cost, without I/O: 64-byte UDP datagrams of one flow through one
 * MASQUERADE router and through two in one lab (double NAT over an in-process segment), side by
 * side, in ns per datagram and as a ratio. Devices at the edges are counting sinks.
 * Run: npx tsx scripts/path-cost.ts [--packets N] [--rounds N]
 */
import type { Device, Receiver } from '../router/core/device.ts';
import { parseIpv4Address, parseIpv4Prefix } from '../router/core/addresses.ts';
import { Segment } from '../router/deploy/lab/segment.ts';
import { buildRouter, type InterfaceSpec, type RouterSpec } from '../router/stack/build-router.ts';
import { emitIpv4Header, fillIpv4HeaderChecksum, IpProtocol } from '../router/wire/ipv4.ts';
import { emitUdp } from '../router/wire/udp.ts';

const rules = (lan: string, wan: string) => ({
  text: `*nat\n-A POSTROUTING -o ${wan} -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i ${lan} -j ACCEPT\nCOMMIT\n`,
  origin: 'path-cost',
  firstLine: 0,
});
const link = (name: string, prefix: string): InterfaceSpec => ({ name, ...parseIpv4Prefix(prefix), mtu: 1500 });

class Sink implements Device {
  packets = 0;
  transmit(_buf: Uint8Array, _offset: number, length: number): number {
    this.packets++;
    return length;
  }
  setReceiver(_receiver: Receiver | null): void {}
}

function datagram(): Buffer {
  const buf = Buffer.alloc(20 + 8 + 36);
  const src = parseIpv4Address('10.0.1.2');
  const dst = parseIpv4Address('203.0.113.2');
  emitIpv4Header({ src, dst, protocol: IpProtocol.UDP, payloadLength: 44, ttl: 64, ident: 1 }, buf, 0);
  emitUdp({ srcPort: 4000, dstPort: 5201, payload: Buffer.alloc(36) }, buf, 20, src, dst);
  fillIpv4HeaderChecksum(buf, 0);
  return buf;
}

function singleNat(): { send: (buf: Buffer) => void; out: Sink } {
  const r = buildRouter({ interfaces: [link('lan0', '10.0.1.1/24'), link('wan0', '203.0.113.1/24')], rules: rules('lan0', 'wan0') });
  const out = new Sink();
  r.router.attach(r.router.interfaces[1]!, out);
  r.router.attach(r.router.interfaces[0]!, new Sink());
  return { send: (buf) => r.router.receive(r.router.interfaces[0]!, buf), out };
}

function doubleNat(): { send: (buf: Buffer) => void; out: Sink } {
  const home = buildRouter({ interfaces: [link('lan0', '10.0.1.1/24'), link('wan0', '100.64.0.2/24')], routes: [{ to: 0, prefixLength: 0, via: parseIpv4Address('100.64.0.1'), dev: 'wan0' }], rules: rules('lan0', 'wan0') } as RouterSpec);
  const cgn = buildRouter({ interfaces: [link('in0', '100.64.0.1/24'), link('wan0', '203.0.113.1/24')], rules: rules('in0', 'wan0') });
  const carrier = new Segment('carrier');
  home.router.attach(home.router.interfaces[1]!, carrier.attachRouter('home:wan0', parseIpv4Address('100.64.0.2'), 24));
  cgn.router.attach(cgn.router.interfaces[0]!, carrier.attachRouter('cgn:in0', parseIpv4Address('100.64.0.1'), 24));
  const out = new Sink();
  cgn.router.attach(cgn.router.interfaces[1]!, out);
  home.router.attach(home.router.interfaces[0]!, new Sink());
  return { send: (buf) => home.router.receive(home.router.interfaces[0]!, buf), out };
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

/** ns per datagram over `count` sends, in batches of 64 with the microtask queue drained between (as a TUN read batch). */
async function measure(path: { send: (buf: Buffer) => void; out: Sink }, count: number): Promise<number> {
  const packet = datagram();
  const copy = Buffer.alloc(packet.length);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 64) {
    for (let j = 0; j < 64; j++) {
      packet.copy(copy);
      path.send(copy);
    }
    await Promise.resolve();
  }
  const ns = Number(process.hrtime.bigint() - start) / count;
  if (path.out.packets < count * 0.99) throw new Error(`only ${path.out.packets} of ${count} came out`);
  return ns;
}

async function main(): Promise<void> {
  const packets = option('--packets', 200_000);
  const rounds = option('--rounds', 5);
  const best = { single: Infinity, double: Infinity };
  for (let round = 0; round < rounds; round++) {
    best.single = Math.min(best.single, await measure(singleNat(), packets));
    best.double = Math.min(best.double, await measure(doubleNat(), packets));
  }
  console.log(`one NAT router  ${best.single.toFixed(0)} ns/datagram`);
  console.log(`double NAT      ${best.double.toFixed(0)} ns/datagram  (${(best.double / best.single).toFixed(2)}x)`);
}

void main();
