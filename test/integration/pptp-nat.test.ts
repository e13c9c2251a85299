/**
 * PPTP through NAT end to end, through vrouter and through the kernel with the same namespaces,
 * interface names and rules (one MASQUERADE on wan0, the pptp helper attached by
 * `-t raw -A PREROUTING -p tcp --dport 1723 -j CT --helper pptp`), with the project's PPTP peers:
 * two PNSs, pns0 on lan0 (10.0.1.2) and pns1 on lan1 (10.0.2.2), and one PAC on wan0 (203.0.113.2).
 * Every case runs on both routers at once and the outcomes are compared:
 *   1. both clients with the same call id at the same time: every GRE packet arrives both ways;
 *   2. the same with both clients bound to the same TCP source port;
 *   3. a second round of calls with the server's GRE first: vrouter carries it; the kernel refuses
 *      round 2's expectations (the PNS -> PAC expectation round 1 left behind is "busy");
 *   4. without the helper rule the GRE replies never reach the clients;
 *   5. `conntrack -L expect` and `-E expect` lines, shape for shape;
 *   6. the GRE connection's timeouts in its `conntrack -E` lines (30 s unreplied, 180 s assured).
 *
 * The PAC test peer cannot tell two calls apart when they share its call id and the NAT's public
 * address (GRE version 1 carries only the receiver's call id): it files every packet under the
 * first matching call, so what the PAC received is counted over all its calls, and its own exit
 * code is not a verdict here. The clients' side is exact. Each case starts from empty conntrack
 * tables and uses its own call ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNS_ADDRESSES, PUBLIC_ADDRESS, PptpSite, pptpRules, type PeerLine, type PeerRun, type RouterKind, type SessionRuns } from '../support/pptp-site.ts';

const KINDS: RouterKind[] = ['vrouter', 'kernel'];
const sites = {} as Record<RouterKind, PptpSite>;

beforeAll(async () => {
  const started = await Promise.allSettled(KINDS.map((kind) => PptpSite.start(kind, kind === 'vrouter' ? 'pv' : 'pk', pptpRules(true))));
  started.forEach((result, i) => {
    if (result.status === 'fulfilled') sites[KINDS[i]!] = result.value;
  });
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
});

afterAll(async () => {
  await Promise.all(KINDS.map((kind) => sites[kind]?.stop()));
});

/** Runs `run` on both routers at once, each from empty tables. */
async function onBoth<T>(run: (site: PptpSite) => Promise<T>): Promise<Record<RouterKind, T>> {
  const [vrouter, kernel] = await Promise.all(
    KINDS.map(async (kind) => {
      await sites[kind].flush();
      return run(sites[kind]);
    }),
  );
  return { vrouter: vrouter!, kernel: kernel! };
}

interface CallSummary {
  call: number;
  ownCallId: number;
  peerCallId: number;
  greSent: number;
  greReceived: number;
  receivedCallIds: number[];
}

const summaryCalls = (run: PeerRun): CallSummary[] => (run.lines.find((line) => line.event === 'summary')?.calls as CallSummary[] | undefined) ?? [];

/** A client's calls: what it received, from which of the PAC's calls, and who sent GRE first. */
function clientCalls(run: PeerRun): { round: number; ownCallId: number; peerCallId: number; greSent: number; greReceived: number; receivedCallIds: number[]; pacCalls: string[]; firstGre: string }[] {
  return summaryCalls(run).map((call) => {
    const gre = run.lines.filter((line) => line.call === call.call && (line.event === 'gre-recv' || line.event === 'gre-sent'));
    const received = gre.filter((line) => line.event === 'gre-recv');
    const up = run.lines.find((line) => line.event === 'call-up' && line.call === call.call);
    return {
      round: Number(up?.round),
      ownCallId: call.ownCallId,
      peerCallId: call.peerCallId,
      greSent: call.greSent,
      greReceived: call.greReceived,
      receivedCallIds: call.receivedCallIds,
      // The PAC names its call in every payload (pac:callN:seqM).
      pacCalls: [...new Set(received.map((line) => /^pac:(call\d+):/.exec(String(line.payload))?.[1] ?? String(line.payload)))],
      firstGre: gre[0] ? (gre[0].event === 'gre-recv' ? 'from the PAC' : 'own') : 'none',
    };
  });
}

/** What the PAC saw: per control connection the PNS call id of the OCRQ and the connection's source port, and all GRE received. */
function pacView(run: PeerRun): { ocrq: { callId: number; port: number }[]; received: PeerLine[] } {
  const ports = new Map(run.lines.filter((line) => line.event === 'connected').map((line) => [line.connection, Number(line.peerPort)]));
  return {
    ocrq: run.lines.filter((line) => line.event === 'recv' && line.msg === 'OCRQ').map((line) => ({ callId: Number(line.callId), port: ports.get(line.connection) ?? -1 })),
    received: run.lines.filter((line) => line.event === 'gre-recv'),
  };
}

/** How the PAC was told the PNS call ids: translated to the control connection's public TCP port (as the kernel does), left as the client's, or else. */
function pnsIdsSeenByPac(run: PeerRun, clientCallId: number): { ids: string[]; distinct: number } {
  const { ocrq } = pacView(run);
  return {
    ids: ocrq.map(({ callId, port }) => (callId === port ? 'the public TCP port' : callId === clientCallId ? 'the client own id' : `other: ${callId} (port ${port})`)),
    distinct: new Set(ocrq.map((o) => o.callId)).size,
  };
}

function pacReceived(run: PeerRun): { count: number; callIds: number[]; from: string[]; seqs: number[] } {
  const { received } = pacView(run);
  return {
    count: received.length,
    callIds: [...new Set(received.map((line) => Number(line.callId)))],
    from: [...new Set(received.map((line) => String(line.from)))],
    seqs: received.map((line) => Number(line.seq)).sort((a, b) => a - b),
  };
}

/** Cases 1 and 2: both clients in one call each with the same id. */
function sameIdOutcome(runs: SessionRuns, clientCallId: number) {
  const calls = runs.clients.map(clientCalls);
  return {
    clients: runs.clients.map((run, k) => ({
      exit: run.code,
      calls: calls[k]!.map(({ ownCallId, peerCallId, greSent, greReceived, receivedCallIds, pacCalls }) => ({ ownCallId, peerCallId, greSent, greReceived, receivedCallIds, pacCalls: pacCalls.length })),
    })),
    // Each client got the GRE of its own call at the PAC, not the other's (or both).
    clientsOnDifferentPacCalls: new Set(calls.map((c) => c[0]?.pacCalls.join())).size === 2,
    pacSawPnsCallIds: pnsIdsSeenByPac(runs.pac, clientCallId),
    pacReceived: pacReceived(runs.pac),
  };
}

const record = (what: string, outcome: unknown): void => console.info(`${what}: ${JSON.stringify(outcome)}`);

/**
 * In cases 1 and 2 the PAC sends the first GRE packet of a call and each client answers once it has
 * it. If both ends started at once, a kernel router could take the two first packets on two CPUs
 * and drop one of them (one such loss was seen once, under load); that says nothing about call ids.
 * It is the PAC that goes first because the test PAC cannot tell apart two calls with its same id
 * from the same public address, so it could not wait for each client separately.
 */
const PAC_GRE_FIRST = ['--gre-first', 'pac'];
const CLIENT_WAITS_FOR_PAC_GRE = ['--gre-first', 'pac', '--gre-wait', '10000'];

describe('PPTP through MASQUERADE with the pptp helper, vrouter and kernel', () => {
  it('carries two simultaneous calls with the same client call id, every GRE packet both ways', async () => {
    const greCount = 4;
    const runs = await onBoth((site) =>
      site.session(['--connections', '2', '--call-id', '513', '--gre-count', String(greCount), ...PAC_GRE_FIRST], [
        ['--call-id', '7', '--gre-count', String(greCount), ...CLIENT_WAITS_FOR_PAC_GRE],
        ['--call-id', '7', '--gre-count', String(greCount), ...CLIENT_WAITS_FOR_PAC_GRE],
      ]),
    );
    const outcome = { vrouter: sameIdOutcome(runs.vrouter, 7), kernel: sameIdOutcome(runs.kernel, 7) };
    record('case 1 (same call id)', outcome);
    const expected = {
      clients: [0, 1].map(() => ({ exit: 0, calls: [{ ownCallId: 7, peerCallId: 513, greSent: greCount, greReceived: greCount, receivedCallIds: [7], pacCalls: 1 }] })),
      clientsOnDifferentPacCalls: true,
      pacSawPnsCallIds: { ids: ['the public TCP port', 'the public TCP port'], distinct: 2 },
      pacReceived: { count: 2 * greCount, callIds: [513], from: [PUBLIC_ADDRESS], seqs: [0, 0, 1, 1, 2, 2, 3, 3] },
    };
    expect(outcome).toEqual({ vrouter: expected, kernel: expected });
  });

  it('does the same with both clients bound to the same TCP source port', async () => {
    const sport = 41723;
    const runs = await onBoth((site) =>
      site.session(['--connections', '2', '--call-id', '514', ...PAC_GRE_FIRST], [
        ['--call-id', '8', '--sport', String(sport), ...CLIENT_WAITS_FOR_PAC_GRE],
        ['--call-id', '8', '--sport', String(sport), ...CLIENT_WAITS_FOR_PAC_GRE],
      ]),
    );
    const outcomeOf = (r: SessionRuns) => ({
      ...sameIdOutcome(r, 8),
      clientPorts: r.clients.map((run) => String(run.lines.find((line) => line.event === 'connected')?.local).split(':')[1]),
      // One connection keeps the port, the NAT moves the other: the PNS ids differ because the ports do.
      publicPorts: pacView(r.pac)
        .ocrq.map(({ port }) => (port === sport ? 'kept' : 'remapped'))
        .sort(),
    });
    const outcome = { vrouter: outcomeOf(runs.vrouter), kernel: outcomeOf(runs.kernel) };
    record('case 2 (same call id, same source port)', outcome);
    const expected = {
      clients: [0, 1].map(() => ({ exit: 0, calls: [{ ownCallId: 8, peerCallId: 514, greSent: 3, greReceived: 3, receivedCallIds: [8], pacCalls: 1 }] })),
      clientsOnDifferentPacCalls: true,
      pacSawPnsCallIds: { ids: ['the public TCP port', 'the public TCP port'], distinct: 2 },
      pacReceived: { count: 6, callIds: [514], from: [PUBLIC_ADDRESS], seqs: [0, 0, 1, 1, 2, 2] },
      clientPorts: [String(sport), String(sport)],
      publicPorts: ['kept', 'remapped'],
    };
    expect(outcome).toEqual({ vrouter: expected, kernel: expected });
  });

  it('carries a second round of calls with the server sending GRE first (the kernel refuses it)', async () => {
    const clientArgs = ['--call-id', '9', '--rounds', '2', '--gre-first', 'pac', '--gre-wait', '1000', '--call-timeout', '2000'];
    const runs = await onBoth(async (site) => {
      const events = await site.watchExpectations();
      const result = await site.session(['--connections', '4', '--call-id', '515', '--gre-first', 'pac'], [clientArgs, clientArgs]);
      return { ...result, events: await events.stop(), leftover: await site.expectations() };
    });
    const outcomeOf = (r: (typeof runs)['vrouter']) => {
      // Which round each control connection (by the client's TCP source port) belongs to.
      const roundOfPort = new Map<number, number>();
      for (const run of r.clients) for (const line of run.lines) if (line.event === 'connected') roundOfPort.set(Number(String(line.local).split(':')[1]), Number(line.round));
      const roundOf = (line: string): string => `round ${roundOfPort.get(Number(/master-dst=\S+ sport=(\d+)/.exec(line)?.[1])) ?? '?'}`;
      const newExpectations: Record<string, number> = { 'round 0': 0, 'round 1': 0 };
      for (const line of r.events.filter((l) => l.includes('[NEW]'))) newExpectations[roundOf(line)] = (newExpectations[roundOf(line)] ?? 0) + 1;
      return {
        clients: r.clients.map((run) => ({
          exit: run.code,
          calls: clientCalls(run).map(({ round, greReceived, receivedCallIds, firstGre }) => ({ round, greReceived, receivedCallIds, firstGre })),
        })),
        newExpectations,
        // What is still expected once every session is over, and which round's connection it was for.
        leftover: r.leftover.map((line) => `${/src=(\S+) dst=(\S+)/.exec(line)?.slice(1).join(' -> ')} for ${roundOf(line)}`).sort(),
      };
    };
    const outcome = { vrouter: outcomeOf(runs.vrouter), kernel: outcomeOf(runs.kernel) };
    record('case 3 (second round, server GRE first)', outcome);
    const round = (n: number, ok: boolean) =>
      ok ? { round: n, greReceived: 3, receivedCallIds: [9], firstGre: 'from the PAC' } : { round: n, greReceived: 0, receivedCallIds: [], firstGre: 'own' };
    expect(outcome.vrouter).toEqual({
      clients: [0, 1].map(() => ({ exit: 0, calls: [round(0, true), round(1, true)] })),
      newExpectations: { 'round 0': 4, 'round 1': 4 },
      leftover: [],
    });
    // The kernel (as documented in netfilter/helpers/pptp.ts): round 1 works but leaves each
    // client's PNS -> PAC expectation behind; round 2's pair is refused, so the PAC's GRE of round 2
    // is never related to the call and no client gets any (it then sends its own, unanswered).
    expect(outcome.kernel).toEqual({
      clients: [0, 1].map(() => ({ exit: 1, calls: [round(0, true), round(1, false)] })),
      newExpectations: { 'round 0': 4, 'round 1': 0 },
      leftover: PNS_ADDRESSES.map((address) => `${address} -> 203.0.113.2 for round 0`),
    });
  });

  it('without the helper rule, the GRE replies do not reach the clients', async () => {
    const noHelper = pptpRules(false);
    await Promise.all(KINDS.map((kind) => sites[kind].loadRules(noHelper)));
    try {
      const clientArgs = ['--call-id', '10', '--call-timeout', '1500'];
      const runs = await onBoth(async (site) => {
        const events = await site.watchExpectations();
        const result = await site.session(['--connections', '2', '--call-id', '516'], [clientArgs, clientArgs]);
        return { ...result, events: await events.stop(), connections: await site.connections() };
      });
      const outcomeOf = (r: (typeof runs)['vrouter']) => ({
        clients: r.clients.map((run) => ({ exit: run.code, calls: clientCalls(run).map(({ greSent, greReceived }) => ({ greSent, greReceived })) })),
        // No helper: the PAC is told the clients' own ids, and nothing is expected.
        pacSawPnsCallIds: pnsIdsSeenByPac(r.pac, 10),
        expectationEvents: r.events.length,
        controlConnectionsWithHelper: r.connections.filter((line) => line.includes('dport=1723 ') && line.includes('helper=')).length,
        // The client -> PAC direction still passes the NAT: it is the replies that are lost.
        pacReceivedSome: pacReceived(r.pac).count > 0,
      });
      const outcome = { vrouter: outcomeOf(runs.vrouter), kernel: outcomeOf(runs.kernel) };
      record('case 4 (no helper rule)', { ...outcome, pacReceived: { vrouter: pacReceived(runs.vrouter.pac), kernel: pacReceived(runs.kernel.pac) } });
      const expected = {
        clients: [0, 1].map(() => ({ exit: 1, calls: [{ greSent: 3, greReceived: 0 }] })),
        pacSawPnsCallIds: { ids: ['the client own id', 'the client own id'], distinct: 1 },
        expectationEvents: 0,
        controlConnectionsWithHelper: 0,
        pacReceivedSome: true,
      };
      expect(outcome).toEqual({ vrouter: expected, kernel: expected });
    } finally {
      await Promise.all(KINDS.map((kind) => sites[kind].loadRules(pptpRules(true))));
    }
  });

  it('lists and reports the GRE expectations as conntrack -L expect / -E expect do on the kernel', async () => {
    // Both sides hold back their GRE (the clients 1.5 s, the PAC until the client's first packet,
    // with a limit far beyond that): the expectations stay in place long enough to be listed, and the
    // client's GRE comes first, so on both routers its match also removes the sibling. (Server-first,
    // the kernel leaves the PNS -> PAC expectation behind: see netfilter/helpers/pptp.ts.) The PAC
    // gives each control connection its own call id (517, 518), so that it can tell which of its
    // calls a client's GRE belongs to, and wait for each client separately.
    const clientArgs = ['--call-id', '11', '--gre-first', 'pac', '--gre-wait', '1500'];
    const runs = await onBoth(async (site) => {
      const events = await site.watchExpectations();
      let listed: string[] = [];
      const pacArgs = ['--connections', '2', '--call-id', '517', '--connection-call-id-step', '1', '--gre-first', 'pns', '--gre-wait', '10000'];
      const result = await site.session(pacArgs, [clientArgs, clientArgs], async (_pac, clients) => {
        await Promise.all(clients.map((client) => client.waitFor((line) => line.event === 'call-up')));
        listed = await site.expectations();
      });
      return { ...result, listed, events: await events.stop() };
    });
    for (const kind of KINDS) {
      for (const run of runs[kind].clients) {
        expect(summaryCalls(run).map((call) => call.greReceived), `${kind}: GRE received by a client`).toEqual([3]);
        expect(clientCalls(run).map((call) => call.firstGre), `${kind}: the client's GRE went first`).toEqual(['own']);
      }
    }

    const esc = (text: string): string => text.replaceAll('.', '\\.');
    const MASKS = 'mask-src=255\\.255\\.255\\.255 mask-dst=255\\.255\\.255\\.255 srckey=0xffff dstkey=0xffff';
    const line = (address: string) => ({
      toPac: new RegExp(`^\\d+ proto=47 src=${esc(address)} dst=203\\.0\\.113\\.2 srckey=0xb dstkey=(0x20[56]) ${MASKS} master-src=${esc(address)} master-dst=203\\.0\\.113\\.2 sport=\\d+ dport=1723 class=0 helper=pptp$`),
      toPns: new RegExp(`^\\d+ proto=47 src=203\\.0\\.113\\.2 dst=203\\.0\\.113\\.1 srckey=(0x20[56]) dstkey=0x[0-9a-f]+ ${MASKS} master-src=${esc(address)} master-dst=203\\.0\\.113\\.2 sport=\\d+ dport=1723 class=0 helper=pptp$`),
    });
    const listed = runs.vrouter.listed;
    expect(listed).toHaveLength(4);
    const pacIds = PNS_ADDRESSES.map((address) => {
      const toPac = listed.filter((l) => line(address).toPac.test(l));
      const toPns = listed.filter((l) => line(address).toPns.test(l));
      expect(toPac, `PNS -> PAC expectation of ${address}`).toHaveLength(1);
      expect(toPns, `PAC -> PNS expectation of ${address}`).toHaveLength(1);
      // Both directions of one call carry that call's PAC id.
      const pacId = line(address).toPac.exec(toPac[0]!)![1];
      expect(line(address).toPns.exec(toPns[0]!)![1], `PAC id of both expectations of ${address}`).toBe(pacId);
      return pacId;
    });
    expect(pacIds.sort()).toEqual(['0x205', '0x206']);
    // The PAC -> PNS keys are the ids the PAC was told (the translated ones), on both routers.
    for (const kind of KINDS) {
      const keys = runs[kind].listed.filter((l) => l.includes(` dst=${PUBLIC_ADDRESS} `)).map((l) => Number.parseInt(/ dstkey=0x([0-9a-f]+) mask/.exec(l)?.[1] ?? '', 16));
      expect(keys.sort((a, b) => a - b), `${kind}: PAC -> PNS keys`).toEqual(pacView(runs[kind].pac).ocrq.map((o) => o.callId).sort((a, b) => a - b));
    }
    // -E expect: a NEW for each and a DESTROY for each (the matched one and its sibling).
    expect(runs.vrouter.events.filter((l) => /^ {4}\[NEW\] \d+ proto=47 /.test(l))).toHaveLength(4);
    expect(runs.vrouter.events.filter((l) => /^\[DESTROY\] \d+ proto=47 /.test(l))).toHaveLength(4);

    // Shape for shape with the kernel: timeouts, TCP ports, the translated keys and which client got
    // which PAC id blanked.
    const shape = (l: string): string =>
      l
        .replace(/^(\s*(?:\[\w+\] )?)\d+ proto=/, '$1T proto=')
        .replace(/(master-dst=\S+ sport=)\d+/, '$1P')
        .replace(new RegExp(`(dst=${esc(PUBLIC_ADDRESS)} srckey=0x[0-9a-f]+ dstkey=)0x[0-9a-f]+`), '$1K')
        .replace(/(srckey=0xb dstkey=|dst=203\.0\.113\.1 srckey=)0x20[56] /, '$1C ');
    const shapes = (lines: string[]): string[] => lines.map(shape).sort();
    record('case 5 (conntrack -L expect mid-call)', { vrouter: runs.vrouter.listed, kernel: runs.kernel.listed });
    record('case 5 (conntrack -E expect lines)', { vrouter: runs.vrouter.events.length, kernel: runs.kernel.events.length });
    expect(shapes(runs.vrouter.listed)).toEqual(shapes(runs.kernel.listed));
    expect(shapes(runs.vrouter.events)).toEqual(shapes(runs.kernel.events));
  });

  it('gives a call\'s GRE connection the GRE timeouts, 30 s unreplied and 180 s assured, as the kernel', async () => {
    // The PAC's GRE first and the client's only once it has it: one connection, created by the PAC.
    const runs = await onBoth(async (site) => {
      const events = await site.watchEvents('conntrack');
      const result = await site.session(['--connections', '1', '--call-id', '519', ...PAC_GRE_FIRST], [['--call-id', '12', ...CLIENT_WAITS_FOR_PAC_GRE]]);
      return { ...result, events: await events.stop() };
    });
    // Event, timeout and ASSURED of each GRE line; a DESTROY's timeout depends on when the call ended.
    const greEvents = (lines: string[]): string[] =>
      lines
        .filter((l) => / gre +47 /.test(l))
        .map((l) => `${/\[(\w+)\]/.exec(l)![1]} ${l.includes('[DESTROY]') ? 'T' : /gre +47 (\d+) /.exec(l)?.[1]}${l.includes('[ASSURED]') ? ' ASSURED' : ''}`);
    const outcome = { vrouter: greEvents(runs.vrouter.events), kernel: greEvents(runs.kernel.events) };
    record('case 6 (GRE timeouts in conntrack -E)', outcome);
    for (const kind of KINDS) expect(summaryCalls(runs[kind].clients[0]!).map((call) => call.greReceived), `${kind}: GRE received`).toEqual([3]);
    const expected = ['NEW 30', 'UPDATE 30', 'UPDATE 180 ASSURED', 'DESTROY T ASSURED'];
    expect(outcome).toEqual({ vrouter: expected, kernel: expected });
  });
});
