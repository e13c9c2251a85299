/**
 * The tracking half (nf_conntrack_ftp): every pattern and every partial or invalid form with what
 * the kernel makes of it, line sync, the third-party check and max_expected 1. No NAT here: the
 * router only tracks, so expectations are registered by the helper itself.
 */
import { describe, expect, it } from 'vitest';
import { CtInfo } from '../../../netfilter/conntrack/status.ts';
import { FtpConnectionState, FtpType, createFtpHelpers, findFtpCommand, recordNewlineSeq } from '../../../netfilter/helpers/ftp.ts';
import { Verdict } from '../../../router/core/hooks.ts';
import { DropReason } from '../../../router/core/stats.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { ExpectationTable } from '../../../netfilter/conntrack/expectation-table.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { ip, tcpPacket } from '../../support/packets.ts';
import { ftpBench, type FtpBench } from './bench.ts';
import { CLIENT, SERVER, Session } from './session.ts';

const CLIENT_IP = '10.0.1.2';
const SERVER_IP = '203.0.113.2';

/** [payload, expected]: expected is 'none', 'partial', or [type, offset, length, address, port]. */
type Case = [string, 'none' | 'partial' | [FtpType, number, number, string, number]];

const CLIENT_CASES: Case[] = [
  ['PORT 10,0,1,2,18,67\r\n', [FtpType.PORT, 5, 14, '10.0.1.2', 4675]],
  ['port 10,0,1,2,18,67\r\n', [FtpType.PORT, 5, 14, '10.0.1.2', 4675]],
  // Only the four letters are the pattern; the numbers follow the first space.
  ['PORTX 10,0,1,2,18,67\r\n', [FtpType.PORT, 6, 14, '10.0.1.2', 4675]],
  // Empty numbers are zeros; numbers are not range-checked, and their bits run together.
  ['PORT ,,,,,\r\n', [FtpType.PORT, 5, 5, '0.0.0.0', 0]],
  ['PORT 300,0,1,2,18,67\r\n', [FtpType.PORT, 5, 15, '44.0.1.2', 4675]],
  ['PORT 10,0,1,2,256,22\r\n', [FtpType.PORT, 5, 15, '10.0.1.2', 22]],
  ['EPRT |1|10.0.1.2|4675|\r\n', [FtpType.EPRT, 5, 17, '10.0.1.2', 4675]],
  ['eprt !1!10.0.1.2!4675!\r\n', [FtpType.EPRT, 5, 17, '10.0.1.2', 4675]],
  // Strict prefixes of a pattern.
  ['P', 'partial'],
  ['po', 'partial'],
  ['PORT', 'partial'],
  ['E', 'partial'],
  ['EPRT', 'partial'],
  // No space after the pattern.
  ['PORT10,0,1,2,18,67\r\n', 'partial'],
  // Numbers that do not parse.
  ['PORT  10,0,1,2,18,67\r\n', 'partial'],
  ['PORT 10,0,1,2,18,67\n', 'partial'],
  ['PORT 10,0,1,2,18,67', 'partial'],
  ['PORT 10,0,1,2,18\r\n', 'partial'],
  ['PORT 10,0,1,2,18,67,1\r\n', 'partial'],
  ['PORT 10,0,1,2,18,67 \r\n', 'partial'],
  ['PORT 10,0,1,x,18,67\r\n', 'partial'],
  // EPRT: family, delimiters, address, port.
  ['EPRT |2|::1|4675|\r\n', 'partial'],
  ['EPRT |1|10.0.1.2|0|\r\n', 'partial'],
  ['EPRT |1|10.0.1.2|65536|\r\n', 'partial'],
  ['EPRT 1|1|10.0.1.2|4675|\r\n', 'partial'],
  ['EPRT  |1|10.0.1.2|4675|\r\n', 'partial'],
  ['EPRT |1!10.0.1.2|4675|\r\n', 'partial'],
  ['EPRT |1|10.0.1|4675|\r\n', 'partial'],
  ['EPRT |1|10.0.1.2|4675\r\n', 'partial'],
  ['EPRT |1|', 'partial'],
  // Not a pattern at the start of the segment.
  ['USER ftp\r\n', 'none'],
  ['PASV\r\n', 'none'],
  ['PA', 'none'],
  ['LPRT 4,4,10,0,1,2,2,18,67\r\n', 'none'],
  [' PORT 10,0,1,2,18,67\r\n', 'none'],
  ['NOOP\r\nPORT 10,0,1,2,18,67\r\n', 'none'],
  ['227 Entering Passive Mode (10,0,1,2,18,67).\r\n', 'none'],
];

const SERVER_CASES: Case[] = [
  ['227 Entering Passive Mode (203,0,113,2,195,80).\r\n', [FtpType.PASV, 27, 18, '203.0.113.2', 50000]],
  // RFC 1123: the numbers start at the first digit, parentheses or not; any non-number ends them.
  ['227 =203,0,113,2,195,80\r\n', [FtpType.PASV, 5, 18, '203.0.113.2', 50000]],
  ['227 Entering Passive Mode 203,0,113,2,195,80\r\n', [FtpType.PASV, 26, 18, '203.0.113.2', 50000]],
  // The address is not in a 229 reply: it is the sender's.
  ['229 Entering Extended Passive Mode (|||50000|)\r\n', [FtpType.EPSV, 36, 9, '203.0.113.2', 50000]],
  ['229 (!!!50000!)\r\n', [FtpType.EPSV, 5, 9, '203.0.113.2', 50000]],
  ['2', 'partial'],
  ['22', 'partial'],
  ['227', 'partial'],
  ['227 ', 'partial'],
  ['229', 'partial'],
  ['229 ', 'partial'],
  ['227 Entering Passive Mode.\r\n', 'partial'],
  ['227 Entering Passive Mode (203,0,113,2,195,80', 'partial'],
  ['227 Entering Passive Mode (203,0,113,2,195)\r\n', 'partial'],
  ['227 Entering Passive Mode (203,0,113,2,195,80,1)\r\n', 'partial'],
  ['229 Entering Extended Passive Mode |||50000|\r\n', 'partial'],
  ['229 Entering Extended Passive Mode (|||0|)\r\n', 'partial'],
  ['229 Entering Extended Passive Mode (||50000|)\r\n', 'partial'],
  ['229 Entering Extended Passive Mode (|||50000)\r\n', 'partial'],
  ['230 Login successful.\r\n', 'none'],
  // Multi-line replies (227-) are not read.
  ['227-Entering Passive Mode (203,0,113,2,195,80)\r\n', 'none'],
  ['PORT 203,0,113,2,195,80\r\n', 'none'],
];

function describeResult(payload: string, direction: 0 | 1, sender: string): Case[1] {
  const result = findFtpCommand(Buffer.from(payload, 'latin1'), direction, ip(sender));
  if (result.kind !== 'match') return result.kind;
  return [result.type, result.offset, result.length, formatIpv4Address(result.address), result.port];
}

describe('FTP command parsers (pure, over bytes)', () => {
  it.each(CLIENT_CASES)('client: %j -> %j', (payload, expected) => {
    expect(describeResult(payload, CLIENT, CLIENT_IP)).toEqual(expected);
  });

  it.each(SERVER_CASES)('server: %j -> %j', (payload, expected) => {
    expect(describeResult(payload, SERVER, SERVER_IP)).toEqual(expected);
  });

  it('remembers two sequence numbers after a newline, replacing the older only with a newer one, across 2^32', () => {
    const state = new FtpConnectionState();
    recordNewlineSeq(state, 0, 0xfffffff0);
    recordNewlineSeq(state, 0, 0xfffffff0);
    recordNewlineSeq(state, 0, 0x00000008);
    expect(state.seqAfterNewline[0]).toEqual([0xfffffff0, 0x00000008]);
    // Older than both: ignored.
    recordNewlineSeq(state, 0, 0xffffff00);
    expect(state.seqAfterNewline[0]).toEqual([0xfffffff0, 0x00000008]);
    // Newer: replaces the older one (0xfffffff0 is before 8 across the wrap).
    recordNewlineSeq(state, 0, 0x00000020);
    expect(state.seqAfterNewline[0]).toEqual([0x00000020, 0x00000008]);
    expect(state.seqAfterNewline[1]).toEqual([]);
  });
});

/** A data connection's SYN. */
function dataSyn(src: string, srcPort: number, dst: string, dstPort: number): Buffer {
  return tcpPacket({ src, dst }, { srcPort, dstPort, seq: 777, ack: 0, flags: TcpFlag.SYN, window: 65535 });
}

function expected(b: FtpBench): string[] {
  return b.core.expectations.list().map((e) => `${formatIpv4Address(e.tuple.src)} > ${formatIpv4Address(e.tuple.dst)}:${e.tuple.dstPort}`);
}

describe('FTP helper verdicts', () => {
  it.each(CLIENT_CASES.filter(([, result]) => result === 'partial'))('drops the partial client line %j (a helper-drop), and reads its retransmission', (payload) => {
    const b = ftpBench();
    const s = new Session(b).login();
    const at = s.next[CLIENT];
    expect(s.line(CLIENT, payload)).toMatchObject({ verdict: Verdict.DROP, dropReason: DropReason.HELPER_DROP });
    expect(b.core.expectations.size).toBe(0);
    expect(b.logLines.at(-1)).toMatch(/^vrouter: nf_ct_ftp: dropping packet: partial matching of `(PORT|EPRT)'$/);
    // The drop is not recorded for line sync: a line right after the dropped bytes is not read.
    if (payload.endsWith('\n')) {
      s.line(CLIENT, 'PORT 10,0,1,2,18,68\r\n', (at + payload.length) >>> 0);
      expect(b.core.expectations.size).toBe(0);
    }
    expect(s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n', at).verdict).toBe(Verdict.ACCEPT);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
  });

  it.each(SERVER_CASES.filter(([, result]) => result === 'partial'))('drops the partial server line %j', (payload) => {
    const b = ftpBench();
    const s = new Session(b).login();
    expect(s.line(SERVER, payload).verdict).toBe(Verdict.DROP);
    expect(b.core.expectations.size).toBe(0);
    expect(b.logLines.at(-1)).toMatch(/partial matching of `22[79] '$/);
  });

  it('expects the data connection each pattern announces, in the right direction', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    s.line(CLIENT, 'EPRT |1|10.0.1.2|4675|\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
    s.line(CLIENT, 'PASV\r\n');
    s.line(SERVER, '227 Entering Passive Mode (203,0,113,2,195,80).\r\n');
    // max_expected 1: the 227 replaced the EPRT's expectation.
    expect(expected(b)).toEqual(['10.0.1.2 > 203.0.113.2:50000']);
    s.line(SERVER, '229 Entering Extended Passive Mode (|||50001|)\r\n');
    expect(expected(b)).toEqual(['10.0.1.2 > 203.0.113.2:50001']);
    const expectation = b.core.expectations.list()[0]!;
    expect([expectation.mask, expectation.tuple.srcPort, expectation.tuple.protocol, expectation.helper.name]).toEqual([{ src: 0xffffffff, srcPort: 0 }, 0, 6, 'ftp']);
    // The data connection is RELATED to the control connection and gets no helper of its own.
    const data = b.forward(dataSyn('10.0.1.2', 41000, '203.0.113.2', 50001));
    expect([data.verdict, data.via, data.packet.ctinfo, data.packet.conntrack!.helper]).toEqual([Verdict.ACCEPT, 'wan0', CtInfo.RELATED, null]);
  });

  it('a new PORT replaces the previous expectation (max_expected 1)', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    s.line(SERVER, '200 ok\r\n');
    s.line(CLIENT, 'PORT 10,0,1,2,18,68\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4676']);
  });

  it('reads only ESTABLISHED and ESTABLISHED_REPLY segments', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    const partial = s.line(CLIENT, 'PO');
    expect(partial.verdict).toBe(Verdict.DROP);
    const [helper] = b.helpers;
    for (const ctinfo of [CtInfo.NEW, CtInfo.RELATED, CtInfo.RELATED_REPLY]) {
      expect(helper!.help(partial.packet, partial.packet.conntrack!, ctinfo, 20)).toBe(Verdict.ACCEPT);
    }
    expect(helper!.help(partial.packet, partial.packet.conntrack!, CtInfo.ESTABLISHED, 20)).toBe(Verdict.DROP);
  });
});

describe('FTP helper line sync', () => {
  it('never reads the first payload segment of a direction, but records where it ends', () => {
    const b = ftpBench();
    const s = new Session(b).open();
    // A partial command would be dropped if it were read.
    expect(s.line(CLIENT, 'PO').verdict).toBe(Verdict.ACCEPT);
    expect(s.line(CLIENT, 'RT 10,0,1,2,18,67\r\n').verdict).toBe(Verdict.ACCEPT);
    expect(b.core.expectations.size).toBe(0);
    s.line(SERVER, '227 Entering Passive Mode (203,0,113,2,195,80).\r\n');
    expect(b.core.expectations.size).toBe(0);
    // Both ended with '\n': the next line of each direction is read.
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
    s.line(SERVER, '227 Entering Passive Mode (203,0,113,2,195,80).\r\n');
    expect(expected(b)).toEqual(['10.0.1.2 > 203.0.113.2:50000']);
  });

  it('drops a command cut inside its numbers, and reads it whole when it is sent again', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    const at = s.next[CLIENT];
    expect(s.line(CLIENT, 'PORT 10,0,').verdict).toBe(Verdict.DROP);
    expect(s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n', at).verdict).toBe(Verdict.ACCEPT);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
  });

  it('reads a command cut just before its newline, and resumes after the newline segment', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    expect(s.line(CLIENT, 'PORT 10,0,1,2,18,67\r').verdict).toBe(Verdict.ACCEPT);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
    // Not at a line start: a partial here would otherwise be dropped.
    expect(s.line(CLIENT, '\nPO').verdict).toBe(Verdict.ACCEPT);
    expect(s.line(CLIENT, 'RT 10,0,1,2,18,68\r\n').verdict).toBe(Verdict.ACCEPT);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
    s.line(CLIENT, 'PORT 10,0,1,2,18,69\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4677']);
  });

  it('reads only the first of two commands in one segment', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\nPORT 10,0,1,2,18,68\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675']);
    s.line(CLIENT, 'PORT 10,0,1,2,18,69\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4677']);
  });

  it('keeps two line starts: retransmissions of recent lines are read, an older one is not', () => {
    const b = ftpBench();
    const s = new Session(b).login();
    const first = s.next[CLIENT];
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    s.line(SERVER, '200 ok\r\n');
    // Remembered: `first` and the start of the next line.
    s.line(CLIENT, 'PORT 10,0,1,2,18,70\r\n', first);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4678']);
    const second = s.next[CLIENT];
    s.line(CLIENT, 'PORT 10,0,1,2,18,68\r\n');
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4676']);
    // A third line start pushed out the oldest, `first`; `second` is still known.
    expect(s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n', first).verdict).toBe(Verdict.ACCEPT);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4676']);
    expect(s.line(CLIENT, 'PO', first).verdict).toBe(Verdict.ACCEPT);
    s.line(CLIENT, 'PORT 10,0,1,2,18,69\r\n', second);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4677']);
  });

  it('drops a command whose expectation cannot be registered, still recording where the line ends (as the kernel does)', () => {
    const b = ftpBench();
    const one = new Session(b, { clientPort: 40000 }).login();
    const two = new Session(b, { clientPort: 40001 }).login();
    one.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    // The same data connection from the same server: BUSY for the second master.
    const at = two.next[CLIENT];
    expect(two.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n').verdict).toBe(Verdict.DROP);
    expect(b.logLines.at(-1)).toBe('vrouter: nf_ct_ftp: dropping packet: cannot add expectation');
    // nf_conntrack_ftp.c help(): a failed registration goes on to update_nl_seq, only a partial
    // match skips it. So the line after the dropped one is read.
    two.line(CLIENT, 'PORT 10,0,1,2,18,68\r\n', (at + 21) >>> 0);
    expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4675', '203.0.113.2 > 10.0.1.2:4676']);
  });
});

describe('FTP helper third-party check', () => {
  it('accepts a command naming another address but expects nothing, unless loose', () => {
    for (const loose of [false, true]) {
      const b = ftpBench({ loose });
      const s = new Session(b).login();
      expect(s.line(CLIENT, 'PORT 10,0,1,99,18,67\r\n').verdict).toBe(Verdict.ACCEPT);
      expect(expected(b)).toEqual(loose ? ['203.0.113.2 > 10.0.1.99:4675'] : []);
      expect(s.line(SERVER, '227 Entering Passive Mode (198,51,100,7,195,80).\r\n').verdict).toBe(Verdict.ACCEPT);
      expect(expected(b)).toEqual(loose ? ['10.0.1.2 > 198.51.100.7:50000'] : []);
      // The line still counts for line sync.
      s.line(CLIENT, 'PORT 10,0,1,2,18,68\r\n');
      expect(expected(b)).toEqual(['203.0.113.2 > 10.0.1.2:4676']);
    }
  });
});

describe('FTP helper set', () => {
  it('makes one helper per port, named ftp or ftp-PORT, with max_expected 1 and 300 s', () => {
    const expectations = new ExpectationTable(() => 0);
    const helpers = createFtpHelpers({ ports: [21, 2121], expectations });
    expect(helpers.map((h) => [h.name, h.protocol, h.ports, h.policies])).toEqual([
      ['ftp', 6, [21], [{ name: 'ftp', maxExpected: 1, timeout: 300 }]],
      ['ftp-2121', 6, [2121], [{ name: 'ftp-2121', maxExpected: 1, timeout: 300 }]],
    ]);
    expect(createFtpHelpers({ expectations }).map((h) => h.name)).toEqual(['ftp']);
    expect(createFtpHelpers({ ports: [], expectations }).map((h) => h.name)).toEqual(['ftp']);
    expect(() => createFtpHelpers({ ports: [1, 2, 3, 4, 5, 6, 7, 8, 9], expectations })).toThrow(RangeError);
    expect(() => createFtpHelpers({ ports: [0], expectations })).toThrow(/bad port 0/);
    expect(() => createFtpHelpers({ ports: [21, 21], expectations })).toThrow(/twice/);
  });

  it('tracks a control connection on another port with its own helper', () => {
    const b = ftpBench({ ports: [2121] });
    const s = new Session(b, { serverPort: 2121 }).login();
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    expect(b.core.expectations.list().map((e) => e.helper.name)).toEqual(['ftp-2121']);
  });
});
