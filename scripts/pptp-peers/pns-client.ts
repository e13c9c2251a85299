/**
 * A PPTP Network Server (the client side of RFC 2637) for tests: opens --rounds control
 * connections to the PAC one after the other, each with SCCRQ/SCCRP and an Echo, then --calls calls
 * (OCRQ/OCRP, or with --incoming waits for the PAC's ICRQ and answers ICRP/ICCN), sends
 * Set-Link-Info, exchanges enhanced GRE packets through a raw socket, clears the call (CCRQ/CDN)
 * and stops the session (StopCCRQ/StopCCRP). Exits by itself after the last round or --timeout ms.
 *
 *   npx tsx scripts/pptp-peers/pns-client.ts --server ADDR [--port 1723] [--bind ADDR] [--sport N]
 *       [--call-id 1] [--call-id-step 0] [--calls 1] [--rounds 1] [--incoming]
 *       [--gre-first both|pns|pac] [--gre-count 3] [--gre-interval 100] [--gre-wait 3000]
 *       [--call-timeout 4000] [--timeout 20000]
 *
 * --sport binds the TCP source port, the same one for every round (the PAC closes first, so the
 * port is free again). --call-id is this client's call id; every call and round uses the same one
 * unless --call-id-step says otherwise.
 *
 * Output: JSON lines (see common.ts); exit 0 if every call received all the GRE packets it expected
 * with this client's call id, 1 if not, 2 on a usage error, a control protocol failure or timeout.
 */
import { connect, type Socket } from 'node:net';
import {
  CallDisconnectNotify,
  EchoReply,
  IncomingCallConnected,
  IncomingCallRequest,
  OutgoingCallReply,
  PptpMessageType,
  StartControlConnectionReply,
  StopControlConnectionReply,
} from '../../netfilter/helpers/pptp-messages.ts';
import { ControlChannel, GreCall, GreDemux, GreSocket, fail, parseGreFirst, parseOptions, report, sendGre, sleep, type GrePacket } from './common.ts';

const USAGE =
  'usage: pns-client.ts --server ADDR [--port N] [--bind ADDR] [--sport N] [--call-id N] [--call-id-step N] [--calls N] [--rounds N] [--incoming] [--gre-first both|pns|pac] [--gre-count N] [--gre-interval MS] [--gre-wait MS] [--call-timeout MS] [--timeout MS]';

const options = parseOptions(
  process.argv.slice(2),
  {
    server: '',
    port: 1723,
    bind: '',
    sport: 0,
    callId: 1,
    callIdStep: 0,
    calls: 1,
    rounds: 1,
    incoming: false,
    greFirst: 'both',
    greCount: 3,
    greInterval: 100,
    greWait: 3000,
    callTimeout: 4000,
    timeout: 20000,
  },
  USAGE,
);
if (!options.server) fail(`--server is required\n${USAGE}`);
const greFirst = parseGreFirst(options.greFirst);
const ROLE = 'pns' as const;
const MESSAGE_WAIT = 5000;

const calls: GreCall[] = [];
const demux = new GreDemux(ROLE);
const gre = new GreSocket(ROLE, (packet: GrePacket) => demux.receive(packet));

let finished = false;
function finish(code: number, why: string): void {
  if (finished) return;
  finished = true;
  const ok = code === 0 && calls.length === options.calls * options.rounds && calls.every((call) => call.received.length >= call.expected);
  report(ROLE, 'summary', { why, ok, calls: calls.map((call) => call.summary()) });
  gre.close();
  process.exit(code !== 0 ? code : ok ? 0 : 1);
}

setTimeout(() => finish(2, `timeout after ${options.timeout} ms`), options.timeout);

function open(round: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: options.server,
      port: options.port,
      ...(options.bind ? { localAddress: options.bind } : {}),
      ...(options.sport ? { localPort: options.sport } : {}),
    });
    socket.once('connect', () => {
      report(ROLE, 'connected', { round, local: `${socket.localAddress}:${socket.localPort}`, server: `${options.server}:${options.port}` });
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function runCall(channel: ControlChannel, round: number, index: number, ownCallId: number): Promise<void> {
  let pacCallId: number;
  if (options.incoming) {
    const icrq = await channel.expect(PptpMessageType.INCOMING_CALL_REQUEST, MESSAGE_WAIT);
    pacCallId = icrq.get(IncomingCallRequest.callId);
    report(ROLE, 'recv', { round, msg: 'ICRQ', callId: pacCallId });
    channel.send(PptpMessageType.INCOMING_CALL_REPLY, { callId: ownCallId, peerCallId: pacCallId, resultCode: 1, receiveWindowSize: 64 });
    const iccn = await channel.expect(PptpMessageType.INCOMING_CALL_CONNECTED, MESSAGE_WAIT);
    const peerCallId = iccn.get(IncomingCallConnected.peerCallId);
    report(ROLE, 'recv', { round, msg: 'ICCN', peerCallId, matchesOwn: peerCallId === ownCallId });
  } else {
    channel.send(PptpMessageType.OUTGOING_CALL_REQUEST, {
      callId: ownCallId,
      callSerialNumber: index + 1,
      minimumBps: 2400,
      maximumBps: 100_000_000,
      bearerType: 3,
      framingType: 3,
      receiveWindowSize: 64,
    });
    const ocrp = await channel.expect(PptpMessageType.OUTGOING_CALL_REPLY, MESSAGE_WAIT);
    pacCallId = ocrp.get(OutgoingCallReply.callId);
    const peerCallId = ocrp.get(OutgoingCallReply.peerCallId);
    const resultCode = ocrp.get(OutgoingCallReply.resultCode);
    report(ROLE, 'recv', { round, msg: 'OCRP', callId: pacCallId, peerCallId, resultCode, matchesOwn: peerCallId === ownCallId });
    if (resultCode !== 1) throw new Error(`call refused: result ${resultCode}`);
  }
  channel.send(PptpMessageType.SET_LINK_INFO, { peerCallId: pacCallId, sendAccm: 0xffffffff, receiveAccm: 0xffffffff });
  const call = new GreCall(calls.length, ownCallId, pacCallId, options.server, options.greCount);
  calls.push(call);
  demux.add(call);
  report(ROLE, 'call-up', { round, call: call.index, pnsCallId: ownCallId, pacCallId });
  const sending = sendGre(ROLE, gre, call, greFirst, options.greCount, options.greInterval, options.greWait, () => demux.has(call));
  const received = await Promise.race([call.allReceived.then(() => true), sleep(options.callTimeout).then(() => false)]);
  if (!received) report(ROLE, 'gre-incomplete', { call: call.index, received: call.received.length, expected: call.expected });
  await sending;
  channel.send(PptpMessageType.CALL_CLEAR_REQUEST, { callId: ownCallId });
  const cdn = await channel.expect(PptpMessageType.CALL_DISCONNECT_NOTIFY, MESSAGE_WAIT);
  report(ROLE, 'recv', { round, msg: 'CDN', callId: cdn.get(CallDisconnectNotify.callId), resultCode: cdn.get(CallDisconnectNotify.resultCode) });
  demux.remove(call);
  report(ROLE, 'call-down', call.summary());
}

async function runRound(round: number): Promise<void> {
  const socket = await open(round);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const channel = new ControlChannel(socket, ROLE);
  channel.send(PptpMessageType.START_CONTROL_CONNECTION_REQUEST, {
    protocolVersion: 0x0100,
    framingCapabilities: 3,
    bearerCapabilities: 3,
    maximumChannels: 1,
    firmwareRevision: 1,
    hostName: 'vrouter-pns',
    vendorString: 'vrouter test peer',
  });
  const sccrp = await channel.expect(PptpMessageType.START_CONTROL_CONNECTION_REPLY, MESSAGE_WAIT);
  const result = sccrp.get(StartControlConnectionReply.resultCode);
  report(ROLE, 'recv', { round, msg: 'SCCRP', resultCode: result, hostName: sccrp.text(StartControlConnectionReply.hostName) });
  if (result !== 1) throw new Error(`control connection refused: result ${result}`);
  channel.send(PptpMessageType.ECHO_REQUEST, { identifier: round + 1 });
  const echo = await channel.expect(PptpMessageType.ECHO_REPLY, MESSAGE_WAIT);
  report(ROLE, 'recv', { round, msg: 'EchoRP', identifier: echo.get(EchoReply.identifier) });
  for (let i = 0; i < options.calls; i++) {
    const callId = (options.callId + (round * options.calls + i) * options.callIdStep) & 0xffff;
    await runCall(channel, round, i, callId);
  }
  channel.send(PptpMessageType.STOP_CONTROL_CONNECTION_REQUEST, { reason: 1 });
  const stop = await channel.expect(PptpMessageType.STOP_CONTROL_CONNECTION_REPLY, MESSAGE_WAIT);
  report(ROLE, 'recv', { round, msg: 'StopCCRP', resultCode: stop.get(StopControlConnectionReply.resultCode) });
  // The PAC closes first; close our side when it has.
  await Promise.race([closed, sleep(2000)]);
  socket.end();
  await Promise.race([closed, sleep(1000)]);
  socket.destroy();
}

async function main(): Promise<void> {
  try {
    for (let round = 0; round < options.rounds; round++) await runRound(round);
  } catch (error) {
    report(ROLE, 'control-error', { message: (error as Error).message });
    finish(2, (error as Error).message);
    return;
  }
  // Late GRE packets still count.
  await sleep(100);
  finish(0, 'all rounds done');
}

void main();
