/**
 * The project's PPTP test peers talking directly between two namespaces joined by a veth pair (no
 * router): the control protocol over TCP 1723 and enhanced GRE through raw sockets both ways, with
 * the call ids each side announced. This is what the router tests build on, so the peers must be
 * shown to work on their own first. Traffic stays between the two namespaces made here.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;
const PAC = `${ROOT}scripts/pptp-peers/pac-server.ts`;
const PNS = `${ROOT}scripts/pptp-peers/pns-client.ts`;
const PNS_ADDRESS = '10.77.0.1';
const PAC_ADDRESS = '10.77.0.2';

const topology = new Topology(uniqueTag('pp'), ['pns', 'pac']);

beforeAll(() => {
  const veth = topology.tag;
  execFileSync('ip', ['link', 'add', `${veth}n`, 'netns', topology.ns('pns'), 'type', 'veth', 'peer', 'name', `${veth}p`, 'netns', topology.ns('pac')]);
  for (const [role, device, address] of [
    ['pns', `${veth}n`, PNS_ADDRESS],
    ['pac', `${veth}p`, PAC_ADDRESS],
  ] as const) {
    execFileSync('ip', ['-n', topology.ns(role), 'addr', 'add', `${address}/24`, 'dev', device]);
    execFileSync('ip', ['-n', topology.ns(role), 'link', 'set', device, 'up']);
  }
});

afterAll(() => topology.destroy());

interface Line {
  role: string;
  event: string;
  [field: string]: unknown;
}

interface Run {
  code: number | null;
  lines: Line[];
  stderr: string;
}

/** Starts a peer in its namespace; `started` resolves once `readyEvent` was printed. */
function startPeer(role: 'pns' | 'pac', args: string[], readyEvent?: string): { done: Promise<Run>; started: Promise<void> } {
  const child = topology.spawn(role, TSX, [role === 'pac' ? PAC : PNS, ...args]);
  const lines: Line[] = [];
  let stderr = '';
  let buffered = '';
  let ready: () => void = () => {};
  const started = new Promise<void>((resolve) => (ready = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!text.trim()) continue;
      const line = JSON.parse(text) as Line;
      lines.push(line);
      if (line.event === readyEvent) ready();
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.once('exit', (code) => resolve({ code, lines, stderr })));
  if (!readyEvent) ready();
  void done.then(() => ready());
  return { done, started };
}

/** Runs a PAC and a PNS against each other with the same shared options. */
async function session(pacArgs: string[], pnsArgs: string[]): Promise<{ pac: Run; pns: Run }> {
  const pac = startPeer('pac', ['--listen', PAC_ADDRESS, '--timeout', '20000', ...pacArgs], 'listening');
  await pac.started;
  const pns = startPeer('pns', ['--server', PAC_ADDRESS, '--timeout', '20000', ...pnsArgs]);
  const [pacRun, pnsRun] = await Promise.all([pac.done, pns.done]);
  return { pac: pacRun, pns: pnsRun };
}

const summaryOf = (run: Run): { ok: boolean; calls: { ownCallId: number; peerCallId: number; greSent: number; greReceived: number; receivedCallIds: number[] }[] } =>
  run.lines.find((line) => line.event === 'summary') as never;

const received = (run: Run): Line[] => run.lines.filter((line) => line.event === 'gre-recv');

describe('PPTP test peers between two namespaces', () => {
  it('open an outgoing call and exchange GRE both ways with the announced call ids', async () => {
    const { pac, pns } = await session(['--call-id', '700', '--gre-count', '4'], ['--call-id', '9', '--gre-count', '4']);
    expect(pns.code, pns.stderr).toBe(0);
    expect(pac.code, pac.stderr).toBe(0);
    // The control messages in order, as the client saw them.
    const control = pns.lines.filter((line) => line.event === 'sent' || line.event === 'recv').map((line) => `${line.event} ${String(line.msg)}`);
    expect(control).toEqual(['sent SCCRQ', 'recv SCCRP', 'sent EchoRQ', 'recv EchoRP', 'sent OCRQ', 'recv OCRP', 'sent SLI', 'sent CCRQ', 'recv CDN', 'sent StopCCRQ', 'recv StopCCRP']);
    expect(pac.lines.find((line) => line.msg === 'OCRQ' && line.event === 'recv')?.callId).toBe(9);
    expect(pns.lines.find((line) => line.msg === 'OCRP')).toMatchObject({ callId: 700, peerCallId: 9, resultCode: 1 });
    // GRE: what the PAC receives carries the PAC's id, what the PNS receives carries its own.
    expect(received(pac).map((line) => [line.from, line.callId, line.seq])).toEqual([0, 1, 2, 3].map((seq) => [PNS_ADDRESS, 700, seq]));
    expect(received(pns).map((line) => [line.from, line.callId, line.seq])).toEqual([0, 1, 2, 3].map((seq) => [PAC_ADDRESS, 9, seq]));
    expect(received(pns)[0]!.payload).toBe('pac:call0:seq0');
    expect(summaryOf(pns).calls).toEqual([{ call: 0, ownCallId: 9, peerCallId: 700, greSent: 4, greReceived: 4, receivedCallIds: [9], ok: true }]);
    expect(summaryOf(pac).ok).toBe(true);
  });

  for (const first of ['pac', 'pns'] as const) {
    it(`run several rounds of several calls from one bound source port, the ${first} sending GRE first`, async () => {
      const { pac, pns } = await session(['--connections', '2', '--gre-first', first], ['--rounds', '2', '--calls', '2', '--sport', '41723', '--gre-first', first]);
      expect(pns.code, pns.stderr).toBe(0);
      expect(pac.code, pac.stderr).toBe(0);
      const connected = pns.lines.filter((line) => line.event === 'connected').map((line) => line.local);
      expect(connected).toEqual([`${PNS_ADDRESS}:41723`, `${PNS_ADDRESS}:41723`]);
      expect(summaryOf(pns).calls.map((call) => [call.ownCallId, call.peerCallId, call.greReceived, call.receivedCallIds])).toEqual(Array(4).fill([1, 512, 3, [1]]));
      // Whoever goes second waits for the other's first packet: the first packet of every call is the first side's.
      const firstSeen = (run: Run, call: number): Line | undefined => run.lines.find((line) => line.call === call && (line.event === 'gre-sent' || line.event === 'gre-recv'));
      const starter = first === 'pac' ? pns : pac;
      for (let call = 0; call < 4; call++) expect(firstSeen(starter, call)?.event).toBe('gre-recv');
      expect(pns.lines.some((line) => line.event === 'gre-wait-timeout') || pac.lines.some((line) => line.event === 'gre-wait-timeout')).toBe(false);
    });
  }

  it('place incoming calls (ICRQ, ICRP, ICCN) with a new PAC call id each time', async () => {
    const { pac, pns } = await session(['--incoming', '--calls', '2', '--call-id', '300', '--call-id-step', '1'], ['--incoming', '--calls', '2', '--call-id', '42']);
    expect(pns.code, pns.stderr).toBe(0);
    expect(pac.code, pac.stderr).toBe(0);
    expect(pns.lines.filter((line) => line.msg === 'ICCN').map((line) => line.peerCallId)).toEqual([42, 42]);
    expect(summaryOf(pns).calls.map((call) => [call.ownCallId, call.peerCallId, call.greReceived])).toEqual([
      [42, 300, 3],
      [42, 301, 3],
    ]);
    expect(summaryOf(pac).calls.map((call) => [call.ownCallId, call.receivedCallIds])).toEqual([
      [300, [300]],
      [301, [301]],
    ]);
  });

  it('report a call whose GRE never arrives, and still exit by themselves', async () => {
    // The PAC answers the control protocol but sends no GRE: the client must say so and fail.
    const { pns } = await session(['--gre-count', '0'], ['--call-timeout', '800', '--gre-first', 'pac', '--gre-wait', '300']);
    expect(pns.code).toBe(1);
    expect(pns.lines.some((line) => line.event === 'gre-wait-timeout')).toBe(true);
    expect(pns.lines.some((line) => line.event === 'gre-incomplete')).toBe(true);
    expect(summaryOf(pns)).toMatchObject({ ok: false });
  });
});
