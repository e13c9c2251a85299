/** Connection status bits and packet ctinfo values, with the kernel's numbers (uapi nf_conntrack_common.h). */

export const Status = {
  EXPECTED: 1 << 0,
  SEEN_REPLY: 1 << 1,
  ASSURED: 1 << 2,
  CONFIRMED: 1 << 3,
  SRC_NAT: 1 << 4,
  DST_NAT: 1 << 5,
  SEQ_ADJUST: 1 << 6,
  SRC_NAT_DONE: 1 << 7,
  DST_NAT_DONE: 1 << 8,
  DYING: 1 << 9,
  FIXED_TIMEOUT: 1 << 10,
  TEMPLATE: 1 << 11,
  UNTRACKED: 1 << 12,
  HELPER: 1 << 13,
} as const;

/** Names as `conntrack --status` and `-m conntrack --ctstatus` spell them. */
export const STATUS_NAMES: Readonly<Record<string, number>> = {
  EXPECTED: Status.EXPECTED,
  SEEN_REPLY: Status.SEEN_REPLY,
  ASSURED: Status.ASSURED,
  CONFIRMED: Status.CONFIRMED,
  SNAT: Status.SRC_NAT,
  DNAT: Status.DST_NAT,
  SEQ_ADJUST: Status.SEQ_ADJUST,
  SRC_NAT_DONE: Status.SRC_NAT_DONE,
  DST_NAT_DONE: Status.DST_NAT_DONE,
  DYING: Status.DYING,
  FIXED_TIMEOUT: Status.FIXED_TIMEOUT,
  TEMPLATE: Status.TEMPLATE,
  UNTRACKED: Status.UNTRACKED,
  HELPER: Status.HELPER,
};

/** enum ip_conntrack_info */
export const CtInfo = {
  ESTABLISHED: 0,
  RELATED: 1,
  NEW: 2,
  ESTABLISHED_REPLY: 3,
  RELATED_REPLY: 4,
  /** The packet is not tracked: invalid, or marked NOTRACK. */
  UNTRACKED: 7,
} as const;
export type CtInfo = (typeof CtInfo)[keyof typeof CtInfo];

/** The direction a ctinfo value implies: the *_REPLY values are >= ESTABLISHED_REPLY. */
export function ctinfoDirection(ctinfo: number): 0 | 1 {
  return ctinfo >= CtInfo.ESTABLISHED_REPLY && ctinfo !== CtInfo.UNTRACKED ? 1 : 0;
}

/** Event bits (enum ip_conntrack_events); conntrack -E shows NEW, UPDATE (any other) and DESTROY. */
export const CtEvent = {
  NEW: 1 << 0,
  RELATED: 1 << 1,
  DESTROY: 1 << 2,
  REPLY: 1 << 3,
  ASSURED: 1 << 4,
  PROTOINFO: 1 << 5,
  HELPER: 1 << 6,
  MARK: 1 << 7,
  SEQADJ: 1 << 8,
  SECMARK: 1 << 9,
  LABEL: 1 << 10,
  SYNPROXY: 1 << 11,
} as const;
