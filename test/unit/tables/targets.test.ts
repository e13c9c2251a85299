import { describe, expect, it } from 'vitest';
import { CtInfo } from '../../../netfilter/conntrack/status.ts';
import { Hook, Verdict, type HookPoint } from '../../../router/core/hooks.ts';
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { IPV4_FLAG_DF, IPV4_FLAG_MF, IpProtocol } from '../../../router/wire/ipv4.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { icmpPacket, rawPacket, tcpPacket, udpPacket } from '../../support/packets.ts';
import { LAN, WAN, connection, loaded, packet, runHook, section } from './support.ts';

const DF = IPV4_FLAG_DF;
const CLIENT = { src: '10.0.1.2', dst: '203.0.113.2' };

describe('REJECT', () => {
  const TYPES: readonly (readonly [string, number])[] = [
    ['', 3],
    ['--reject-with icmp-net-unreachable', 0],
    ['--reject-with icmp-host-unreachable', 1],
    ['--reject-with icmp-proto-unreachable', 2],
    ['--reject-with icmp-port-unreachable', 3],
    ['--reject-with icmp-net-prohibited', 9],
    ['--reject-with icmp-host-prohibited', 10],
    ['--reject-with icmp-admin-prohibited', 13],
    ['--reject-with admin-prohib', 13],
  ];
  const probe = udpPacket(CLIENT, { srcPort: 5353, dstPort: 53, payload: Buffer.from('q') });

  it.each(TYPES)('-j REJECT %s sends destination unreachable code %i and drops', (option, code) => {
    const { tables, recorder } = loaded(section('filter', `-A FORWARD -j REJECT ${option}\n-A FORWARD -j LOG`));
    const made = packet(probe);
    expect(runHook(tables, Hook.FORWARD, made)).toBe(Verdict.DROP);
    expect(recorder.icmpErrors).toEqual([{ packet: made, type: IcmpType.DEST_UNREACHABLE, code }]);
    expect(recorder.lines).toEqual([]);
  });

  it('tcp-reset asks for a reset, not an ICMP error', () => {
    const { tables, recorder } = loaded(section('filter', '-A FORWARD -p tcp -j REJECT --reject-with tcp-reset'));
    const syn = packet(tcpPacket(CLIENT, { srcPort: 40000, dstPort: 22, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }));
    expect(runHook(tables, Hook.FORWARD, syn)).toBe(Verdict.DROP);
    expect(recorder.resets).toEqual([syn]);
    expect(recorder.icmpErrors).toEqual([]);
  });

  it('answers no non-first fragment and no packet with a bad L4 checksum, but still drops them', () => {
    const { tables, recorder } = loaded(section('filter', '-A FORWARD -j REJECT'));
    const fragment = rawPacket({ ...CLIENT, flagsFragment: 100 }, IpProtocol.UDP, Buffer.alloc(16));
    const badUdp = Buffer.from(probe);
    badUdp[badUdp.length - 1] ^= 0xff;
    const badTcp = tcpPacket(CLIENT, { srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1 });
    badTcp[20 + 16] ^= 1;
    const badIcmp = icmpPacket(CLIENT, { type: IcmpType.ECHO_REQUEST, code: 0 });
    badIcmp[20 + 2] ^= 1;
    for (const buf of [fragment, badUdp, badTcp, badIcmp]) expect(runHook(tables, Hook.FORWARD, packet(buf))).toBe(Verdict.DROP);
    expect(recorder.icmpErrors).toEqual([]);
    // A UDP checksum of zero means "none": nothing to check.
    const unchecked = Buffer.from(probe);
    unchecked[20 + 6] = 0;
    unchecked[20 + 7] = 0;
    runHook(tables, Hook.FORWARD, packet(unchecked));
    expect(recorder.icmpErrors).toHaveLength(1);
  });
});

describe('LOG, line for line as Linux 6.18 logged the same packets from a TUN device', () => {
  const echo = (ttl: number): Buffer =>
    icmpPacket({ ...CLIENT, ttl, ident: 0x1234, flagsFragment: DF }, { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x00070001, data: Buffer.from('abcdefgh'.repeat(7)) });
  const logAt = (table: string, chain: string, hook: HookPoint, buf: Buffer, options = '--log-prefix "X: "', input: RouterInterface | null = LAN, output: RouterInterface | null = WAN, mark = 0): string[] => {
    const { tables, recorder } = loaded(section(table, `-A ${chain} -j LOG ${options}`));
    const made = packet(buf, input, output);
    made.mark = mark;
    expect(runHook(tables, hook, made)).toBe(Verdict.ACCEPT);
    return recorder.lines;
  };

  it('an echo request at PREROUTING, FORWARD and POSTROUTING (where the input device is still known)', () => {
    expect(logAt('mangle', 'PREROUTING', Hook.PRE_ROUTING, echo(64), '--log-prefix "VRTPRE: "', LAN, null)).toEqual([
      'VRTPRE: IN=lan0 OUT= MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=4660 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1 ',
    ]);
    expect(logAt('filter', 'FORWARD', Hook.FORWARD, echo(63), '--log-prefix "VRTFWD: "')).toEqual([
      'VRTFWD: IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=84 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1 ',
    ]);
    expect(logAt('mangle', 'POSTROUTING', Hook.POST_ROUTING, echo(63), '--log-prefix "VRTPOST: "')).toEqual([
      'VRTPOST: IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=84 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1 ',
    ]);
  });

  it('a SYN with TOS bits and an MSS option, with --log-tcp-options', () => {
    const syn = tcpPacket(
      { ...CLIENT, ttl: 63, ident: 77, tos: 0xb0, flagsFragment: DF },
      { srcPort: 40000, dstPort: 80, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 512, options: Uint8Array.from([2, 4, 5, 0xb4]) },
    );
    expect(logAt('filter', 'FORWARD', Hook.FORWARD, syn, '--log-prefix "VRTOPT: " --log-tcp-options --log-ip-options')).toEqual([
      'VRTOPT: IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=44 TOS=0x10 PREC=0xA0 TTL=63 ID=77 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=512 RES=0x00 SYN URGP=0 OPT (020405B4) ',
    ]);
  });

  it('every TCP flag, the reserved bits and AE, sequence numbers, and the mark', () => {
    const flags = TcpFlag.CWR | TcpFlag.ECE | TcpFlag.URG | TcpFlag.ACK | TcpFlag.PSH | TcpFlag.FIN;
    const segment = tcpPacket({ ...CLIENT, ttl: 63, ident: 0x1234, flagsFragment: DF }, { srcPort: 40001, dstPort: 81, seq: 1000, ack: 5000, flags, window: 512, payload: Buffer.from('xy') });
    segment[20 + 12] |= 0x0f;
    expect(logAt('filter', 'FORWARD', Hook.FORWARD, segment, '--log-prefix "VRTSEQ: " --log-tcp-sequence --log-tcp-options --log-ip-options', LAN, WAN, 0x2a)).toEqual([
      'VRTSEQ: IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=42 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF PROTO=TCP SPT=40001 DPT=81 SEQ=1000 ACK=5000 WINDOW=512 RES=0x38 AE CWR ECE URG ACK PSH FIN URGP=0 MARK=0x2a ',
    ]);
  });

  const udp = udpPacket({ ...CLIENT, ttl: 63, ident: 0x1234 }, { srcPort: 5353, dstPort: 9999, payload: Buffer.from('hello') });

  it('UDP, and an ICMP error with the datagram it quotes in brackets', () => {
    expect(logAt('filter', 'FORWARD', Hook.FORWARD, udp, '--log-prefix "VRTFWD: "')).toEqual([
      'VRTFWD: IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 LEN=33 TOS=0x00 PREC=0x00 TTL=63 ID=4660 PROTO=UDP SPT=5353 DPT=9999 LEN=13 ',
    ]);
    const unreachable = icmpPacket({ src: '203.0.113.2', dst: '10.0.1.2', ttl: 63, ident: 51365, tos: 0xc0 }, { type: 3, code: 3, data: udp });
    expect(logAt('mangle', 'POSTROUTING', Hook.POST_ROUTING, unreachable, '--log-prefix "VRTPOST: "', WAN, LAN)).toEqual([
      'VRTPOST: IN=wan0 OUT=lan0 MAC= SRC=203.0.113.2 DST=10.0.1.2 LEN=61 TOS=0x00 PREC=0xC0 TTL=63 ID=51365 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.1.2 DST=203.0.113.2 LEN=33 TOS=0x00 PREC=0x00 TTL=63 ID=4660 PROTO=UDP SPT=5353 DPT=9999 LEN=13 ] ',
    ]);
  });

  it('a later fragment, GRE, ESP, cut-short ICMP and TCP headers, and IP options', () => {
    const cases: readonly (readonly [Buffer, string, string])[] = [
      [rawPacket({ ...CLIENT, ttl: 63, ident: 9, flagsFragment: IPV4_FLAG_MF | 185 }, IpProtocol.TCP, Buffer.alloc(16)), '', 'LEN=36 TOS=0x00 PREC=0x00 TTL=63 ID=9 MF FRAG:185 PROTO=TCP '],
      [rawPacket({ ...CLIENT, ttl: 63, ident: 0x1234, flagsFragment: DF }, IpProtocol.GRE, Buffer.from([0x20, 0x01, 0x88, 0x0b, 0, 0, 0, 1])), '', 'LEN=28 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF PROTO=47 '],
      [rawPacket({ ...CLIENT, ttl: 63, ident: 0x1234, flagsFragment: DF }, 50, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1])), '', 'LEN=28 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF PROTO=ESP SPI=0xdeadbeef '],
      [rawPacket({ ...CLIENT, ttl: 63, ident: 0x1234 }, IpProtocol.ICMP, Buffer.from([8, 0, 0xf7, 0xff])), '', 'LEN=24 TOS=0x00 PREC=0x00 TTL=63 ID=4660 PROTO=ICMP INCOMPLETE [4 bytes] '],
      [rawPacket({ ...CLIENT, ttl: 63, ident: 0x1234, flagsFragment: DF }, IpProtocol.TCP, Buffer.from([1, 2, 3])), '', 'LEN=23 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF PROTO=TCP INCOMPLETE [3 bytes] '],
      [
        udpPacket({ ...CLIENT, ttl: 63, ident: 0x1234, flagsFragment: DF, options: Uint8Array.from([1, 1, 1, 0]) }, { srcPort: 1, dstPort: 2 }),
        ' --log-ip-options',
        'LEN=32 TOS=0x00 PREC=0x00 TTL=63 ID=4660 DF OPT (01010100) PROTO=UDP SPT=1 DPT=2 LEN=8 ',
      ],
    ];
    for (const [buf, options, tail] of cases) {
      expect(logAt('filter', 'FORWARD', Hook.FORWARD, buf, `--log-prefix "VRTFWD: "${options}`)).toEqual([`VRTFWD: IN=lan0 OUT=wan0 MAC= SRC=10.0.1.2 DST=203.0.113.2 ${tail}`]);
    }
  });

  it('a router-originated packet at OUTPUT has no input device and so no MAC field', () => {
    const local = icmpPacket({ src: '203.0.113.1', dst: '203.0.113.2', ident: 5 }, { type: IcmpType.ECHO_REPLY, code: 0, rest: 0x00010002 });
    expect(logAt('filter', 'OUTPUT', Hook.LOCAL_OUT, local, '', null, null)).toEqual([
      'IN= OUT= SRC=203.0.113.1 DST=203.0.113.2 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=5 PROTO=ICMP TYPE=0 CODE=0 ID=1 SEQ=2 ',
    ]);
  });
});

describe('MARK', () => {
  const markAfter = (option: string, start: number): number => {
    const { tables } = loaded(section('mangle', `-A FORWARD -j MARK ${option}`));
    const made = packet(udpPacket(CLIENT, { srcPort: 1, dstPort: 2 }));
    made.mark = start;
    runHook(tables, Hook.FORWARD, made);
    return made.mark;
  };

  it('sets, masks, ands, ors and xors as xt_MARK: mark = (mark & ~mask) ^ value', () => {
    expect(markAfter('--set-mark 5', 0xff00)).toBe(5);
    expect(markAfter('--set-mark 0x5/0xf', 0xff3a)).toBe(0xff35);
    expect(markAfter('--set-xmark 0x5/0xf', 0xff3a)).toBe(0xff35);
    expect(markAfter('--set-xmark 0x1/0x0', 0xff3a)).toBe(0xff3b);
    expect(markAfter('--and-mark 0xf0', 0xff3a)).toBe(0x30);
    expect(markAfter('--or-mark 0x80000001', 0xff3a)).toBe(0x8000ff3b);
    expect(markAfter('--xor-mark 0xff', 0xff3a)).toBe(0xffc5);
  });

  it('lets the packet go on to later rules, which see the new mark', () => {
    const { tables } = loaded(section('mangle', '-A FORWARD -j MARK --set-mark 7\n-A FORWARD -m mark --mark 7 -j MARK --or-mark 0x100'));
    const made = packet(udpPacket(CLIENT, { srcPort: 1, dstPort: 2 }));
    runHook(tables, Hook.FORWARD, made);
    expect(made.mark).toBe(0x107);
  });
});

describe('CT and NOTRACK', () => {
  const ftp = (): ReturnType<typeof packet> => packet(tcpPacket(CLIENT, { srcPort: 40000, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1 }), LAN, null);

  it('--helper gives the connection a helper template; the same frozen object for every packet', () => {
    const { tables } = loaded(section('raw', '-A PREROUTING -p tcp --dport 21 -j CT --helper ftp'));
    const first = ftp();
    const second = ftp();
    expect(runHook(tables, Hook.PRE_ROUTING, first)).toBe(Verdict.ACCEPT);
    runHook(tables, Hook.PRE_ROUTING, second);
    expect(first.ctTemplate).toEqual({ helper: 'ftp', notrack: false });
    expect(second.ctTemplate).toBe(first.ctTemplate);
    expect(Object.isFrozen(first.ctTemplate)).toBe(true);
    expect(first.ctinfo).toBe(0);
  });

  it('--notrack and NOTRACK leave the packet untracked at once, so later raw rules see UNTRACKED', () => {
    for (const target of ['CT --notrack', 'NOTRACK', 'CT --notrack --helper ftp']) {
      const { tables } = loaded(section('raw', `-A PREROUTING -p tcp -j ${target}\n-A PREROUTING -m conntrack --ctstate UNTRACKED -j MARK --set-mark 1`));
      const made = ftp();
      runHook(tables, Hook.PRE_ROUTING, made);
      expect(made.ctTemplate).toEqual({ helper: null, notrack: true });
      expect(made.ctinfo).toBe(CtInfo.UNTRACKED);
      expect(made.mark).toBe(1);
    }
  });

  it('the first CT wins; a packet that already has a connection is left alone', () => {
    const { tables } = loaded(section('raw', '-A OUTPUT -p tcp -j CT --helper ftp\n-A OUTPUT -j CT --notrack'));
    const made = ftp();
    runHook(tables, Hook.LOCAL_OUT, made);
    expect(made.ctTemplate).toEqual({ helper: 'ftp', notrack: false });
    expect(made.ctinfo).toBe(0);
    const tracked = ftp();
    tracked.conntrack = connection();
    tracked.ctinfo = CtInfo.ESTABLISHED;
    runHook(tables, Hook.LOCAL_OUT, tracked);
    expect(tracked.ctTemplate).toBeNull();
    expect(tracked.ctinfo).toBe(CtInfo.ESTABLISHED);
  });

  it('a bare -j CT sets an empty template', () => {
    const { tables } = loaded(section('raw', '-A PREROUTING -j CT'));
    const made = ftp();
    runHook(tables, Hook.PRE_ROUTING, made);
    expect(made.ctTemplate).toEqual({ helper: null, notrack: false });
  });
});
