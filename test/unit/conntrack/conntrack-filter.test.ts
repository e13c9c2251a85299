/**
 * The filters of `vrouter conntrack`, read by the CLI's parser and applied by matchesFilter, on
 * the flows of test/support/conntrack-site.ts. Each expected set is the set of flows the real
 * conntrack v1.4.7 listed (or deleted) for the same command line on a kernel router namespace of
 * this machine carrying the same flows; each refusal is its message.
 */
import { describe, expect, it } from 'vitest';
import { conntrackSite, type FlowName } from '../../support/conntrack-site.ts';
import { matchesFilter } from '../../../netfilter/conntrack/conntrack-filter.ts';
import { parseConntrackArgs } from '../../../router/deploy/cli-conntrack-args.ts';

const site = conntrackSite();

function selected(argv: string[]): string {
  const { filter } = parseConntrackArgs(argv);
  const names: FlowName[] = site.conntrack
    .list()
    .filter((entry) => matchesFilter(entry, filter))
    .map(site.nameOf);
  return names.sort().join('');
}

/** [conntrack's arguments, the flows the kernel's conntrack -L showed] */
const LISTED: [string, string][] = [
  ['-L', 'ABCDEFG'],
  ['-L -s 10.0.1.0/24', 'ABCDEFG'],
  ['-L -s 10.0.1.2/32', 'ABCDEFG'],
  ['-L -s 10.0.0.0/8 -d 203.0.113.0/24', 'ABEFG'],
  ['-L -d 10.0.1.1', 'CD'],
  ['-L --orig-dst 10.0.1.0/24', 'CD'],
  ['-L -r 203.0.113.2', 'ABCEFG'],
  ['-L -q 203.0.113.1', 'ABCEFG'],
  ['-L -p udp -s 10.0.1.0/24 --dport 9000', 'E'],
  // Both NAT steps ran for every entry (a null binding when no rule NATs); an ICMP echo counts as
  // port-translated because libnetfilter_conntrack compares the id with the type and code.
  ['-L --src-nat', 'ABCDEFG'],
  ['-L --src-nat 203.0.113.1', 'ABCEFG'],
  ['-L --src-nat 203.0.113.9', ''],
  ['-L --dst-nat', 'CDG'],
  ['-L --dst-nat 203.0.113.2', 'C'],
  ['-L --dst-nat 203.0.113.2:9000', 'C'],
  ['-L --dst-nat 203.0.113.2:5000', ''],
  ['-L --any-nat', 'ABCDEFG'],
  ['-L -j 203.0.113.2', 'C'],
  ['-L --src-nat --dst-nat', 'CDG'],
  ['-L -u ASSURED', 'F'],
  ['-L -u assured', 'F'],
  ['-L -u SEEN_REPLY', 'BCDEFG'],
  ['-L -u UNREPLIED', 'A'],
  ['-L -u !SEEN_REPLY', 'A'],
  ['-L -u ASSURED,SEEN_REPLY', 'F'],
  ['-L -u ASSURED,!SEEN_REPLY', ''],
  ['-L -u SEEN_REPLY,!ASSURED', ''],
  ['-L -u UNREPLIED,ASSURED', ''],
  ['-L -u EXPECTED', ''],
  ['-L -u FIXED_TIMEOUT', ''],
  ['-L -u OFFLOAD', ''],
  ['-L -m 5', 'B'],
  ['-L -m 0x5', 'B'],
  ['-L -m 5/0xff', 'B'],
  ['-L -m 1/1', 'B'],
  ['-L -m 4/4', 'B'],
  ['-L -m 0', 'ACDEFG'],
  ['-L -m 0/0', 'ABCDEFG'],
];

describe('conntrack -L filters, as the kernel\'s conntrack applies them', () => {
  it.each(LISTED)('conntrack %s', (args, flows) => {
    expect(selected(args.split(' '))).toBe(flows);
  });

  it('refuses what conntrack refuses, with its message', () => {
    const refusals: [string, string][] = [
      ['-L -r 203.0.113.0/24', "CIDR notation unavailable for `--reply-src'"],
      ['-L -q 10.0.1.0/24', "CIDR notation unavailable for `--reply-dst'"],
      ['-L -s 10.0.1.0/33', 'Invalid netmask'],
      ['-L -s bogus', "Invalid IP address `bogus'"],
      ['-L -u BOGUS', "Bad parameter `BOGUS'"],
      ['-L -o bogus', "Bad parameter `bogus'"],
      ['-L -o extended,bogus', "Bad parameter `bogus'"],
      ['-L --src-nat -j', "cannot specify `--src-nat' or `--dst-nat' with `--any-nat'"],
      ['-G -p tcp -s 10.0.1.2 -d 203.0.113.2', "you have to specify `--sport' and `--dport'"],
      ['-G -s 10.0.1.2 -d 203.0.113.2', "You need to supply the `--protonum' option for this command"],
      ['-G -p tcp -s 10.0.1.2 --sport 41002 --dport 5000', "you have to specify `--src' and `--dst'"],
      ['-G -p tcp -s 10.0.1.2 -d 203.0.113.2 --sport 41002 --dport 5000 -m 7', "Illegal option `--mark' with this command"],
      ['-G -p tcp -s 10.0.1.0/24 -d 203.0.113.2 --sport 41002 --dport 5000', "Illegal option `--mask-src' with this command"],
    ];
    for (const [args, message] of refusals) expect(() => parseConntrackArgs(args.split(' ')), args).toThrow(message);
  });

  it('-u UNSET and -u SRC_NAT leave the kernel a status filter with no mask, which it refuses', () => {
    expect(parseConntrackArgs(['-L', '-u', 'UNSET']).emptyStatusMask).toBe(true);
    const srcNat = parseConntrackArgs(['-L', '-u', 'SRC_NAT']);
    expect(srcNat.warnings).toEqual(['WARNING: ignoring SRC_NAT, use --src-nat instead']);
    expect(srcNat.emptyStatusMask).toBe(true);
  });

  it('takes the words\' beginnings, as conntrack does', () => {
    expect(parseConntrackArgs(['-L', '-o', 'ext,ID']).output).toEqual({ extended: true, id: true, timestamp: false, json: false });
    expect(parseConntrackArgs(['-E', 'exp', '-e', 'new,upd']).events).toEqual(['NEW', 'UPDATE']);
    expect(parseConntrackArgs(['-E', 'exp']).table).toBe('expect');
    expect(selected(['-L', '-u', 'ASS'])).toBe('F');
  });
});

describe('conntrack -D and -E: status checked by conntrack itself', () => {
  // The kernel's conntrack deleted both UDP flows, replied or not, for `-D -u !SEEN_REPLY -p udp`
  // and for `-D -u UNSET -p udp`, and only the replied one for `-D -u SEEN_REPLY -p udp`.
  it.each([
    ['-D -u !SEEN_REPLY -p udp', 'ABCE'],
    ['-D -u UNREPLIED -p udp', 'ABCE'],
    ['-D -u UNSET -p udp', 'ABCE'],
    ['-D -u SEEN_REPLY -p udp', 'BCE'],
    ['-E -u !SEEN_REPLY', 'ABCDEFG'],
    ['-E -u ASSURED', 'F'],
  ])('conntrack %s', (args, flows) => {
    expect(selected(args.split(' '))).toBe(flows);
  });
});
