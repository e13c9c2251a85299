/**
 * `-m conntrack --ctstate/--ctstatus/--ctdir` (xt_conntrack) and `-m state --state` (xt_state),
 * which iptables prints under its own name.
 *
 * A packet's state: no connection and ctinfo UNTRACKED (CT --notrack) is UNTRACKED; no connection
 * otherwise is INVALID; else the ctinfo gives NEW, ESTABLISHED or RELATED (the _REPLY values fold
 * onto their originals), plus SNAT/DNAT from the connection's status. As in the kernel, a packet
 * without a connection fails any --ctstatus or --ctdir test, inverted or not, and passes the match
 * only if it passed a --ctstate test. --ctdir (ORIGINAL or REPLY, either case) cannot be inverted.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { CtInfo, Status, ctinfoDirection } from '../../conntrack/status.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';

export const CtState = {
  INVALID: 1 << 0,
  ESTABLISHED: 1 << 1,
  RELATED: 1 << 2,
  NEW: 1 << 3,
  UNTRACKED: 1 << 4,
  SNAT: 1 << 5,
  DNAT: 1 << 6,
} as const;

/** Parse order (the first name a prefix fits wins, as in libxt_conntrack) ... */
const STATE_PARSE_ORDER: readonly (readonly [string, number])[] = [
  ['INVALID', CtState.INVALID],
  ['NEW', CtState.NEW],
  ['ESTABLISHED', CtState.ESTABLISHED],
  ['RELATED', CtState.RELATED],
  ['UNTRACKED', CtState.UNTRACKED],
  ['SNAT', CtState.SNAT],
  ['DNAT', CtState.DNAT],
];
/** ... and print order. */
const STATE_PRINT_ORDER: readonly (readonly [string, number])[] = [
  ['INVALID', CtState.INVALID],
  ['NEW', CtState.NEW],
  ['RELATED', CtState.RELATED],
  ['ESTABLISHED', CtState.ESTABLISHED],
  ['UNTRACKED', CtState.UNTRACKED],
  ['SNAT', CtState.SNAT],
  ['DNAT', CtState.DNAT],
];
/** `-m state` knows no SNAT or DNAT. */
const PLAIN_STATES = STATE_PARSE_ORDER.slice(0, 5);

const STATUS_NAMES: readonly (readonly [string, number])[] = [
  ['NONE', 0],
  ['EXPECTED', Status.EXPECTED],
  ['SEEN_REPLY', Status.SEEN_REPLY],
  ['ASSURED', Status.ASSURED],
  ['CONFIRMED', Status.CONFIRMED],
];

/** The state bits of a packet, as xt_conntrack derives them. */
export function ctStateOf(packet: Packet): number {
  const entry = packet.conntrack;
  if (entry === null) return packet.ctinfo === CtInfo.UNTRACKED ? CtState.UNTRACKED : CtState.INVALID;
  // XT_CONNTRACK_STATE_BIT: ESTABLISHED(_REPLY) -> 1 << 1, RELATED(_REPLY) -> 1 << 2, NEW -> 1 << 3.
  let state = 1 << ((packet.ctinfo % CtInfo.ESTABLISHED_REPLY) + 1);
  if (entry.status & Status.SRC_NAT) state |= CtState.SNAT;
  if (entry.status & Status.DST_NAT) state |= CtState.DNAT;
  return state;
}

/** A comma list of names, each matched case-insensitively as a prefix of a known name. */
function parseNames(text: string, names: readonly (readonly [string, number])[], what: string): number {
  let mask = 0;
  for (const word of text.split(',')) {
    const upper = word.toUpperCase();
    const known = word === '' ? undefined : names.find(([name]) => name.startsWith(upper));
    if (!known) throw new OptionError(word, `bad ${what} "${word}"`);
    mask |= known[1];
  }
  return mask;
}

function printNames(mask: number, names: readonly (readonly [string, number])[]): string {
  return names
    .filter(([, bit]) => mask & bit)
    .map(([name]) => name)
    .join(',');
}

function printStatus(mask: number): string {
  return mask === 0 ? 'NONE' : printNames(mask, STATUS_NAMES);
}

const DIRECTION_NAMES = ['ORIGINAL', 'REPLY'] as const;

/** Either mask is -1 when its option was not given, and the direction when --ctdir was not. */
class ConntrackMatch implements Match {
  readonly needsConntrack = true;

  constructor(
    private readonly name: 'conntrack' | 'state',
    private readonly stateMask: number,
    private readonly invertState: boolean,
    private readonly statusMask: number,
    private readonly invertStatus: boolean,
    private readonly direction: 0 | 1 | -1 = -1,
  ) {}

  test(packet: Packet): MatchResult {
    if (this.stateMask !== -1 && ((ctStateOf(packet) & this.stateMask) !== 0) === this.invertState) return MatchResult.NO;
    const entry = packet.conntrack;
    if (entry === null) return this.stateMask !== -1 ? MatchResult.YES : MatchResult.NO;
    if (this.statusMask !== -1 && ((entry.status & this.statusMask) !== 0) === this.invertStatus) return MatchResult.NO;
    if (this.direction !== -1 && ctinfoDirection(packet.ctinfo) !== this.direction) return MatchResult.NO;
    return MatchResult.YES;
  }

  save(): string {
    return ` -m ${this.name}${this.options('--')}`;
  }

  /** `iptables -L` shows the options without their dashes: `ctstate RELATED,ESTABLISHED`. */
  print(): string {
    return this.options('');
  }

  private options(dashes: string): string {
    let text = '';
    const option = this.name === 'state' ? 'state' : 'ctstate';
    if (this.stateMask !== -1) text += `${this.invertState ? ' !' : ''} ${dashes}${option} ${printNames(this.stateMask, STATE_PRINT_ORDER)}`;
    if (this.statusMask !== -1) text += `${this.invertStatus ? ' !' : ''} ${dashes}ctstatus ${printStatus(this.statusMask)}`;
    if (this.direction !== -1) text += ` ${dashes}ctdir ${DIRECTION_NAMES[this.direction]}`;
    return text;
  }
}

class ConntrackBuilder implements MatchBuilder {
  private stateMask = -1;
  private invertState = false;
  private statusMask = -1;
  private invertStatus = false;
  private direction: 0 | 1 | -1 = -1;

  option(name: string, args: readonly string[], invert: boolean): void {
    if (name === 'ctdir') {
      const index = DIRECTION_NAMES.indexOf(args[0]!.toUpperCase() as (typeof DIRECTION_NAMES)[number]);
      if (index === -1) throw new OptionError(args[0]!, `bad value for --ctdir "${args[0]}" (ORIGINAL or REPLY)`);
      this.direction = index as 0 | 1;
    } else if (name === 'ctstatus') {
      this.statusMask = parseNames(args[0]!, STATUS_NAMES, 'ctstatus');
      this.invertStatus = invert;
    } else {
      this.stateMask = parseNames(args[0]!, STATE_PARSE_ORDER, 'ctstate');
      this.invertState = invert;
    }
  }

  build(): Match {
    if (this.stateMask === -1 && this.statusMask === -1 && this.direction === -1) {
      throw new OptionError('conntrack', 'the conntrack match needs --ctstate, --ctstatus or --ctdir');
    }
    return new ConntrackMatch('conntrack', this.stateMask, this.invertState, this.statusMask, this.invertStatus, this.direction);
  }
}

class StateBuilder implements MatchBuilder {
  private stateMask = -1;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean): void {
    this.stateMask = parseNames(args[0]!, PLAIN_STATES, 'state');
    this.invert = invert;
  }

  build(): Match {
    if (this.stateMask === -1) throw new OptionError('state', 'the state match needs --state');
    return new ConntrackMatch('state', this.stateMask, this.invert, -1, false);
  }
}

export const conntrackMatch: MatchType = {
  name: 'conntrack',
  options: [
    { names: ['ctstate'], args: 1, invertible: true },
    { names: ['ctstatus'], args: 1, invertible: true },
    { names: ['ctdir'], args: 1, invertible: false },
  ],
  create: () => new ConntrackBuilder(),
};

export const stateMatch: MatchType = {
  name: 'state',
  options: [{ names: ['state'], args: 1, invertible: true }],
  create: () => new StateBuilder(),
};
