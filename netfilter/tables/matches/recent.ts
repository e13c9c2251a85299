/**
 * `-m recent` (xt_recent revision 1): remembers addresses in a named list (recent-table.ts) and
 * matches on whether, how often and how lately one was seen. One of --set (add or refresh, always
 * matches), --rcheck (seen), --update (seen, then refresh) or --remove (seen, then forget), each
 * invertible; --seconds N and --hitcount N narrow --rcheck/--update to N sightings in the last N
 * seconds; --reap drops the least recently seen address once it is older than --seconds; --rttl
 * also wants the TTL of the last sighting; --rsource (default) or --rdest picks the address,
 * --mask masks it. As the kernel, a forwarded packet is remembered with the TTL it arrived with.
 *
 * Time is the router's clock in jiffies of a HZ=250 kernel, like conntrack's.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { formatIpv4Address, parseIpv4Address } from '../../../router/core/addresses.ts';
import { ipv4Dst, ipv4Src, ipv4Ttl } from '../../../router/wire/ipv4.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type ExtensionContext, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { parseCNumber } from '../numbers.ts';
import { RECENT_MAX_HITCOUNT, stampsFor, type RecentList, type RecentUse } from './recent-table.ts';

const HZ = 250;
const JIFFY_MS = 1000 / HZ;
/** XT_RECENT_NAME_LEN less the NUL: iptables cuts longer names. */
const MAX_NAME = 199;
const U32_MAX = 0xffffffff;

const Command = { SET: 0, CHECK: 1, UPDATE: 2, REMOVE: 3 } as const;
type Command = (typeof Command)[keyof typeof Command];
/** Option names by Command, in iptables' order. */
const COMMANDS = ['set', 'rcheck', 'update', 'remove'] as const;
/** ... and as `iptables -L` names them. */
const PRINTED_COMMANDS = ['SET', 'CHECK', 'UPDATE', 'REMOVE'] as const;

class RecentMatch implements Match {
  constructor(
    readonly list: RecentList,
    /** Timestamps this rule needs the list to keep. */
    readonly stamps: number,
    private readonly now: () => number,
    private readonly command: Command,
    private readonly invert: boolean,
    private readonly seconds: number,
    private readonly hitcount: number,
    private readonly reap: boolean,
    private readonly checkTtl: boolean,
    private readonly destination: boolean,
    private readonly mask: number,
    private readonly name: string,
  ) {}

  test(packet: Packet): MatchResult {
    const buf = packet.buf;
    const address = ((this.destination ? ipv4Dst(buf, 0) : ipv4Src(buf, 0)) & this.mask) >>> 0;
    let ttl = ipv4Ttl(buf, 0);
    // The kernel's "TTL as seen before forwarding": a forwarded packet was already decremented.
    if (packet.outInterface !== null && packet.inInterface !== null) ttl = (ttl + 1) & 0xff;
    const now = Math.floor(this.now() / JIFFY_MS);
    const list = this.list;
    let result = this.invert;
    const entry = list.find(address, this.checkTtl ? ttl : 0);
    if (entry < 0) {
      if (this.command === Command.SET) {
        list.add(address, ttl, now);
        result = !result;
      }
      return result ? MatchResult.YES : MatchResult.NO;
    }
    switch (this.command) {
      case Command.SET:
        result = !result;
        list.touch(entry, ttl, now);
        break;
      case Command.REMOVE:
        list.remove(entry);
        result = !result;
        break;
      default: {
        const since = this.seconds !== 0 ? now - this.seconds * HZ : -Infinity;
        if (list.hits(entry, since, this.hitcount)) result = !result;
        const update = this.command === Command.UPDATE && result;
        if (this.reap) list.reap(since, update ? entry : -1);
        if (update) list.touch(entry, ttl, now);
      }
    }
    return result ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    let text = ` -m recent${this.invert ? ' !' : ''} --${COMMANDS[this.command]}`;
    // iptables-save prints --seconds with %d: past 2^31-1 it comes out negative.
    if (this.seconds !== 0) text += ` --seconds ${this.seconds | 0}`;
    if (this.reap) text += ' --reap';
    if (this.hitcount !== 0) text += ` --hitcount ${this.hitcount}`;
    if (this.checkTtl) text += ' --rttl';
    return `${text} --name ${this.name} --mask ${formatIpv4Address(this.mask)} ${this.destination ? '--rdest' : '--rsource'}`;
  }

  /** `! recent: UPDATE seconds: 3600 reap hit_count: 4 TTL-Match name: knock side: dest mask: 255.255.255.0`; seconds as save prints them. */
  print(): string {
    let text = `${this.invert ? ' !' : ''} recent: ${PRINTED_COMMANDS[this.command]}`;
    if (this.seconds !== 0) text += ` seconds: ${this.seconds | 0}`;
    if (this.reap) text += ' reap';
    if (this.hitcount !== 0) text += ` hit_count: ${this.hitcount}`;
    if (this.checkTtl) text += ' TTL-Match';
    return `${text} name: ${this.name} side: ${this.destination ? 'dest' : 'source'} mask: ${formatIpv4Address(this.mask)}`;
  }
}

/** The rule's use of its list, for the tables to keep that list (and size it) while the rule is loaded. */
export function recentUse(match: Match): RecentUse | null {
  return match instanceof RecentMatch ? match : null;
}

function parseUint32(text: string, option: string, min: number): number {
  const value = parseCNumber(text, U32_MAX);
  if (value < min) throw new OptionError(text, `recent: bad value "${text}" for option "--${option}", or out of range (${min}-${U32_MAX})`);
  return value;
}

class RecentBuilder implements MatchBuilder {
  private command: Command | -1 = -1;
  private commandWord = '';
  private invert = false;
  private seconds = 0;
  private hitcount = 0;
  private reap = false;
  private checkTtl = false;
  private destination = false;
  private mask = U32_MAX;
  private name = 'DEFAULT';

  constructor(private readonly context: ExtensionContext) {}

  option(name: string, args: readonly string[], invert: boolean, written: string): void {
    const command = COMMANDS.indexOf(name as (typeof COMMANDS)[number]);
    if (command >= 0) {
      if (this.command !== -1) throw new OptionError(written, `recent: option "${this.commandWord}" cannot be used together with "--${name}"`);
      this.command = command as Command;
      this.commandWord = `--${name}`;
      this.invert = invert;
      return;
    }
    const value = args[0]!;
    switch (name) {
      case 'seconds':
        this.seconds = parseUint32(value, name, 1);
        return;
      case 'hitcount':
        this.hitcount = parseUint32(value, name, 0);
        return;
      case 'reap':
        this.reap = true;
        return;
      case 'rttl':
        this.checkTtl = true;
        return;
      case 'rsource':
      case 'rdest':
        // The last of the two wins, as in iptables.
        this.destination = name === 'rdest';
        return;
      case 'mask':
        try {
          this.mask = parseIpv4Address(value);
        } catch (error) {
          throw new OptionError(value, `recent: bad --mask "${value}": ${(error as Error).message} (a dotted netmask such as 255.255.255.0)`);
        }
        return;
      default:
        this.name = checkName(value.slice(0, MAX_NAME));
    }
  }

  build(): Match {
    const command = this.command;
    if (command === -1) throw new OptionError('recent', "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'");
    if (this.reap && this.seconds === 0) throw new OptionError('--reap', 'recent: option "--reap" also requires "--seconds"');
    if (this.checkTtl && (command === Command.SET || command === Command.REMOVE)) {
      throw new OptionError('--rttl', `recent: option "--rttl" cannot be used together with "${this.commandWord}"`);
    }
    if ((command === Command.SET || command === Command.REMOVE) && (this.seconds !== 0 || this.hitcount !== 0 || this.reap)) {
      throw new OptionError(this.commandWord, `recent: --seconds, --hitcount and --reap go with --rcheck or --update, not ${this.commandWord} (the kernel refuses it: Invalid argument)`);
    }
    if (this.hitcount > RECENT_MAX_HITCOUNT) {
      throw new OptionError(`${this.hitcount}`, `recent: hitcount (${this.hitcount}) is larger than allowed maximum (${RECENT_MAX_HITCOUNT})`);
    }
    const list = this.context.recent.list(this.name);
    const stamps = stampsFor(this.hitcount);
    return new RecentMatch(list, stamps, this.context.now, command, this.invert, this.seconds, this.hitcount, this.reap, this.checkTtl, this.destination, this.mask, this.name);
  }
}

/**
 * xt_check_proc_name: a list is also a /proc file, so no empty name, no `.` or `..`, no `/`.
 * Blanks and quotes are refused here too: iptables-save prints the name unquoted, so such a name
 * would not read back.
 */
function checkName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new OptionError(name, `recent: bad --name "${name}" (the kernel refuses an empty name, "." or "..", and "/": Invalid argument)`);
  }
  if (/[\s"'\\]/.test(name)) throw new OptionError(name, `recent: --name "${name}" has a blank or quote, which iptables-save would print unquoted`);
  return name;
}

export const recentMatch: MatchType = {
  name: 'recent',
  options: [
    ...COMMANDS.map((name) => ({ names: [name], args: 0 as const, invertible: true })),
    { names: ['seconds'], args: 1, invertible: false },
    { names: ['reap'], args: 0, invertible: false },
    { names: ['hitcount'], args: 1, invertible: false },
    { names: ['rttl'], args: 0, invertible: false },
    { names: ['name'], args: 1, invertible: false },
    { names: ['rsource'], args: 0, invertible: false },
    { names: ['rdest'], args: 0, invertible: false },
    { names: ['mask'], args: 1, invertible: false },
  ],
  create: (context) => new RecentBuilder(context),
};
