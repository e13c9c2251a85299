/**
 * The control-socket commands behind `vrouter conntrack`, on a router built by buildRouter:
 * -D and -F on behalf of a client make DESTROY events that name it, as ctnetlink's do; -S prints
 * the kernel's statistics in conntrack-tools' format.
 */
import { describe, expect, it } from 'vitest';
import { CommandSet, type ControlReply } from '../../../router/deploy/command-registry.ts';
import { registerConntrackCommands } from '../../../router/deploy/conntrack-commands.ts';
import { checkArgs } from '../../../router/deploy/control-args.ts';
import { Status } from '../../../netfilter/conntrack/status.ts';
import { IcmpType } from '../../../router/wire/icmp.ts';
import { TcpFlag } from '../../../router/wire/tcp.ts';
import { icmpPacket, tcpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

function site(max?: number) {
  const clock = { ms: 1_000_000 };
  const router = new RouterBench(
    { interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')], conntrack: { always: true, ...(max ? { max } : {}) } },
    { now: () => clock.ms, helpers: [] },
  );
  const commands = new CommandSet();
  registerConntrackCommands(commands, router.netfilter.conntrack);
  // As the control server calls a command: with the arguments checked as it declares them.
  const call = (name: string, args: Record<string, unknown>, reply?: ControlReply): unknown => {
    const command = commands.commands.get(name)!;
    return command.handler(checkArgs(command.args, args, 'args'), reply!);
  };
  const events: unknown[] = [];
  const sink: ControlReply = {
    send: (line) => void events.push(line),
    fail: () => {},
    end: () => {},
    onClose: () => {},
    raw: () => {
      throw new Error('conntrack -E writes lines, never raw bytes');
    },
  };
  call('conntrack-events', {}, sink);
  const syn = (sport: number): void => void router.receive(tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: sport, dstPort: 80, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1000 }));
  return { call, events, syn, router };
}

describe('conntrack -D / -F over the control socket', () => {
  it('tags the DESTROY events with the requesting client\'s portid, and refuses a bad one', () => {
    const { call, events, syn } = site();
    syn(40000);
    syn(40001);
    expect(call('conntrack-delete', { filter: { origSrcPort: 40000 }, portid: 31337 })).toHaveLength(1);
    expect(() => call('conntrack-flush', { portid: -1 })).toThrow('args.portid: must be a whole number from 0 to 4294967295 (got -1)');
    expect(() => call('conntrack-delete', { portid: '7' })).toThrow('(got "7")');
    expect(call('conntrack-flush', { portid: 4242 })).toBe(1);
    expect(events.filter((line) => String(line).startsWith('[DESTROY]')).map((line) => / sport=(\d+) .*?( \[USERSPACE\] portid=\d+)?$/.exec(String(line))?.slice(1))).toEqual([
      ['40000', ' [USERSPACE] portid=31337'],
      ['40001', ' [USERSPACE] portid=4242'],
    ]);
  });
});

describe('conntrack -S over the control socket', () => {
  it('prints the kernel\'s counters as conntrack-tools does, with early_drop and drop counted', () => {
    const { call, syn, router } = site(2);
    syn(40000);
    syn(40001);
    // The table is full: the third connection early-drops one that is not ASSURED.
    syn(40002);
    for (const entry of router.netfilter.conntrack.list()) entry.status |= Status.ASSURED;
    // Nothing may go now: refused (drop).
    syn(40003);
    // An ICMP error quoting no connection: the kernel counts it under error, not invalid.
    const quoted = tcpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 45000, dstPort: 80, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1000 }).subarray(0, 28);
    router.receive(icmpPacket({ src: '203.0.113.2', dst: '10.0.1.2' }, { type: IcmpType.DEST_UNREACHABLE, code: 3, data: quoted }));
    expect(call('conntrack-stats', {})).toEqual([
      'cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=1 early_drop=1 error=1 search_restart=0 clash_resolve=0 chaintoolong=0 ',
    ]);
  });
});
