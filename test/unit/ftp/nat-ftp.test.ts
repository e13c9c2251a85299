/**
 * The NAT half (nf_nat_ftp) and payload mangling (nf_nat_mangle_tcp_packet): rewrites that grow,
 * shrink or keep the length, later segments through sequence adjustment, the port search when the
 * announced port is taken, and every way it ends in a drop.
 */
import { describe, expect, it, vi } from 'vitest';
import { Conntrack } from '../../../netfilter/conntrack/conntrack-entry.ts';
import { ExpectResult } from '../../../netfilter/conntrack/expectation-table.ts';
import { Status, CtInfo } from '../../../netfilter/conntrack/status.ts';
import { genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { Tuple } from '../../../netfilter/conntrack/tuple.ts';
import { FtpType } from '../../../netfilter/helpers/ftp.ts';
import { Verdict } from '../../../router/core/hooks.ts';
import { formatFtpArgument } from '../../../nat/helpers/nat-ftp.ts';
import { mangleTcpPayload } from '../../../nat/tcp-mangle.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { Packet } from '../../../router/core/packet.ts';
import { computeIpv4HeaderChecksum, ipv4Checksum, ipv4Dst, ipv4Src, ipv4TotalLength } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpAck, tcpChecksumValid, tcpDstPort, tcpSeq } from '../../../router/wire/tcp.ts';
import { ip, tcpPacket } from '../../support/packets.ts';
import { ftpBench, type FtpBench } from './bench.ts';
import { CLIENT, SERVER, Session } from './session.ts';

const MASQUERADE = { snat: { inside: '10.0.1.0/24', to: '203.0.113.1' } };

function segment(payload: string, seq = 1000, from = '10.0.1.2', to = '203.0.113.2'): Packet {
  return new Packet(tcpPacket({ src: from, dst: to }, { srcPort: 40000, dstPort: 21, seq, ack: 1, flags: TcpFlag.ACK | TcpFlag.PSH, window: 100, payload: Buffer.from(payload, 'latin1') }), null);
}

function entry(): Conntrack {
  return new Conntrack(genericTracker, new Tuple(ip('10.0.1.2'), ip('203.0.113.2'), 6, 40000, 21), new Tuple(ip('203.0.113.2'), ip('203.0.113.1'), 6, 21, 40000));
}

function valid(buf: Buffer): boolean {
  return (
    ipv4TotalLength(buf, 0) === buf.length &&
    ipv4Checksum(buf, 0) === computeIpv4HeaderChecksum(buf, 0) &&
    tcpChecksumValid(buf, 20, buf.length - 20, ipv4Src(buf, 0), ipv4Dst(buf, 0))
  );
}

const payloadOf = (buf: Buffer): string => buf.subarray(40).toString('latin1');

describe('mangleTcpPayload', () => {
  it('grows a datagram into a new buffer, fixing lengths and checksums, and records the change', () => {
    const packet = segment('PORT 10,0,1,2,18,67\r\n');
    const before = packet.buf;
    const conn = entry();
    expect(mangleTcpPayload(packet, conn, CtInfo.ESTABLISHED, 5, 8, Buffer.from('203,0,113,1'))).toBe(true);
    expect(packet.buf).not.toBe(before);
    expect([payloadOf(packet.buf), packet.buf.length, valid(packet.buf)]).toEqual(['PORT 203,0,113,1,18,67\r\n', before.length + 3, true]);
    expect(conn.seqAdjust![0]).toEqual({ correctionPos: 1000, offsetBefore: 0, offsetAfter: 3 });
    expect(conn.status & Status.SEQ_ADJUST).toBeTruthy();
  });

  it('shrinks in place and records the change in the reply direction for a reply', () => {
    const packet = segment('227 Entering Passive Mode (192,168,100,200,18,67).\r\n', 0xfffffff0, '203.0.113.2', '10.0.1.2');
    const conn = entry();
    expect(mangleTcpPayload(packet, conn, CtInfo.ESTABLISHED_REPLY, 27, 15, Buffer.from('10,0,0,1'))).toBe(true);
    expect([payloadOf(packet.buf), valid(packet.buf)]).toEqual(['227 Entering Passive Mode (10,0,0,1,18,67).\r\n', true]);
    expect(conn.seqAdjust).toEqual([
      { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 },
      { correctionPos: 0xfffffff0, offsetBefore: 0, offsetAfter: -7 },
    ]);
  });

  it('rewrites in place without a sequence change when the length stays', () => {
    const packet = segment('PORT 10,0,1,2,18,67\r\n');
    const conn = entry();
    expect(mangleTcpPayload(packet, conn, CtInfo.ESTABLISHED, 5, 8, Buffer.from('10,9,9,9'))).toBe(true);
    expect([payloadOf(packet.buf), valid(packet.buf), conn.seqAdjust]).toEqual(['PORT 10,9,9,9,18,67\r\n', true, null]);
  });

  it('grows up to 65535 bytes but not past, and never replaces bytes outside the payload', () => {
    const big = segment('PORT 10,0,1,2,18,67\r\n'.padEnd(65533 - 40, '.'));
    expect(mangleTcpPayload(big, entry(), CtInfo.ESTABLISHED, 5, 8, Buffer.from('10,0,1,222'))).toBe(true);
    expect([big.buf.length, valid(big.buf)]).toEqual([65535, true]);
    const full = Buffer.from(big.buf);
    expect(mangleTcpPayload(big, entry(), CtInfo.ESTABLISHED, 5, 10, Buffer.from('203,0,113,1'))).toBe(false);
    expect(big.buf.equals(full)).toBe(true);
    const packet = segment('PORT 10,0,1,2,18,67\r\n');
    const untouched = Buffer.from(packet.buf);
    expect(mangleTcpPayload(packet, entry(), CtInfo.ESTABLISHED, 15, 7, Buffer.from('x'))).toBe(false);
    expect(packet.buf.equals(untouched)).toBe(true);
  });
});

describe('formatFtpArgument', () => {
  it('writes each argument as nf_nat_ftp does', () => {
    const address = ip('203.0.113.1');
    expect(formatFtpArgument(FtpType.PORT, address, 4675)).toBe('203,0,113,1,18,67');
    expect(formatFtpArgument(FtpType.PASV, address, 65535)).toBe('203,0,113,1,255,255');
    expect(formatFtpArgument(FtpType.EPRT, address, 4675)).toBe('|1|203.0.113.1|4675|');
    expect(formatFtpArgument(FtpType.EPSV, address, 50000)).toBe('|||50000|');
  });
});

/** A logged-in control connection from `client` through MASQUERADE. */
function natSession(b: FtpBench, client = '10.0.1.2', clientPort = 40000, isn: [number, number] = [999, 4999]): Session {
  return new Session(b, { client, clientPort, clientSeenAs: '203.0.113.1', isn }).login();
}

/** What left the router for a line from `from`. */
function out(s: Session, from: 0 | 1, text: string): { seq: number; ack: number; payload: string; valid: boolean } {
  const { verdict, out: buf } = s.line(from, text);
  expect(verdict).toBe(Verdict.ACCEPT);
  return { seq: tcpSeq(buf!, 20), ack: tcpAck(buf!, 20), payload: payloadOf(buf!), valid: valid(buf!) };
}

describe('FTP NAT half', () => {
  it('rewrites PORT to the public address, registers an expectation that follows the master, and adjusts later segments both ways', () => {
    const b = ftpBench(MASQUERADE);
    const s = natSession(b, '10.0.1.2', 40000, [0xffffffe0, 0x7ffffff0]);
    const c = s.next[CLIENT];
    const v = s.next[SERVER];
    expect(out(s, CLIENT, 'PORT 10,0,1,2,18,67\r\n')).toEqual({ seq: c, ack: v, payload: 'PORT 203,0,113,1,18,67\r\n', valid: true });
    const [expectation] = b.core.expectations.list();
    expect([formatIpv4Address(expectation!.tuple.src), formatIpv4Address(expectation!.tuple.dst), expectation!.tuple.dstPort]).toEqual(['203.0.113.2', '203.0.113.1', 4675]);
    expect([expectation!.savedPort, expectation!.natDirection, typeof expectation!.onMatch]).toEqual([4675, 1, 'function']);
    // The server acked 24 bytes; the client hears of 21. The client's next bytes move up by 3,
    // here across 2^32 (c + 21 wraps).
    expect(out(s, SERVER, '200 ok\r\n')).toEqual({ seq: v, ack: (c + 21) >>> 0, payload: '200 ok\r\n', valid: true });
    expect(out(s, CLIENT, 'RETR a\r\n')).toEqual({ seq: (c + 24) >>> 0, ack: v + 8, payload: 'RETR a\r\n', valid: true });
    expect(out(s, SERVER, '150 ok\r\n')).toEqual({ seq: v + 8, ack: (c + 29) >>> 0, payload: '150 ok\r\n', valid: true });
    expect(out(s, CLIENT, 'NOOP\r\n')).toEqual({ seq: (c + 32) >>> 0, ack: v + 16, payload: 'NOOP\r\n', valid: true });
    // The data connection to the public address and announced port reaches the client's own.
    const data = b.forward(tcpPacket({ src: '203.0.113.2', dst: '203.0.113.1' }, { srcPort: 20, dstPort: 4675, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }));
    expect([data.packet.ctinfo, data.via, formatIpv4Address(ipv4Dst(data.out!, 0)), tcpDstPort(data.out!, 20), valid(data.out!)]).toEqual([CtInfo.RELATED, 'lan0', '10.0.1.2', 4675, true]);
  });

  it('takes another port from [port, 65534] when the announced one is busy, and the data connection still reaches the announced one', () => {
    const b = ftpBench({ ...MASQUERADE, random: () => 0.5 });
    const one = natSession(b, '10.0.1.2', 40000);
    const two = natSession(b, '10.0.1.3', 40001);
    expect(out(one, CLIENT, 'PORT 10,0,1,2,18,67\r\n').payload).toBe('PORT 203,0,113,1,18,67\r\n');
    // The same server to the same public address and port: BUSY, so 4675 + floor(0.5 * (65535 - 4675)).
    expect(out(two, CLIENT, 'PORT 10,0,1,3,18,67\r\n').payload).toBe('PORT 203,0,113,1,137,33\r\n');
    expect(b.core.expectations.list().map((e) => [e.tuple.dstPort, e.savedPort])).toEqual([[4675, 4675], [35105, 4675]]);
    const data = b.forward(tcpPacket({ src: '203.0.113.2', dst: '203.0.113.1' }, { srcPort: 20, dstPort: 35105, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }));
    expect([data.via, formatIpv4Address(ipv4Dst(data.out!, 0)), tcpDstPort(data.out!, 20)]).toEqual(['lan0', '10.0.1.3', 4675]);
  });

  it('drops when no port can be had: 1 + 128 tries while BUSY, one try for another failure', () => {
    const b = ftpBench({ ...MASQUERADE, random: () => 0 });
    const one = natSession(b, '10.0.1.2', 40000);
    const two = natSession(b, '10.0.1.3', 40001);
    one.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    const add = vi.spyOn(b.core.expectations, 'add');
    // random() 0 draws the busy port every time.
    expect(two.line(CLIENT, 'PORT 10,0,1,3,18,67\r\n').verdict).toBe(Verdict.DROP);
    expect(add).toHaveBeenCalledTimes(129);
    expect(b.logLines.at(-1)).toBe('vrouter: nf_nat_ftp: dropping packet: all ports in use');
    // 65535 leaves no other port to try.
    one.line(SERVER, '200 ok\r\n');
    one.line(CLIENT, 'PORT 10,0,1,2,255,255\r\n');
    add.mockClear();
    expect(two.line(CLIENT, 'PORT 10,0,1,3,255,255\r\n').verdict).toBe(Verdict.DROP);
    expect(add).toHaveBeenCalledTimes(1);
    // A full table is not BUSY: no other port is tried.
    const three = natSession(b, '10.0.1.4', 40002);
    b.core.expectations.max = b.core.expectations.size;
    add.mockClear();
    expect(three.line(CLIENT, 'PORT 10,0,1,4,18,70\r\n').verdict).toBe(Verdict.DROP);
    expect(add).toHaveBeenCalledTimes(1);
    expect(b.core.expectations.list().map((e) => e.tuple.dstPort)).toEqual([65535]);
  });

  it('drops and withdraws the expectation when the rewrite cannot be made', () => {
    const b = ftpBench(MASQUERADE);
    const s = natSession(b);
    const add = vi.spyOn(b.core.expectations, 'add');
    // A 65534-byte datagram (not DF, so it passes the forward MTU check): the public address is
    // 3 bytes longer and would take it past 65535.
    expect(s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n'.padEnd(65535 - 40 - 1, '.')).verdict).toBe(Verdict.DROP);
    // Registered on the announced port first, then withdrawn.
    expect(add.mock.calls.map(([e]) => e.tuple.dstPort)).toEqual([4675]);
    expect(add.mock.results.map((r) => r.value)).toEqual([ExpectResult.OK]);
    expect(b.core.expectations.size).toBe(0);
    expect(b.logLines.at(-1)).toBe('vrouter: nf_nat_ftp: dropping packet: cannot mangle packet');
  });

  it('announced port 0: registered on 0, but read as "no port" and dropped, as the kernel does', () => {
    const b = ftpBench(MASQUERADE);
    const s = natSession(b);
    expect(s.line(CLIENT, 'PORT 10,0,1,2,0,0\r\n').verdict).toBe(Verdict.DROP);
    expect(b.core.expectations.list().map((e) => e.tuple.dstPort)).toEqual([0]);
  });

  it('without the NAT half, a NATed connection gets the expectation unchanged and the payload as sent', () => {
    const b = ftpBench({ ...MASQUERADE, withoutNatHelper: true });
    const s = natSession(b);
    expect(out(s, CLIENT, 'PORT 10,0,1,2,18,67\r\n').payload).toBe('PORT 10,0,1,2,18,67\r\n');
    expect(b.core.expectations.list().map((e) => [formatIpv4Address(e.tuple.dst), e.tuple.dstPort, e.onMatch])).toEqual([['203.0.113.1', 4675, null]]);
  });
});
