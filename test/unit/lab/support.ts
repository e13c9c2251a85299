/** A clock the test moves by hand, for the scheduler of impaired segments. */
import { Scheduler, type Clock } from '../../../router/deploy/lab/scheduler.ts';

export class ManualClock implements Clock {
  ms = 0;
  private timers: { at: number; fire: () => void; live: boolean }[] = [];

  now(): number {
    return this.ms;
  }

  setTimer(ms: number, fire: () => void): () => void {
    const timer = { at: this.ms + ms, fire, live: true };
    this.timers.push(timer);
    return () => void (timer.live = false);
  }

  /** Moves time forward to `ms`, firing due timers in time order. */
  advanceTo(ms: number): void {
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= ms).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.ms = Math.max(this.ms, due.at);
      due.live = false;
      due.fire();
    }
    this.timers = this.timers.filter((t) => t.live);
    this.ms = ms;
  }
}

export function manualScheduler(): { clock: ManualClock; scheduler: Scheduler } {
  const clock = new ManualClock();
  return { clock, scheduler: new Scheduler(clock) };
}
