/**
 * Defragmentation before conntrack (nf_defrag_ipv4): at -400 on PRE_ROUTING and LOCAL_OUT, so that
 * conntrack, NAT and helpers see whole datagrams. Fragments are held (STOLEN) until the datagram is
 * complete; the packet carrying the last one continues as the whole datagram, remembering its
 * largest fragment so output refragments to that size, as the kernel does (frag_max_size).
 */
import { Hook, Priority, Verdict, type HookOps } from '../router/core/hooks.ts';
import type { Packet } from '../router/core/packet.ts';
import { Ipv4Reassembler, ReassemblyResult } from '../router/wire/ipv4-reassembly.ts';
import { ipv4IsFragment } from '../router/wire/ipv4.ts';

const EXPIRY_SWEEP_MS = 1000;

export interface DefragCounters {
  held: number;
  reassembled: number;
  duplicates: number;
  invalid: number;
  noMemory: number;
  expired: number;
}

export class Defrag {
  readonly counters: DefragCounters = { held: 0, reassembled: 0, duplicates: 0, invalid: 0, noMemory: 0, expired: 0 };
  private readonly reassembler: Ipv4Reassembler;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(now?: () => number) {
    this.reassembler = new Ipv4Reassembler(now);
  }

  hookOps(): HookOps[] {
    const fn = (packet: Packet): Verdict => this.defragment(packet);
    return [
      { hook: Hook.PRE_ROUTING, priority: Priority.CONNTRACK_DEFRAG, fn, name: 'defrag' },
      { hook: Hook.LOCAL_OUT, priority: Priority.CONNTRACK_DEFRAG, fn, name: 'defrag' },
    ];
  }

  defragment(packet: Packet): Verdict {
    if (!ipv4IsFragment(packet.buf, 0)) return Verdict.ACCEPT;
    switch (this.reassembler.add(packet.buf)) {
      case ReassemblyResult.PENDING:
        this.counters.held++;
        this.sweepTimer ??= setInterval(() => this.sweep(), EXPIRY_SWEEP_MS).unref();
        return Verdict.STOLEN;
      case ReassemblyResult.COMPLETE: {
        const completed = this.reassembler.completed!;
        packet.buf = completed.packet;
        packet.fragMaxSize = completed.maxFragmentSize;
        this.counters.reassembled++;
        return Verdict.ACCEPT;
      }
      case ReassemblyResult.DUPLICATE:
        this.counters.duplicates++;
        return Verdict.DROP;
      case ReassemblyResult.NO_MEMORY:
        this.counters.noMemory++;
        return Verdict.DROP;
      default:
        this.counters.invalid++;
        return Verdict.DROP;
    }
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  private sweep(): void {
    this.counters.expired += this.reassembler.expire();
    if (this.reassembler.size === 0) this.close();
  }
}
