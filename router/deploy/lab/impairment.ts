/**
 * What tc netem does to a link, done in process and seeded so a run repeats: for each packet it
 * decides whether it is lost, whether it is duplicated, and when each copy leaves. The model
 * follows netem_enqueue:
 *
 *   - `down` drops everything; `loss` % drops a packet; `duplicate` % sends it twice;
 *   - `delay` ± `jitter` (uniform, as netem without a distribution table), never below zero;
 *   - `reorder` %: that share of packets skips the delay and leaves at once (netem's reorder with
 *     gap 1), so it overtakes the delayed ones;
 *   - `rate` (bit/s): a packet leaves no earlier than the previous one's departure plus its own
 *     transmission time; at most `limit` packets wait (netem's default 1000), others are dropped.
 */
export interface ImpairmentSettings {
  /** ms */
  delay: number;
  /** ms, uniform in [-jitter, +jitter] around the delay */
  jitter: number;
  /** percent */
  loss: number;
  duplicate: number;
  reorder: number;
  /** bit/s; 0 for no limit */
  rate: number;
  /** packets that may be waiting (delayed or rate-limited) */
  limit: number;
  down: boolean;
}

export const NO_IMPAIRMENT: ImpairmentSettings = { delay: 0, jitter: 0, loss: 0, duplicate: 0, reorder: 0, rate: 0, limit: 1000, down: false };

export interface ImpairmentCounters {
  lost: number;
  duplicated: number;
  reordered: number;
  /** dropped because `limit` packets were already waiting */
  overlimit: number;
  /** dropped while the link was down */
  down: number;
}

/** Whether the settings do anything at all (a segment without impairment takes the direct path). */
export function impairs(settings: ImpairmentSettings): boolean {
  return settings.down || settings.delay > 0 || settings.jitter > 0 || settings.loss > 0 || settings.duplicate > 0 || settings.reorder > 0 || settings.rate > 0;
}

export class Impairment {
  readonly counters: ImpairmentCounters = { lost: 0, duplicated: 0, reordered: 0, overlimit: 0, down: 0 };
  settings: ImpairmentSettings;
  /** Packets admitted and not yet delivered. */
  waiting = 0;
  private lastDeparture = 0;

  constructor(
    settings: ImpairmentSettings,
    private readonly random: () => number,
  ) {
    this.settings = { ...settings };
  }

  /**
   * Plans one packet of `length` bytes sent at `now`: writes the departure time of each copy into
   * `departures` and returns how many copies go (0, 1 or 2). Each planned copy counts as waiting
   * until the caller reports it delivered (`delivered()`).
   */
  plan(length: number, now: number, departures: Float64Array): number {
    const s = this.settings;
    if (s.down) {
      this.counters.down++;
      return 0;
    }
    if (s.loss > 0 && this.random() * 100 < s.loss) {
      this.counters.lost++;
      return 0;
    }
    let copies = 1;
    if (s.duplicate > 0 && this.random() * 100 < s.duplicate) {
      copies = 2;
      this.counters.duplicated++;
    }
    let planned = 0;
    for (let i = 0; i < copies; i++) {
      if (this.waiting >= s.limit) {
        this.counters.overlimit++;
        continue;
      }
      departures[planned++] = this.departure(length, now);
      this.waiting++;
    }
    return planned;
  }

  delivered(): void {
    this.waiting--;
  }

  private departure(length: number, now: number): number {
    const s = this.settings;
    if (s.reorder > 0 && this.random() * 100 < s.reorder) {
      this.counters.reordered++;
      return now;
    }
    let delay = s.delay;
    if (s.jitter > 0) delay += (this.random() * 2 - 1) * s.jitter;
    if (delay < 0) delay = 0;
    if (s.rate <= 0) return now + delay;
    // netem: behind the last packet still waiting, then this packet's own transmission time.
    let start = now;
    if (this.waiting > 0 && this.lastDeparture > now) {
      delay = Math.max(0, delay - (this.lastDeparture - now));
      start = this.lastDeparture;
    }
    const departure = start + delay + (length * 8 * 1000) / s.rate;
    this.lastDeparture = departure;
    return departure;
  }
}
