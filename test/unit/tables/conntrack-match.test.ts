import { describe, expect, it } from 'vitest';
import { CtInfo, Status } from '../../../netfilter/conntrack/status.ts';
import type { ConntrackHelper } from '../../../netfilter/helpers/helper.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { tcpPacket } from '../../support/packets.ts';
import { connection, loaded, packet, runHook, section } from './support.ts';

const segment = (): Packet => packet(tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 40000, dstPort: 20, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1 }));

/** A packet as conntrack leaves it: with an entry (status bits) and a ctinfo, or with none. */
function tracked(ctinfo: number, status: number | null): Packet {
  const made = segment();
  made.ctinfo = ctinfo;
  made.conntrack = status === null ? null : connection(status);
  return made;
}

const matches = (options: string, made: Packet): boolean => {
  const { tables } = loaded(section('filter', `-A FORWARD ${options} -j DROP`));
  return runHook(tables, Hook.FORWARD, made) === Verdict.DROP;
};

/** The state each ctstate name would match, found by asking the match one name at a time. */
function stateOf(made: Packet): string[] {
  return ['INVALID', 'NEW', 'ESTABLISHED', 'RELATED', 'UNTRACKED', 'SNAT', 'DNAT'].filter((name) => matches(`-m conntrack --ctstate ${name}`, made));
}

describe('-m conntrack --ctstate', () => {
  it.each([
    ['NEW', CtInfo.NEW, ['NEW']],
    ['ESTABLISHED', CtInfo.ESTABLISHED, ['ESTABLISHED']],
    ['ESTABLISHED_REPLY', CtInfo.ESTABLISHED_REPLY, ['ESTABLISHED']],
    ['RELATED', CtInfo.RELATED, ['RELATED']],
    ['RELATED_REPLY', CtInfo.RELATED_REPLY, ['RELATED']],
  ] as const)('a tracked packet with ctinfo %s is %j', (_name, ctinfo, expected) => {
    expect(stateOf(tracked(ctinfo, Status.CONFIRMED))).toEqual(expected);
  });

  it('no connection and ctinfo UNTRACKED is UNTRACKED; no connection otherwise is INVALID', () => {
    expect(stateOf(tracked(CtInfo.UNTRACKED, null))).toEqual(['UNTRACKED']);
    expect(stateOf(tracked(0, null))).toEqual(['INVALID']);
    expect(stateOf(tracked(CtInfo.NEW, null))).toEqual(['INVALID']);
  });

  it('adds SNAT and DNAT from the connection status bits', () => {
    expect(stateOf(tracked(CtInfo.ESTABLISHED_REPLY, Status.SRC_NAT))).toEqual(['ESTABLISHED', 'SNAT']);
    expect(stateOf(tracked(CtInfo.NEW, Status.DST_NAT | Status.SRC_NAT))).toEqual(['NEW', 'SNAT', 'DNAT']);
    expect(stateOf(tracked(CtInfo.NEW, Status.SRC_NAT_DONE | Status.DST_NAT_DONE))).toEqual(['NEW']);
  });

  it('matches any state in a list, and inverts', () => {
    expect(matches('-m conntrack --ctstate RELATED,ESTABLISHED', tracked(CtInfo.ESTABLISHED_REPLY, 0))).toBe(true);
    expect(matches('-m conntrack --ctstate RELATED,ESTABLISHED', tracked(CtInfo.NEW, 0))).toBe(false);
    expect(matches('-m conntrack ! --ctstate NEW', tracked(CtInfo.NEW, 0))).toBe(false);
    expect(matches('-m conntrack ! --ctstate NEW', tracked(0, null))).toBe(true);
  });
});

describe('-m conntrack --ctstatus', () => {
  it('matches when any listed status bit is set, and inverts', () => {
    const assured = tracked(CtInfo.ESTABLISHED, Status.ASSURED | Status.CONFIRMED | Status.SEEN_REPLY);
    expect(matches('-m conntrack --ctstatus ASSURED', assured)).toBe(true);
    expect(matches('-m conntrack --ctstatus EXPECTED', assured)).toBe(false);
    expect(matches('-m conntrack --ctstatus EXPECTED,SEEN_REPLY', assured)).toBe(true);
    expect(matches('-m conntrack ! --ctstatus EXPECTED', assured)).toBe(true);
    expect(matches('-m conntrack --ctstatus NONE', assured)).toBe(false);
    expect(matches('-m conntrack ! --ctstatus NONE', assured)).toBe(true);
  });

  it('never matches a packet without a connection, inverted or not, unless --ctstate decided', () => {
    expect(matches('-m conntrack --ctstatus ASSURED', tracked(0, null))).toBe(false);
    expect(matches('-m conntrack ! --ctstatus ASSURED', tracked(0, null))).toBe(false);
    expect(matches('-m conntrack --ctstate INVALID ! --ctstatus ASSURED', tracked(0, null))).toBe(true);
    expect(matches('-m conntrack --ctstate NEW --ctstatus ASSURED', tracked(CtInfo.NEW, 0))).toBe(false);
    expect(matches('-m conntrack --ctstate NEW --ctstatus CONFIRMED', tracked(CtInfo.NEW, Status.CONFIRMED))).toBe(true);
  });
});

describe('-m conntrack --ctdir', () => {
  it('matches the direction of the packet in its connection, _REPLY ctinfo values being REPLY', () => {
    for (const ctinfo of [CtInfo.NEW, CtInfo.ESTABLISHED, CtInfo.RELATED]) {
      expect(matches('-m conntrack --ctdir ORIGINAL', tracked(ctinfo, 0))).toBe(true);
      expect(matches('-m conntrack --ctdir REPLY', tracked(ctinfo, 0))).toBe(false);
    }
    for (const ctinfo of [CtInfo.ESTABLISHED_REPLY, CtInfo.RELATED_REPLY]) {
      expect(matches('-m conntrack --ctdir ORIGINAL', tracked(ctinfo, 0))).toBe(false);
      expect(matches('-m conntrack --ctdir reply', tracked(ctinfo, 0))).toBe(true);
    }
  });

  it('never matches a packet without a connection unless --ctstate decided', () => {
    expect(matches('-m conntrack --ctdir ORIGINAL', tracked(0, null))).toBe(false);
    expect(matches('-m conntrack --ctdir REPLY', tracked(CtInfo.UNTRACKED, null))).toBe(false);
    expect(matches('-m conntrack --ctstate INVALID --ctdir REPLY', tracked(0, null))).toBe(true);
    expect(matches('-m conntrack --ctstate RELATED --ctdir REPLY', tracked(CtInfo.RELATED, 0))).toBe(false);
  });
});

describe('-m state --state', () => {
  it('matches the same states as --ctstate, with inversion', () => {
    expect(matches('-m state --state ESTABLISHED', tracked(CtInfo.ESTABLISHED_REPLY, 0))).toBe(true);
    expect(matches('-m state --state NEW', tracked(CtInfo.RELATED, 0))).toBe(false);
    expect(matches('-m state --state INVALID', tracked(0, null))).toBe(true);
    expect(matches('-m state --state UNTRACKED', tracked(CtInfo.UNTRACKED, null))).toBe(true);
    expect(matches('-m state ! --state NEW,ESTABLISHED', tracked(CtInfo.RELATED_REPLY, 0))).toBe(true);
  });
});

describe('-m helper --helper', () => {
  const ftpHelper = { name: 'ftp' } as ConntrackHelper;

  function withMaster(masterHelper: ConntrackHelper | null): Packet {
    const made = tracked(CtInfo.RELATED, Status.EXPECTED);
    const master = connection(Status.CONFIRMED);
    master.helper = masterHelper;
    made.conntrack!.master = master;
    return made;
  }

  it("matches a connection whose master has the helper (xt_helper), not the helped connection itself", () => {
    expect(matches('-m helper --helper ftp', withMaster(ftpHelper))).toBe(true);
    const control = tracked(CtInfo.ESTABLISHED, Status.CONFIRMED);
    control.conntrack!.helper = ftpHelper;
    expect(matches('-m helper --helper ftp', control)).toBe(false);
    expect(matches('-m helper --helper ftp', withMaster(null))).toBe(false);
    expect(matches('-m helper --helper tftp', withMaster(ftpHelper))).toBe(false);
  });

  it("compares the helper name's length of the rule's name, as the kernel's strncmp does", () => {
    expect(matches('-m helper --helper ftp-21', withMaster(ftpHelper))).toBe(true);
    expect(matches('-m helper --helper ft', withMaster(ftpHelper))).toBe(false);
    expect(matches('-m helper --helper ""', withMaster(ftpHelper))).toBe(true);
  });

  it('inverted: matches what has no such master, including packets without a connection', () => {
    expect(matches('-m helper ! --helper ftp', withMaster(ftpHelper))).toBe(false);
    expect(matches('-m helper ! --helper ftp', tracked(0, null))).toBe(true);
    expect(matches('-m helper ! --helper ftp', withMaster(null))).toBe(true);
  });
});
