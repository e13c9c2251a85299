/**
 * A router for the PPTP tests, built by the composition root as production builds it: lan0
 * 10.0.1.1/24 (the PNS side), wan0 203.0.113.1/24 (the PAC side), CaptureLinks on both, the pptp
 * helper attached by rule, and with `nat` MASQUERADE on wan0:
 *
 *   *raw  -A PREROUTING -p tcp --dport 1723 -j CT --helper pptp
 *   *nat  -A POSTROUTING -o wan0 -j MASQUERADE
 *
 * A datagram enters on the side its source is on and runs the router's whole path and hook chain;
 * `forward` returns what left the router, and throws if it did not leave (a drop here is a bug).
 */
import type { Conntrack } from '../../../netfilter/conntrack/conntrack-entry.ts';
import type { GreKeymap } from '../../../netfilter/conntrack/gre-keymap.ts';
import type { GreTracker } from '../../../netfilter/conntrack/trackers/gre.ts';
import { createPptpHelper, type PptpHelper } from '../../../netfilter/helpers/pptp.ts';
import { encodePptpMessage, type PptpFieldValues } from '../../../netfilter/helpers/pptp-messages.ts';
import type { PptpNat } from '../../../nat/helpers/nat-pptp.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { RateLimitedLog } from '../../../router/core/rate-limited-log.ts';
import { emitGreV1, greV1CallId, greV1LengthOf } from '../../../router/wire/gre.ts';
import { IpProtocol, computeIpv4HeaderChecksum, ipv4Checksum, ipv4Dst, ipv4Protocol, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpChecksumValid, tcpHeaderLength, tcpSeq, tcpSrcPort } from '../../../router/wire/tcp.ts';
import { rawPacket, tcpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

export const CLIENT = '10.0.1.2';
export const CLIENT2 = '10.0.1.3';
export const PUBLIC = '203.0.113.1';
export const SERVER = '203.0.113.2';

/** A datagram as it left the router, with what netfilter left on the router's Packet for it. */
export interface Forwarded {
  /** A copy of the bytes transmitted. */
  buf: Buffer;
  via: string;
  conntrack: Packet['conntrack'];
  ctinfo: number;
}

export interface Bench {
  router: RouterBench;
  core: RouterBench['netfilter']['conntrack'];
  keymap: GreKeymap;
  helper: PptpHelper;
  nat: PptpNat | null;
  clock: { ms: number };
  logs: string[];
  forward(buf: Buffer): Forwarded;
}

export function pptpRules(nat: boolean): string {
  return ['*raw', '-A PREROUTING -p tcp --dport 1723 -j CT --helper pptp', 'COMMIT', ...(nat ? ['*nat', '-A POSTROUTING -o wan0 -j MASQUERADE', 'COMMIT'] : []), ''].join('\n');
}

/**
 * `findGre: false` builds a router that offers no built-in pptp helper, registers one made without
 * the connection table lookup (a path production never takes) and only then loads the rules.
 */
export function bench(options: { nat?: boolean; findGre?: boolean } = {}): Bench {
  const clock = { ms: 1_000_000 };
  const logs: string[] = [];
  const log = new RateLimitedLog((line) => logs.push(line), 5000, 1000, () => clock.ms);
  const nat = options.nat ?? false;
  const ownHelper = options.findGre === false;
  if (ownHelper && nat) throw new Error('findGre: false is a tracking-only bench');
  const rules = { text: pptpRules(nat), origin: 'pptp-bench.rules', firstLine: 0 };
  const router = new RouterBench(
    {
      interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
      rules: ownHelper ? null : rules,
      conntrack: { buckets: 64 },
    },
    { now: () => clock.ms, random: () => 0.5, log, ...(ownHelper ? { helpers: ['ftp'] as const } : {}) },
  );
  const core = router.netfilter.conntrack;
  // The keymap the GRE tracker reads and the router's pptp helper fills.
  const keymap = (core.trackerFor(IpProtocol.GRE) as GreTracker).keymap;
  if (ownHelper) {
    router.netfilter.helpers.register(createPptpHelper({ expectations: core.expectations, keymap, destroyConnection: (entry: Conntrack) => core.destroy(entry), findGre: null, nat: null, log }));
    router.netfilter.loadRules(rules.text, rules.origin, rules.firstLine);
  }
  const helper = router.netfilter.helpers.get('pptp') as PptpHelper;
  const forward = (buf: Buffer): Forwarded => {
    const { packet, sent, drops, forwarded } = router.receive(buf);
    if (!packet || !forwarded || sent.length !== 1 || drops.length) {
      throw new Error(`not forwarded: ${sent.length} out (${sent.map((s) => s.via).join(',')}), drops [${drops.join(',')}]`);
    }
    return { buf: sent[0]!.buf, via: sent[0]!.via, conntrack: packet.conntrack, ctinfo: packet.ctinfo };
  };
  return { router, core, keymap, helper, nat: nat ? router.netfilter.pptpNat : null, clock, logs, forward };
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

  /** PNS -> PAC: the packet as it leaves the router (by wan0). */
  fromClient(payload: Buffer): Forwarded {
    const packet = this.crossing(
      'wan0',
      tcpPacket({ src: this.client, dst: SERVER }, { srcPort: this.sport, dstPort: 1723, seq: this.clientSeq, ack: this.serverSeq, flags: TcpFlag.ACK | TcpFlag.PSH, window: 65535, payload }),
    );
    this.clientSeq = (this.clientSeq + payload.length) >>> 0;
    return packet;
  }

  /** PAC -> PNS: the packet as it leaves the router (by lan0). */
  fromServer(payload: Buffer): Forwarded {
    const packet = this.crossing(
      'lan0',
      tcpPacket({ src: SERVER, dst: this.seenAddress }, { srcPort: 1723, dstPort: this.seenPort, seq: this.serverSeq, ack: this.clientSeq, flags: TcpFlag.ACK | TcpFlag.PSH, window: 65535, payload }),
    );
    this.serverSeq = (this.serverSeq + payload.length) >>> 0;
    return packet;
  }

  private crossing(via: string, buf: Buffer): Forwarded {
    const out = this.b.forward(buf);
    if (out.via !== via) throw new Error(`a control segment left by ${out.via}, not ${via}`);
    return out;
  }

  pns(type: number, fields: PptpFieldValues = {}): Forwarded {
    return this.fromClient(encodePptpMessage(type, fields));
  }

  pac(type: number, fields: PptpFieldValues = {}): Forwarded {
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

export const src = (packet: Forwarded): string => formatIpv4Address(ipv4Src(packet.buf, 0));
export const dst = (packet: Forwarded): string => formatIpv4Address(ipv4Dst(packet.buf, 0));
export const greCallIdOf = (packet: Forwarded): number => greV1CallId(packet.buf, 20);

/** The TCP payload of a forwarded segment (a copy). */
export function payloadOf(packet: Forwarded): Buffer {
  const buf = packet.buf;
  return Buffer.from(buf.subarray(20 + tcpHeaderLength(buf, 20)));
}

export function checksumsValid(packet: Forwarded): boolean {
  const buf = packet.buf;
  const ipOk = ipv4Checksum(buf, 0) === computeIpv4HeaderChecksum(buf, 0);
  if (ipv4Protocol(buf, 0) !== IpProtocol.TCP) return ipOk;
  return ipOk && tcpChecksumValid(buf, 20, buf.length - 20, ipv4Src(buf, 0), ipv4Dst(buf, 0));
}

export const seqOf = (packet: Forwarded): number => tcpSeq(packet.buf, 20);
