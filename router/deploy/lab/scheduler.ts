/**
 * Runs callbacks at given times on one timer: a binary min-heap by due time (ties in insertion
 * order), re-armed for the earliest entry. Impaired segments hold their delayed packets here.
 * The clock and the timer are injected, so unit tests move time by hand.
 */
export interface Clock {
  /** ms */
  now(): number;
  /** Calls `fire` after `ms`; returns a cancel function. */
  setTimer(ms: number, fire: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, fire) => {
    const timer = setTimeout(fire, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};

interface Entry {
  at: number;
  order: number;
  run: () => void;
}

export class Scheduler {
  private readonly heap: Entry[] = [];
  private order = 0;
  private cancelTimer: (() => void) | null = null;
  private armedFor = Infinity;

  constructor(readonly clock: Clock = realClock) {}

  get pending(): number {
    return this.heap.length;
  }

  at(time: number, run: () => void): void {
    this.push({ at: time, order: this.order++, run });
    this.arm();
  }

  /** Drops everything pending (the lab is shutting down). */
  clear(): void {
    this.heap.length = 0;
    this.cancelTimer?.();
    this.cancelTimer = null;
    this.armedFor = Infinity;
  }

  /** Runs what is due now; exposed for tests with a manual clock. */
  runDue(): void {
    const now = this.clock.now();
    while (this.heap.length && this.heap[0]!.at <= now) this.pop().run();
    this.arm();
  }

  private arm(): void {
    const first = this.heap[0];
    if (!first) return;
    if (this.cancelTimer && this.armedFor <= first.at) return;
    this.cancelTimer?.();
    this.armedFor = first.at;
    this.cancelTimer = this.clock.setTimer(first.at - this.clock.now(), () => {
      this.cancelTimer = null;
      this.armedFor = Infinity;
      this.runDue();
    });
  }

  private before(x: Entry, y: Entry): boolean {
    return x.at < y.at || (x.at === y.at && x.order < y.order);
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && this.before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}
