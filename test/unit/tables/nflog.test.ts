import { afterEach, describe, expect, it } from 'vitest';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { icmpPacket } from '../../support/packets.ts';
import type { RouterBench } from '../../support/router-bench.ts';
import { ManualClock, firewall, loaded, refused, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

const echo = (): Buffer => icmpPacket({ src: '10.0.1.2', dst: '198.51.100.7', ident: 0x1234 }, { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x00070001, data: Buffer.from('abcdefgh') });

describe('-j NFLOG on a router built by buildRouter', () => {
  it('writes the packet to the router log in LOG format, marked NFLOG with its group and prefix, and lets it go on', () => {
    const lines: string[] = [];
    bench = firewall(section('filter', '-A FORWARD -j NFLOG --nflog-group 2 --nflog-prefix "fwd drop"\n-A FORWARD -j NFLOG'), new ManualClock(), lines);
    expect(bench.receive(echo()).sent.map((s) => s.via)).toEqual(['wan0']);
    const fields = 'IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=198.51.100.7 LEN=36 TOS=0x00 PREC=0x00 TTL=63 ID=4660 PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1 ';
    expect(lines).toEqual([`NFLOG group=2 prefix="fwd drop" ${fields}`, `NFLOG group=0 ${fields}`]);
  });
});

describe('-j NFLOG: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['', ''],
    ['--nflog-group 2 --nflog-prefix "hi there" --nflog-range 100 --nflog-threshold 3', ' --nflog-prefix "hi there" --nflog-group 2 --nflog-threshold 3'],
    ['--nflog-prefix x', ' --nflog-prefix x'],
    ['--nflog-size 100', ' --nflog-size 100'],
    ['--nflog-size 0', ' --nflog-size 0'],
    ['--nflog-group 65535 --nflog-threshold 1', ' --nflog-group 65535 --nflog-threshold 1'],
    ['--nflog-threshold 0', ''],
    ['--nflog-prefix "a\'b\\"c"', ' --nflog-prefix "a\\\'b\\"c"'],
    [`--nflog-prefix ${'a'.repeat(140)}`, ` --nflog-prefix ${'a'.repeat(127)}`],
  ])('-j NFLOG %s saves as -j NFLOG%s', (options, saved) => {
    expect(savedRules(loaded(section('filter', `-A INPUT -j NFLOG ${options}`)).tables)).toEqual([`-A INPUT -j NFLOG${saved}`]);
  });

  it.each([
    ['--nflog-group 65536', 'NFLOG: bad value "65536" for option "--nflog-group", or out of range (0-65535)'],
    ['--nflog-prefix ""', 'NFLOG: empty --nflog-prefix (Argument must have a minimum length of 1 characters)'],
    ['--nflog-range 5 --nflog-size 5', 'NFLOG: option "--nflog-range" cannot be used together with "--nflog-size"'],
    ['--nflog-threshold x', 'NFLOG: bad value "x" for option "--nflog-threshold", or out of range (0-65535)'],
  ])('refuses -j NFLOG %s as iptables does', (options, reason) => {
    expect(refused(section('filter', `-A INPUT -j NFLOG ${options}`)).message).toContain(`test.rules:5: ${reason}`);
  });
});
