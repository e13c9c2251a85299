/**
 * Impairments as netem applies them, seeded: rates over 10,000 packets within tolerance, delay and
 * jitter bounds, reordering, rate shaping with a bounded queue, link down, and repeatability.
 */
import { describe, expect, it } from 'vitest';
import { Impairment, NO_IMPAIRMENT, type ImpairmentSettings } from '../../../router/deploy/lab/impairment.ts';
import { seededRandom } from '../../../router/deploy/lab/random.ts';

const N = 10_000;

function run(settings: Partial<ImpairmentSettings>, seed = 7, length = 100, spacingMs = 1): { departures: number[][]; impairment: Impairment } {
  const impairment = new Impairment({ ...NO_IMPAIRMENT, ...settings }, seededRandom(seed));
  const out = new Float64Array(2);
  const departures: number[][] = [];
  for (let i = 0; i < N; i++) {
    const count = impairment.plan(length, i * spacingMs, out);
    departures.push(Array.from(out.subarray(0, count)));
    for (let c = 0; c < count; c++) impairment.delivered();
  }
  return { departures, impairment };
}

describe('impairments', () => {
  it('loses about the share it is told to, over 10,000 packets', () => {
    const { departures, impairment } = run({ loss: 10 });
    const lost = departures.filter((d) => d.length === 0).length;
    expect(lost).toBe(impairment.counters.lost);
    expect(lost / N).toBeGreaterThan(0.09);
    expect(lost / N).toBeLessThan(0.11);
  });

  it('duplicates about the share it is told to', () => {
    const { departures } = run({ duplicate: 5 });
    const twice = departures.filter((d) => d.length === 2).length;
    expect(twice / N).toBeGreaterThan(0.044);
    expect(twice / N).toBeLessThan(0.056);
  });

  it('delays every packet by delay ± jitter, and spreads them over that whole window', () => {
    const { departures } = run({ delay: 20, jitter: 2 });
    const delays = departures.map((d, i) => d[0]! - i);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(18);
    expect(Math.max(...delays)).toBeLessThanOrEqual(22);
    expect(Math.min(...delays)).toBeLessThan(18.1);
    expect(Math.max(...delays)).toBeGreaterThan(21.9);
    const mean = delays.reduce((a, b) => a + b, 0) / N;
    expect(Math.abs(mean - 20)).toBeLessThan(0.1);
  });

  it('lets the reordered share skip the delay', () => {
    const { departures, impairment } = run({ delay: 10, reorder: 25 });
    const immediate = departures.filter((d, i) => d[0] === i).length;
    expect(immediate).toBe(impairment.counters.reordered);
    expect(immediate / N).toBeGreaterThan(0.23);
    expect(immediate / N).toBeLessThan(0.27);
  });

  it('shapes to the rate: each packet leaves a transmission time after the one before', () => {
    // 1250-byte packets at 10 Mbit/s take 1 ms each; offered every 0.5 ms, they queue.
    const impairment = new Impairment({ ...NO_IMPAIRMENT, rate: 10_000_000, limit: 1000 }, seededRandom(1));
    const out = new Float64Array(2);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      expect(impairment.plan(1250, i * 0.5, out)).toBe(1);
      times.push(out[0]!);
    }
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeCloseTo(1, 9);
    expect(times[0]).toBeCloseTo(1, 9);
  });

  it('drops what does not fit the queue limit', () => {
    const impairment = new Impairment({ ...NO_IMPAIRMENT, delay: 100, limit: 10 }, seededRandom(1));
    const out = new Float64Array(2);
    const admitted = Array.from({ length: 15 }, (_, i) => impairment.plan(100, i, out)).reduce((a, b) => a + b, 0);
    expect(admitted).toBe(10);
    expect(impairment.counters.overlimit).toBe(5);
    impairment.delivered();
    expect(impairment.plan(100, 20, out)).toBe(1);
  });

  it('drops everything while down', () => {
    const { departures, impairment } = run({ down: true });
    expect(departures.every((d) => d.length === 0)).toBe(true);
    expect(impairment.counters.down).toBe(N);
  });

  it('repeats exactly for the same seed, and differs for another', () => {
    const settings = { loss: 3, duplicate: 2, delay: 5, jitter: 4, reorder: 10 };
    expect(run(settings, 42).departures).toEqual(run(settings, 42).departures);
    expect(run(settings, 43).departures).not.toEqual(run(settings, 42).departures);
  });
});
