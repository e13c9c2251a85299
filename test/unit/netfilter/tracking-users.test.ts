/**
 * Whether a router tracks connections, decided as the kernel decides whether conntrack is
 * registered in a namespace: by the matches and targets its rules use (their checkentry takes
 * conntrack), never by words in the rule text.
 */
import { describe, expect, it } from 'vitest';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { ip } from '../../support/packets.ts';

function tracks(rules: string): boolean {
  const built = buildRouter({
    interfaces: [{ name: 'lan0', address: ip('10.0.1.1'), prefixLength: 24, mtu: 1500 }],
    rules: { text: rules, origin: 'test.rules', firstLine: 0 },
  });
  try {
    return built.netfilter.tracking;
  } finally {
    built.close();
  }
}

const CASES: readonly (readonly [string, string, boolean])[] = [
  ['-m conntrack', '*filter\n-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\nCOMMIT\n', true],
  ['-m state', '*filter\n-A FORWARD -m state --state NEW\nCOMMIT\n', true],
  ['-m helper', '*filter\n-A FORWARD -m helper --helper ftp\nCOMMIT\n', true],
  ['a bare -j CT', '*raw\n-A PREROUTING -j CT\nCOMMIT\n', true],
  ['-j CT --helper', '*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n', true],
  ['a nat table', '*nat\nCOMMIT\n', true],
  ['-m connmark', '*filter\n-A FORWARD -m connmark --mark 1 -j ACCEPT\nCOMMIT\n', true],
  ['-j CONNMARK', '*mangle\n-A PREROUTING -j CONNMARK --restore-mark\nCOMMIT\n', true],
  ['a comment that mentions -m state', '*filter\n-A FORWARD -m comment --comment " -m state --state NEW " -j ACCEPT\nCOMMIT\n', false],
  ['a comment that mentions -j CT', '*filter\n-A FORWARD -m comment --comment "use -j CT here" -j ACCEPT\nCOMMIT\n', false],
  ['-j CT --notrack (xt_CT takes no conntrack for it)', '*raw\n-A PREROUTING -j CT --notrack\nCOMMIT\n', false],
  ['-j NOTRACK', '*raw\n-A PREROUTING -j NOTRACK\nCOMMIT\n', false],
  ['a filter table without such a rule', '*filter\n-A FORWARD -p tcp --dport 22 -j DROP\nCOMMIT\n', false],
];

describe('what turns connection tracking on', () => {
  it('is what the rules use as parsed (conntrack, state, helper, CT but --notrack, a nat table), not words in a comment', () => {
    const got = Object.fromEntries(CASES.map(([what, rules]) => [what, tracks(rules)]));
    expect(got).toEqual(Object.fromEntries(CASES.map(([what, , expected]) => [what, expected])));
  });
});
