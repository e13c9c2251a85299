/**
 * Impairment values as tc netem writes them, for lab files and `vrouter link`: durations with a
 * unit (`20ms`, `1.5s`, `500us`), percentages (`1%`), rates in bits (`50mbit`, `10kbit`, `1gbit`,
 * `800bit`) or, as tc has them, bytes per second (`bps`, `kbps`, `mbps`, `gbps`), and
 * `down`/`up`. Each parser throws ImpairmentValueError with what is wrong with the value.
 */
import type { ImpairmentSettings } from './impairment.ts';

export class ImpairmentValueError extends Error {}

const DURATION_UNITS: Readonly<Record<string, number>> = { us: 0.001, usec: 0.001, ms: 1, msec: 1, s: 1000, sec: 1000 };
const RATE_UNITS: Readonly<Record<string, number>> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
};
const NUMBER_AND_UNIT = /^(\d+(?:\.\d+)?)([a-z%]*)$/;

function split(value: unknown, what: string): [number, string] {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim().toLowerCase() : null;
  const found = text === null ? null : NUMBER_AND_UNIT.exec(text);
  if (!found) throw new ImpairmentValueError(`not ${what}`);
  return [Number(found[1]), found[2]!];
}

/** ms; the unit is required (`20ms`), as a bare number could mean anything. */
export function parseDuration(value: unknown): number {
  const [number, unit] = split(value, 'a duration such as 20ms or 1s');
  const scale = DURATION_UNITS[unit];
  if (scale === undefined) throw new ImpairmentValueError(`not a duration such as 20ms or 1s (units: ${Object.keys(DURATION_UNITS).join(', ')})`);
  const ms = number * scale;
  if (ms > 3_600_000) throw new ImpairmentValueError('is longer than an hour');
  return ms;
}

/** 0 to 100; `1%` or 1. */
export function parsePercent(value: unknown): number {
  const [number, unit] = split(value, 'a percentage such as 1%');
  if (unit !== '%' && unit !== '') throw new ImpairmentValueError('not a percentage such as 1%');
  if (number > 100) throw new ImpairmentValueError('is more than 100%');
  return number;
}

/** bit/s, with tc's units. */
export function parseRate(value: unknown): number {
  const [number, unit] = split(value, 'a rate such as 50mbit');
  const scale = RATE_UNITS[unit];
  if (scale === undefined) throw new ImpairmentValueError(`not a rate such as 50mbit (units: ${Object.keys(RATE_UNITS).join(', ')})`);
  const rate = number * scale;
  if (rate < 8) throw new ImpairmentValueError('is below one byte per second');
  return rate;
}

export function parseLimit(value: unknown): number {
  const [number, unit] = split(value, 'a number of packets');
  if (unit !== '' || !Number.isInteger(number) || number < 1 || number > 1_000_000) throw new ImpairmentValueError('not a number of packets from 1 to 1000000');
  return number;
}

/** The keys a segment takes, with their parsers (a lab file's `segments:` and `vrouter link`). */
export const IMPAIRMENT_KEYS: Readonly<Record<string, (value: unknown) => Partial<ImpairmentSettings>>> = {
  delay: (v) => ({ delay: parseDuration(v) }),
  jitter: (v) => ({ jitter: parseDuration(v) }),
  loss: (v) => ({ loss: parsePercent(v) }),
  duplicate: (v) => ({ duplicate: parsePercent(v) }),
  reorder: (v) => ({ reorder: parsePercent(v) }),
  rate: (v) => ({ rate: parseRate(v) }),
  limit: (v) => ({ limit: parseLimit(v) }),
};

/**
 * `vrouter link SEGMENT` words: `down`, `up`, and KEY VALUE pairs of IMPAIRMENT_KEYS; `rate 0`
 * style resets are written `KEY 0` (`delay 0ms`, `loss 0%`, `rate 0` lifts the limit).
 */
export function parseLinkWords(words: readonly string[]): Partial<ImpairmentSettings> {
  const settings: Partial<ImpairmentSettings> = {};
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === 'down' || word === 'up') {
      settings.down = word === 'down';
      continue;
    }
    const parse = IMPAIRMENT_KEYS[word];
    if (!parse) throw new ImpairmentValueError(`unknown word "${word}" (known: down, up, ${Object.keys(IMPAIRMENT_KEYS).join(', ')})`);
    const value = words[++i];
    if (value === undefined) throw new ImpairmentValueError(`${word} needs a value`);
    try {
      Object.assign(settings, word === 'rate' && value === '0' ? { rate: 0 } : parse(value));
    } catch (error) {
      throw new ImpairmentValueError(`${word} ${value}: ${(error as Error).message}`);
    }
  }
  if (Object.keys(settings).length === 0) throw new ImpairmentValueError('nothing to change: say down, up, or KEY VALUE');
  return settings;
}
