/**
 * `-m addrtype [!] --src-type TYPES [!] --dst-type TYPES [--limit-iface-in | --limit-iface-out]`
 * (xt_addrtype revision 1): the address's route type, as inet_dev_addr_type finds it in the
 * router's local table, is one of TYPES.
 *
 * The types are the kernel's RTN_* (UNSPEC, UNICAST, LOCAL, BROADCAST, ANYCAST, MULTICAST,
 * BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT, XRESOLVE); an address gets one of four:
 * 0.0.0.0/8 and 255.255.255.255 are BROADCAST and 224.0.0.0/4 MULTICAST, whatever the device;
 * then the local table: the router's own addresses LOCAL and each subnet's broadcast address
 * (prefixes up to /30) BROADCAST, as the kernel lays them out for its interface addresses, and
 * 127.0.0.0/8 LOCAL (127.255.255.255 BROADCAST) on the loopback device every namespace has; any
 * other address is UNICAST. With --limit-iface-in/out, a local-table entry counts only for the
 * packet's input/output interface (for another one the address is UNICAST).
 *
 * As the kernel, --limit-iface-out is refused in PREROUTING and INPUT, --limit-iface-in in OUTPUT
 * and POSTROUTING (checked for the built-in chains, as the NAT targets are).
 */
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { ipv4Dst, ipv4Src } from '../../../router/wire/ipv4.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type ExtensionContext, type Match, type MatchBuilder, type MatchType, type RuleHeader } from '../extension.ts';

/** linux/rtnetlink.h's order: a type's bit is 1 << its index. */
const TYPE_NAMES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'] as const;
const UNICAST = 1;
const LOCAL = 2;
const BROADCAST = 3;
const MULTICAST = 5;
const LIMITED_BROADCAST = 0xffffffff;
const LOOPBACK_BROADCAST = 0x7fffffff;

const Limit = { NONE: 0, IN: 1, OUT: 2 } as const;
type Limit = (typeof Limit)[keyof typeof Limit];

/**
 * __inet_dev_addr_type on the local table. `device` null: any device; otherwise an entry found for
 * another device leaves the address UNICAST (the loopback's entries never belong to a router interface).
 */
export function addressType(address: number, interfaces: readonly RouterInterface[], device: RouterInterface | null): number {
  if (address >>> 24 === 0 || address === LIMITED_BROADCAST) return BROADCAST;
  if (address >>> 28 === 0xe) return MULTICAST;
  for (let i = 0; i < interfaces.length; i++) {
    const link = interfaces[i]!;
    if (link.address === address) return device === null || device === link ? LOCAL : UNICAST;
    if (link.prefixLength < 31 && ((link.address | (~0 >>> link.prefixLength)) >>> 0) === address) {
      return device === null || device === link ? BROADCAST : UNICAST;
    }
  }
  if (address >>> 24 === 127 && device === null) return address === LOOPBACK_BROADCAST ? BROADCAST : LOCAL;
  return UNICAST;
}

/** parse_type: each comma-separated word a case-insensitive prefix of a type name, the first that fits. */
function parseTypes(text: string): number {
  let mask = 0;
  const words = text.split(',');
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!.toUpperCase();
    const index = word === '' ? -1 : TYPE_NAMES.findIndex((name) => name.startsWith(word));
    if (index < 0) {
      // libxt_addrtype names the rest of the list from the bad word on.
      const rest = words.slice(i).join(',');
      throw new OptionError(text, `addrtype: bad type "${rest}" (${TYPE_NAMES.join(', ')})`);
    }
    mask |= 1 << index;
  }
  return mask;
}

function typesText(mask: number): string {
  return TYPE_NAMES.filter((_, bit) => mask & (1 << bit)).join(',');
}

class AddrtypeMatch implements Match {
  constructor(
    private readonly interfaces: readonly RouterInterface[],
    private readonly source: number,
    private readonly invertSource: boolean,
    private readonly destination: number,
    private readonly invertDestination: boolean,
    private readonly limit: Limit,
  ) {}

  test(packet: Packet): MatchResult {
    const device = this.limit === Limit.IN ? packet.inInterface : this.limit === Limit.OUT ? packet.outInterface : null;
    const buf = packet.buf;
    if (this.source !== 0 && ((this.source & (1 << addressType(ipv4Src(buf, 0), this.interfaces, device))) !== 0) === this.invertSource) return MatchResult.NO;
    if (this.destination !== 0 && ((this.destination & (1 << addressType(ipv4Dst(buf, 0), this.interfaces, device))) !== 0) === this.invertDestination) {
      return MatchResult.NO;
    }
    return MatchResult.YES;
  }

  save(): string {
    let text = ' -m addrtype';
    if (this.source !== 0) text += `${this.invertSource ? ' !' : ''} --src-type ${typesText(this.source)}`;
    if (this.destination !== 0) text += `${this.invertDestination ? ' !' : ''} --dst-type ${typesText(this.destination)}`;
    if (this.limit === Limit.IN) text += ' --limit-iface-in';
    if (this.limit === Limit.OUT) text += ' --limit-iface-out';
    return text;
  }

  /** `ADDRTYPE match src-type !LOCAL dst-type BROADCAST,MULTICAST limit-in`: the `!` before the types. */
  print(): string {
    let text = ' ADDRTYPE match';
    if (this.source !== 0) text += ` src-type ${this.invertSource ? '!' : ''}${typesText(this.source)}`;
    if (this.destination !== 0) text += ` dst-type ${this.invertDestination ? '!' : ''}${typesText(this.destination)}`;
    if (this.limit === Limit.IN) text += ' limit-in';
    if (this.limit === Limit.OUT) text += ' limit-out';
    return text;
  }
}

class AddrtypeBuilder implements MatchBuilder {
  private source = 0;
  private invertSource = false;
  private destination = 0;
  private invertDestination = false;
  private limitIn = false;
  private limitOut = false;

  constructor(private readonly context: ExtensionContext) {}

  option(name: string, args: readonly string[], invert: boolean): void {
    if (name === 'src-type') {
      this.source = parseTypes(args[0]!);
      this.invertSource = invert;
    } else if (name === 'dst-type') {
      this.destination = parseTypes(args[0]!);
      this.invertDestination = invert;
    } else if (name === 'limit-iface-in') {
      this.limitIn = true;
    } else {
      this.limitOut = true;
    }
  }

  build(header: RuleHeader): Match {
    if (this.limitIn && this.limitOut) throw new OptionError('--limit-iface-in', 'addrtype: option "--limit-iface-in" cannot be used together with "--limit-iface-out"');
    if (this.source === 0 && this.destination === 0) throw new OptionError('addrtype', 'addrtype: you must specify --src-type or --dst-type');
    const chain = header.chain;
    if (this.limitOut && (chain === 'PREROUTING' || chain === 'INPUT')) {
      throw new OptionError('--limit-iface-out', `addrtype: output interface limitation not valid in PREROUTING and INPUT (the kernel refuses it in ${chain}: Invalid argument)`);
    }
    if (this.limitIn && (chain === 'POSTROUTING' || chain === 'OUTPUT')) {
      throw new OptionError('--limit-iface-in', `addrtype: input interface limitation not valid in POSTROUTING and OUTPUT (the kernel refuses it in ${chain}: Invalid argument)`);
    }
    const limit = this.limitIn ? Limit.IN : this.limitOut ? Limit.OUT : Limit.NONE;
    return new AddrtypeMatch(this.context.interfaces, this.source, this.invertSource, this.destination, this.invertDestination, limit);
  }
}

export const addrtypeMatch: MatchType = {
  name: 'addrtype',
  options: [
    { names: ['src-type'], args: 1, invertible: true },
    { names: ['dst-type'], args: 1, invertible: true },
    { names: ['limit-iface-in'], args: 0, invertible: false },
    { names: ['limit-iface-out'], args: 0, invertible: false },
  ],
  create: (context) => new AddrtypeBuilder(context),
};
