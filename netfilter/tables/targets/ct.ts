/**
 * `-j CT` (xt_CT, raw table only) and the older `-j NOTRACK`: they set the template conntrack
 * applies to the connection this packet opens. `--helper NAME` attaches a helper, which the kernel only accepts
 * for a known helper and a rule with a `-p` protocol (not inverted); `--notrack` leaves the
 * packet untracked and wins over --helper, as in the kernel.
 *
 * As the kernel's xt_ct_target, a packet that already has a conntrack, a template or the untracked
 * mark is left alone. --notrack also marks the packet UNTRACKED at once (nf_ct_set(skb, NULL,
 * IP_CT_UNTRACKED)), so a later raw rule already sees ctstate UNTRACKED.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { CtInfo } from '../../conntrack/status.ts';
import type { ConntrackTemplate } from '../../conntrack/template.ts';
import { OptionError } from '../errors.ts';
import { CONTINUE, type RuleHeader, type Target, type TargetBuilder, type TargetType, type TablesEnv } from '../extension.ts';

/** xt_ct_target_info's helper[16]. */
const MAX_HELPER_NAME = 15;

const NOTRACK: ConntrackTemplate = Object.freeze({ helper: null, notrack: true });

class CtTarget implements Target {
  /** iptables-nft lists NOTRACK as CT, of which it is an alias. */
  readonly name = 'CT';
  /** One frozen template per rule: the packet path only stores a reference. */
  private readonly template: ConntrackTemplate;
  /** xt_CT takes conntrack for the namespace unless the rule only untracks (its checkentry). */
  readonly needsConntrack: boolean;

  constructor(
    private readonly kind: 'CT' | 'NOTRACK',
    /** As written: with --notrack the kernel never looks it up, but iptables-save prints it. */
    private readonly helper: string | null,
    private readonly notrack: boolean,
  ) {
    this.template = notrack ? NOTRACK : Object.freeze({ helper, notrack: false });
    this.needsConntrack = !notrack;
  }

  run(packet: Packet): number {
    if (packet.conntrack !== null || packet.ctTemplate !== null || packet.ctinfo === CtInfo.UNTRACKED) return CONTINUE;
    packet.ctTemplate = this.template;
    if (this.notrack) packet.ctinfo = CtInfo.UNTRACKED;
    return CONTINUE;
  }

  save(): string {
    return this.kind === 'NOTRACK' ? ' -j NOTRACK' : ` -j CT${this.options('--')}`;
  }

  print(): string {
    return this.kind === 'NOTRACK' ? ' NOTRACK' : ` CT${this.options('')}`;
  }

  private options(dashes: string): string {
    let text = '';
    if (this.notrack) text += ` ${dashes}notrack`;
    if (this.helper !== null) text += ` ${dashes}helper ${this.helper}`;
    return text;
  }
}

class CtBuilder implements TargetBuilder {
  private helper: string | null = null;
  private notrack = false;

  constructor(private readonly env: TablesEnv) {}

  option(name: string, args: readonly string[]): void {
    if (name === 'helper') this.helper = args[0]!;
    else this.notrack = true;
  }

  build(header: RuleHeader): Target {
    const notrack = this.notrack;
    const helper = this.helper;
    if (helper !== null && !notrack) {
      if (header.protocol === 0 || header.invertProtocol) {
        throw new OptionError(helper, `CT --helper ${helper} needs the rule's "-p" protocol (not inverted), as the kernel requires`);
      }
      if (helper.length > MAX_HELPER_NAME || !this.env.knownHelper(helper, header.protocol)) {
        throw new OptionError(helper, `unknown conntrack helper "${helper}" (the kernel refuses it: No such file or directory)`);
      }
    }
    return new CtTarget('CT', helper, notrack);
  }
}

export const ctTarget: TargetType = {
  name: 'CT',
  tables: ['raw'],
  options: [
    { names: ['notrack'], args: 0, invertible: false },
    { names: ['helper'], args: 1, invertible: false },
  ],
  create: (env) => new CtBuilder(env),
};

export const notrackTarget: TargetType = {
  name: 'NOTRACK',
  tables: ['raw'],
  options: [],
  create: () => ({
    option: () => undefined,
    build: () => new CtTarget('NOTRACK', null, true),
  }),
};
