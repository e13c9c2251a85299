/**
 * A router's netfilter path for the PPTP tests, without TUN devices: a real ConntrackCore with the
 * real trackers (GRE reading the same keymap the helper fills), the pptp helper attached to TCP 1723
 * by a CT template (as `-t raw -A PREROUTING -p tcp --dport 1723 -j CT --helper pptp` would), and
 * optionally NatHooks with a MASQUERADE-like SNAT to 203.0.113.1 for everything leaving the LAN.
 *
 * A forwarded packet runs PRE_ROUTING (conntrack -200, DNAT -100), then POST_ROUTING (SNAT 100,
 * helper 300, confirm), as in the kernel.
 */
import { ConntrackCore } from '../../../netfilter/conntrack/conntrack-core.ts';
import type { Conntrack } from '../../../netfilter/conntrack/conntrack-entry.ts';
import { GreKeymap } from '../../../netfilter/conntrack/gre-keymap.ts';
import { createTrackers, genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { HelperRegistry } from '../../../netfilter/helpers/helper-registry.ts';
import { createPptpHelper, type PptpHelper } from '../../../netfilter/helpers/pptp.ts';
import { encodePptpMessage, type PptpFieldValues } from '../../../netfilter/helpers/pptp-messages.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import { createPptpNat, type PptpNat } from '../../../nat/helpers/nat-pptp.ts';
import { ManipType, NatCore } from '../../../nat/nat-core.ts';
import { NatHooks } from '../../../nat/nat-hooks.ts';
import { parseNatRange } from '../../../nat/nat-range.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { Packet } from '../../../router/core/packet.ts';
import { RateLimitedLog } from '../../../router/core/rate-limited-log.ts';
import { emitGreV1, greV1CallId, greV1LengthOf } from '../../../router/wire/gre.ts';
import { IpProtocol, computeIpv4HeaderChecksum, ipv4Checksum, ipv4Dst, ipv4Protocol, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpChecksumValid, tcpDstPort, tcpHeaderLength, tcpSeq, tcpSrcPort } from '../../../router/wire/tcp.ts';
import { ip, rawPacket, tcpPacket } from '../../support/packets.ts';

export const CLIENT = '10.0.1.2';
export const CLIENT2 = '10.0.1.3';
export const PUBLIC = '203.0.113.1';
export const SERVER = '203.0.113.2';
const LAN = ip('10.0.1.0');

export interface Bench {
  core: ConntrackCore;
  keymap: GreKeymap;
  helper: PptpHelper;
  nat: PptpNat | null;
  natCore: NatCore | null;
  hooks: NatHooks | null;
  clock: { ms: number };
  logs: string[];
  forward(buf: Buffer): Packet;
}

export function bench(options: { nat?: boolean; findGre?: boolean } = {}): Bench {
  const clock = { ms: 1_000_000 };
  const keymap = new GreKeymap();
  const helpers = new HelperRegistry();
  const logs: string[] = [];
  const log = new RateLimitedLog((line) => logs.push(line), 5000, 1000, () => clock.ms);
  const core = new ConntrackCore({ trackers: createTrackers({ greKeymap: keymap }), generic: genericTracker, helpers, now: () => clock.ms, buckets: 64, log });
  const natCore = options.nat ? new NatCore(core, () => 0.5) : null;
  const nat = natCore ? createPptpNat({ nat: natCore, log }) : null;
  const helper = createPptpHelper({
    expectations: core.expectations,
    keymap,
    destroyConnection: (entry: Conntrack) => core.destroy(entry),
    findGre: options.findGre === false ? null : (t) => core.table.find(t.src, t.dst, t.protocol, t.srcPort, t.dstPort)?.entry ?? null,
    nat,
    log,
  });
  helpers.register(helper);
  const hooks = natCore
    ? new NatHooks(natCore, {
        hasNatTable: () => true,
        // -t nat -A POSTROUTING -o wan0 -j MASQUERADE (wan0: anything not in 10.0.1.0/24)
        runNatChain: (hook, packet) => {
          const entry = packet.conntrack;
          if (hook === Hook.POST_ROUTING && entry && (ipv4Dst(packet.buf, 0) & 0xffffff00) >>> 0 !== LAN) {
            natCore.setup(entry, parseNatRange(PUBLIC), ManipType.SRC);
          }
          return Verdict.ACCEPT;
        },
      })
    : null;
  const forward = (buf: Buffer): Packet => {
    const packet = new Packet(buf, null);
    if (ipv4Protocol(buf, 0) === IpProtocol.TCP && tcpDstPort(buf, 20) === 1723) packet.ctTemplate = { helper: 'pptp', notrack: false };
    core.track(packet, Hook.PRE_ROUTING);
    if (hooks && hooks.nat(packet, Hook.PRE_ROUTING) !== Verdict.ACCEPT) throw new Error('DNAT dropped the packet');
    if (hooks && hooks.nat(packet, Hook.POST_ROUTING) !== Verdict.ACCEPT) throw new Error('SNAT dropped the packet');
    if (core.help(packet) !== Verdict.ACCEPT) throw new Error('the helper dropped the packet');
    core.confirm(packet);
    return packet;
  };
  return { core, keymap, helper, nat, natCore, hooks, clock, logs, forward };
}

/** A PPTP control connection from `client:sport` to the server, driven packet by packet. */
export class ControlSession {
  private clientSeq = 1000;
  private serverSeq = 5000;
  /** Where the server sees the client (after NAT). */
  seenAddress = '';
  seenPort = 0;
  entry: Conntrack | null = null;

  constructor(
    private readonly b: Bench,
    readonly client = CLIENT,
    readonly sport = 40000,
  ) {}

  handshake(): this {
    const syn = this.b.forward(tcpPacket({ src: this.client, dst: SERVER }, { srcPort: this.sport, dstPort: 1723, seq: this.clientSeq++, ack: 0, flags: TcpFlag.SYN, window: 65535 }));
    this.entry = syn.conntrack;
    this.seenAddress = formatIpv4Address(ipv4Src(syn.buf, 0));
    this.seenPort = tcpSrcPort(syn.buf, 20);
    this.b.forward(tcpPacket({ src: SERVER, dst: this.seenAddress }, { srcPort: 1723, dstPort: this.seenPort, seq: this.serverSeq++, ack: this.clientSeq, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535 }));
    this.b.forward(tcpPacket({ src: this.client, dst: SERVER }, { srcPort: this.sport, dstPort: 1723, seq: this.clientSeq, ack: this.serverSeq, flags: TcpFlag.ACK, window: 65535 }));
    return this;
  }

  /** PNS -> PAC: the packet as it leaves the router. */
  fromClient(payload: Buffer): Packet {
    const packet = this.b.forward(
      tcpPacket({ src: this.client, dst: SERVER }, { srcPort: this.sport, dstPort: 1723, seq: this.clientSeq, ack: this.serverSeq, flags: TcpFlag.ACK | TcpFlag.PSH, window: 65535, payload }),
    );
    this.clientSeq = (this.clientSeq + payload.length) >>> 0;
    return packet;
  }

  /** PAC -> PNS: the packet as it leaves the router. */
  fromServer(payload: Buffer): Packet {
    const packet = this.b.forward(
      tcpPacket({ src: SERVER, dst: this.seenAddress }, { srcPort: 1723, dstPort: this.seenPort, seq: this.serverSeq, ack: this.clientSeq, flags: TcpFlag.ACK | TcpFlag.PSH, window: 65535, payload }),
    );
    this.serverSeq = (this.serverSeq + payload.length) >>> 0;
    return packet;
  }

  pns(type: number, fields: PptpFieldValues = {}): Packet {
    return this.fromClient(encodePptpMessage(type, fields));
  }

  pac(type: number, fields: PptpFieldValues = {}): Packet {
    return this.fromServer(encodePptpMessage(type, fields));
  }
}

/** An enhanced GRE packet carrying `callId`. */
export function grePacket(src: string, dst: string, callId: number, sequence = 0): Buffer {
  const repr = { callId, sequence, payload: Buffer.from([0xff, 0x03, 0xc0, 0x21, 1, 2, 3, 4]) };
  const gre = Buffer.alloc(greV1LengthOf(repr));
  emitGreV1(repr, gre, 0);
  return rawPacket({ src, dst }, IpProtocol.GRE, gre);
}

export const src = (packet: Packet): string => formatIpv4Address(ipv4Src(packet.buf, 0));
export const dst = (packet: Packet): string => formatIpv4Address(ipv4Dst(packet.buf, 0));
export const greCallIdOf = (packet: Packet): number => greV1CallId(packet.buf, 20);

/** The TCP payload of a forwarded segment (a copy). */
export function payloadOf(packet: Packet): Buffer {
  const buf = packet.buf;
  return Buffer.from(buf.subarray(20 + tcpHeaderLength(buf, 20)));
}

export function checksumsValid(packet: Packet): boolean {
  const buf = packet.buf;
  const ipOk = ipv4Checksum(buf, 0) === computeIpv4HeaderChecksum(buf, 0);
  if (ipv4Protocol(buf, 0) !== IpProtocol.TCP) return ipOk;
  return ipOk && tcpChecksumValid(buf, 20, buf.length - 20, ipv4Src(buf, 0), ipv4Dst(buf, 0));
}

export const seqOf = (packet: Packet): number => tcpSeq(packet.buf, 20);
