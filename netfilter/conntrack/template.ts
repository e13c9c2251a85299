/**
 * What the raw table's CT target puts on a packet before conntrack sees it (the kernel's template
 * conntrack): a helper for the connection the packet opens, or "do not track this packet".
 */
export interface ConntrackTemplate {
  /** Helper name (`CT --helper ftp`), or null. */
  helper: string | null;
  /** `CT --notrack`: the packet is not tracked at all (ctstate UNTRACKED). */
  notrack: boolean;
}

// What a packet's template slot holds (see router/core/packet.ts).
declare module '../../router/core/packet.ts' {
  interface PacketCtTemplate extends ConntrackTemplate {}
}
