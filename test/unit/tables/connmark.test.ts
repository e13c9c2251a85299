import { afterEach, describe, expect, it } from 'vitest';
import { CtEvent } from '../../../netfilter/conntrack/status.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { udpPacket } from '../../support/packets.ts';
import type { RouterBench } from '../../support/router-bench.ts';
import { connection, firewall, loaded, packet, refused, runHook, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

const udp = (src: string, dst: string, srcPort: number, dstPort: number): Buffer => udpPacket({ src, dst }, { srcPort, dstPort, payload: Buffer.from('ping') });

/** One packet with a connection of mark `ctmark` and packet mark `mark` through mangle PREROUTING `rule`. */
function through(rule: string, mark: number, ctmark: number | null): Packet {
  const { tables } = loaded(section('mangle', `-A PREROUTING ${rule}`));
  const made = packet(udp('10.0.1.2', '198.51.100.7', 5000, 53), null, null);
  made.mark = mark;
  if (ctmark !== null) {
    made.conntrack = connection();
    made.conntrack.mark = ctmark;
  }
  expect(runHook(tables, Hook.PRE_ROUTING, made)).toBe(Verdict.ACCEPT);
  return made;
}

describe('-j CONNMARK and -m connmark on a router built by buildRouter', () => {
  it('a CONNMARK rule alone turns connection tracking on, and marks the connection', () => {
    bench = firewall(section('mangle', '-A PREROUTING -j CONNMARK --set-mark 5'));
    expect(bench.netfilter.tracking).toBe(true);
    const { packet: seen } = bench.receive(udp('10.0.1.2', '198.51.100.7', 5000, 53));
    expect(seen?.conntrack?.mark).toBe(5);
  });

  it('so does a connmark match alone', () => {
    bench = firewall(section('filter', '-A FORWARD -m connmark --mark 1 -j DROP'));
    expect(bench.netfilter.tracking).toBe(true);
  });

  it('saves the first packet mark in the connection and restores it on the replies, which -m connmark then lets through', () => {
    const rules =
      section('mangle', ['-A PREROUTING -j CONNMARK --restore-mark', '-A PREROUTING -i lan0 -m mark --mark 0 -j MARK --set-mark 0x42', '-A PREROUTING -j CONNMARK --save-mark'].join('\n')) +
      '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m connmark --mark 0x42 -j ACCEPT\nCOMMIT\n';
    bench = firewall(rules);
    const out = bench.receive(udp('10.0.1.2', '198.51.100.7', 5000, 53));
    expect(out.sent.map((s) => s.via)).toEqual(['wan0']);
    expect(out.packet?.conntrack?.mark).toBe(0x42);
    const reply = bench.receive(udp('198.51.100.7', '10.0.1.2', 53, 5000));
    expect(reply.packet?.mark).toBe(0x42);
    expect(reply.sent.map((s) => s.via)).toEqual(['lan0']);
    // Not a reply: its new connection has mark 0 (the MARK rule is for lan0 only), so it is dropped.
    expect(bench.receive(udp('198.51.100.7', '10.0.1.2', 53, 5001)).sent).toEqual([]);
  });
});

describe('-j CONNMARK: the kernel arithmetic', () => {
  it.each([
    ['--set-xmark 0x5/0xff', 0, 0x1234, 0x1205],
    ['--set-mark 0x5', 0, 0x1234, 0x5],
    ['--set-mark 0x1/0x2', 0, 0xff, 0xfd],
    ['--and-mark 0xf0', 0, 0x1234, 0x30],
    ['--or-mark 0x1', 0, 0x1234, 0x1235],
    ['--xor-mark 0x4', 0, 0x1234, 0x1230],
    ['--save-mark', 0xab, 0x1200, 0xab],
    ['--save-mark --nfmask 0xf0 --ctmask 0xff', 0xab, 0x1200, 0x12a0],
    ['--save-mark --mask 0xff', 0x1ab, 0x1200, 0x12ab],
    ['--save-mark --left-shift-mark 8', 0x12, 0, 0x1200],
    ['--set-xmark 0x10/0xff --right-shift-mark 4', 0, 0x1234, 0x121],
  ])('%s with packet mark %i turns connection mark %i into %i', (options, mark, ctmark, expected) => {
    expect(through(`-j CONNMARK ${options}`, mark, ctmark).conntrack!.mark).toBe(expected);
  });

  it.each([
    ['--restore-mark', 0x100, 0x35, 0x35],
    ['--restore-mark --nfmask 0xf --ctmask 0xf0', 0x100, 0x35, 0x130],
    ['--restore-mark --mask 0xf0', 0x10f, 0x35, 0x13f],
    ['--restore-mark --right-shift-mark 4', 0, 0x350, 0x35],
  ])('%s with packet mark %i and connection mark %i gives the packet %i', (options, mark, ctmark, expected) => {
    expect(through(`-j CONNMARK ${options}`, mark, ctmark).mark).toBe(expected);
  });

  it('reports a changed connection mark as an IPCT_MARK event, and an unchanged one not', () => {
    expect(through('-j CONNMARK --set-mark 7', 0, 0).conntrack!.events & CtEvent.MARK).toBe(CtEvent.MARK);
    expect(through('-j CONNMARK --set-mark 7', 0, 7).conntrack!.events & CtEvent.MARK).toBe(0);
  });

  it('leaves a packet without a connection alone; -m connmark never matches it, inverted or not', () => {
    expect(through('-j CONNMARK --restore-mark', 9, null).mark).toBe(9);
    for (const rule of ['-m connmark --mark 0', '-m connmark ! --mark 0']) {
      const { tables } = loaded(section('filter', `-A FORWARD ${rule} -j DROP`));
      expect(runHook(tables, Hook.FORWARD, packet(udp('10.0.1.2', '198.51.100.7', 1, 2)))).toBe(Verdict.ACCEPT);
    }
  });

  it('-m connmark compares (mark & mask) with the value, and inverts', () => {
    const verdict = (rule: string, ctmark: number): Verdict => {
      const { tables } = loaded(section('filter', `-A FORWARD ${rule} -j DROP`));
      const made = packet(udp('10.0.1.2', '198.51.100.7', 1, 2));
      made.conntrack = connection();
      made.conntrack.mark = ctmark;
      return runHook(tables, Hook.FORWARD, made);
    };
    expect(verdict('-m connmark --mark 0x1/0xf', 0x31)).toBe(Verdict.DROP);
    expect(verdict('-m connmark --mark 0x1/0xf', 0x32)).toBe(Verdict.ACCEPT);
    expect(verdict('-m connmark ! --mark 0x1/0xf', 0x32)).toBe(Verdict.DROP);
    expect(verdict('-m connmark --mark 0x31', 0x31)).toBe(Verdict.DROP);
  });
});

describe('connmark and CONNMARK: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['-m connmark --mark 1', '-m connmark --mark 0x1'],
    ['-m connmark ! --mark 1/0xf', '-m connmark ! --mark 0x1/0xf'],
    ['-m connmark --mark 0xffffffff/0xffffffff', '-m connmark --mark 0xffffffff'],
    ['-m connmark --mark 1/0', '-m connmark --mark 0x1/0x0'],
    ['-j CONNMARK --restore-mark', '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff'],
    ['-j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xf0', '-j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xf0'],
    ['-j CONNMARK --restore-mark --ctmask 4', '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0x4'],
    ['-j CONNMARK --save-mark', '-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff'],
    ['-j CONNMARK --save-mark --mask 0xff', '-j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff'],
    ['-j CONNMARK --save-mark --nfmask 4', '-j CONNMARK --save-mark --nfmask 0x4 --ctmask 0xffffffff'],
    ['-j CONNMARK --save-mark --left-shift-mark 3', '-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff --left-shift-mark 3'],
    ['-j CONNMARK --set-mark 5', '-j CONNMARK --set-xmark 0x5/0xffffffff'],
    ['-j CONNMARK --set-mark 5/0xff', '-j CONNMARK --set-xmark 0x5/0xff'],
    ['-j CONNMARK --set-mark 0x1/0x2', '-j CONNMARK --set-xmark 0x1/0x3'],
    ['-j CONNMARK --set-mark 1 --mask 3', '-j CONNMARK --set-xmark 0x1/0x3'],
    ['-j CONNMARK --set-mark 1 --right-shift-mark 2', '-j CONNMARK --set-xmark 0x1/0xffffffff --right-shift-mark 2'],
    ['-j CONNMARK --set-xmark 5/0xff', '-j CONNMARK --set-xmark 0x5/0xff'],
    ['-j CONNMARK --set-xmark 1 --ctmask 4', '-j CONNMARK --set-xmark 0x1/0x4'],
    ['-j CONNMARK --set-xmark 0/0', '-j CONNMARK --set-xmark 0x0/0x0'],
    ['-j CONNMARK --and-mark 5', '-j CONNMARK --set-xmark 0x0/0xfffffffa'],
    ['-j CONNMARK --and-mark 0xffffffff', '-j CONNMARK --set-xmark 0x0/0x0'],
    ['-j CONNMARK --or-mark 5', '-j CONNMARK --set-xmark 0x5/0x5'],
    ['-j CONNMARK --xor-mark 5', '-j CONNMARK --set-xmark 0x5/0x0'],
  ])('%s saves as %s', (rule, saved) => {
    expect(savedRules(loaded(section('mangle', `-A PREROUTING ${rule}`)).tables)).toEqual([`-A PREROUTING ${saved}`]);
  });

  it('CONNMARK and connmark work in every table, as the kernel takes them', () => {
    for (const table of ['raw', 'filter', 'nat']) {
      const chain = table === 'filter' ? 'INPUT' : 'PREROUTING';
      expect(savedRules(loaded(section(table, `-A ${chain} -m connmark --mark 3 -j CONNMARK --save-mark`)).tables)).toEqual([
        `-A ${chain} -m connmark --mark 0x3 -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
      ]);
    }
  });

  it.each([
    ['-m connmark', 'connmark: option "--mark" must be specified'],
    ['-m connmark --mark 0x100000000', 'bad value "0x100000000" for --mark'],
    ['-m connmark --mark abc', 'bad value "abc" for --mark'],
    ['-m connmark --mark 1/', 'bad value "1/" for --mark'],
    ['-j CONNMARK', 'CONNMARK target: No operation specified'],
    ['-j CONNMARK --mask 5', 'CONNMARK target: No operation specified'],
    ['-j CONNMARK --left-shift-mark 2', 'CONNMARK target: No operation specified'],
    ['-j CONNMARK --save-mark --restore-mark', 'CONNMARK: option "--save-mark" cannot be used together with "--restore-mark"'],
    ['-j CONNMARK --xor-mark 1 --and-mark 2', 'CONNMARK: option "--and-mark" cannot be used together with "--xor-mark"'],
    ['-j CONNMARK --save-mark --mask 3 --nfmask 4', 'CONNMARK: option "--nfmask" cannot be used together with "--mask"'],
    ['-j CONNMARK --restore-mark --right-shift-mark 33', 'CONNMARK: bad value "33" for option "--right-shift-mark", or out of range (0-32)'],
  ])('refuses %s as iptables does', (rule, reason) => {
    expect(refused(section('mangle', `-A PREROUTING ${rule}`)).message).toContain(`test.rules:7: ${reason}`);
  });
});
