/**
 * The trace of seed 000 (an active FTP session captured on the server, 172.20.9.80): frame 13's
 * `PORT 172,20,9,84,18,67` makes an expectation for a connection from 172.20.9.80 to 172.20.9.84
 * port 4675, and frame 16, the server's data SYN from port 20, is that connection.
 *
 * Addresses, ports, sequence numbers (as the trace shows them) and lengths are the trace's. The
 * trace leaves out frames 5-11 (login): they are rebuilt with the byte counts its numbers imply
 * (client bytes 1-31, server bytes 38-94), because the helper reads a line only at a sequence number
 * that follows a '\n' it has seen.
 *
 * Both hosts are in 172.20.9.0/24; the router between them has them on two /30s: lan0
 * 172.20.9.85/30 (the client's side) and wan0 172.20.9.81/30 (the server's).
 */
import { describe, expect, it } from 'vitest';
import { formatExpectation } from '../../../netfilter/conntrack/format.ts';
import { CtInfo } from '../../../netfilter/conntrack/status.ts';
import { Verdict } from '../../../router/core/hooks.ts';
import { decrementIpv4Ttl } from '../../../router/wire/ipv4.ts';
import { TcpFlag, TcpOptionKind } from '../../../router/wire/tcp.ts';
import { tcpPacket } from '../../support/packets.ts';
import { ftpBench } from './bench.ts';

const CLIENT = '172.20.9.84';
const SERVER = '172.20.9.80';
const EPORTCOMM = 4666;

const fromClient = (seq: number, ack: number, text: string, flags = TcpFlag.ACK | TcpFlag.PSH): Buffer =>
  tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: EPORTCOMM, dstPort: 21, seq, ack, flags, window: 65535, payload: Buffer.from(text, 'latin1') });
const fromServer = (seq: number, ack: number, text: string): Buffer =>
  tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 21, dstPort: EPORTCOMM, seq, ack, flags: TcpFlag.ACK | TcpFlag.PSH, window: 5840, payload: Buffer.from(text, 'latin1') });

/** Frame 4 carries 37 bytes; the trace shows its text, one byte shorter with CRLF: a space stands in. */
const BANNER = "220 Welcome to Test's FTP service. \r\n";

/** Frame 13: 78 bytes on the wire, 64 of them IPv4. */
const frame13 = (): Buffer => fromClient(32, 95, 'PORT 172,20,9,84,18,67\r\n');

/** Frame 16: 74 bytes on the wire; MSS=1460 TSV=21742713 TSER=0 WS=5 as Linux lays them out. */
function frame16(): Buffer {
  const options = Uint8Array.from([
    TcpOptionKind.MSS, 4, 0x05, 0xb4,
    TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.TIMESTAMP, 10, 0x01, 0x4b, 0xc3, 0x79, 0, 0, 0, 0,
    TcpOptionKind.NOP, TcpOptionKind.WINDOW_SCALE, 3, 5,
  ]);
  return tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 20, dstPort: 4675, seq: 0, ack: 0, flags: TcpFlag.SYN, window: 5840, options });
}

describe('seed 000: the kernel FTP helper walk-through', () => {
  it('frame 13 expects 172.20.9.80 -> 172.20.9.84:4675, and frame 16 is that connection', () => {
    const b = ftpBench({ lan: '172.20.9.85/30', wan: '172.20.9.81/30' });
    const steps: [string, Buffer, number][] = [
      ['1 SYN', tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: EPORTCOMM, dstPort: 21, seq: 0, ack: 0, flags: TcpFlag.SYN, window: 65535 }), CtInfo.NEW],
      ['2 SYN-ACK', tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 21, dstPort: EPORTCOMM, seq: 0, ack: 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 5840 }), CtInfo.ESTABLISHED_REPLY],
      ['3 ACK', fromClient(1, 1, '', TcpFlag.ACK), CtInfo.ESTABLISHED],
      ['4 banner', fromServer(1, 1, BANNER), CtInfo.ESTABLISHED_REPLY],
      ['USER', fromClient(1, 38, 'USER testuser\r\n'), CtInfo.ESTABLISHED],
      ['331', fromServer(38, 16, '331 Please specify the password.\r\n'), CtInfo.ESTABLISHED_REPLY],
      ['PASS', fromClient(16, 72, 'PASS testpass1\r\n'), CtInfo.ESTABLISHED],
      ['230', fromServer(72, 32, '230 Login successful.\r\n'), CtInfo.ESTABLISHED_REPLY],
      ['12 ACK', fromClient(32, 95, '', TcpFlag.ACK), CtInfo.ESTABLISHED],
    ];
    // The rebuilt login fills exactly the sequence space the trace's numbers leave for it.
    expect([BANNER.length, 'USER testuser\r\n'.length + 'PASS testpass1\r\n'.length, '331 Please specify the password.\r\n'.length + '230 Login successful.\r\n'.length]).toEqual([37, 31, 57]);
    for (const [name, buf, ctinfo] of steps) {
      const { verdict, packet } = b.forward(buf);
      expect([name, verdict, packet.ctinfo]).toEqual([name, Verdict.ACCEPT, ctinfo]);
    }
    expect(b.core.expectations.size).toBe(0);

    const port = frame13();
    expect(port.length).toBe(78 - 14);
    const { verdict, packet, out, via } = b.forward(port);
    expect([verdict, via]).toEqual([Verdict.ACCEPT, 'wan0']);
    const control = packet.conntrack!;
    expect(b.core.expectations.list().map((e) => formatExpectation(e, b.clock.ms))).toEqual([
      '300 proto=6 src=172.20.9.80 dst=172.20.9.84 sport=0 dport=4675 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 ' +
        'master-src=172.20.9.84 master-dst=172.20.9.80 sport=4666 dport=21 class=0 helper=ftp',
    ]);
    // No NAT on this connection: the command leaves as it came, one hop older.
    const forwarded = frame13();
    decrementIpv4Ttl(forwarded, 0);
    expect(out!.equals(forwarded)).toBe(true);

    expect(b.forward(fromServer(95, 56, '200 PORT command successful. Consider using PASV.\r\n')).verdict).toBe(Verdict.ACCEPT);
    expect(b.forward(fromClient(56, 146, 'NLST\r\n')).verdict).toBe(Verdict.ACCEPT);

    const syn = frame16();
    expect(syn.length).toBe(74 - 14);
    const data = b.forward(syn);
    expect([data.verdict, data.via, data.packet.ctinfo]).toEqual([Verdict.ACCEPT, 'lan0', CtInfo.RELATED]);
    expect(data.packet.conntrack!.master).toBe(control);
    expect(data.packet.conntrack!.helper).toBeNull();
    // One-shot: the expectation is used up.
    expect(b.core.expectations.size).toBe(0);
  });
});
