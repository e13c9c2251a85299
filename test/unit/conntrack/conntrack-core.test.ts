import { beforeEach, describe, expect, it } from 'vitest';
import { ConntrackCore } from '../../../netfilter/conntrack/conntrack-core.ts';
import { Expectation, ExpectationFlag } from '../../../netfilter/conntrack/expectation.ts';
import { ExpectResult } from '../../../netfilter/conntrack/expectation-table.ts';
import { formatConnection, formatConnectionEvent, formatExpectation } from '../../../netfilter/conntrack/format.ts';
import { CtInfo, Status } from '../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../netfilter/conntrack/tuple.ts';
import { HelperRegistry } from '../../../netfilter/helpers/helper-registry.ts';
import type { ConntrackHelper } from '../../../netfilter/helpers/helper.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import { Packet } from '../../../router/core/packet.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { icmpPacket, ip, tcpPacket, udpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

const CLIENT = '10.0.1.2';
const SERVER = '203.0.113.2';

function helperNamed(name: string, port: number, behaviour: ConntrackHelper['help'] = () => Verdict.ACCEPT, faultVerdict?: Verdict): ConntrackHelper {
  return { name, protocol: 6, ports: [port], policies: [{ name, maxExpected: 1, timeout: 300 }], help: behaviour, ...(faultVerdict === undefined ? {} : { faultVerdict }) };
}

interface Bench {
  router: RouterBench;
  core: ConntrackCore;
  clock: { ms: number };
  events: string[];
  helpers: HelperRegistry;
}

/**
 * A router built by buildRouter (lan0 10.0.1.1/24 with the client, wan0 203.0.113.1/24 with the
 * server) that tracks every connection and offers no built-in helper: the tests register their own.
 */
function bench(options: { max?: number; autoHelpers?: boolean } = {}): Bench {
  const clock = { ms: 1_000_000 };
  const router = new RouterBench(
    {
      interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')],
      conntrack: { always: true, buckets: 16, ...options },
    },
    { now: () => clock.ms, helpers: [] },
  );
  const core = router.netfilter.conntrack;
  const events: string[] = [];
  core.subscribe((event, entry) => events.push(`${event} ${formatConnection(entry, clock.ms)}`));
  return { router, core, clock, events, helpers: router.netfilter.helpers };
}

/**
 * A datagram through the router, the whole path in the real hook order (conntrack in, NAT,
 * helpers, confirm), which must forward it; the router's Packet for it comes back. With `confirm`
 * false only conntrack in runs (ConntrackCore.track, the component under test), which leaves a new
 * entry unconfirmed: for the tests of what happens between conntrack in and confirm.
 */
function pass(b: Bench, buf: Buffer, confirm = true): Packet {
  if (!confirm) {
    const packet = new Packet(buf, null);
    expect(b.core.track(packet, Hook.PRE_ROUTING)).toBe(Verdict.ACCEPT);
    return packet;
  }
  const { packet, sent, drops, forwarded } = b.router.receive(buf);
  expect([forwarded, sent.length, drops]).toEqual([true, 1, []]);
  return packet!;
}

const syn = (sport = 40000, seq = 1000): Buffer => tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: sport, dstPort: 80, seq, ack: 0, flags: TcpFlag.SYN, window: 65535 });
const synAck = (dport = 40000): Buffer => tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 80, dstPort: dport, seq: 5000, ack: 1001, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535 });
const ack = (sport = 40000): Buffer => tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: sport, dstPort: 80, seq: 1001, ack: 5001, flags: TcpFlag.ACK, window: 65535 });
const udp = (sport: number, dport: number, from = CLIENT, to = SERVER): Buffer => udpPacket({ src: from, dst: to }, { srcPort: sport, dstPort: dport, payload: Buffer.from('x') });

describe('conntrack core', () => {
  let b: Bench;
  beforeEach(() => {
    b = bench();
  });

  it('tracks a TCP handshake: NEW, then ESTABLISHED_REPLY, then ESTABLISHED, with both tuples in the table', () => {
    const first = pass(b, syn(), false);
    expect(first.ctinfo).toBe(CtInfo.NEW);
    expect(b.core.table.size).toBe(0);
    b.core.confirm(first);
    expect(b.core.table.size).toBe(1);
    const entry = first.conntrack!;
    expect(entry.confirmed).toBe(true);
    const reply = pass(b, synAck());
    expect([reply.conntrack, reply.ctinfo]).toEqual([entry, CtInfo.ESTABLISHED_REPLY]);
    expect(entry.status & Status.SEEN_REPLY).toBeTruthy();
    const third = pass(b, ack());
    expect([third.conntrack, third.ctinfo]).toEqual([entry, CtInfo.ESTABLISHED]);
    expect(formatConnection(entry, b.clock.ms)).toBe(
      'tcp      6 432000 ESTABLISHED src=10.0.1.2 dst=203.0.113.2 sport=40000 dport=80 src=203.0.113.2 dst=10.0.1.2 sport=80 dport=40000 [ASSURED] mark=0 use=1',
    );
    expect(b.events.map((e) => /^\w+ tcp +6 \d+ \w+/.exec(e)![0])).toEqual(['NEW tcp      6 120 SYN_SENT', 'UPDATE tcp      6 60 SYN_RECV', 'UPDATE tcp      6 432000 ESTABLISHED']);
  });

  it('keeps unconfirmed entries invisible: a second SYN before confirm makes its own entry', () => {
    const a = pass(b, syn(), false);
    const c = pass(b, syn(), false);
    expect(a.conntrack).not.toBe(c.conntrack);
    b.core.confirm(a);
    // The second one clashes on confirm and, being TCP, is dropped.
    expect(b.core.confirm(c)).toBe(Verdict.DROP);
    expect(b.core.table.size).toBe(1);
    expect([b.core.counters.insertFailed, b.core.counters.clashResolved]).toEqual([1, 0]);
  });

  it('merges a UDP clash on confirm instead of dropping', () => {
    const a = pass(b, udp(5000, 53), false);
    const c = pass(b, udp(5000, 53), false);
    b.core.confirm(a);
    expect(b.core.confirm(c)).toBe(Verdict.ACCEPT);
    expect(c.conntrack).toBe(a.conntrack);
    expect([b.core.counters.insertFailed, b.core.counters.clashResolved]).toEqual([0, 1]);
  });

  it('makes an ICMP error quoting a tracked datagram RELATED, and refuses one whose outer destination does not match', () => {
    const request = pass(b, udp(5000, 9999));
    const quote = request.buf.subarray(0, 28);
    const unreachable = pass(b, icmpPacket({ src: SERVER, dst: CLIENT }, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: quote }));
    expect([unreachable.conntrack, unreachable.ctinfo]).toEqual([request.conntrack, CtInfo.RELATED_REPLY]);
    const elsewhere = pass(b, icmpPacket({ src: SERVER, dst: '10.0.1.99' }, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: quote }));
    expect(elsewhere.conntrack).toBeNull();
    const unknown = pass(b, icmpPacket({ src: SERVER, dst: CLIENT }, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: udp(5001, 9999).subarray(0, 28) }));
    expect(unknown.conntrack).toBeNull();
  });

  it('attaches a packet the router makes (an ICMP error) to the connection it is about, even unconfirmed', () => {
    const first = pass(b, udp(5000, 9999), false);
    const routerError = new Packet(icmpPacket({ src: '10.0.1.1', dst: CLIENT }, { type: IcmpType.TIME_EXCEEDED, code: 0, data: first.buf.subarray(0, 28) }), null);
    b.core.attach(routerError, first);
    expect([routerError.conntrack, routerError.ctinfo]).toEqual([first.conntrack, CtInfo.RELATED_REPLY]);
    // Conntrack at LOCAL_OUT leaves an attached packet alone, and confirm does not insert the entry.
    expect(b.core.track(routerError, Hook.LOCAL_OUT)).toBe(Verdict.ACCEPT);
    expect(b.core.confirm(routerError)).toBe(Verdict.ACCEPT);
    expect([routerError.conntrack, routerError.ctinfo, b.core.list().length]).toEqual([first.conntrack, CtInfo.RELATED_REPLY, 0]);

    b.core.confirm(first);
    const reply = pass(b, udp(9999, 5000, SERVER, CLIENT));
    const aboutReply = new Packet(icmpPacket({ src: '10.0.1.1', dst: SERVER }, { type: IcmpType.TIME_EXCEEDED, code: 0, data: reply.buf.subarray(0, 28) }), null);
    b.core.attach(aboutReply, reply);
    expect([aboutReply.conntrack, aboutReply.ctinfo]).toEqual([first.conntrack, CtInfo.RELATED]);

    const untracked = new Packet(syn(), null);
    untracked.ctTemplate = { helper: null, notrack: true };
    b.core.track(untracked, Hook.PRE_ROUTING);
    const aboutUntracked = new Packet(Buffer.from(routerError.buf), null);
    b.core.attach(aboutUntracked, untracked);
    expect(aboutUntracked.conntrack).toBeNull();
  });

  it('reports each event as of when it happened, even if the clock moved before confirmation', () => {
    const lines: string[] = [];
    b.core.subscribe((event, entry, at, bits, portid) => lines.push(formatConnectionEvent(event, entry, at, bits, portid)));
    const first = pass(b, syn(), false);
    b.clock.ms += 4; // a jiffy passes between conntrack in and confirm (a GC pause, a slow hook)
    b.core.help(first);
    b.core.confirm(first);
    const reply = pass(b, synAck(), false);
    b.clock.ms += 4;
    b.core.confirm(reply);
    expect(lines.map((line) => /^\s*\[(\w+)\] tcp +6 (\d+) (\w+)/.exec(line)?.slice(1).join(' '))).toEqual(['NEW 120 SYN_SENT', 'UPDATE 60 SYN_RECV']);
    b.clock.ms += 1000;
    b.core.destroy(first.conntrack!);
    expect(lines[2]).toMatch(/^\[DESTROY\] tcp +6 /);
  });

  it('tracks ICMP echo by id and leaves other ICMP types untracked', () => {
    const echo = pass(b, icmpPacket({ src: CLIENT, dst: SERVER }, { type: IcmpType.ECHO_REQUEST, code: 0, rest: 0x12340001 }));
    const reply = pass(b, icmpPacket({ src: SERVER, dst: CLIENT }, { type: IcmpType.ECHO_REPLY, code: 0, rest: 0x12340001 }));
    expect([reply.conntrack, reply.ctinfo]).toEqual([echo.conntrack, CtInfo.ESTABLISHED_REPLY]);
    const stray = pass(b, icmpPacket({ src: SERVER, dst: CLIENT }, { type: IcmpType.ECHO_REPLY, code: 0, rest: 0x99990001 }));
    expect(stray.conntrack).toBeNull();
  });

  it('honours CT --notrack', () => {
    const packet = new Packet(syn(), null);
    packet.ctTemplate = { helper: null, notrack: true };
    b.core.track(packet, Hook.PRE_ROUTING);
    expect([packet.conntrack, packet.ctinfo]).toEqual([null, CtInfo.UNTRACKED]);
  });

  it('expires entries without a timer per entry: lookups skip them and the collector removes them', () => {
    const first = pass(b, udp(5000, 53));
    b.clock.ms += 31_000;
    const again = pass(b, udp(5000, 53));
    expect(again.conntrack).not.toBe(first.conntrack);
    expect(b.events.filter((e) => e.startsWith('DESTROY'))).toHaveLength(1);
    pass(b, udp(6000, 53));
    b.clock.ms += 31_000;
    for (let i = 0; i < 40; i++) b.core.collect();
    expect(b.core.table.size).toBe(0);
  });

  it('kills a connection at once when an RST answers its SYN', () => {
    pass(b, syn());
    pass(b, tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 80, dstPort: 40000, seq: 0, ack: 1001, flags: TcpFlag.RST | TcpFlag.ACK, window: 0 }));
    expect(b.core.table.size).toBe(0);
  });
});

describe('conntrack -E lines, as ctnetlink events print on the kernel', () => {
  let b: Bench;
  let lines: string[];
  beforeEach(() => {
    b = bench();
    lines = [];
    b.core.subscribe((event, entry, at, bits, portid) => lines.push(formatConnectionEvent(event, entry, at, bits, portid)));
  });
  const TUPLES = 'src=10.0.1.2 dst=203.0.113.2 sport=40000 dport=80 src=203.0.113.2 dst=10.0.1.2 sport=80 dport=40000';
  const UNREPLIED = 'src=10.0.1.2 dst=203.0.113.2 sport=40000 dport=80 [UNREPLIED] src=203.0.113.2 dst=10.0.1.2 sport=80 dport=40000';
  const rst = (): Buffer => tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 80, dstPort: 40000, seq: 0, ack: 1001, flags: TcpFlag.RST | TcpFlag.ACK, window: 0 });

  it('after an RST answering the SYN: only a DESTROY, with what was left of SYN_SENT\'s 120 s', () => {
    pass(b, syn());
    pass(b, rst());
    expect(lines).toEqual([`    [NEW] tcp      6 120 SYN_SENT ${UNREPLIED}`, `[DESTROY] tcp      6 120 CLOSE ${UNREPLIED}`]);
  });

  it('a DESTROY at expiry has no timeout (ctnetlink leaves a zero one out)', () => {
    pass(b, syn());
    pass(b, synAck());
    pass(b, ack());
    const reset = tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: 40000, dstPort: 80, seq: 1001, ack: 5001, flags: TcpFlag.RST, window: 0 });
    pass(b, reset);
    expect(lines.at(-1)).toBe(` [UPDATE] tcp      6 10 CLOSE ${TUPLES} [ASSURED]`);
    b.clock.ms += 10_000;
    for (let i = 0; i < 4; i++) b.core.collect();
    expect(lines.at(-1)).toBe(`[DESTROY] tcp      6 CLOSE ${TUPLES} [ASSURED]`);
  });

  it('an UPDATE that changes no TCP state prints none: a picked-up connection\'s answers', () => {
    pass(b, ack());
    pass(b, tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: 80, dstPort: 40000, seq: 5001, ack: 1001, flags: TcpFlag.ACK, window: 65535 }));
    pass(b, ack());
    expect(lines).toEqual([
      `    [NEW] tcp      6 300 ESTABLISHED ${UNREPLIED}`,
      ` [UPDATE] tcp      6 300 ${TUPLES}`,
      ` [UPDATE] tcp      6 432000 ${TUPLES} [ASSURED]`,
    ]);
  });

  it('a DESTROY a control client asked for names it, as conntrack-tools prints the netlink sender', () => {
    pass(b, syn());
    b.core.destroy(b.core.list()[0]!, 4242);
    pass(b, syn(40001));
    b.core.flush(4343);
    expect(lines.filter((line) => line.startsWith('[DESTROY]')).map((line) => line.replace(/ src=.*\[UNREPLIED\] src=\S+ dst=\S+ sport=\d+ dport=\d+/, ' ...'))).toEqual([
      '[DESTROY] tcp      6 120 SYN_SENT ... [USERSPACE] portid=4242',
      '[DESTROY] tcp      6 120 SYN_SENT ... [USERSPACE] portid=4343',
    ]);
  });

  it('early-drops a non-ASSURED entry when the table is full, and drops the packet when all are ASSURED', () => {
    const small = bench({ max: 2 });
    pass(small, udp(1, 53));
    pass(small, udp(2, 53));
    const third = new Packet(udp(3, 53), null);
    expect(small.core.track(third, Hook.PRE_ROUTING)).toBe(Verdict.ACCEPT);
    small.core.confirm(third);
    expect(small.core.table.size).toBe(2);
    expect(small.core.counters.earlyDropped).toBe(1);
    for (const entry of small.core.list()) entry.status |= Status.ASSURED;
    expect(small.core.track(new Packet(udp(4, 53), null), Hook.PRE_ROUTING)).toBe(Verdict.DROP);
    expect(small.core.counters.tableFull).toBe(1);
  });

  it('attaches a helper only when a rule asks for it, unless automatic assignment is on', () => {
    const ftp = helperNamed('ftp', 21);
    b.helpers.register(ftp);
    const plain = pass(b, tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: 40001, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }));
    expect(plain.conntrack!.helper).toBeNull();
    const packet = new Packet(tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: 40002, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }), null);
    packet.ctTemplate = { helper: 'ftp', notrack: false };
    b.core.track(packet, Hook.PRE_ROUTING);
    expect(packet.conntrack!.helper).toBe(ftp);
    expect(packet.conntrack!.status & Status.HELPER).toBeTruthy();
    const auto = bench({ autoHelpers: true });
    auto.helpers.register(ftp);
    expect(pass(auto, tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: 40003, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 })).conntrack!.helper).toBe(ftp);
  });

  it('contains a helper that throws: its fault verdict applies and the fault is counted', () => {
    const broken = helperNamed('broken', 21, () => {
      throw new Error('parser bug');
    });
    const strict = helperNamed('strict', 2121, () => {
      throw new Error('parser bug');
    }, Verdict.DROP);
    b.helpers.register(broken);
    b.helpers.register(strict);
    for (const [name, expected] of [['broken', Verdict.ACCEPT], ['strict', Verdict.DROP]] as const) {
      const packet = new Packet(syn(41000 + expected), null);
      packet.ctTemplate = { helper: name, notrack: false };
      b.core.track(packet, Hook.PRE_ROUTING);
      expect(b.core.help(packet)).toBe(expected);
    }
    expect(b.core.counters.helperFaults).toBe(2);
  });
});

describe('a full table under a flood', () => {
  /**
   * conntrack max 2000 in the default 65536 buckets (so 8 buckets hold almost nothing): 20
   * established connections, then SYNs and UDP from spoofed LAN sources that nobody answers, far
   * more than the table holds. New connections made after it must get through, as on the kernel.
   */
  function flooded() {
    const clock = { ms: 1_000_000 };
    const router = new RouterBench(
      { interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], conntrack: { always: true, max: 2000 } },
      { now: () => clock.ms, helpers: [] },
    );
    const core = router.netfilter.conntrack;
    const segment = (src: string, dst: string, sport: number, dport: number, seq: number, ack: number, flags: number): Buffer =>
      tcpPacket({ src, dst }, { srcPort: sport, dstPort: dport, seq, ack, flags, window: 65535 });
    /** SYN, SYN-ACK, ACK between CLIENT:sport and SERVER:80; true if all three got through. */
    const connect = (sport: number): boolean =>
      [
        segment(CLIENT, SERVER, sport, 80, 1000, 0, TcpFlag.SYN),
        segment(SERVER, CLIENT, 80, sport, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK),
        segment(CLIENT, SERVER, sport, 80, 1001, 5001, TcpFlag.ACK),
      ].every((buf) => router.receive(buf).forwarded);
    const established = Array.from({ length: 20 }, (_, i) => 30000 + i);
    expect(established.every(connect)).toBe(true);
    for (let i = 0; i < 6000; i++) {
      const source = `10.0.1.${10 + (i % 200)}`;
      const buf = i % 2 ? segment(source, SERVER, 1024 + i, 80, i, 0, TcpFlag.SYN) : udpPacket({ src: source, dst: SERVER }, { srcPort: 1024 + i, dstPort: 53, payload: Buffer.from('q') });
      router.receive(buf);
      if (i % 500 === 499) {
        clock.ms += 1000;
        core.collect();
      }
    }
    return { router, core, clock, connect, established };
  }

  it('lets 10 of 10 new connections through right after the flood: early drop walks on until it finds an entry', () => {
    const { core, connect } = flooded();
    expect(core.table.size).toBe(2000);
    const fresh = Array.from({ length: 10 }, (_, i) => 31000 + i);
    expect(fresh.filter(connect)).toHaveLength(10);
    expect(core.counters.earlyDropped).toBeGreaterThan(4000);
  });

  it('keeps the established connections: ASSURED entries are never dropped for room', () => {
    const { core, established } = flooded();
    const listed = core.list().filter((entry) => entry.status & Status.ASSURED);
    expect(listed.map((entry) => entry.tuples[0].srcPort).sort()).toEqual(established);
  });

  it('refuses a packet when everything in reach is ASSURED, and then the collector frees room down to 95%', () => {
    const { core, clock, connect } = flooded();
    // Every entry ASSURED (a table of established flows): nothing may be early-dropped.
    for (const entry of core.list()) entry.status |= Status.ASSURED;
    const refusedBefore = core.counters.tableFull;
    expect(connect(32000)).toBe(false);
    expect(core.counters.tableFull).toBe(refusedBefore + 1);
    // gc_worker's early drop: once an insert failed, its next pass evicts what is not ASSURED, or
    // ASSURED but closing (TCP FIN_WAIT and after), while the table is at 95% or more.
    let closing = 0;
    for (const entry of core.list()) {
      if (entry.tuples[0].protocol === 6 && !(entry.tuples[0].srcPort >= 30000 && entry.tuples[0].srcPort < 30020) && closing < 150) {
        entry.l4State = 4; // FIN_WAIT
        closing++;
      }
    }
    clock.ms += 50;
    for (let tick = 0; tick < 16; tick++) core.collect();
    expect(core.table.size).toBe(1899);
    expect(connect(32001)).toBe(true);
  });
});

describe('expectations', () => {
  let b: Bench;
  const ftp = helperNamed('ftp', 21);
  /** A confirmed control connection with the ftp helper. */
  function master(sport = 40000) {
    const packet = new Packet(tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: sport, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }), null);
    packet.ctTemplate = { helper: 'ftp', notrack: false };
    b.core.track(packet, Hook.PRE_ROUTING);
    b.core.confirm(packet);
    return packet.conntrack!;
  }
  /** Server to client, any source port, to the announced port (what a PORT command asks for). */
  function expectation(owner: ReturnType<typeof master>, port: number, flags = 0): Expectation {
    return new Expectation(owner, new Tuple(ip(SERVER), ip(CLIENT), 6, 0, port), { src: 0xffffffff, srcPort: 0 }, 0, ftp, flags);
  }
  const dataSyn = (port: number, sport = 20): Buffer => tcpPacket({ src: SERVER, dst: CLIENT }, { srcPort: sport, dstPort: port, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 });

  beforeEach(() => {
    b = bench();
    b.helpers.register(ftp);
  });

  it('turns the expected connection RELATED, links its master, and is used once', () => {
    const owner = master();
    expect(b.core.expectations.add(expectation(owner, 4675))).toBe(ExpectResult.OK);
    expect(formatExpectation(b.core.expectations.list()[0]!, b.clock.ms)).toBe(
      '300 proto=6 src=203.0.113.2 dst=10.0.1.2 sport=0 dport=4675 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.0.1.2 master-dst=203.0.113.2 sport=40000 dport=21 class=0 helper=ftp',
    );
    const child = pass(b, dataSyn(4675, 33333));
    expect(child.ctinfo).toBe(CtInfo.RELATED);
    expect(child.conntrack!.master).toBe(owner);
    expect(child.conntrack!.status & Status.EXPECTED).toBeTruthy();
    expect(child.conntrack!.helper).toBeNull();
    expect(b.core.expectations.size).toBe(0);
    expect(pass(b, dataSyn(4675, 33334)).ctinfo).toBe(CtInfo.NEW);
  });

  it('counts each related child in the table as a reference of its master, as use= shows (the kernel: the child holds one)', () => {
    const owner = master();
    const use = (): string | undefined => formatConnection(owner, b.clock.ms).match(/use=\d+/)?.[0];
    expect(use()).toBe('use=1');
    b.core.expectations.add(expectation(owner, 4675, ExpectationFlag.PERMANENT));
    const first = pass(b, dataSyn(4675, 33333)).conntrack!;
    pass(b, dataSyn(4675, 33334));
    expect(use()).toBe('use=3');
    b.core.destroy(first);
    expect(use()).toBe('use=2');
  });

  it('keeps a PERMANENT one, skips an INACTIVE or expired one, and ignores masters not yet confirmed', () => {
    const owner = master();
    b.core.expectations.add(expectation(owner, 5000, ExpectationFlag.PERMANENT));
    pass(b, dataSyn(5000, 1));
    expect(pass(b, dataSyn(5000, 2)).ctinfo).toBe(CtInfo.RELATED);
    const inactive = bench();
    inactive.helpers.register(ftp);
    b = inactive;
    const second = master(40001);
    b.core.expectations.add(expectation(second, 5001, ExpectationFlag.INACTIVE));
    expect(pass(b, dataSyn(5001)).ctinfo).toBe(CtInfo.NEW);
    const third = master(40002);
    b.core.expectations.add(expectation(third, 5002));
    b.clock.ms += 301_000;
    expect(pass(b, dataSyn(5002)).ctinfo).toBe(CtInfo.NEW);
  });

  it('applies the kernel checks: helper required, replace same, busy overlap, class limit evicts oldest, table limit', () => {
    const owner = master();
    const orphanPacket = pass(b, syn(45000));
    expect(b.core.expectations.add(expectation(orphanPacket.conntrack!, 6000))).toBe(ExpectResult.NO_HELPER);
    expect(b.core.expectations.add(expectation(owner, 6001))).toBe(ExpectResult.OK);
    expect(b.core.expectations.add(expectation(owner, 6001))).toBe(ExpectResult.OK);
    expect(b.core.expectations.size).toBe(1);
    // max_expected 1: a new PORT replaces the previous expectation of the same master.
    expect(b.core.expectations.add(expectation(owner, 6002))).toBe(ExpectResult.OK);
    expect(b.core.expectations.list().map((e) => e.tuple.dstPort)).toEqual([6002]);
    const other = master(40010);
    expect(b.core.expectations.add(expectation(other, 6002))).toBe(ExpectResult.BUSY);
    b.core.expectations.max = 1;
    expect(b.core.expectations.add(expectation(other, 6003))).toBe(ExpectResult.TABLE_FULL);
  });

  it('removes a master\'s expectations with it, and with a packet dropped before confirm', () => {
    const owner = master();
    b.core.expectations.add(expectation(owner, 7000));
    b.core.destroy(owner);
    expect(b.core.expectations.size).toBe(0);
    const packet = new Packet(tcpPacket({ src: CLIENT, dst: SERVER }, { srcPort: 40020, dstPort: 21, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 100 }), null);
    packet.ctTemplate = { helper: 'ftp', notrack: false };
    b.core.track(packet, Hook.PRE_ROUTING);
    b.core.expectations.add(expectation(packet.conntrack!, 7001));
    b.core.packetDropped(packet);
    expect(b.core.expectations.size).toBe(0);
  });
});
