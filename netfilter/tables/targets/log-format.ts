/**
 * A packet as the kernel's LOG target prints it (nf_log_syslog.c; lines compared with Linux 6.18
 * logging packets written to a TUN device): the prefix, `IN=` and `OUT=` for the hook's devices,
 * `MAC=` (empty: a TUN device has no link header) when there is an input device, then the IPv4
 * header, the L4 header and `MARK=` if the packet has a mark. ICMP errors show the quoted packet
 * in brackets, one level deep. Every field ends with a space, the last one too, as in the
 * kernel's line. INCOMPLETE counts run to the buffer's end, as the kernel's to skb->len.
 */
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { readU32 } from '../../../router/wire/bytes.ts';
import { icmpCode, icmpEchoId, icmpEchoSequence, icmpGateway, icmpNextHopMtu, icmpPointer, icmpType } from '../../../router/wire/icmp.ts';
import {
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_FRAGMENT_OFFSET_MASK,
  ipv4Dst,
  ipv4FlagsFragment,
  ipv4HeaderLength,
  ipv4Ident,
  ipv4Protocol,
  ipv4Src,
  ipv4TotalLength,
  ipv4Tos,
  ipv4Ttl,
} from '../../../router/wire/ipv4.ts';
import { TCP, tcpAck, tcpDstPort, tcpFlags, tcpHeaderLength, tcpSeq, tcpSrcPort, tcpUrgent, tcpWindow } from '../../../router/wire/tcp.ts';
import { udpDstPort, udpLength, udpSrcPort } from '../../../router/wire/udp.ts';
import type { HookPoint } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { hookHasInput, hookHasOutput } from '../tables.ts';

/** NF_LOG_* bits, as `--log-tcp-sequence` and friends set them. */
export const LogFlag = {
  TCP_SEQUENCE: 0x01,
  TCP_OPTIONS: 0x02,
  IP_OPTIONS: 0x04,
  UID: 0x08,
  MAC_DECODE: 0x20,
} as const;

/** The reserved bit of the flags word, which the kernel calls CE. */
const IP_CE = 0x8000;
const IPTOS_TOS_MASK = 0x1e;
const IPTOS_PREC_MASK = 0xe0;
const TCP_HEADER = 20;
const UDP_HEADER = 8;
const ICMP_HEADER = 8;
const IP_HEADER = 20;
const AH_HEADER = 12;
const ESP_HEADER = 8;
/** nf_log's required_len per ICMP type: the bytes the type's fields need. */
const ICMP_REQUIRED: Readonly<Record<number, number>> = {
  0: 4,
  3: 8 + IP_HEADER,
  4: 8 + IP_HEADER,
  5: 8 + IP_HEADER,
  8: 4,
  11: 8 + IP_HEADER,
  12: 8 + IP_HEADER,
  13: 20,
  14: 20,
  17: 12,
  18: 12,
};
const NR_ICMP_TYPES = 18;

export function formatLogLine(prefix: string, flags: number, packet: Packet, hook: HookPoint): string {
  const input = hookHasInput(hook) ? packet.inInterface : null;
  const output = hookHasOutput(hook) ? packet.outInterface : null;
  const line = new LineBuilder(packet.buf, flags);
  line.add(`${prefix}IN=${input ? input.name : ''} OUT=${output ? output.name : ''} `);
  if (input) line.add('MAC= ');
  if (line.ipv4(0) && packet.mark !== 0) line.add(`MARK=0x${(packet.mark >>> 0).toString(16)} `);
  return line.text;
}

function hex2(value: number): string {
  return value.toString(16).toUpperCase().padStart(2, '0');
}

function hexBytes(buf: Uint8Array, from: number, to: number): string {
  let text = '';
  for (let i = from; i < to; i++) text += hex2(buf[i]);
  return text;
}

class LineBuilder {
  text = '';

  constructor(
    private readonly buf: Buffer,
    private readonly flags: number,
  ) {}

  add(part: string): void {
    this.text += part;
  }

  /** What the kernel prints for INCOMPLETE: skb->len - offset as an unsigned int. */
  private remaining(offset: number): number {
    return (this.buf.length - offset) >>> 0;
  }

  /** dump_ipv4_packet; returns false where the kernel returns early (no MARK after it). */
  ipv4(at: number): boolean {
    const buf = this.buf;
    if (buf.length - at < IP_HEADER) {
      this.add('TRUNCATED');
      return false;
    }
    const tos = ipv4Tos(buf, at);
    this.add(`SRC=${formatIpv4Address(ipv4Src(buf, at))} DST=${formatIpv4Address(ipv4Dst(buf, at))} `);
    this.add(
      `LEN=${ipv4TotalLength(buf, at)} TOS=0x${hex2(tos & IPTOS_TOS_MASK)} PREC=0x${hex2(tos & IPTOS_PREC_MASK)} ` +
        `TTL=${ipv4Ttl(buf, at)} ID=${ipv4Ident(buf, at)} `,
    );
    const fragWord = ipv4FlagsFragment(buf, at);
    if (fragWord & IP_CE) this.add('CE ');
    if (fragWord & IPV4_FLAG_DF) this.add('DF ');
    if (fragWord & IPV4_FLAG_MF) this.add('MF ');
    const fragment = fragWord & IPV4_FRAGMENT_OFFSET_MASK;
    if (fragment) this.add(`FRAG:${fragment} `);
    const headerLength = ipv4HeaderLength(buf, at);
    if (this.flags & LogFlag.IP_OPTIONS && headerLength > IP_HEADER) {
      if (at + headerLength > buf.length) {
        this.add('TRUNCATED');
        return false;
      }
      this.add(`OPT (${hexBytes(buf, at + IP_HEADER, at + headerLength)}) `);
    }
    const l4 = at + headerLength;
    const protocol = ipv4Protocol(buf, at);
    switch (protocol) {
      case 6:
        return this.tcp(l4, fragment !== 0);
      case 17:
      case 136:
        return this.udp(protocol === 17 ? 'UDP' : 'UDPLITE', l4, fragment !== 0);
      case 1:
        this.icmp(at, l4, fragment !== 0);
        return true;
      case 51:
        if (fragment) return true;
        this.add('PROTO=AH ');
        if (l4 + AH_HEADER > buf.length) this.add(`INCOMPLETE [${this.remaining(l4)} bytes] `);
        else this.add(`SPI=0x${readU32(buf, l4 + 4).toString(16)} `);
        return true;
      case 50:
        this.add('PROTO=ESP ');
        if (fragment) return true;
        if (l4 + ESP_HEADER > buf.length) this.add(`INCOMPLETE [${this.remaining(l4)} bytes] `);
        else this.add(`SPI=0x${readU32(buf, l4).toString(16)} `);
        return true;
      default:
        this.add(`PROTO=${protocol} `);
        return true;
    }
  }

  private tcp(at: number, fragment: boolean): boolean {
    const buf = this.buf;
    this.add('PROTO=TCP ');
    if (fragment) return true;
    if (at + TCP_HEADER > buf.length) {
      this.add(`INCOMPLETE [${this.remaining(at)} bytes] `);
      return false;
    }
    this.add(`SPT=${tcpSrcPort(buf, at)} DPT=${tcpDstPort(buf, at)} `);
    if (this.flags & LogFlag.TCP_SEQUENCE) this.add(`SEQ=${tcpSeq(buf, at)} ACK=${tcpAck(buf, at)} `);
    const offsetByte = buf[at + TCP.DATA_OFFSET];
    const flags = tcpFlags(buf, at);
    // The three reserved bits; the fourth is AE, printed as a flag.
    this.add(`WINDOW=${tcpWindow(buf, at)} RES=0x${((offsetByte & 0x0e) << 2).toString(16).padStart(2, '0')} `);
    if (offsetByte & 0x01) this.add('AE ');
    if (flags & 0x80) this.add('CWR ');
    if (flags & 0x40) this.add('ECE ');
    if (flags & 0x20) this.add('URG ');
    if (flags & 0x10) this.add('ACK ');
    if (flags & 0x08) this.add('PSH ');
    if (flags & 0x04) this.add('RST ');
    if (flags & 0x02) this.add('SYN ');
    if (flags & 0x01) this.add('FIN ');
    this.add(`URGP=${tcpUrgent(buf, at)} `);
    const headerLength = tcpHeaderLength(buf, at);
    if (this.flags & LogFlag.TCP_OPTIONS && headerLength > TCP_HEADER) {
      if (at + headerLength > buf.length) {
        this.add('OPT (TRUNCATED)');
        return false;
      }
      this.add(`OPT (${hexBytes(buf, at + TCP_HEADER, at + headerLength)}) `);
    }
    return true;
  }

  private udp(name: string, at: number, fragment: boolean): boolean {
    const buf = this.buf;
    this.add(`PROTO=${name} `);
    if (fragment) return true;
    if (at + UDP_HEADER > buf.length) {
      this.add(`INCOMPLETE [${this.remaining(at)} bytes] `);
      return false;
    }
    this.add(`SPT=${udpSrcPort(buf, at)} DPT=${udpDstPort(buf, at)} LEN=${udpLength(buf, at)} `);
    return true;
  }

  private icmp(ipAt: number, at: number, fragment: boolean): void {
    const buf = this.buf;
    this.add('PROTO=ICMP ');
    if (fragment) return;
    if (at + ICMP_HEADER > buf.length) {
      this.add(`INCOMPLETE [${this.remaining(at)} bytes] `);
      return;
    }
    const type = icmpType(buf, at);
    const code = icmpCode(buf, at);
    this.add(`TYPE=${type} CODE=${code} `);
    const required = type <= NR_ICMP_TYPES ? (ICMP_REQUIRED[type] ?? 0) : 0;
    if (required && buf.length - at < required) {
      this.add(`INCOMPLETE [${this.remaining(at)} bytes] `);
      return;
    }
    switch (type) {
      case 0:
      case 8:
        this.add(`ID=${icmpEchoId(buf, at)} SEQ=${icmpEchoSequence(buf, at)} `);
        return;
      case 12:
        this.add(`PARAMETER=${icmpPointer(buf, at)} `);
        return;
      case 3:
      case 4:
      case 5:
      case 11:
        if (type === 5) this.add(`GATEWAY=${formatIpv4Address(icmpGateway(buf, at))} `);
        // The quoted packet, printed only from the outer level.
        if (ipAt === 0) {
          this.add('[');
          this.ipv4(at + ICMP_HEADER);
          this.add('] ');
        }
        if (type === 3 && code === 4) this.add(`MTU=${icmpNextHopMtu(buf, at)} `);
        return;
    }
  }
}
