import { afterEach, describe, expect, it } from 'vitest';
import { udpPacket } from '../../support/packets.ts';
import type { RouterBench } from '../../support/router-bench.ts';
import { ManualClock, firewall, loaded, refused, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

const datagram = (): Buffer => udpPacket({ src: '10.0.1.2', dst: '198.51.100.7' }, { srcPort: 5000, dstPort: 9, payload: Buffer.from('x') });
const limited = (options: string, clock: ManualClock): RouterBench =>
  firewall(`*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m limit ${options} -j ACCEPT\nCOMMIT\n`, clock);
/** How many of `count` datagrams sent at once the router forwards. */
const forwarded = (count: number): number => Array.from({ length: count }, () => bench.receive(datagram()).sent.length).filter((n) => n > 0).length;

describe('-m limit: a token bucket per rule on the router clock, as xt_limit', () => {
  it('lets the burst through at once, then one packet per period: 2/sec is one every 500 ms (125 jiffies)', () => {
    const clock = new ManualClock();
    bench = limited('--limit 2/sec --limit-burst 3', clock);
    expect(forwarded(5)).toBe(3);
    clock.advance(499);
    expect(forwarded(1)).toBe(0);
    clock.advance(1);
    expect(forwarded(2)).toBe(1);
  });

  it('refills to the burst and no further, however long the rule sat idle', () => {
    const clock = new ManualClock();
    bench = limited('--limit 1/min --limit-burst 4', clock);
    expect(forwarded(4)).toBe(4);
    clock.advance(3 * 24 * 3600 * 1000);
    expect(forwarded(6)).toBe(4);
  });

  it('defaults to 3/hour with a burst of 5', () => {
    const clock = new ManualClock();
    bench = limited('', clock);
    expect(forwarded(7)).toBe(5);
    clock.advance(20 * 60 * 1000);
    expect(forwarded(2)).toBe(1);
  });

  it('takes a slow rate with a big burst, which iptables-nft accepts (xt_limit 32-bit sums would overflow)', () => {
    const clock = new ManualClock();
    bench = limited('--limit 1/day --limit-burst 10000', clock);
    expect(forwarded(10001)).toBe(10000);
  });
});

describe('-m limit: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['--limit 5/sec --limit-burst 10', '-m limit --limit 5/sec --limit-burst 10'],
    ['', '-m limit --limit 3/hour'],
    ['--limit 3/min', '-m limit --limit 3/min'],
    ['--limit 7/minute', '-m limit --limit 7/min'],
    ['--limit 5/M', '-m limit --limit 5/min'],
    ['--limit 5/SECOND', '-m limit --limit 5/sec'],
    ['--limit 5/h', '-m limit --limit 5/hour'],
    ['--limit 5/d', '-m limit --limit 5/day'],
    ['--limit 10', '-m limit --limit 10/sec'],
    ['--limit 010/sec', '-m limit --limit 10/sec'],
    ['--limit 5x/sec', '-m limit --limit 5/sec'],
    ['--limit 3000/sec', '-m limit --limit 3333/sec'],
    ['--limit 9999/sec', '-m limit --limit 10000/sec'],
    ['--limit 61/min', '-m limit --limit 61/min'],
    ['--limit 100/hour', '-m limit --limit 100/hour'],
    ['--limit 1000/day', '-m limit --limit 1000/day'],
    ['--limit-burst 0', '-m limit --limit 3/hour'],
    ['--limit-burst 10000', '-m limit --limit 3/hour --limit-burst 10000'],
    ['--limit 1/day --limit-burst 10000', '-m limit --limit 1/day --limit-burst 10000'],
  ])('-m limit %s saves as %s', (options, saved) => {
    expect(savedRules(loaded(section('filter', `-A INPUT -m limit ${options}`)).tables)).toEqual([`-A INPUT ${saved}`]);
  });

  it.each([
    ['--limit 0/sec', '0/sec', 'bad rate "0/sec"'],
    ['--limit abc', 'abc', 'bad rate "abc"'],
    ['--limit 0x10/sec', '0x10/sec', 'bad rate "0x10/sec"'],
    ['--limit 5/x', '5/x', 'bad rate "5/x"'],
    ['--limit 5/', '5/', 'bad rate "5/"'],
    ['--limit 10001/sec', '10001/sec', 'Rate too fast "10001/sec"'],
    ['--limit-burst 10001', '10001', 'limit: bad value "10001" for option "--limit-burst", or out of range (0-10000)'],
    ['! --limit 5', '--limit', 'option "--limit" cannot be inverted'],
  ])('refuses -m limit %s, naming %s, as iptables does', (options, word, reason) => {
    const error = refused(section('filter', `-A INPUT -m limit ${options}`));
    expect(error.message).toContain(`test.rules:5: ${reason}`);
    expect(error.word).toBe(word);
  });
});
