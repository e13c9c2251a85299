/**
 * PPTP through a router (built by buildRouter) with MASQUERADE on wan0 and the pptp helper with
 * its NAT half: call ids rewritten in the control messages with valid checksums and no length or
 * sequence change, GRE translated both ways whichever side starts, two clients with the same call
 * id, and the second rounds that fail on the kernel when the server's GRE comes first.
 */
import { describe, expect, it } from 'vitest';
import { CtInfo, Status } from '../../../netfilter/conntrack/status.ts';
import {
  CallClearRequest,
  CallDisconnectNotify,
  EchoRequest,
  IncomingCallConnected,
  IncomingCallReply,
  OutgoingCallReply,
  OutgoingCallRequest,
  PptpMessageType as T,
  SetLinkInfo,
  WanErrorNotify,
  encodePptpMessage,
  type PptpField,
} from '../../../netfilter/helpers/pptp-messages.ts';
import { CLIENT, CLIENT2, ControlSession, PUBLIC, SERVER, bench, checksumsValid, dst, greCallIdOf, grePacket, payloadOf, seqOf, src, type Bench, type Forwarded } from './harness.ts';

const PNS_ID = 0x0001;
const PAC_ID = 0x0200;

function confirmedSession(b: Bench, client = CLIENT, sport = 40000): ControlSession {
  const s = new ControlSession(b, client, sport).handshake();
  s.pns(T.START_CONTROL_CONNECTION_REQUEST, { protocolVersion: 0x100 });
  s.pac(T.START_CONTROL_CONNECTION_REPLY, { protocolVersion: 0x100, resultCode: 1 });
  return s;
}

const fieldOf = (packet: Forwarded, field: PptpField): number => payloadOf(packet).readUInt16BE(field.offset);

/** The bytes of a forwarded message, minus one 16-bit field, equal the bytes sent. */
function onlyFieldChanged(packet: Forwarded, sent: Buffer, field: PptpField): boolean {
  const out = payloadOf(packet);
  if (out.length !== sent.length) return false;
  const a = Buffer.from(out);
  const b = Buffer.from(sent);
  a.writeUInt16BE(0, field.offset);
  b.writeUInt16BE(0, field.offset);
  return a.equals(b);
}

/** OCRQ/OCRP through the NAT; returns the call id the server saw for the client. */
function outgoingCall(s: ControlSession, pns = PNS_ID, pac = PAC_ID): number {
  const ocrq = s.pns(T.OUTGOING_CALL_REQUEST, { callId: pns });
  const seen = fieldOf(ocrq, OutgoingCallRequest.callId);
  const ocrp = s.pac(T.OUTGOING_CALL_REPLY, { callId: pac, peerCallId: seen, resultCode: 1 });
  expect(fieldOf(ocrp, OutgoingCallReply.peerCallId)).toBe(pns);
  return seen;
}

/** Runs one call's GRE both ways; `first` sends first. Returns what reached each side. */
function greBothWays(
  b: Bench,
  first: 'client' | 'server',
  client: string,
  pns: number,
  pac: number,
  seenId: number,
  openingCtinfo: number = CtInfo.RELATED,
): { atServer: Forwarded; atClient: Forwarded; opening: Forwarded } {
  const toServer = (): Forwarded => b.forward(grePacket(client, SERVER, pac));
  const toClient = (): Forwarded => b.forward(grePacket(SERVER, PUBLIC, seenId));
  const opening = first === 'client' ? toServer() : toClient();
  const answer = first === 'client' ? toClient() : toServer();
  const atServer = first === 'client' ? opening : answer;
  const atClient = first === 'client' ? answer : opening;
  expect(opening.ctinfo).toBe(openingCtinfo);
  expect(answer.conntrack).toBe(opening.conntrack);
  expect([src(atServer), dst(atServer), greCallIdOf(atServer)]).toEqual([PUBLIC, SERVER, pac]);
  expect([src(atClient), dst(atClient), greCallIdOf(atClient)]).toEqual([SERVER, client, pns]);
  expect(checksumsValid(atServer) && checksumsValid(atClient)).toBe(true);
  return { atServer, atClient, opening };
}

describe('pptp NAT: control messages', () => {
  it('OCRQ: the client call id becomes the translated TCP source port; checksum right, length and sequence unchanged', () => {
    const b = bench({ nat: true });
    const s = confirmedSession(b);
    const sent = encodePptpMessage(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID, callSerialNumber: 7 });
    const clientSeq = seqOf(s.fromClient(encodePptpMessage(T.ECHO_REQUEST, { identifier: 3 })));
    const out = s.fromClient(sent);
    expect(s.entry!.status & Status.SRC_NAT).toBeTruthy();
    expect(fieldOf(out, OutgoingCallRequest.callId)).toBe(s.entry!.tuples[1].dstPort);
    expect(fieldOf(out, OutgoingCallRequest.callId)).toBe(s.seenPort);
    expect(onlyFieldChanged(out, sent, OutgoingCallRequest.callId)).toBe(true);
    expect(checksumsValid(out)).toBe(true);
    expect(seqOf(out)).toBe(clientSeq + 16);
    expect(s.entry!.seqAdjust).toBeNull();
    const state = b.helper.stateOf(s.entry!)!;
    expect([state.pnsCallId, state.nat!.pnsCallId]).toEqual([s.seenPort, PNS_ID]);
  });

  it('OCRP, WEN, SLI and CDN from the PAC get the client id back; CCRQ from the client gets the translated one', () => {
    const b = bench({ nat: true });
    const s = confirmedSession(b);
    const seen = fieldOf(s.pns(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID }), OutgoingCallRequest.callId);
    const cases: [('pac' | 'pns'), number, Record<string, number>, PptpField, number][] = [
      ['pac', T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: seen, resultCode: 1 }, OutgoingCallReply.peerCallId, PNS_ID],
      ['pac', T.WAN_ERROR_NOTIFY, { peerCallId: seen, crcErrors: 5 }, WanErrorNotify.peerCallId, PNS_ID],
      ['pac', T.SET_LINK_INFO, { peerCallId: seen, sendAccm: 0xffffffff }, SetLinkInfo.peerCallId, PNS_ID],
      // The client's own Set-Link-Info names the PAC's id: untouched.
      ['pns', T.SET_LINK_INFO, { peerCallId: PAC_ID }, SetLinkInfo.peerCallId, PAC_ID],
      ['pns', T.ECHO_REQUEST, { identifier: 0x12345678 }, EchoRequest.identifier, 0x1234],
      ['pns', T.CALL_CLEAR_REQUEST, { callId: PNS_ID }, CallClearRequest.callId, seen],
      ['pac', T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID, resultCode: 3 }, CallDisconnectNotify.callId, PNS_ID],
    ];
    for (const [from, type, fields, field, expected] of cases) {
      const sent = encodePptpMessage(type, fields);
      const out = from === 'pns' ? s.fromClient(sent) : s.fromServer(sent);
      expect(fieldOf(out, field)).toBe(expected);
      expect(onlyFieldChanged(out, sent, field)).toBe(true);
      expect(checksumsValid(out)).toBe(true);
    }
    expect(b.nat!.counters.rewrites).toBe(6);
    expect(b.helper.counters.invalid).toBe(0);
  });

  it('an incoming call through NAT: ICRP translated, ICCN translated back, GRE both ways', () => {
    const b = bench({ nat: true });
    const s = confirmedSession(b);
    s.pac(T.INCOMING_CALL_REQUEST, { callId: PAC_ID });
    const icrp = s.pns(T.INCOMING_CALL_REPLY, { callId: PNS_ID, peerCallId: PAC_ID, resultCode: 1 });
    const seen = fieldOf(icrp, IncomingCallReply.callId);
    expect(seen).toBe(s.seenPort);
    expect(fieldOf(icrp, IncomingCallReply.peerCallId)).toBe(PAC_ID);
    expect(checksumsValid(icrp)).toBe(true);
    const iccn = s.pac(T.INCOMING_CALL_CONNECTED, { peerCallId: seen });
    expect(fieldOf(iccn, IncomingCallConnected.peerCallId)).toBe(PNS_ID);
    expect(b.core.expectations.size).toBe(2);
    greBothWays(b, 'server', CLIENT, PNS_ID, PAC_ID, seen);
  });

  it('leaves invalid and truncated messages alone', () => {
    const b = bench({ nat: true });
    const s = new ControlSession(b).handshake();
    // Session not confirmed: the OCRQ is invalid and not rewritten.
    const early = encodePptpMessage(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID });
    expect(payloadOf(s.fromClient(early)).equals(early)).toBe(true);
    s.pns(T.START_CONTROL_CONNECTION_REQUEST);
    s.pac(T.START_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
    const truncated = encodePptpMessage(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID }).subarray(0, 100);
    const out = s.fromClient(truncated);
    expect(payloadOf(out).equals(truncated)).toBe(true);
    expect(checksumsValid(out)).toBe(true);
    // A PAC message naming the client before any translation is left as it is.
    const wen = encodePptpMessage(T.WAN_ERROR_NOTIFY, { peerCallId: 77 });
    expect(payloadOf(s.fromServer(wen)).equals(wen)).toBe(true);
    expect([b.helper.counters.invalid, b.helper.counters.truncated, b.nat!.counters.rewrites, b.nat!.counters.notTranslated]).toEqual([1, 1, 0, 1]);
  });
});

describe('pptp NAT: GRE', () => {
  for (const first of ['client', 'server'] as const) {
    it(`translates the call id both ways when the ${first} sends the first GRE packet, and leaves no expectation behind`, () => {
      const b = bench({ nat: true });
      const s = confirmedSession(b);
      const seen = outgoingCall(s);
      expect(
        b.core.expectations
          .list()
          .map((e) => [e.tuple.srcPort, e.tuple.dstPort, e.savedPort, e.natDirection])
          .sort(),
      ).toEqual(
        [
          [PNS_ID, PAC_ID, seen, 0],
          [PAC_ID, seen, PNS_ID, 1],
        ].sort(),
      );
      const { opening } = greBothWays(b, first, CLIENT, PNS_ID, PAC_ID, seen);
      expect(b.core.expectations.size).toBe(0);
      const child = opening.conntrack!;
      expect(child.master).toBe(s.entry);
      expect(b.nat!.counters.bound).toBe(1);
      // More packets keep using the same connection in both directions.
      const again = greBothWays(b, first, CLIENT, PNS_ID, PAC_ID, seen, CtInfo.ESTABLISHED);
      expect(again.opening.conntrack).toBe(child);
    });
  }

  it('two clients behind the NAT with the same call id toward the same server each get their own GRE', () => {
    const b = bench({ nat: true });
    const one = confirmedSession(b, CLIENT, 40000);
    const two = confirmedSession(b, CLIENT2, 40000);
    expect(two.seenPort).not.toBe(one.seenPort);
    const seenOne = outgoingCall(one, PNS_ID, PAC_ID);
    const seenTwo = outgoingCall(two, PNS_ID, PAC_ID + 1);
    expect(seenOne).not.toBe(seenTwo);
    const toOne = b.forward(grePacket(SERVER, PUBLIC, seenOne));
    const toTwo = b.forward(grePacket(SERVER, PUBLIC, seenTwo));
    expect([dst(toOne), greCallIdOf(toOne)]).toEqual([CLIENT, PNS_ID]);
    expect([dst(toTwo), greCallIdOf(toTwo)]).toEqual([CLIENT2, PNS_ID]);
    const fromOne = b.forward(grePacket(CLIENT, SERVER, PAC_ID));
    const fromTwo = b.forward(grePacket(CLIENT2, SERVER, PAC_ID + 1));
    expect([fromOne.conntrack, fromTwo.conntrack]).toEqual([toOne.conntrack, toTwo.conntrack]);
    expect([src(fromOne), src(fromTwo)]).toEqual([PUBLIC, PUBLIC]);
  });
});

describe('pptp NAT: second rounds', () => {
  for (const first of ['server', 'client'] as const) {
    it(`a new control connection from the same client with the same call ids works (${first} GRE first)`, () => {
      const b = bench({ nat: true });
      for (const sport of [40000, 40001, 40002]) {
        const s = confirmedSession(b, CLIENT, sport);
        const seen = outgoingCall(s);
        expect(b.helper.counters.expectFailed).toBe(0);
        greBothWays(b, first, CLIENT, PNS_ID, PAC_ID, seen);
        // The kernel leaves the PNS -> PAC expectation here when the server went first.
        expect(b.core.expectations.size).toBe(0);
        s.pns(T.CALL_CLEAR_REQUEST, { callId: PNS_ID });
        s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID });
        s.pns(T.STOP_CONTROL_CONNECTION_REQUEST);
        s.pac(T.STOP_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
        // The old control connection lingers in the table (TIME_WAIT) while the next one starts.
        expect(s.entry!.dying).toBe(false);
      }
      expect(b.helper.counters.callsExpected).toBe(3);
    });

    it(`a second and third call on the same control connection work (${first} GRE first)`, () => {
      const b = bench({ nat: true });
      const s = confirmedSession(b);
      for (const [pns, pac] of [
        [PNS_ID, PAC_ID],
        [PNS_ID, PAC_ID],
        [PNS_ID + 5, PAC_ID + 5],
      ] as const) {
        const seen = outgoingCall(s, pns, pac);
        greBothWays(b, first, CLIENT, pns, pac, seen);
        expect(b.core.expectations.size).toBe(0);
        s.pns(T.CALL_CLEAR_REQUEST, { callId: pns });
        s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: pac });
      }
      expect(b.helper.counters.expectFailed).toBe(0);
    });
  }

  it('a new control connection reusing the same source port after the old one (same translated id) works, server first', () => {
    const b = bench({ nat: true });
    const a = confirmedSession(b, CLIENT, 40000);
    const seenA = outgoingCall(a);
    greBothWays(b, 'server', CLIENT, PNS_ID, PAC_ID, seenA);
    a.pac(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID });
    a.pns(T.STOP_CONTROL_CONNECTION_REQUEST);
    a.pac(T.STOP_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
    b.core.destroy(a.entry!);
    const c = confirmedSession(b, CLIENT, 40000);
    const seenC = outgoingCall(c);
    expect(seenC).toBe(seenA);
    greBothWays(b, 'server', CLIENT, PNS_ID, PAC_ID, seenC);
  });
});
