/**
 * The NAT targets of the nat table (xt_nat, xt_MASQUERADE): SNAT, DNAT and MASQUERADE record a
 * binding on the connection's first packet through NatCore and end the chain. They are refused
 * outside the nat table and in built-in chains of the wrong hook, as the kernel refuses them.
 * REDIRECT rewrites to the router's own address, which needs a local stack that the router does
 * not have, so it is refused with that reason.
 */
import { Verdict, dropFor } from '../router/core/hooks.ts';
import { DropReason } from '../router/core/stats.ts';
import { OptionError } from '../netfilter/tables/errors.ts';
import type { RuleHeader, Target, TargetBuilder, TargetType } from '../netfilter/tables/extension.ts';
import type { Packet } from '../router/core/packet.ts';
import { IpProtocol } from '../router/wire/ipv4.ts';
import { ManipType, type NatCore } from './nat-core.ts';
import { NatRangeError, NatRangeFlag, formatNatRange, parseNatRange, type NatRange } from './nat-range.ts';

/** The random flags, in the order iptables-save prints them; --random-fully is taken as --random. */
const FLAG_WORDS: readonly (readonly [string, number])[] = [
  ['random', NatRangeFlag.PROTO_RANDOM],
  ['random-fully', NatRangeFlag.PROTO_RANDOM],
  ['persistent', NatRangeFlag.PERSISTENT],
];

const PORT_PROTOCOLS: readonly number[] = [IpProtocol.TCP, IpProtocol.UDP, 132, 33];

interface NatTargetKind {
  name: 'SNAT' | 'DNAT' | 'MASQUERADE';
  manip: ManipType;
  /** Built-in chains the kernel allows it in. */
  chains: readonly string[];
  rangeOption: string | null;
  flags: readonly string[];
}

const KINDS: Record<'SNAT' | 'DNAT' | 'MASQUERADE', NatTargetKind> = {
  SNAT: { name: 'SNAT', manip: ManipType.SRC, chains: ['POSTROUTING', 'INPUT'], rangeOption: 'to-source', flags: ['random', 'random-fully', 'persistent'] },
  DNAT: { name: 'DNAT', manip: ManipType.DST, chains: ['PREROUTING', 'OUTPUT'], rangeOption: 'to-destination', flags: ['random', 'persistent'] },
  MASQUERADE: { name: 'MASQUERADE', manip: ManipType.SRC, chains: ['POSTROUTING'], rangeOption: null, flags: ['random', 'random-fully'] },
};

class NatTarget implements Target {
  readonly name: string;

  constructor(
    private readonly nat: NatCore,
    private readonly kind: NatTargetKind,
    private readonly range: NatRange,
    private readonly words: readonly string[],
    /** MASQUERADE: the text of --to-ports, or ''. */
    private readonly ports: string,
  ) {
    this.name = kind.name;
  }

  run(packet: Packet): number {
    const entry = packet.conntrack;
    if (!entry) return Verdict.DROP;
    let range = this.range;
    if (this.kind.name === 'MASQUERADE') {
      // The address of the interface the packet leaves by, looked up per connection.
      const address = packet.outInterface?.address ?? 0;
      if (address === 0) return Verdict.DROP;
      range = { ...range, flags: range.flags | NatRangeFlag.MAP_IPS, minAddress: address, maxAddress: address };
    }
    return this.nat.setup(entry, range, this.kind.manip) ? Verdict.ACCEPT : dropFor(packet, DropReason.NAT_NO_TUPLE);
  }

  save(): string {
    let text = ` -j ${this.kind.name}`;
    if (this.kind.rangeOption) text += ` --${this.kind.rangeOption} ${formatNatRange(this.range)}`;
    if (this.ports) text += ` --to-ports ${this.ports}`;
    for (const [word] of FLAG_WORDS) if (this.words.includes(word)) text += ` --${word}`;
    return text;
  }

  /** libxt_NAT's print: `to:10.0.2.2:5001 random` for SNAT/DNAT, `masq ports: 1000-2000` for MASQUERADE. */
  print(): string {
    const range = this.range;
    let text = '';
    if (this.kind.rangeOption) text += ` to:${formatNatRange(range)}`;
    else if (range.flags & NatRangeFlag.PROTO_SPECIFIED) text += ` masq ports: ${range.minPort}${range.maxPort !== range.minPort ? `-${range.maxPort}` : ''}`;
    for (const [word] of FLAG_WORDS) if (this.words.includes(word)) text += ` ${word}`;
    return text;
  }
}

class NatTargetBuilder implements TargetBuilder {
  private range: NatRange | null = null;
  private ports = '';
  private readonly words: string[] = [];

  constructor(
    private readonly kind: NatTargetKind,
    private readonly nat: NatCore | null,
  ) {}

  option(name: string, args: readonly string[], _invert: boolean, written: string): void {
    if (name === this.kind.rangeOption) {
      this.range = rangeOf(args[0]!, written);
    } else if (name === 'to-ports') {
      this.ports = args[0]!;
      this.range = rangeOf(`:${args[0]}`, written);
    } else {
      this.words.push(name);
    }
  }

  build(header: RuleHeader): Target {
    const kind = this.kind;
    if (!this.nat) throw new OptionError(kind.name, `${kind.name} needs the NAT engine, which this router was built without`);
    if (BUILTIN_NAT_CHAINS.includes(header.chain) && !kind.chains.includes(header.chain)) {
      throw new OptionError(kind.name, `${kind.name} is only valid in the ${kind.chains.join(' and ')} chains (the kernel refuses it in ${header.chain})`);
    }
    if (kind.rangeOption && !this.range) throw new OptionError(kind.name, `${kind.name} needs --${kind.rangeOption}`);
    const range = this.range ?? { flags: 0, minAddress: 0, maxAddress: 0, minPort: 0, maxPort: 0 };
    if (range.flags & NatRangeFlag.PROTO_SPECIFIED && (!PORT_PROTOCOLS.includes(header.protocol) || header.invertProtocol)) {
      throw new OptionError(kind.name, `${kind.name} with ports needs -p tcp, udp, sctp or dccp, as iptables requires`);
    }
    for (const [word, flag] of FLAG_WORDS) if (this.words.includes(word)) range.flags |= flag;
    return new NatTarget(this.nat, kind, range, this.words, this.ports);
  }
}

const BUILTIN_NAT_CHAINS: readonly string[] = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'];

function rangeOf(text: string, written: string): NatRange {
  try {
    return parseNatRange(text);
  } catch (error) {
    if (error instanceof NatRangeError) throw new OptionError(written, error.message);
    throw error;
  }
}

function natTargetType(kind: NatTargetKind, nat: NatCore | null): TargetType {
  const options = [
    ...(kind.rangeOption ? [{ names: [kind.rangeOption], args: 1 as const, invertible: false }] : []),
    ...(kind.name === 'MASQUERADE' ? [{ names: ['to-ports'], args: 1 as const, invertible: false }] : []),
    ...kind.flags.map((flag) => ({ names: [flag], args: 0 as const, invertible: false })),
  ];
  return {
    name: kind.name,
    tables: ['nat'],
    options,
    create: () => new NatTargetBuilder(kind, nat),
  };
}

/**
 * The nat table's targets, bound to one router's NAT engine (null: a router built without NAT,
 * whose rules refuse them). The rule tables get them from the code that builds the router.
 */
export function natTargetTypes(nat: NatCore | null): TargetType[] {
  return [natTargetType(KINDS.SNAT, nat), natTargetType(KINDS.DNAT, nat), natTargetType(KINDS.MASQUERADE, nat), redirectTarget];
}

const redirectTarget: TargetType = {
  name: 'REDIRECT',
  tables: ['nat'],
  options: [{ names: ['to-ports'], args: 1, invertible: false }, { names: ['random'], args: 0, invertible: false }],
  create: () => ({
    option: () => undefined,
    build: () => {
      throw new OptionError('REDIRECT', 'REDIRECT rewrites to the router itself, which needs a local stack vrouter does not have; use DNAT to a host');
    },
  }),
};
