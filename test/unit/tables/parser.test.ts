import { describe, expect, it } from 'vitest';
import { RuleTables, RulesError } from '../../../netfilter/tables/index.ts';
import { Recorder, loaded, savedRules, section } from './support.ts';

function refusal(text: string, origin = 'test.rules', firstLine = 0): RulesError {
  const tables = new RuleTables(new Recorder());
  try {
    tables.parse(text, origin, firstLine);
  } catch (error) {
    if (error instanceof RulesError) return error;
    throw error;
  }
  throw new Error(`accepted: ${text}`);
}

describe('parser: lines, words and quoting', () => {
  it('numbers lines from 1 for a file of its own, from firstLine for inline text, counting comments and blanks', () => {
    const text = '# rules\n\n*filter\n-A FORWARD --foo\nCOMMIT\n';
    const inFile = refusal(text, '/etc/vrouter/rules.v4', 0);
    expect(inFile.message).toBe('/etc/vrouter/rules.v4:4: unknown option "--foo"');
    expect([inFile.origin, inFile.line, inFile.word]).toEqual(['/etc/vrouter/rules.v4', 4, '--foo']);
    expect(refusal(text, 'router.yaml (rules)', 11).message).toBe('router.yaml (rules):14: unknown option "--foo"');
    expect(inFile.code).toBe('EVROUTERRULES');
  });

  it('takes quoted words as iptables-restore does: backslash escapes inside, empty strings, tabs as blanks', () => {
    const { tables } = loaded(
      section('filter', ['-A FORWARD -j LOG --log-prefix "drop: it "', '-A FORWARD\t-m comment --comment "say \\"hi\\" \\\\ "', '-A FORWARD -m comment --comment ""'].join('\n')),
    );
    expect(savedRules(tables)).toEqual(['-A FORWARD -j LOG --log-prefix "drop: it "', '-A FORWARD -m comment --comment "say \\"hi\\" \\\\ "', '-A FORWARD -m comment --comment ""']);
  });

  it('refuses quotes that do not make whole words, and single quotes are ordinary characters', () => {
    expect(refusal(section('filter', '-A FORWARD -m comment --comment "open')).reason).toBe('unterminated quote in "open');
    expect(refusal(section('filter', '-A FORWARD -m comment --comment "a"b')).word).toBe('"a"b');
    expect(refusal(section('filter', '-A FORWARD -m comment --comment a"b"')).word).toBe('a"b"');
    expect(refusal(section('filter', "-A FORWARD -m comment --comment 'two words'")).message).toBe('test.rules:5: unexpected word "words\'"');
  });

  it('takes abbreviated long options when unique, as getopt does for iptables', () => {
    const { tables } = loaded(section('filter', '--app FORWARD -p tcp --dp 22 --jump LOG --log-pre ssh'));
    expect(savedRules(tables)).toEqual(['-A FORWARD -p tcp -m tcp --dport 22 -j LOG --log-prefix ssh']);
    expect(refusal(section('filter', '-A FORWARD -p tcp --d 22')).reason).toMatch(/^ambiguous option "--d" \(--destination, --destination-port\)$/);
  });

  it('inserts with -I at a position, and a list of addresses becomes one rule per address pair', () => {
    const { tables } = loaded(section('filter', '-A FORWARD -j DROP\n-I FORWARD -s 1.1.1.1,2.2.2.2\n-I FORWARD 3 -d 9.9.9.9\n-A FORWARD -s 5.5.5.5 -d 6.6.6.6,7.7.7.7'));
    expect(savedRules(tables)).toEqual([
      '-A FORWARD -s 2.2.2.2/32',
      '-A FORWARD -s 1.1.1.1/32',
      '-A FORWARD -d 9.9.9.9/32',
      '-A FORWARD -j DROP',
      '-A FORWARD -s 5.5.5.5/32 -d 6.6.6.6/32',
      '-A FORWARD -s 5.5.5.5/32 -d 7.7.7.7/32',
    ]);
  });

  it('creates chains with -N and sets policies with -P, which zeroes the policy counters', () => {
    const { tables } = loaded('*filter\n:FORWARD ACCEPT [4:400]\n-N lan\n-A FORWARD -j lan\n-P FORWARD DROP\n-P INPUT DROP\nCOMMIT\n');
    expect(tables.save(false)).toContain(':INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:lan - [0:0]\n-A FORWARD -j lan\n');
  });

  it('parse changes nothing; load replaces only the tables its text names, as iptables-restore', () => {
    const { tables } = loaded(section('filter', '-A FORWARD -j DROP') + section('raw', '-A PREROUTING -j CT --notrack'));
    const before = tables.save(false);
    tables.parse(section('filter', '-A FORWARD -j ACCEPT'), 'next.rules');
    expect(tables.save(false)).toBe(before);
    tables.load(section('filter', '-A FORWARD -j ACCEPT'), 'next.rules');
    expect(savedRules(tables)).toEqual(['-A PREROUTING -j CT --notrack', '-A FORWARD -j ACCEPT']);
  });

  it('asks the helper predicate with the name and the rule protocol', () => {
    const { recorder } = loaded(section('raw', '-A PREROUTING -p udp --dport 69 -j CT --helper tftp'));
    expect(recorder.helperQueries).toEqual([['tftp', 17]]);
  });
});

/** [what, text, line, word, reason]: each refused as iptables or the kernel would, or as unsupported here. */
const REFUSALS: readonly (readonly [string, string, number, string, string | RegExp])[] = [
  ['unknown option', section('filter', '-A FORWARD --foo 1'), 5, '--foo', 'unknown option "--foo"'],
  ['unknown short option', section('filter', '-A FORWARD -x 1'), 5, '-x', 'unknown option "-x"'],
  ['port option without a protocol', section('filter', '-A FORWARD --dport 80'), 5, '--dport', 'unknown option "--dport"'],
  ['an option of another protocol', section('filter', '-A FORWARD -p udp --syn'), 5, '--syn', 'unknown option "--syn"'],
  ['target option before its -j', section('filter', '-A FORWARD --log-prefix x -j LOG'), 5, '--log-prefix', 'unknown option "--log-prefix"'],
  ['stray word', section('filter', '-A FORWARD -s 1.1.1.1 extra'), 5, 'extra', 'unexpected word "extra"'],
  ['unknown match', section('filter', '-A FORWARD -m owner --uid-owner 0'), 5, 'owner', 'unknown match "owner"'],
  ['unknown target', section('filter', '-A FORWARD -j TARPIT'), 5, 'TARPIT', 'unknown target or chain "TARPIT" in table filter'],
  ['unknown chain in -A', section('filter', '-A lan-in -j ACCEPT'), 5, 'lan-in', 'unknown chain "lan-in" in table filter'],
  ['jump to a chain declared later', section('filter', '-A FORWARD -j later\n:later - [0:0]'), 5, 'later', 'unknown target or chain "later" in table filter'],
  ['goto to a verdict', section('filter', '-A FORWARD -g ACCEPT'), 5, 'ACCEPT', 'unknown chain "ACCEPT" in table filter'],
  ['jump to a built-in chain', section('filter', '-A FORWARD -j INPUT'), 5, 'INPUT', '-j INPUT: cannot jump to a built-in chain'],
  ['bad address', section('filter', '-A FORWARD -s 10.0.0.300'), 5, '10.0.0.300', /^bad address "10\.0\.0\.300": /],
  ['host name', section('filter', '-A FORWARD -d example.com'), 5, 'example.com', /^bad address "example\.com": /],
  ['leading zero (iptables reads it as octal)', section('filter', '-A FORWARD -s 010.0.0.1'), 5, '010.0.0.1', /^bad address "010\.0\.0\.1": /],
  ['bad prefix length', section('filter', '-A FORWARD -s 10.0.0.0/33'), 5, '10.0.0.0/33', 'bad mask in "10.0.0.0/33" (a prefix length 0..32 or a dotted mask)'],
  ['! with an address that matches everything', section('filter', '-A FORWARD ! -s 0.0.0.0/0'), 5, '0.0.0.0/0', '"! 0.0.0.0/0" would never match'],
  ['! with several addresses', section('filter', '-A FORWARD ! -d 1.1.1.1,2.2.2.2'), 5, '1.1.1.1,2.2.2.2', '"!" is not allowed with several addresses ("1.1.1.1,2.2.2.2")'],
  ['bad port range', section('filter', '-A FORWARD -p tcp --dport 80:70'), 5, '80:70', 'invalid port range "80:70" (min > max)'],
  ['port out of range', section('filter', '-A FORWARD -p udp --sport 65536'), 5, '65536', 'invalid port "65536"'],
  ['service name', section('filter', '-A FORWARD -p tcp --dport http'), 5, 'http', 'invalid port "http" (service names are not supported: use the number)'],
  ['multiport range low >= high', section('filter', '-A FORWARD -p tcp -m multiport --dports 5:5'), 5, '5:5', 'invalid port range "5:5" (multiport needs low < high)'],
  ['multiport past 15 ports', section('filter', '-A FORWARD -p tcp -m multiport --ports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16'), 5, '1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16', /^too many ports/],
  ['multiport with two directions', section('filter', '-A FORWARD -p tcp -m multiport --dports 1 --source-ports 2'), 5, '--source-ports', 'multiport takes only one of --sports, --dports and --ports'],
  ['multiport without a port protocol', section('filter', '-A FORWARD -p icmp -m multiport --dports 1'), 5, 'multiport', /^the multiport match needs "-p tcp"/],
  ['tcp match with an inverted protocol', section('filter', '-A FORWARD ! -p tcp --dport 22'), 5, 'tcp', 'the tcp match needs "-p tcp" (not inverted)'],
  ['tcp match on udp', section('filter', '-A FORWARD -p udp -m tcp --dport 22'), 5, 'tcp', 'the tcp match needs "-p tcp" (not inverted)'],
  ['icmp match without --icmp-type', section('filter', '-A FORWARD -p icmp -m icmp'), 5, 'icmp', 'the icmp match needs --icmp-type'],
  ['ambiguous icmp type', section('filter', '-A FORWARD -p icmp --icmp-type echo'), 5, 'echo', 'ambiguous ICMP type "echo": "echo-reply" or "echo-request"?'],
  ['unknown tcp flag', section('filter', '-A FORWARD -p tcp --tcp-flags SYN,ECE SYN'), 5, 'ECE', 'unknown TCP flag "ECE"'],
  ['unknown ctstate', section('filter', '-A FORWARD -m conntrack --ctstate NEW,BOGUS'), 5, 'BOGUS', 'bad ctstate "BOGUS"'],
  ['SNAT in -m state', section('filter', '-A FORWARD -m state --state SNAT'), 5, 'SNAT', 'bad state "SNAT"'],
  ['empty conntrack match', section('filter', '-A FORWARD -m conntrack'), 5, 'conntrack', 'the conntrack match needs --ctstate, --ctstatus or --ctdir'],
  ['bad ctdir', section('filter', '-A FORWARD -m conntrack --ctdir FOO'), 5, 'FOO', 'bad value for --ctdir "FOO" (ORIGINAL or REPLY)'],
  ['inverted ctdir', section('filter', '-A FORWARD -m conntrack ! --ctdir REPLY'), 5, '--ctdir', 'option "--ctdir" cannot be inverted with "!"'],
  ['a log level name that is only an object property', section('filter', '-A FORWARD -j LOG --log-level toString'), 5, 'toString', 'unknown log level "toString"'],
  ['option given twice', section('filter', '-A FORWARD -p tcp --dport 80 --dport 81'), 5, '--dport', 'option "--dport" can only be used once'],
  ['-s given twice', section('filter', '-A FORWARD -s 1.1.1.1 -s 2.2.2.2'), 5, '-s', 'multiple -s flags not allowed'],
  ['two targets', section('filter', '-A FORWARD -j LOG -j ACCEPT'), 5, '-j', 'multiple -j/-g flags not allowed'],
  ['! before an option that takes none', section('filter', '-A FORWARD ! -m comment --comment x'), 5, '-m', 'option "-m" cannot be inverted with "!"'],
  ['! -p all', section('filter', '-A FORWARD ! -p all'), 5, 'all', '"! -p all" would never match'],
  ['bad mark', section('filter', '-A FORWARD -m mark --mark 0x100000000'), 5, '0x100000000', 'bad value "0x100000000" for --mark (expected VALUE[/MASK], 32-bit)'],
  ['-o where packets have none', section('filter', '-A INPUT -o lan0'), 5, '-o', "can't use -o with INPUT: packets there have no output interface yet"],
  ['-i where packets have none', section('nat', '-A POSTROUTING -i lan0'), 6, '-i', "can't use -i with POSTROUTING: packets there have no input interface"],
  ['tcp-reset without -p tcp', section('filter', '-A FORWARD -j REJECT --reject-with tcp-reset'), 5, 'tcp-reset', 'REJECT --reject-with tcp-reset needs "-p tcp" (not inverted), as the kernel requires'],
  ['unknown reject type', section('filter', '-A FORWARD -j REJECT --reject-with icmp-bogus'), 5, 'icmp-bogus', 'unknown reject type "icmp-bogus"'],
  ['REJECT outside filter', section('mangle', '-A FORWARD -j REJECT'), 7, 'REJECT', 'target REJECT is only valid in the filter table, not in mangle'],
  ['unknown helper', section('raw', '-A PREROUTING -p tcp --dport 21 -j CT --helper ftp2'), 4, 'ftp2', 'unknown conntrack helper "ftp2" (the kernel refuses it: No such file or directory)'],
  ['helper of another protocol', section('raw', '-A PREROUTING -p udp -j CT --helper ftp'), 4, 'ftp', 'unknown conntrack helper "ftp" (the kernel refuses it: No such file or directory)'],
  ['CT --helper without -p', section('raw', '-A PREROUTING -j CT --helper ftp'), 4, 'ftp', 'CT --helper ftp needs the rule\'s "-p" protocol (not inverted), as the kernel requires'],
  ['CT option not supported', section('raw', '-A PREROUTING -j CT --zone 1'), 4, '--zone', 'unknown option "--zone"'],
  ['CT outside raw', section('filter', '-A FORWARD -j CT --notrack'), 5, 'CT', 'target CT is only valid in the raw table, not in filter'],
  ['NOTRACK outside raw', section('mangle', '-A PREROUTING -j NOTRACK'), 7, 'NOTRACK', 'target NOTRACK is only valid in the raw table, not in mangle'],
  ['DNAT outside nat', section('filter', '-A FORWARD -j DNAT --to-destination 10.0.0.1'), 5, 'DNAT', 'target DNAT is only valid in the nat table, not in filter'],
  ['NAT targets without the NAT engine', section('nat', '-A POSTROUTING -j SNAT --to-source 1.2.3.4'), 6, 'SNAT', 'SNAT needs the NAT engine, which this router was built without'],
  ['REDIRECT', section('nat', '-A PREROUTING -p tcp -j REDIRECT --to-ports 8080'), 6, 'REDIRECT', 'REDIRECT rewrites to the router itself, which needs a local stack vrouter does not have; use DNAT to a host'],
  ['DROP in nat', section('nat', '-A PREROUTING -j DROP'), 6, 'DROP', 'the nat table is not intended for filtering: iptables inhibits DROP in it'],
  ['missing COMMIT', '# x\n*filter\n-A FORWARD -j ACCEPT\n', 2, '*filter', '*filter has no COMMIT'],
  ['a table inside another', '*filter\n*nat\nCOMMIT\n', 2, '*nat', '*nat before the COMMIT of *filter'],
  ['rule outside a table', '-A FORWARD -j ACCEPT\n', 1, '-A', '"-A" outside a table (start one with *raw, *mangle, *filter or *nat)'],
  ['COMMIT outside a table', 'COMMIT\n', 1, 'COMMIT', 'COMMIT without a table'],
  ['unknown table', '*security\nCOMMIT\n', 1, '*security', 'table security is not supported'],
  ['table twice', '*raw\nCOMMIT\n*raw\nCOMMIT\n', 3, '*raw', 'table raw appears twice'],
  ['built-in chain the table lacks', '*raw\n:INPUT ACCEPT [0:0]\nCOMMIT\n', 2, 'INPUT', 'table raw has no built-in chain INPUT'],
  ['rule in a built-in chain the table lacks', section('raw', '-A FORWARD -j ACCEPT'), 4, 'FORWARD', 'table raw has no built-in chain FORWARD'],
  ['user chain with a policy', '*filter\n:lan ACCEPT [0:0]\nCOMMIT\n', 2, 'ACCEPT', 'user-defined chain lan cannot have a policy (write "-" instead of "ACCEPT")'],
  ['built-in chain without ACCEPT or DROP', '*filter\n:FORWARD - [0:0]\nCOMMIT\n', 2, '-', 'bad policy "-" for built-in chain FORWARD (ACCEPT or DROP)'],
  ['chain named after a target', '*filter\n:LOG - [0:0]\nCOMMIT\n', 2, 'LOG', 'chain name "LOG" clashes with a target name'],
  ['chain name too long', '*filter\n:a2345678901234567890123456789 - [0:0]\nCOMMIT\n', 2, 'a2345678901234567890123456789', /is too long \(at most 28 characters\)$/],
  ['chain declared twice', '*filter\n:a - [0:0]\n-N a\nCOMMIT\n', 3, 'a', 'chain a already exists'],
  ['bad counters', '*filter\n[1:x] -A FORWARD\nCOMMIT\n', 2, '[1:x]', 'bad counters "[1:x]" (expected [PACKETS:BYTES])'],
  ['words after the chain counters', '*filter\n:FORWARD DROP [0:0] x\nCOMMIT\n', 2, 'x', 'unexpected word "x" after the chain\'s counters'],
  ['unsupported command', section('filter', '-L FORWARD'), 5, '-L', 'command "-L" is not supported in rules (use -A, -I, -D, -R, -N, -P, -F, -X, -Z or -E)'],
  ['insert past the end', section('filter', '-I FORWARD 2 -j ACCEPT'), 5, '2', 'rule position 2 is past the end of chain FORWARD (0 rules)'],
  ['a -j loop', '*filter\n:a - [0:0]\n:b - [0:0]\n-A FORWARD -j a\n-A a -j b\n-A b -j a\nCOMMIT\n', 6, 'a', 'chain loop: a -> b -> a'],
  ['a -g loop back to itself', '*filter\n:a - [0:0]\n-A a -g a\nCOMMIT\n', 3, 'a', 'chain loop: a -> a'],
  ['a loop no built-in chain reaches', '*filter\n:x - [0:0]\n:y - [0:0]\n-A x -j y\n-A y -g x\nCOMMIT\n', 5, 'x', 'chain loop: x -> y -> x'],
];

/** A filter table with user chains c1..cN, each jumping (or going, `-g`) to the next; `entry` rules come last. */
function chainOf(depth: number, flag = '-j', entry = ''): string {
  const lines = ['*filter'];
  for (let i = 1; i <= depth; i++) lines.push(`:c${i} - [0:0]`);
  for (let i = 1; i < depth; i++) lines.push(`-A c${i} ${flag} c${i + 1}`);
  if (entry) lines.push(entry);
  return `${[...lines, 'COMMIT'].join('\n')}\n`;
}

describe('parser: jump depth and loops, as the kernel (iptables-restore here: nf_tables, NFT_JUMP_STACK_SIZE 16)', () => {
  it('takes 15 jumps below a built-in chain, and refuses the 16th on its line (the kernel: "Too many links")', () => {
    expect(() => loaded(chainOf(15, '-j', '-A FORWARD -j c1'))).not.toThrow();
    for (const flag of ['-j', '-g']) {
      const error = refusal(chainOf(16, flag, `-A FORWARD ${flag} c1`));
      // c15's rule, the jump into c16: 16 chains header lines, *filter, then -A c1..c15.
      expect([error.line, error.word]).toEqual([1 + 16 + 15, 'c16']);
      expect(error.reason).toBe('this jump nests chains 16 deep below FORWARD (FORWARD -> c1 -> c2 -> c3 -> (9 more) -> c13 -> c14 -> c15 -> c16): the kernel allows 15 and refuses the rule (Too many links)');
    }
    // Chains no built-in chain reaches are not limited, as in the kernel.
    expect(() => loaded(chainOf(20))).not.toThrow();
  });

  it('refuses 12,000 nested chains with a line, not a stack overflow; and a loop through them', () => {
    const deep = refusal(chainOf(12_000, '-j', '-A INPUT -j c1'));
    expect([deep.line, deep.word]).toEqual([1 + 12_000 + 15, 'c16']);
    const loop = refusal(chainOf(12_000, '-j', '-A c12000 -g c1'));
    expect([loop.line, loop.word, loop.reason]).toEqual([1 + 12_000 + 11_999 + 1, 'c1', 'chain loop: c1 -> c2 -> c3 -> c4 -> (11993 more) -> c11998 -> c11999 -> c12000 -> c1']);
  });
});

describe('parser refusals', () => {
  it.each(REFUSALS)('%s', (_what, text, line, word, reason) => {
    const error = refusal(text);
    expect(error.line).toBe(line);
    expect(error.word).toBe(word);
    if (typeof reason === 'string') expect(error.reason).toBe(reason);
    else expect(error.reason).toMatch(reason);
    expect(error.message).toBe(`test.rules:${line}: ${error.reason}`);
  });
});
