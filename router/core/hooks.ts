/**
 * The netfilter-style hook registry, after the kernel's nf_hook_ops.
 *
 * Five IPv4 hook points; on each, ops are kept sorted by priority (lower runs first). Ops with the
 * same priority run in registration order. Registering or unregistering builds a new frozen array
 * and swaps it in, so a packet that is already walking a chain keeps the array it started with.
 */
import type { Packet } from './packet.ts';
import type { DropReason } from './stats.ts';

export const Hook = {
  PRE_ROUTING: 0,
  LOCAL_IN: 1,
  FORWARD: 2,
  LOCAL_OUT: 3,
  POST_ROUTING: 4,
} as const;
export type HookPoint = (typeof Hook)[keyof typeof Hook];
export const HOOK_NAMES = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/** The kernel's enum nf_ip_hook_priorities. */
export const Priority = {
  FIRST: INT_MIN,
  CONNTRACK_DEFRAG: -400,
  RAW: -300,
  CONNTRACK: -200,
  MANGLE: -150,
  NAT_DST: -100,
  FILTER: 0,
  SECURITY: 50,
  NAT_SRC: 100,
  CONNTRACK_HELPER: 300,
  CONNTRACK_CONFIRM: INT_MAX,
  LAST: INT_MAX,
} as const;

export const Verdict = {
  DROP: 0,
  ACCEPT: 1,
  /** The hook took the packet: it is no longer ours to touch or free. */
  STOLEN: 2,
  /** Hand the packet to the queue handler, which gives the verdict later. */
  QUEUE: 3,
  /** Run the same hook function again. */
  REPEAT: 4,
  /**
   * vrouter's own, for a super-packet an op can only handle segment by segment (a helper that
   * reads or rewrites a payload): the router cuts it into its segments in software, as the
   * kernel's GSO would, and runs each through the same op and on, as a packet of its own.
   * Only before the packet has a connection: conntrack asks for it.
   */
  SEGMENT: 5,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];
export const VERDICT_NAMES = ['DROP', 'ACCEPT', 'STOLEN', 'QUEUE', 'REPEAT', 'SEGMENT'] as const;

export type HookFn = (packet: Packet, hook: HookPoint) => Verdict;

/** DROP, counted under `reason` (`vrouter stats`) rather than as a plain hook-drop. */
export function dropFor(packet: Packet, reason: DropReason): Verdict {
  packet.dropReason = reason;
  return Verdict.DROP;
}

export interface HookOps {
  readonly hook: HookPoint;
  readonly priority: number;
  readonly fn: HookFn;
  /** Shown in diagnostics (`vrouter stats`, `vrouter trace`). */
  readonly name: string;
  /** What the op did to a traced packet, for `vrouter trace` (its tuple, state, binding, rewrite). */
  readonly describe?: (packet: Packet) => string;
}

/** Receives QUEUEd packets (a userspace-style helper); calls `resume` with the verdict later, or never (dropped). */
export type QueueHandler = (packet: Packet, hook: HookPoint, resume: (verdict: Verdict) => void) => void;

const EMPTY: readonly HookOps[] = Object.freeze([]);
/** A REPEAT loop this long means a hook function never settles; the packet is dropped. */
const MAX_REPEATS = 16;

export class HookRegistry {
  private readonly chains: (readonly HookOps[])[] = [EMPTY, EMPTY, EMPTY, EMPTY, EMPTY];

  register(ops: HookOps): void {
    const old = this.chains[ops.hook]!;
    let at = old.length;
    // After every op of the same or lower priority: equal priorities keep registration order.
    while (at > 0 && old[at - 1]!.priority > ops.priority) at--;
    this.chains[ops.hook] = Object.freeze([...old.slice(0, at), ops, ...old.slice(at)]);
  }

  unregister(ops: HookOps): boolean {
    const old = this.chains[ops.hook]!;
    const index = old.indexOf(ops);
    if (index < 0) return false;
    this.chains[ops.hook] = Object.freeze([...old.slice(0, index), ...old.slice(index + 1)]);
    return true;
  }

  /** The current chain of a hook; the array never changes once returned. */
  chain(hook: HookPoint): readonly HookOps[] {
    return this.chains[hook]!;
  }
}

/** Outcome of walking a chain: a final verdict, plus where a QUEUE or SEGMENT verdict stopped it. */
export interface ChainResult {
  verdict: Verdict;
  /** Index of the op that returned QUEUE (the walk resumes after it) or SEGMENT (at it). */
  stoppedAt: number;
}

/** Told each op's final verdict for a traced packet. */
export type OpListener = (ops: HookOps, verdict: Verdict) => void;

/**
 * Runs `chain` from `start` on a packet. ACCEPT moves on; DROP, STOLEN and QUEUE end the walk.
 * The caller owns QUEUE handling, because the verdict arrives later. `traced`, given only for a
 * traced packet, hears every op's verdict.
 */
export function runChain(
  chain: readonly HookOps[],
  start: number,
  packet: Packet,
  hook: HookPoint,
  result: ChainResult,
  traced?: OpListener,
): ChainResult {
  for (let i = start; i < chain.length; i++) {
    let verdict = chain[i]!.fn(packet, hook);
    for (let repeats = 0; verdict === Verdict.REPEAT; repeats++) {
      if (repeats === MAX_REPEATS) {
        verdict = Verdict.DROP;
        break;
      }
      verdict = chain[i]!.fn(packet, hook);
    }
    if (traced !== undefined) traced(chain[i]!, verdict);
    if (verdict !== Verdict.ACCEPT) {
      result.verdict = verdict;
      result.stoppedAt = i;
      return result;
    }
  }
  result.verdict = Verdict.ACCEPT;
  result.stoppedAt = chain.length;
  return result;
}
