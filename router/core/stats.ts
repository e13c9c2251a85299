/**
 * Counters by reason: every packet the router drops is counted under exactly one reason, so that a
 * bad packet is visible (`vrouter stats`) without a log line per packet.
 */
export const DropReason = {
  TRUNCATED: 0,
  NOT_IPV4: 1,
  IPV4_BAD_VERSION: 2,
  IPV4_BAD_HEADER_LENGTH: 3,
  IPV4_BAD_TOTAL_LENGTH: 4,
  IPV4_BAD_CHECKSUM: 5,
  MARTIAN_SOURCE: 6,
  MARTIAN_DESTINATION: 7,
  NO_ROUTE: 8,
  TTL_EXCEEDED: 9,
  FRAGMENTATION_NEEDED: 10,
  /** A hook op (a rule's DROP, a match's hotdrop) dropped it without a reason of its own. */
  HOOK_DROP: 11,
  QUEUE_NO_HANDLER: 12,
  LOCAL_L4_MALFORMED: 13,
  LOCAL_UNSERVED: 14,
  LOCAL_CONSUMED: 15,
  WRITE_FAILED: 16,
  REASSEMBLY_FAILED: 17,
  REASSEMBLY_TIMEOUT: 18,
  /** A bug: code on the packet path threw. The packet is dropped and the router goes on. */
  INTERNAL_ERROR: 19,
  /** The egress interface has no device, or its device went away. */
  INTERFACE_DOWN: 20,
  /** The next hop is on the egress subnet but nobody there owns it (where ARP would fail). */
  NO_NEIGHBOUR: 21,
  /** NAT found no free tuple for a new connection's binding (SNAT, DNAT, MASQUERADE, null binding). */
  NAT_NO_TUPLE: 22,
  /** NAT could not rewrite the packet: its L4 header (or the one an ICMP error quotes) is cut short. */
  NAT_TRUNCATED: 23,
  /** Sequence adjustment met malformed TCP options (the kernel's nf_ct_seq_adjust failing). */
  SEQADJ_MALFORMED: 24,
  /** A conntrack helper dropped the packet (FTP: a command cut short, no room for an expectation). */
  HELPER_DROP: 25,
  /** A super-packet whose GSO metadata does not fit its headers (wrong protocol, a fragment, no segment size). */
  GSO_MALFORMED: 26,
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

const DROP_REASON_NAMES: readonly string[] = [
  'truncated',
  'not-ipv4',
  'ipv4-bad-version',
  'ipv4-bad-header-length',
  'ipv4-bad-total-length',
  'ipv4-bad-checksum',
  'martian-source',
  'martian-destination',
  'no-route',
  'ttl-exceeded',
  'fragmentation-needed',
  'hook-drop',
  'queue-no-handler',
  'local-l4-malformed',
  'local-unserved',
  'local-consumed',
  'write-failed',
  'reassembly-failed',
  'reassembly-timeout',
  'internal-error',
  'interface-down',
  'no-neighbour',
  'nat-no-tuple',
  'nat-truncated',
  'seqadj-malformed',
  'helper-drop',
  'gso-malformed',
];

/** A drop reason as stats name it (`no-route`). */
export function dropReasonName(reason: DropReason): string {
  return DROP_REASON_NAMES[reason] ?? `reason-${reason}`;
}

export const Counter = {
  RECEIVED: 0,
  FORWARDED: 1,
  DELIVERED_LOCAL: 2,
  SENT_LOCAL: 3,
  FRAGMENTS_CREATED: 4,
  ICMP_ERRORS_SENT: 5,
  ICMP_ERRORS_RATE_LIMITED: 6,
  ECHO_REPLIES_SENT: 7,
  READ_ERRORS: 8,
  /** Super-packets received whole (TSO/USO through a TUN's offload). */
  SUPER_PACKETS_RECEIVED: 9,
  /** Super-packets cut into segments in software: an egress or a helper that cannot take them whole. */
  SUPER_PACKETS_SEGMENTED: 10,
} as const;
export type Counter = (typeof Counter)[keyof typeof Counter];

const COUNTER_NAMES: readonly string[] = [
  'received',
  'forwarded',
  'delivered-local',
  'sent-local',
  'fragments-created',
  'icmp-errors-sent',
  'icmp-errors-rate-limited',
  'echo-replies-sent',
  'read-errors',
  'super-packets-received',
  'super-packets-segmented',
];

/** Per interface, as `ip -s link` counts them (dropped: what came in by it and the router dropped). */
export const InterfaceCounter = {
  RX_PACKETS: 0,
  RX_BYTES: 1,
  RX_DROPPED: 2,
  TX_PACKETS: 3,
  TX_BYTES: 4,
  TX_ERRORS: 5,
} as const;
export type InterfaceCounter = (typeof InterfaceCounter)[keyof typeof InterfaceCounter];
const INTERFACE_COUNTER_NAMES = ['rx-packets', 'rx-bytes', 'rx-dropped', 'tx-packets', 'tx-bytes', 'tx-errors'] as const;
const PER_INTERFACE = INTERFACE_COUNTER_NAMES.length;

export class RouterStats {
  private readonly drops = new Float64Array(DROP_REASON_NAMES.length);
  private readonly perInterface: Float64Array;

  constructor(interfaceCount = 0) {
    this.perInterface = new Float64Array(interfaceCount * PER_INTERFACE);
  }

  countInterface(index: number, counter: InterfaceCounter, amount = 1): void {
    this.perInterface[index * PER_INTERFACE + counter]! += amount;
  }

  interfaceCount(index: number, counter: InterfaceCounter): number {
    return this.perInterface[index * PER_INTERFACE + counter]!;
  }

  /** By interface name (in the router's order), every counter. */
  interfacesSnapshot(names: readonly string[]): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    names.forEach((name, index) => {
      const counters: Record<string, number> = {};
      INTERFACE_COUNTER_NAMES.forEach((counter, i) => (counters[counter] = this.perInterface[index * PER_INTERFACE + i]!));
      out[name] = counters;
    });
    return out;
  }
  private readonly counters = new Float64Array(COUNTER_NAMES.length);
  /** hook-drop by what decided it: a rule or policy (`filter:FORWARD:policy:3 DROP`), else the op's name. */
  private readonly hookDrops = new Map<string, number>();

  drop(reason: DropReason): void {
    this.drops[reason]!++;
  }

  /** One hook-drop, by `origin` (a string made once, when the rules or ops were set up). */
  dropByOp(origin: string): void {
    this.hookDrops.set(origin, (this.hookDrops.get(origin) ?? 0) + 1);
  }

  /** The hook-drops by origin, most first. */
  hookDropsByOrigin(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [origin, count] of [...this.hookDrops].sort((a, b) => b[1] - a[1])) out[origin] = count;
    return out;
  }

  count(counter: Counter, amount = 1): void {
    this.counters[counter]! += amount;
  }

  dropped(reason: DropReason): number {
    return this.drops[reason]!;
  }

  get(counter: Counter): number {
    return this.counters[counter]!;
  }

  /** Named snapshot for the control socket; zero drop reasons are left out. */
  snapshot(): { counters: Record<string, number>; drops: Record<string, number> } {
    const counters: Record<string, number> = {};
    COUNTER_NAMES.forEach((name, i) => (counters[name] = this.counters[i]!));
    const drops: Record<string, number> = {};
    DROP_REASON_NAMES.forEach((name, i) => {
      if (this.drops[i]) drops[name] = this.drops[i]!;
    });
    return { counters, drops };
  }
}
