/**
 * `-m helper --helper NAME` (xt_helper). As in the kernel, it looks at the MASTER's helper: it
 * matches connections opened through an expectation (an FTP data connection for `ftp`), never the
 * helped connection itself. The rule's name matches when it starts with the helper's name (the
 * kernel compares strlen(helper name) bytes, so `ftp-21` matches helper `ftp`); an empty name
 * matches any master with a helper. Without a connection or master the result is the inversion.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { saveString } from '../words.ts';

/** xt_helper_info's name[30]: iptables cuts longer names. */
const MAX_NAME = 29;

class HelperMatch implements Match {
  readonly needsConntrack = true;

  constructor(
    private readonly name: string,
    private readonly invert: boolean,
  ) {}

  test(packet: Packet): MatchResult {
    const helper = packet.conntrack?.master?.helper ?? null;
    if (helper === null) return this.invert ? MatchResult.YES : MatchResult.NO;
    const matches = this.name === '' || this.name.startsWith(helper.name);
    return matches !== this.invert ? MatchResult.YES : MatchResult.NO;
  }

  save(): string {
    return ` -m helper${this.invert ? ' !' : ''} --helper${saveString(this.name)}`;
  }

  print(): string {
    return ` helper match ${this.invert ? '! ' : ''}"${this.name}"`;
  }
}

class HelperBuilder implements MatchBuilder {
  private name: string | null = null;
  private invert = false;

  option(name: string, args: readonly string[], invert: boolean): void {
    this.name = args[0]!.slice(0, MAX_NAME);
    this.invert = invert;
  }

  build(): Match {
    if (this.name === null) throw new OptionError('helper', 'the helper match needs --helper');
    return new HelperMatch(this.name, this.invert);
  }
}

export const helperMatch: MatchType = {
  name: 'helper',
  options: [{ names: ['helper'], args: 1, invertible: true }],
  create: () => new HelperBuilder(),
};
