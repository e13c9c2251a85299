/**
 * A packet in flight, the router's sk_buff: the IPv4 bytes plus what the path learns about them.
 *
 * `buf` may be a view into a TUN read slab that the next read batch overwrites; anything that keeps
 * a packet past the synchronous walk (a QUEUE handler, reassembly) must `detach()` it first.
 */
import type { Conntrack } from '../netfilter/conntrack/conntrack-entry.ts';
import type { ConntrackTemplate } from '../netfilter/conntrack/template.ts';
import type { RouterInterface } from './interfaces.ts';

export class Packet {
  /** The IPv4 packet starts at `buf[0]` and is `buf.length` bytes long (padding already trimmed). */
  buf: Buffer;
  inInterface: RouterInterface | null;
  outInterface: RouterInterface | null = null;
  /** Netfilter state, filled by conntrack and the rule tables. */
  mark = 0;
  /** The connection this packet belongs to and how (CtInfo), set by conntrack at -200. */
  conntrack: Conntrack | null = null;
  ctinfo = 0;
  /** Set by the raw table's CT target before conntrack runs: what a new connection gets. */
  ctTemplate: ConntrackTemplate | null = null;
  /** Largest fragment of a datagram that defrag reassembled: output refragments to this size. */
  fragMaxSize = 0;

  constructor(buf: Buffer, inInterface: RouterInterface | null) {
    this.buf = buf;
    this.inInterface = inInterface;
  }

  /** Copies the bytes out of a shared read slab so the packet can outlive this batch. */
  detach(): void {
    this.buf = Buffer.from(this.buf);
  }
}
