/**
 * `-m limit --limit N[/second|/minute|/hour|/day] --limit-burst N` (xt_limit): a token bucket per
 * rule, full when the rule is loaded. The rate is kept as iptables hands it to the kernel, `avg`
 * = 1/10000 s between packets (so 3000/sec is 3 and prints back as 3333/sec), and the bucket counts
 * in xt_limit's units: CREDITS_PER_JIFFY credits per jiffy of a HZ=250 kernel (the router's clock
 * cut into 4 ms jiffies), a packet costs user2credits(avg), the bucket holds burst of them.
 * Defaults: 3/hour, burst 5.
 *
 * Where xt_limit's 32-bit sums would wrap (a slow rate with a big burst, which its checkentry then
 * refuses as "Overflow, try lower"; or credits piling up over ~37 idle hours), this counts exactly:
 * iptables-nft, which loads -m limit as nft's own 64-bit limit, accepts such rules, and so does
 * this. Likewise `--limit-burst 0` is taken as the default 5, as nft_limit takes it (and
 * iptables-save then prints no burst).
 */
import { OptionError } from '../errors.ts';
import { MatchResult, type ExtensionContext, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';

const XT_LIMIT_SCALE = 10000;
const HZ = 250;
const JIFFY_MS = 1000 / HZ;
/** POW2_BELOW32(0xFFFFFFFF / (HZ*60*60*24)) for HZ=250. */
const CREDITS_PER_JIFFY = 128;
const DEFAULT_BURST = 5;
const MAX_BURST = 10000;
const DAY = 24 * 60 * 60;

/** Units as parse_rate takes them (any prefix of the name, any case) ... */
const UNITS: readonly (readonly [string, number])[] = [
  ['second', 1],
  ['minute', 60],
  ['hour', 60 * 60],
  ['day', DAY],
];
/** ... and as print_rate prints them, slowest first. */
const PRINT_UNITS: readonly (readonly [string, number])[] = [
  ['day', XT_LIMIT_SCALE * DAY],
  ['hour', XT_LIMIT_SCALE * 60 * 60],
  ['min', XT_LIMIT_SCALE * 60],
  ['sec', XT_LIMIT_SCALE],
];

/** The default --limit, 3/hour. */
const DEFAULT_AVG = (XT_LIMIT_SCALE * 60 * 60) / 3;

/** user2credits, both of its branches (divide first when multiplying would overflow 32 bits), without its wrap. */
function user2credits(user: number): number {
  if (user > Math.floor(0xffffffff / (HZ * CREDITS_PER_JIFFY))) return Math.floor(user / XT_LIMIT_SCALE) * HZ * CREDITS_PER_JIFFY;
  return Math.floor((user * HZ * CREDITS_PER_JIFFY) / XT_LIMIT_SCALE);
}

/** print_rate: the slowest unit that still shows the rate as a whole number without losing much. */
function rateText(avg: number): string {
  let i = 1;
  for (; i < PRINT_UNITS.length; i++) {
    const mult = PRINT_UNITS[i]![1];
    if (avg > mult || Math.floor(mult / avg) < mult % avg) break;
  }
  const [name, mult] = PRINT_UNITS[i - 1]!;
  return `${Math.floor(mult / avg)}/${name}`;
}

/** parse_rate: `N` (per second) or `N/unit`; N read as atoi reads it, its leading digits. */
function parseRate(text: string): number {
  const bad = (): OptionError => new OptionError(text, `bad rate "${text}" (N/second, N/minute, N/hour or N/day, N at least 1)`);
  const slash = text.indexOf('/');
  let mult = 1;
  if (slash >= 0) {
    const unit = text.slice(slash + 1).toLowerCase();
    const known = unit === '' ? undefined : UNITS.find(([name]) => name.startsWith(unit));
    if (!known) throw bad();
    mult = known[1];
  }
  const digits = /^[0-9]+/.exec(text);
  const count = digits ? Number(digits[0]) : 0;
  if (count === 0) throw bad();
  const avg = Math.floor((XT_LIMIT_SCALE * mult) / count);
  if (avg === 0) throw new OptionError(text, `Rate too fast "${text}" (at most ${XT_LIMIT_SCALE}/second)`);
  return avg;
}

class LimitMatch implements Match {
  private readonly cost: number;
  private readonly cap: number;
  private credit: number;
  /** The jiffy of the last test. */
  private last: number;

  constructor(
    private readonly now: () => number,
    private readonly avg: number,
    private readonly burst: number,
  ) {
    this.cost = user2credits(avg);
    this.cap = user2credits(avg * burst);
    this.credit = this.cap;
    this.last = this.jiffies();
  }

  test(): MatchResult {
    const now = this.jiffies();
    if (now > this.last) {
      this.credit = Math.min(this.credit + (now - this.last) * CREDITS_PER_JIFFY, this.cap);
      this.last = now;
    }
    if (this.credit < this.cost) return MatchResult.NO;
    this.credit -= this.cost;
    return MatchResult.YES;
  }

  save(): string {
    return ` -m limit --limit ${rateText(this.avg)}${this.burst !== DEFAULT_BURST ? ` --limit-burst ${this.burst}` : ''}`;
  }

  /** `limit: avg 5/sec burst 10`: the burst always. */
  print(): string {
    return ` limit: avg ${rateText(this.avg)} burst ${this.burst}`;
  }

  private jiffies(): number {
    return Math.floor(this.now() / JIFFY_MS);
  }
}

class LimitBuilder implements MatchBuilder {
  private avg = DEFAULT_AVG;
  private burst = DEFAULT_BURST;

  constructor(private readonly context: ExtensionContext) {}

  option(name: string, args: readonly string[]): void {
    const value = args[0]!;
    if (name === 'limit') {
      this.avg = parseRate(value);
      return;
    }
    const burst = parseCNumber(value, MAX_BURST);
    if (burst < 0) throw new OptionError(value, `limit: bad value "${value}" for option "--limit-burst", or out of range (0-${MAX_BURST})`);
    this.burst = burst === 0 ? DEFAULT_BURST : burst;
  }

  build(): Match {
    return new LimitMatch(this.context.now, this.avg, this.burst);
  }
}

export const limitMatch: MatchType = {
  name: 'limit',
  options: [
    { names: ['limit'], args: 1, invertible: false },
    { names: ['limit-burst'], args: 1, invertible: false },
  ],
  create: (context) => new LimitBuilder(context),
};
