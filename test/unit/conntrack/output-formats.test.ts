/**
 * `conntrack -L/-E -o extended,id,timestamp` as conntrack-tools prints them. The expected lines
 * are what conntrack v1.4.7 printed on this machine for the same flows through a kernel router
 * namespace (test/support/conntrack-site.ts); only the ids differ (the kernel's are random, so the
 * expected lines carry vrouter's), and the countdowns are those of the site's clock.
 */
import { describe, expect, it } from 'vitest';
import { conntrackSite } from '../../support/conntrack-site.ts';
import { eventTimestamp, formatConnection } from '../../../netfilter/conntrack/format.ts';
import type { ControlReply } from '../../../router/deploy/control-server.ts';
import { SUBSCRIBED } from '../../../router/deploy/conntrack-commands.ts';
import { udpPacket } from '../../support/packets.ts';

/** The kernel's `conntrack -L` lines for the site, by flow. */
const KERNEL_LIST = {
  A: 'udp      17 28 src=10.0.1.2 dst=203.0.113.2 sport=40003 dport=9999 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=9999 dport=40003 mark=0 use=1',
  B: 'udp      17 28 src=10.0.1.2 dst=203.0.113.2 sport=40002 dport=9001 src=203.0.113.2 dst=203.0.113.1 sport=9001 dport=40002 mark=5 use=1',
  C: 'udp      17 28 src=10.0.1.2 dst=10.0.1.1 sport=40001 dport=8080 src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40001 mark=0 use=1',
  D: 'icmp     1 28 src=10.0.1.2 dst=10.0.1.1 type=8 code=0 id=5803 src=10.0.1.1 dst=10.0.1.2 type=0 code=0 id=5803 mark=0 use=1',
  E: 'udp      17 28 src=10.0.1.2 dst=203.0.113.2 sport=40000 dport=9000 src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40000 mark=0 use=1',
  F: 'tcp      6 431998 ESTABLISHED src=10.0.1.2 dst=203.0.113.2 sport=41002 dport=5000 src=203.0.113.2 dst=203.0.113.1 sport=5000 dport=41002 [ASSURED] mark=0 use=1',
  G: 'icmp     1 28 src=10.0.1.2 dst=203.0.113.2 type=8 code=0 id=4827 src=203.0.113.2 dst=203.0.113.1 type=0 code=0 id=4827 mark=0 use=1',
};

describe('conntrack -L output types', () => {
  const site = conntrackSite();
  const entries = site.conntrack.list();
  const kernelLine = (entry: (typeof entries)[number]): string => KERNEL_LIST[site.nameOf(entry)];

  it('prints the default lines as the kernel\'s conntrack does', () => {
    for (const entry of entries) expect(formatConnection(entry, site.clock.ms)).toBe(kernelLine(entry));
  });

  it('-o extended puts the layer 3 protocol first: "ipv4     2 "', () => {
    for (const entry of entries) expect(formatConnection(entry, site.clock.ms, { extended: true })).toBe(`ipv4     2 ${kernelLine(entry)}`);
  });

  it('-o id ends the line with id=N, and -o extended,id (in either order) does both', () => {
    for (const entry of entries) {
      expect(formatConnection(entry, site.clock.ms, { id: true })).toBe(`${kernelLine(entry)} id=${entry.id}`);
      expect(formatConnection(entry, site.clock.ms, { extended: true, id: true })).toBe(`ipv4     2 ${kernelLine(entry)} id=${entry.id}`);
    }
  });

  it('-G counts the reference its lookup holds, as the kernel does (use=2)', () => {
    const [line] = site.call('conntrack-list', { filter: { protocol: 6 }, get: true, output: { id: true } }) as string[];
    const tcp = entries.find((entry) => site.nameOf(entry) === 'F')!;
    expect(line).toBe(`${KERNEL_LIST.F.replace('use=1', 'use=2')} id=${tcp.id}`);
  });
});

describe('conntrack -E output types', () => {
  /** A UDP exchange and its deletion by a client, as captured: -E on the kernel printed these. */
  const KERNEL_EVENTS = [
    '    [NEW] udp      17 30 src=10.0.1.2 dst=203.0.113.2 sport=40010 dport=9000 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40010',
    ' [UPDATE] udp      17 30 src=10.0.1.2 dst=203.0.113.2 sport=40010 dport=9000 src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40010',
    '[DESTROY] udp      17 29 src=10.0.1.2 dst=203.0.113.2 sport=40010 dport=9000 src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40010 [USERSPACE] portid=4170061974',
  ];

  function events(output: Record<string, boolean>, json = false): { results: unknown[]; id: number } {
    const site = conntrackSite();
    const results: unknown[] = [];
    const sink: ControlReply = {
      send: (result) => void results.push(result),
      fail: () => {},
      end: () => {},
      onClose: () => {},
      raw: () => {
        throw new Error('conntrack -E writes lines, never raw bytes');
      },
    };
    site.commands.commands.get('conntrack-events')!.handler({ output, json, filter: { origSrcPort: 40010 } }, sink);
    site.bench.receive(udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 40010, dstPort: 9000 }));
    site.bench.receive(udpPacket({ src: '203.0.113.2', dst: '203.0.113.1' }, { srcPort: 9000, dstPort: 40010 }));
    site.clock.ms += 1000;
    const id = site.conntrack.list().find((entry) => entry.tuples[0].srcPort === 40010)!.id;
    site.call('conntrack-delete', { filter: { origSrcPort: 40010 }, portid: 4170061974 });
    return { results, id };
  }

  it('says it is subscribed before the first event, then prints the kernel\'s lines', () => {
    const { results } = events({});
    expect(results).toEqual([SUBSCRIBED, ...KERNEL_EVENTS]);
  });

  it('-o extended and -o id: the layer 3 prefix after the event, id=N before [USERSPACE]', () => {
    const { results, id } = events({ extended: true, id: true });
    expect(results.slice(1)).toEqual([
      `    [NEW] ipv4     2 udp      17 30 src=10.0.1.2 dst=203.0.113.2 sport=40010 dport=9000 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40010 id=${id}`,
      ` [UPDATE] ipv4     2 udp      17 30 src=10.0.1.2 dst=203.0.113.2 sport=40010 dport=9000 src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40010 id=${id}`,
      `[DESTROY] ipv4     2 udp      17 29 src=10.0.1.2 dst=203.0.113.2 sport=40010 dport=9000 src=203.0.113.2 dst=203.0.113.1 sport=9000 dport=40010 id=${id} [USERSPACE] portid=4170061974`,
    ]);
  });

  it('-o json (vrouter\'s): one object an event, with the event and the requesting client', () => {
    const { results, id } = events({}, true);
    expect(results.slice(1).map((event) => {
      const { event: kind, id: entryId, timeout, status, portid } = event as Record<string, unknown>;
      return { kind, entryId, timeout, status, portid };
    })).toEqual([
      { kind: 'NEW', entryId: id, timeout: 30, status: ['CONFIRMED', 'SRC_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE'], portid: undefined },
      { kind: 'UPDATE', entryId: id, timeout: 30, status: ['SEEN_REPLY', 'CONFIRMED', 'SRC_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE'], portid: undefined },
      { kind: 'DESTROY', entryId: id, timeout: 29, status: ['SEEN_REPLY', 'CONFIRMED', 'SRC_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE', 'DYING'], portid: 4170061974 },
    ]);
  });
});

describe('-o timestamp', () => {
  it('stamps connection events with zero-padded microseconds and a tab, as conntrack 1.4.7 printed them', () => {
    // Captured: "[1796226657.663830]\t    [NEW] udp ..." and, for a small fraction, "[1796226768.020173]\t".
    expect(eventTimestamp(1796226657663830, 'conntrack')).toBe('[1796226657.663830]\t');
    expect(eventTimestamp(1796226768020173, 'conntrack')).toBe('[1796226768.020173]\t');
  });

  it('stamps expectations with the microseconds left-justified in six columns instead', () => {
    // Captured from `conntrack -L expect -o timestamp`: "[1796226798.12549 ]\t299 proto=6 ...".
    expect(eventTimestamp(1796226798012549, 'expect')).toBe('[1796226798.12549 ]\t');
    expect(eventTimestamp(1796226792410023, 'expect')).toBe('[1796226792.410023]\t');
  });
});
