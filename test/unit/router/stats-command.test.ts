/**
 * `vrouter stats` shows what the modules inside netfilter dropped and counted, by name: a drop by
 * NAT or sequence adjustment under its own reason (not the catch-all `hook-drop`), and the PPTP
 * helper's two halves' counters. Packets go through routers built by buildRouter; the answer is
 * the stats command's, as the control socket would send it.
 */
import { describe, expect, it } from 'vitest';
import type { BuiltRouter } from '../../../router/stack/build-router.ts';
import { CommandSet, type ControlReply } from '../../../router/deploy/command-registry.ts';
import { registerRouterCommands } from '../../../router/deploy/router-commands.ts';
import { PptpMessageType as T } from '../../../netfilter/helpers/pptp-messages.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { IpProtocol } from '../../../router/wire/ipv4.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { icmpPacket, rawPacket, tcpPacket, udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';
import { ftpBench } from '../ftp/bench.ts';
import { CLIENT, SERVER, Session } from '../ftp/session.ts';
import { ControlSession, bench as pptpBench } from '../pptp/harness.ts';

interface Stats {
  drops: Record<string, number>;
  conntrack: Record<string, number>;
  helpers: Record<string, Record<string, number>>;
}

const NO_REPLY: ControlReply = { send() {}, fail() {}, end() {}, onClose() {}, raw() { throw new Error('stats streams nothing'); } };

function stats(built: BuiltRouter): Stats {
  const commands = new CommandSet();
  registerRouterCommands(commands, built, []);
  return commands.commands.get('stats')!.handler({}, NO_REPLY) as Stats;
}

describe('vrouter stats', () => {
  it('counts a connection NAT finds no free tuple for as nat-no-tuple', () => {
    // Two ports to map to: the third client towards the same server has none left.
    const bench = new RouterBench({
      interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
      rules: { text: '*nat\n-A POSTROUTING -o wan0 -p udp -j SNAT --to-source 203.0.113.1:5000-5001\nCOMMIT\n', origin: 'stats.rules', firstLine: 0 },
    });
    const sent = ['10.0.1.2', '10.0.1.3', '10.0.1.4'].map(
      (client) => bench.receive(udpPacket({ src: client, dst: '203.0.113.2' }, { srcPort: 40000, dstPort: 53, payload: Buffer.from('q') })).sent.length,
    );
    expect(sent).toEqual([1, 1, 0]);
    expect(stats(bench.built).drops).toEqual({ 'nat-no-tuple': 1 });
    bench.close();
  });

  it('counts an ICMP error whose quoted datagram is too short to translate back as nat-truncated', () => {
    const bench = new RouterBench({
      interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
      rules: { text: '*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n', origin: 'stats.rules', firstLine: 0 },
    });
    // GRE version 0 (a 4-byte header), masqueraded; the error quotes its IP header and 4 bytes.
    const { sent } = bench.receive(rawPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, IpProtocol.GRE, Uint8Array.of(0, 0, 0x08, 0x00, ...new Array<number>(20).fill(0x45))));
    const error = icmpPacket({ src: '203.0.113.2', dst: '203.0.113.1' }, { type: IcmpType.DEST_UNREACHABLE, code: 1, data: sent[0]!.buf.subarray(0, 24) });
    expect(bench.receive(error).sent).toEqual([]);
    expect(stats(bench.built).drops).toEqual({ 'nat-truncated': 1 });
    bench.close();
  });

  it('counts a segment sequence adjustment finds malformed as seqadj-malformed', () => {
    const b = ftpBench({ snat: { inside: '10.0.1.0/24', to: '203.0.113.1' } });
    const s = new Session(b, { clientSeenAs: '203.0.113.1' }).login();
    // 10,0,1,2 becomes 203,0,113,1: the PORT line grows, so the connection's sequence numbers move.
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    expect(s.line(SERVER, '200 ok\r\n').out).not.toBeNull();
    // A SACK option that claims 40 bytes in a 4-byte option space.
    const malformed = tcpPacket(
      { src: '203.0.113.2', dst: '203.0.113.1' },
      { srcPort: 21, dstPort: 40000, seq: s.next[SERVER], ack: s.acked[SERVER], flags: TcpFlag.ACK, window: 65535, options: Uint8Array.of(1, 1, 5, 40) },
    );
    const before = stats(b.bench.built).conntrack.dropped!;
    expect(b.forward(malformed).out).toBeNull();
    const after = stats(b.bench.built);
    expect(after.drops).toEqual({ 'seqadj-malformed': 1 });
    // As the kernel's nf_confirm, the drop also counts in conntrack's own `drop` statistic.
    expect(after.conntrack.dropped).toBe(before + 1);
    b.bench.close();
  });

  it("shows the PPTP helper's and the PPTP NAT's counters", () => {
    const b = pptpBench({ nat: true });
    const s = new ControlSession(b).handshake();
    s.pns(T.START_CONTROL_CONNECTION_REQUEST, { protocolVersion: 0x100 });
    s.pac(T.START_CONTROL_CONNECTION_REPLY, { protocolVersion: 0x100, resultCode: 1 });
    s.pns(T.OUTGOING_CALL_REQUEST, { callId: 1 });
    const { helpers } = stats(b.router.built);
    expect(helpers.pptp).toMatchObject({ messages: 3, invalid: 0, callsExpected: 0 });
    expect(helpers['pptp-nat']).toMatchObject({ rewrites: 1, bindFailed: 0 });
    b.router.close();
  });
});
