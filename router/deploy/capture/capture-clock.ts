/**
 * Time for capture timestamps, injected so tests fix it: an origin read once, in nanoseconds since
 * 1970 (a bigint: it does not fit a double exactly), and per packet the nanoseconds since that
 * origin as a plain number (exact up to 2^53 ns, 104 days), so no packet makes a bigint.
 */
export interface CaptureClock {
  /** Nanoseconds since 1970-01-01 00:00:00 UTC at elapsed time 0. */
  readonly originNs: bigint;
  /** Whole nanoseconds since the origin, never decreasing. */
  elapsedNs(): number;
}

/** Wall-clock origin now, elapsed time from the monotonic clock (performance.now). */
export function systemCaptureClock(): CaptureClock {
  const start = performance.now();
  const originNs = BigInt(Math.round((performance.timeOrigin + start) * 1e6));
  return { originNs, elapsedNs: () => Math.round((performance.now() - start) * 1e6) };
}

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Origin + elapsed as the two u32 halves an Enhanced Packet Block stores, in number arithmetic.
 * `high` and `low` are read after each `set`; one instance is reused for every packet.
 */
export class TimestampHalves {
  high = 0;
  low = 0;
  private readonly originHigh: number;
  private readonly originLow: number;

  constructor(originNs: bigint) {
    this.originHigh = Number(originNs >> 32n);
    this.originLow = Number(originNs & 0xffffffffn);
  }

  set(elapsedNs: number): void {
    const elapsed = Math.max(0, Math.floor(elapsedNs));
    const elapsedHigh = Math.floor(elapsed / TWO_POW_32);
    let low = this.originLow + (elapsed - elapsedHigh * TWO_POW_32);
    let high = this.originHigh + elapsedHigh;
    if (low >= TWO_POW_32) {
      low -= TWO_POW_32;
      high++;
    }
    this.high = high;
    this.low = low;
  }
}
