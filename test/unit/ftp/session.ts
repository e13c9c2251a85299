/**
 * An FTP control connection driven through an FtpBench's router: a handshake, then lines from either side
 * at the sender's next sequence number (advanced only when the router passes the segment, as the
 * sender would retransmit a dropped one), acknowledging what the other side sent so far.
 */
import { Verdict } from '../../../router/core/hooks.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { tcpPacket } from '../../support/packets.ts';
import type { FtpBench, Forwarded } from './bench.ts';

export const CLIENT = 0;
export const SERVER = 1;

export interface SessionOptions {
  client?: string;
  clientPort?: number;
  server?: string;
  serverPort?: number;
  /** Where the server's segments go: the client's address as NAT shows it (default: the client's). */
  clientSeenAs?: string;
  /** Initial sequence numbers [client, server]. */
  isn?: [number, number];
}

export class Session {
  readonly client: string;
  readonly clientPort: number;
  readonly server: string;
  readonly serverPort: number;
  readonly clientSeenAs: string;
  /** The next sequence number each side sends, in its own (unadjusted) space. */
  readonly next: [number, number];
  /** What each side has received, as its acknowledgment number (in its peer's adjusted space). */
  readonly acked: [number, number];

  constructor(
    readonly bench: FtpBench,
    options: SessionOptions = {},
  ) {
    this.client = options.client ?? '10.0.1.2';
    this.clientPort = options.clientPort ?? 40000;
    this.server = options.server ?? '203.0.113.2';
    this.serverPort = options.serverPort ?? 21;
    this.clientSeenAs = options.clientSeenAs ?? this.client;
    const [clientIsn, serverIsn] = options.isn ?? [999, 4999];
    this.next = [clientIsn, serverIsn];
    this.acked = [0, 0];
  }

  /** The handshake; no payload yet, so the first line each side sends is never read. */
  open(): this {
    this.segment(CLIENT, this.next[CLIENT], 0, TcpFlag.SYN, '');
    this.next[CLIENT] = (this.next[CLIENT] + 1) >>> 0;
    this.acked[SERVER] = this.next[CLIENT];
    this.segment(SERVER, this.next[SERVER], this.acked[SERVER], TcpFlag.SYN | TcpFlag.ACK, '');
    this.next[SERVER] = (this.next[SERVER] + 1) >>> 0;
    this.acked[CLIENT] = this.next[SERVER];
    this.segment(CLIENT, this.next[CLIENT], this.acked[CLIENT], TcpFlag.ACK, '');
    return this;
  }

  /** open(), then the banner and USER / 331: from here on every line start is read. */
  login(): this {
    this.open();
    this.line(SERVER, '220 ready\r\n');
    this.line(CLIENT, 'USER ftp\r\n');
    this.line(SERVER, '331 ok\r\n');
    return this;
  }

  /**
   * `text` from `from` at `seq` (default: that side's next). When the router passes a segment
   * sent at the side's next number, that number advances and the receiver acknowledges what it got.
   */
  line(from: 0 | 1, text: string, seq = this.next[from]): Forwarded {
    const result = this.segment(from, seq, this.acked[from], TcpFlag.ACK | TcpFlag.PSH, text);
    if (result.verdict === Verdict.ACCEPT && seq === this.next[from]) {
      this.next[from] = (this.next[from] + Buffer.byteLength(text, 'latin1')) >>> 0;
      // The receiver acknowledges what it received: the sequence number as it left the router.
      const out = result.out!;
      const l4 = (out[0]! & 0x0f) * 4;
      const payload = out.length - l4 - (out[l4 + 12]! >>> 4) * 4;
      this.acked[from ^ 1] = (out.readUInt32BE(l4 + 4) + payload) >>> 0;
    }
    return result;
  }

  segment(from: 0 | 1, seq: number, ack: number, flags: number, text: string): Forwarded {
    const [src, dst, srcPort, dstPort] =
      from === CLIENT ? [this.client, this.server, this.clientPort, this.serverPort] : [this.server, this.clientSeenAs, this.serverPort, this.clientPort];
    const payload = Buffer.from(text, 'latin1');
    const result = this.bench.forward(tcpPacket({ src, dst }, { srcPort, dstPort, seq: seq >>> 0, ack: ack >>> 0, flags, window: 65535, ...(payload.length ? { payload } : {}) }));
    // An untracked segment never reaches the helper: a test that reads "not parsed" from it would prove nothing.
    if (!result.packet.conntrack) throw new Error(`segment not tracked: ${text || flags}`);
    // The client is on lan0's side, the server on wan0's: a passed segment crosses the router.
    if (result.verdict === Verdict.ACCEPT && result.via !== (from === CLIENT ? 'wan0' : 'lan0')) throw new Error(`segment left by ${result.via}: ${text || flags}`);
    return result;
  }
}
