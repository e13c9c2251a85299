import { afterEach, describe, expect, it } from 'vitest';
import { RuleTables } from '../../../netfilter/tables/index.ts';
import { RECENT_LIST_MAX } from '../../../netfilter/tables/matches/recent-table.ts';
import { udpPacket } from '../../support/packets.ts';
import type { RouterBench } from '../../support/router-bench.ts';
import { ManualClock, Recorder, firewall, loaded, refused, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

const probe = (src: string, dst = '203.0.113.9', ttl = 64): Buffer => udpPacket({ src, dst, ttl }, { srcPort: 5000, dstPort: 22, payload: Buffer.from('x') });
const passes = (buf: Buffer): boolean => bench.receive(buf).sent.length > 0;
const filter = (body: string): string => section('filter', body);

describe('-m recent on a router built by buildRouter', () => {
  it('the classic brute-force rule pair: the 5th packet within 60 s is dropped, and passes again once the sightings are older than 60 s', () => {
    const clock = new ManualClock();
    bench = firewall(filter('-A FORWARD -m recent --name SSH --update --seconds 60 --hitcount 4 -j DROP\n-A FORWARD -m recent --name SSH --set'), clock);
    const seen: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(passes(probe('10.0.1.2')));
      clock.advance(1000);
    }
    expect(seen).toEqual([true, true, true, true, false]);
    // Another source has its own entry.
    expect(passes(probe('10.0.1.3'))).toBe(true);
    clock.advance(61_000);
    expect(passes(probe('10.0.1.2'))).toBe(true);
  });

  it('--rcheck without --hitcount matches an address seen at all; --remove forgets it', () => {
    bench = firewall(filter('-A FORWARD -d 198.51.100.1/32 -m recent --name knock --set\n-A FORWARD -d 198.51.100.8/32 -m recent --name knock --remove\n-A FORWARD -d 203.0.113.9/32 -m recent --name knock ! --rcheck -j DROP'));
    expect(passes(probe('10.0.1.2'))).toBe(false);
    passes(probe('10.0.1.2', '198.51.100.1'));
    expect(passes(probe('10.0.1.2'))).toBe(true);
    passes(probe('10.0.1.2', '198.51.100.8'));
    expect(passes(probe('10.0.1.2'))).toBe(false);
  });

  it('--rdest remembers the destination, --mask a whole network', () => {
    bench = firewall(filter('-A FORWARD -s 10.0.1.2/32 -m recent --name out --rdest --mask 255.255.255.0 --set\n-A FORWARD -s 10.0.1.3/32 -m recent --name out --rdest --mask 255.255.255.0 --rcheck -j DROP'));
    passes(probe('10.0.1.2', '198.51.100.7'));
    expect(passes(probe('10.0.1.3', '198.51.100.200'))).toBe(false);
    expect(passes(probe('10.0.1.3', '198.51.101.7'))).toBe(true);
  });

  it('keeps at most 100 addresses per list: a new one evicts the least recently seen', () => {
    const clock = new ManualClock();
    bench = firewall(filter('-A FORWARD -d 198.51.100.1/32 -m recent --name many --set\n-A FORWARD -d 203.0.113.9/32 -m recent --name many --rcheck -j DROP'), clock);
    for (let i = 0; i < 150; i++) {
      passes(probe(`10.0.1.${i + 2}`, '198.51.100.1'));
      clock.advance(10);
    }
    expect(bench.netfilter.rules.recentList('many')?.size).toBe(RECENT_LIST_MAX);
    expect(passes(probe('10.0.1.2'))).toBe(true);
    expect(passes(probe('10.0.1.51'))).toBe(true);
    expect(passes(probe('10.0.1.52'))).toBe(false);
    expect(passes(probe('10.0.1.151'))).toBe(false);
  });

  it('--rttl wants the TTL the address was last seen with: the TTL it arrived with, before the router decremented it', () => {
    bench = firewall(filter('-A FORWARD -d 198.51.100.1/32 -m recent --name ttl --set\n-A FORWARD -d 203.0.113.9/32 -m recent --name ttl --rcheck --rttl -j DROP'));
    passes(probe('10.0.1.2', '198.51.100.1', 64));
    expect(passes(probe('10.0.1.2', '203.0.113.9', 64))).toBe(false);
    expect(passes(probe('10.0.1.2', '203.0.113.9', 50))).toBe(true);
  });

  it('--reap drops the least recently seen address once its last sighting is older than --seconds', () => {
    const clock = new ManualClock();
    bench = firewall(filter('-A FORWARD -d 198.51.100.1/32 -m recent --name r --set\n-A FORWARD -d 203.0.113.9/32 -m recent --name r --rcheck --seconds 10 --reap -j DROP'), clock);
    passes(probe('10.0.1.2', '198.51.100.1'));
    clock.advance(5000);
    passes(probe('10.0.1.3', '198.51.100.1'));
    clock.advance(6000);
    // The check of 10.0.1.3 (seen 6 s ago: a hit, so dropped) reaps 10.0.1.2, last seen 11 s ago.
    expect(passes(probe('10.0.1.3'))).toBe(false);
    expect(bench.netfilter.rules.recentList('r')?.size).toBe(1);
  });
});

describe('-m recent lists: shared by name, kept across loads while a rule names them', () => {
  const setter = (name: string): string => filter(`-A INPUT -m recent --name ${name} --set`);

  it('rules in different tables naming one list share it; a reload that still names it keeps its addresses, one that does not drops it', () => {
    const tables = new RuleTables(new Recorder());
    tables.load(setter('A') + section('mangle', '-A PREROUTING -m recent --name A --rcheck'), 'test.rules');
    const list = tables.recentList('A')!;
    list.add(0x0a000102, 64, 0);
    tables.load(setter('A'), 'test.rules');
    expect(tables.recentList('A')).toBe(list);
    expect(list.size).toBe(1);
    tables.load(setter('B') + section('mangle', '-A PREROUTING -j ACCEPT'), 'test.rules');
    expect(tables.recentList('A')).toBeNull();
    expect(tables.recentList('B')).not.toBeNull();
  });

  it('a text that fails, or is only parsed, makes no list', () => {
    const tables = new RuleTables(new Recorder());
    tables.parse(setter('checked'), 'test.rules');
    expect(() => tables.load(`${setter('failed')}*filter\nCOMMIT\n`, 'test.rules')).toThrow();
    tables.load(setter('kept'), 'test.rules');
    expect([tables.recentList('checked'), tables.recentList('failed'), tables.recentList('kept')?.name]).toEqual([null, null, 'kept']);
  });

  it('a rule counting more hits than the list keeps grows it, which empties it, as the kernel does', () => {
    const tables = new RuleTables(new Recorder());
    tables.load(setter('grow'), 'test.rules');
    tables.recentList('grow')!.add(0x0a000102, 64, 0);
    tables.load(filter('-A INPUT -m recent --name grow --set\n-A INPUT -m recent --name grow --rcheck --hitcount 32'), 'test.rules');
    expect(tables.recentList('grow')!.size).toBe(1);
    tables.load(filter('-A INPUT -m recent --name grow --set\n-A INPUT -m recent --name grow --rcheck --hitcount 33'), 'test.rules');
    expect(tables.recentList('grow')!.size).toBe(0);
  });
});

describe('-m recent: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['--set', '--set --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['! --set', '! --set --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['--rcheck --seconds 60 --hitcount 5 --name SSH --rsource', '--rcheck --seconds 60 --hitcount 5 --name SSH --mask 255.255.255.255 --rsource'],
    ['--update --seconds 60 --name SSH --rdest', '--update --seconds 60 --name SSH --mask 255.255.255.255 --rdest'],
    ['--remove --name SSH', '--remove --name SSH --mask 255.255.255.255 --rsource'],
    ['! --rcheck --name X --mask 255.255.255.0 --reap --seconds 10', '! --rcheck --seconds 10 --reap --name X --mask 255.255.255.0 --rsource'],
    ['--rcheck --hitcount 0', '--rcheck --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['--rcheck --hitcount 65535', '--rcheck --hitcount 65535 --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['--rcheck --seconds 4294967295', '--rcheck --seconds -1 --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['--set --rsource --rdest', '--set --name DEFAULT --mask 255.255.255.255 --rdest'],
    ['--set --rdest --rsource', '--set --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['--update --rttl', '--update --rttl --name DEFAULT --mask 255.255.255.255 --rsource'],
    ['--set --mask 255.0.255.0', '--set --name DEFAULT --mask 255.0.255.0 --rsource'],
    ['--set --name .a', '--set --name .a --mask 255.255.255.255 --rsource'],
    [`--set --name ${'n'.repeat(250)}`, `--set --name ${'n'.repeat(199)} --mask 255.255.255.255 --rsource`],
  ])('-m recent %s saves as -m recent %s', (options, saved) => {
    expect(savedRules(loaded(filter(`-A INPUT -m recent ${options}`)).tables)).toEqual([`-A INPUT -m recent ${saved}`]);
  });

  it.each([
    ['', "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'"],
    ['--set --rcheck', 'recent: option "--set" cannot be used together with "--rcheck"'],
    ['--set ! --rcheck', 'recent: option "--set" cannot be used together with "--rcheck"'],
    ['--rcheck --seconds 0', 'recent: bad value "0" for option "--seconds", or out of range (1-4294967295)'],
    ['--rcheck --hitcount 4294967296', 'recent: bad value "4294967296" for option "--hitcount", or out of range (0-4294967295)'],
    ['--rcheck --reap', 'recent: option "--reap" also requires "--seconds"'],
    ['--set --rttl', 'recent: option "--rttl" cannot be used together with "--set"'],
    ['--set --seconds 5', 'recent: --seconds, --hitcount and --reap go with --rcheck or --update, not --set'],
    ['--remove --hitcount 2', 'recent: --seconds, --hitcount and --reap go with --rcheck or --update, not --remove'],
    ['--rcheck --hitcount 65536', 'recent: hitcount (65536) is larger than allowed maximum (65535)'],
    ['--set --name ""', 'recent: bad --name ""'],
    ['--set --name a/b', 'recent: bad --name "a/b"'],
    ['--set --name ..', 'recent: bad --name ".."'],
    ['--set --name "a b"', 'recent: --name "a b" has a blank or quote'],
    ['--set --mask 24', 'recent: bad --mask "24"'],
  ])('refuses -m recent %s as iptables and the kernel do', (options, reason) => {
    expect(refused(filter(`-A INPUT -m recent ${options}`)).message).toContain(`test.rules:5: ${reason}`);
  });
});
