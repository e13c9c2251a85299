/**
 * A PPTP Access Concentrator for tests (RFC 2637): listens on TCP 1723, answers the control
 * connection (SCCRQ -> SCCRP, Echo-Request -> Echo-Reply, OCRQ -> OCRP, CCRQ -> CDN, StopCCRQ -> StopCCRP, then closes
 * the TCP connection itself so TIME_WAIT stays on this side), or with --incoming places incoming
 * calls itself (ICRQ after the Echo-Reply and after each CDN; ICRP -> ICCN), and exchanges enhanced GRE packets for each call through a raw
 * socket. Exits by itself after --connections control connections or --timeout ms.
 *
 *   npx tsx scripts/pptp-peers/pac-server.ts [--listen 0.0.0.0] [--port 1723] [--call-id 512]
 *       [--call-id-step 0] [--connection-call-id-step 0] [--connections 1] [--incoming] [--calls 1]
 *       [--gre-first both|pns|pac]
 *       [--gre-count 3] [--gre-interval 100] [--gre-wait 3000] [--timeout 20000]
 *
 * Output: JSON lines (see common.ts); exit 0 if every call received all the GRE packets it
 * expected with this PAC's call id, 1 if not, 2 on a usage error or timeout.
 */
import { createServer, type Socket } from 'node:net';
import {
  CallClearRequest,
  EchoRequest,
  IncomingCallReply,
  OutgoingCallRequest,
  PptpMessageType,
  SetLinkInfo,
  pptpMessageName,
  type PptpMessageView,
} from '../../netfilter/helpers/pptp-messages.ts';
import { ControlChannel, GreCall, GreDemux, GreSocket, parseGreFirst, parseOptions, report, sendGre, type GrePacket } from './common.ts';

const USAGE =
  'usage: pac-server.ts [--listen ADDR] [--port N] [--call-id N] [--call-id-step N] [--connection-call-id-step N] [--connections N] [--incoming] [--calls N] [--gre-first both|pns|pac] [--gre-count N] [--gre-interval MS] [--gre-wait MS] [--timeout MS]';

const options = parseOptions(
  process.argv.slice(2),
  {
    listen: '0.0.0.0',
    port: 1723,
    callId: 512,
    callIdStep: 0,
    // Control connection k starts its call ids at call-id + k * this: with 0 every connection uses
    // the same ids, and GRE from one public address can then not be told apart between its calls.
    connectionCallIdStep: 0,
    connections: 1,
    incoming: false,
    calls: 1,
    greFirst: 'both',
    greCount: 3,
    greInterval: 100,
    greWait: 3000,
    timeout: 20000,
  },
  USAGE,
);
const greFirst = parseGreFirst(options.greFirst);
const ROLE = 'pac' as const;
const MESSAGE_WAIT = 10_000;

const calls: GreCall[] = [];
const demux = new GreDemux(ROLE);
let callIndex = 0;
const gre = new GreSocket(ROLE, (packet: GrePacket) => demux.receive(packet));

let finished = false;
function finish(code: number, why: string): void {
  if (finished) return;
  finished = true;
  const ok = code === 0 && calls.length > 0 && calls.every((call) => call.received.length >= call.expected);
  report(ROLE, 'summary', { why, ok, calls: calls.map((call) => call.summary()) });
  gre.close();
  server.close();
  process.exit(code !== 0 ? code : ok ? 0 : 1);
}

setTimeout(() => finish(2, `timeout after ${options.timeout} ms`), options.timeout);

function startCall(pacCallId: number, pnsCallId: number, address: string): GreCall {
  const call = new GreCall(callIndex++, pacCallId, pnsCallId, address, options.greCount);
  calls.push(call);
  demux.add(call);
  report(ROLE, 'call-up', { call: call.index, pacCallId, pnsCallId, peer: address });
  void sendGre(ROLE, gre, call, greFirst, options.greCount, options.greInterval, options.greWait, () => demux.has(call));
  return call;
}

function endCall(call: GreCall | null): void {
  if (!call) return;
  demux.remove(call);
  report(ROLE, 'call-down', call.summary());
}

async function serve(socket: Socket, connection: number): Promise<void> {
  const address = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  report(ROLE, 'connected', { connection, peer: address, peerPort: socket.remotePort });
  const channel = new ControlChannel(socket, ROLE);
  let current: GreCall | null = null;
  let placed = 0;
  let pendingIncoming = -1;
  let nextPacCallId = options.callId + connection * options.connectionCallIdStep;
  const takePacCallId = (): number => {
    const id = nextPacCallId & 0xffff;
    nextPacCallId += options.callIdStep;
    return id;
  };
  const placeIncoming = (): void => {
    if (!options.incoming || placed >= options.calls) return;
    const pacCallId = takePacCallId();
    placed++;
    channel.send(PptpMessageType.INCOMING_CALL_REQUEST, { callId: pacCallId, callSerialNumber: placed, callBearerType: 3, physicalChannelId: 0 });
    pendingIncoming = pacCallId;
  };
  const seen = (view: PptpMessageView, fields: Record<string, number>): void => report(ROLE, 'recv', { connection, msg: pptpMessageName(view.type), ...fields });
  try {
    for (;;) {
      const { type, view } = await channel.next(MESSAGE_WAIT);
      switch (type) {
        case PptpMessageType.START_CONTROL_CONNECTION_REQUEST:
          seen(view, {});
          channel.send(PptpMessageType.START_CONTROL_CONNECTION_REPLY, {
            protocolVersion: 0x0100,
            resultCode: 1,
            framingCapabilities: 3,
            bearerCapabilities: 3,
            maximumChannels: 8,
            firmwareRevision: 1,
            hostName: 'vrouter-pac',
            vendorString: 'vrouter test peer',
          });
          break;
        case PptpMessageType.ECHO_REQUEST: {
          const identifier = view.get(EchoRequest.identifier);
          seen(view, { identifier });
          channel.send(PptpMessageType.ECHO_REPLY, { identifier, resultCode: 1 });
          // The client sends one Echo after SCCRP: the first incoming call follows its reply.
          if (!current && pendingIncoming < 0) placeIncoming();
          break;
        }
        case PptpMessageType.OUTGOING_CALL_REQUEST: {
          const pnsCallId = view.get(OutgoingCallRequest.callId);
          seen(view, { callId: pnsCallId });
          endCall(current);
          const pacCallId = takePacCallId();
          channel.send(PptpMessageType.OUTGOING_CALL_REPLY, { callId: pacCallId, peerCallId: pnsCallId, resultCode: 1, connectSpeed: 100_000_000, receiveWindowSize: 64 });
          current = startCall(pacCallId, pnsCallId, address);
          break;
        }
        case PptpMessageType.INCOMING_CALL_REPLY: {
          const pnsCallId = view.get(IncomingCallReply.callId);
          const peerCallId = view.get(IncomingCallReply.peerCallId);
          const resultCode = view.get(IncomingCallReply.resultCode);
          seen(view, { callId: pnsCallId, peerCallId, resultCode });
          if (peerCallId !== pendingIncoming || resultCode !== 1) {
            report(ROLE, 'call-refused', { pacCallId: pendingIncoming, peerCallId, resultCode });
            break;
          }
          channel.send(PptpMessageType.INCOMING_CALL_CONNECTED, { peerCallId: pnsCallId, connectSpeed: 100_000_000, receiveWindowSize: 64, framingType: 3 });
          endCall(current);
          current = startCall(pendingIncoming, pnsCallId, address);
          pendingIncoming = -1;
          break;
        }
        case PptpMessageType.SET_LINK_INFO:
          seen(view, { peerCallId: view.get(SetLinkInfo.peerCallId) });
          break;
        case PptpMessageType.CALL_CLEAR_REQUEST: {
          const callId = view.get(CallClearRequest.callId);
          seen(view, { callId });
          const pacCallId = current?.ownCallId ?? 0;
          endCall(current);
          current = null;
          // RFC 2637 2.13: the Call ID of a CDN is the PAC's own.
          channel.send(PptpMessageType.CALL_DISCONNECT_NOTIFY, { callId: pacCallId, resultCode: 3, callStatistics: 'cleared by PNS' });
          placeIncoming();
          break;
        }
        case PptpMessageType.STOP_CONTROL_CONNECTION_REQUEST:
          seen(view, {});
          endCall(current);
          current = null;
          channel.send(PptpMessageType.STOP_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
          socket.end();
          return;
        default:
          seen(view, {});
          break;
      }
    }
  } catch (error) {
    report(ROLE, 'control-error', { connection, message: (error as Error).message });
    endCall(current);
    socket.destroy();
  }
}

let served = 0;
let done = 0;
const server = createServer((socket) => {
  const connection = served++;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void serve(socket, connection)
    .then(() => closed)
    .then(() => {
      done++;
      // Let the last GRE packets in flight arrive.
      if (done >= options.connections) setTimeout(() => finish(0, 'all connections served'), 200);
    });
});
server.on('error', (error) => {
  report(ROLE, 'listen-error', { message: error.message });
  finish(2, 'cannot listen');
});
server.listen(options.port, options.listen, () => report(ROLE, 'listening', { address: options.listen, port: options.port }));
