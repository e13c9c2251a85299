/**
 * Conntrack timeouts in seconds, per protocol and state, defaulting to the kernel's sysctls
 * (net.netfilter.nf_conntrack_*_timeout*, set up by each nf_conntrack_proto_*.c's init_net).
 * A configuration overrides any subset; `resolveTimeouts` fills in the rest and checks the values
 * once, at configuration time, so trackers never see a bad one.
 */

/** nf_conntrack_tcp_timeout_*: one per state, plus the two caps tcp_packet applies. */
export interface TcpTimeouts {
  synSent: number;
  synRecv: number;
  established: number;
  finWait: number;
  closeWait: number;
  lastAck: number;
  timeWait: number;
  close: number;
  /** No sysctl of its own in the kernel; the table entry is 2 minutes like SYN_SENT. */
  synSent2: number;
  /** Cap once tcp_max_retrans retransmissions were seen, or the last window was zero. */
  retrans: number;
  /** Cap while data is unacknowledged, and for picked-up connections without a reply. */
  unacknowledged: number;
}

/** nf_conntrack_udp_timeout and nf_conntrack_udp_timeout_stream (likewise for GRE). */
export interface StreamTimeouts {
  unreplied: number;
  replied: number;
}

export interface ConntrackTimeouts {
  tcp: TcpTimeouts;
  udp: StreamTimeouts;
  icmp: number;
  gre: StreamTimeouts;
  generic: number;
}

export const DEFAULT_TIMEOUTS: Readonly<ConntrackTimeouts> = Object.freeze({
  tcp: Object.freeze({
    synSent: 120,
    synRecv: 60,
    established: 432000,
    finWait: 120,
    closeWait: 60,
    lastAck: 30,
    timeWait: 120,
    close: 10,
    synSent2: 120,
    retrans: 300,
    unacknowledged: 300,
  }),
  udp: Object.freeze({ unreplied: 30, replied: 120 }),
  icmp: 30,
  gre: Object.freeze({ unreplied: 30, replied: 180 }),
  generic: 600,
});

export interface TimeoutOverrides {
  tcp?: Partial<TcpTimeouts>;
  udp?: Partial<StreamTimeouts>;
  icmp?: number;
  gre?: Partial<StreamTimeouts>;
  generic?: number;
}

function checked(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`conntrack timeout ${name} must be a finite number of seconds >= 0, got ${String(value)}`);
  }
  return value;
}

function mergeGroup<T extends object>(group: string, defaults: Readonly<T>, overrides: Partial<T> | undefined): T {
  const merged = { ...defaults } as Record<string, number>;
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (!(key in defaults)) throw new RangeError(`unknown conntrack timeout ${group}.${key}`);
    merged[key] = checked(`${group}.${key}`, value as number);
  }
  return merged as T;
}

/** The defaults with `overrides` applied; throws a RangeError naming the first bad value. */
export function resolveTimeouts(overrides: TimeoutOverrides = {}): ConntrackTimeouts {
  return {
    tcp: mergeGroup('tcp', DEFAULT_TIMEOUTS.tcp, overrides.tcp),
    udp: mergeGroup('udp', DEFAULT_TIMEOUTS.udp, overrides.udp),
    icmp: overrides.icmp === undefined ? DEFAULT_TIMEOUTS.icmp : checked('icmp', overrides.icmp),
    gre: mergeGroup('gre', DEFAULT_TIMEOUTS.gre, overrides.gre),
    generic: overrides.generic === undefined ? DEFAULT_TIMEOUTS.generic : checked('generic', overrides.generic),
  };
}
