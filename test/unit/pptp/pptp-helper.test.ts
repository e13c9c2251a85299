/**
 * The pptp helper's tracking half on a router (built by buildRouter) with no nat table: the session and call state
 * machines, the pair of GRE expectations and keymap entries, GRE key extraction, expected GRE
 * connections whichever side sends first, teardown, and invalid or truncated messages.
 */
import { describe, expect, it } from 'vitest';
import { Expectation } from '../../../netfilter/conntrack/expectation.ts';
import { ExpectResult } from '../../../netfilter/conntrack/expectation-table.ts';
import { formatConnection, formatExpectation } from '../../../netfilter/conntrack/format.ts';
import { CtInfo, Status } from '../../../netfilter/conntrack/status.ts';
import { Tuple } from '../../../netfilter/conntrack/tuple.ts';
import { PptpCallState, PptpSessionState, type PptpConnectionState } from '../../../netfilter/helpers/pptp.ts';
import { PptpMessageType as T, encodePptpMessage } from '../../../netfilter/helpers/pptp-messages.ts';
import { Verdict } from '../../../router/core/hooks.ts';
import { Packet } from '../../../router/core/packet.ts';
import { ip } from '../../support/packets.ts';
import { CLIENT, ControlSession, SERVER, bench, grePacket, payloadOf, type Bench, type Forwarded } from './harness.ts';

const PNS_ID = 0x0001;
const PAC_ID = 0x0200;

function confirmedSession(b: Bench, client = CLIENT, sport = 40000): ControlSession {
  const s = new ControlSession(b, client, sport).handshake();
  s.pns(T.START_CONTROL_CONNECTION_REQUEST, { protocolVersion: 0x100 });
  s.pac(T.START_CONTROL_CONNECTION_REPLY, { protocolVersion: 0x100, resultCode: 1 });
  return s;
}

function outgoingCall(s: ControlSession, pns = PNS_ID, pac = PAC_ID): void {
  s.pns(T.OUTGOING_CALL_REQUEST, { callId: pns });
  s.pac(T.OUTGOING_CALL_REPLY, { callId: pac, peerCallId: pns, resultCode: 1 });
}

const stateOf = (b: Bench, s: ControlSession): PptpConnectionState => b.helper.stateOf(s.entry!)!;

describe('pptp helper: state machines', () => {
  it('walks the session through request, confirmation, stop and its reply', () => {
    const b = bench();
    const s = new ControlSession(b).handshake();
    expect(s.entry!.helper?.name).toBe('pptp');
    s.pns(T.START_CONTROL_CONNECTION_REQUEST);
    expect(stateOf(b, s).session).toBe(PptpSessionState.REQUESTED);
    s.pac(T.START_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
    expect(stateOf(b, s).session).toBe(PptpSessionState.CONFIRMED);
    s.pns(T.ECHO_REQUEST, { identifier: 1 });
    s.pac(T.ECHO_REPLY, { identifier: 1, resultCode: 1 });
    expect(stateOf(b, s).session).toBe(PptpSessionState.CONFIRMED);
    s.pns(T.STOP_CONTROL_CONNECTION_REQUEST, { reason: 1 });
    expect(stateOf(b, s).session).toBe(PptpSessionState.STOPREQ);
    s.pac(T.STOP_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
    expect(stateOf(b, s).session).toBe(PptpSessionState.NONE);
    expect(b.helper.counters.invalid).toBe(0);
  });

  it('marks a refused session ERROR, and a refused stop ERROR', () => {
    const b = bench();
    const s = new ControlSession(b).handshake();
    s.pns(T.START_CONTROL_CONNECTION_REQUEST);
    s.pac(T.START_CONTROL_CONNECTION_REPLY, { resultCode: 2 });
    expect(stateOf(b, s).session).toBe(PptpSessionState.ERROR);
    s.pns(T.OUTGOING_CALL_REQUEST, { callId: 1 });
    expect(stateOf(b, s).call).toBe(PptpCallState.NONE);
    s.pns(T.STOP_CONTROL_CONNECTION_REQUEST);
    s.pac(T.STOP_CONTROL_CONNECTION_REPLY, { resultCode: 2 });
    expect(stateOf(b, s).session).toBe(PptpSessionState.ERROR);
  });

  it('follows an outgoing call: OCRQ keeps the PNS id, OCRP the PAC id and expects GRE; CCRQ and CDN end it', () => {
    const b = bench();
    const s = confirmedSession(b);
    s.pns(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID });
    expect([stateOf(b, s).call, stateOf(b, s).pnsCallId]).toEqual([PptpCallState.OUT_REQ, PNS_ID]);
    expect(b.core.expectations.size).toBe(0);
    s.pac(T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: PNS_ID, resultCode: 1 });
    expect([stateOf(b, s).call, stateOf(b, s).pacCallId]).toEqual([PptpCallState.OUT_CONF, PAC_ID]);
    expect(b.core.expectations.size).toBe(2);
    s.pns(T.SET_LINK_INFO, { peerCallId: PAC_ID });
    s.pac(T.WAN_ERROR_NOTIFY, { peerCallId: PNS_ID });
    s.pac(T.SET_LINK_INFO, { peerCallId: PNS_ID });
    expect(stateOf(b, s).call).toBe(PptpCallState.OUT_CONF);
    s.pns(T.CALL_CLEAR_REQUEST, { callId: PNS_ID });
    expect(stateOf(b, s).call).toBe(PptpCallState.CLEAR_REQ);
    s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID });
    expect(stateOf(b, s).call).toBe(PptpCallState.NONE);
    expect(b.core.expectations.size).toBe(0);
    expect(b.keymap.size).toBe(0);
    expect(b.helper.counters.invalid).toBe(0);
  });

  it('expects nothing for a refused call or an OCRP naming another PNS call id', () => {
    const b = bench();
    const s = confirmedSession(b);
    s.pns(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID });
    s.pac(T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: PNS_ID + 1, resultCode: 1 });
    expect(b.helper.counters.invalid).toBe(1);
    expect(stateOf(b, s).call).toBe(PptpCallState.OUT_REQ);
    s.pac(T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: PNS_ID, resultCode: 4 });
    expect(stateOf(b, s).call).toBe(PptpCallState.NONE);
    expect([b.core.expectations.size, b.keymap.size]).toEqual([0, 0]);
  });

  it('follows an incoming call: ICRQ, ICRP, ICCN', () => {
    const b = bench();
    const s = confirmedSession(b);
    s.pac(T.INCOMING_CALL_REQUEST, { callId: PAC_ID });
    expect([stateOf(b, s).call, stateOf(b, s).pacCallId]).toEqual([PptpCallState.IN_REQ, PAC_ID]);
    // An ICRP for another PAC call is invalid and changes nothing.
    s.pns(T.INCOMING_CALL_REPLY, { callId: PNS_ID, peerCallId: PAC_ID + 1, resultCode: 1 });
    expect([stateOf(b, s).call, b.helper.counters.invalid]).toEqual([PptpCallState.IN_REQ, 1]);
    s.pns(T.INCOMING_CALL_REPLY, { callId: PNS_ID, peerCallId: PAC_ID, resultCode: 1 });
    expect([stateOf(b, s).call, stateOf(b, s).pnsCallId]).toEqual([PptpCallState.IN_REP, PNS_ID]);
    expect(b.core.expectations.size).toBe(0);
    s.pac(T.INCOMING_CALL_CONNECTED, { peerCallId: PNS_ID });
    expect(stateOf(b, s).call).toBe(PptpCallState.IN_CONF);
    expect(b.core.expectations.size).toBe(2);
    expect(b.keymap.lookup(ip(CLIENT), ip(SERVER), PAC_ID)).toBe(PNS_ID);
  });

  it('drops an incoming call the PNS refuses', () => {
    const b = bench();
    const s = confirmedSession(b);
    s.pac(T.INCOMING_CALL_REQUEST, { callId: PAC_ID });
    s.pns(T.INCOMING_CALL_REPLY, { callId: PNS_ID, peerCallId: PAC_ID, resultCode: 3 });
    expect(stateOf(b, s).call).toBe(PptpCallState.NONE);
    s.pac(T.INCOMING_CALL_CONNECTED, { peerCallId: PNS_ID });
    expect(b.helper.counters.invalid).toBe(1);
    expect(b.core.expectations.size).toBe(0);
  });
});

describe('pptp helper: GRE expectations', () => {
  it('expects GRE both ways, exactly, with the policy pptp (at most 2, 300 s)', () => {
    const b = bench();
    const s = confirmedSession(b);
    outgoingCall(s);
    const lines = b.core.expectations.list().map((e) => formatExpectation(e, b.clock.ms));
    expect(lines).toEqual([
      `300 proto=47 src=${CLIENT} dst=${SERVER} srckey=0x1 dstkey=0x200 mask-src=255.255.255.255 mask-dst=255.255.255.255 srckey=0xffff dstkey=0xffff master-src=${CLIENT} master-dst=${SERVER} sport=40000 dport=1723 class=0 helper=pptp`,
      `300 proto=47 src=${SERVER} dst=${CLIENT} srckey=0x200 dstkey=0x1 mask-src=255.255.255.255 mask-dst=255.255.255.255 srckey=0xffff dstkey=0xffff master-src=${CLIENT} master-dst=${SERVER} sport=40000 dport=1723 class=0 helper=pptp`,
    ]);
    expect(b.helper.policies).toEqual([{ name: 'pptp', maxExpected: 2, timeout: 300 }]);
    expect(b.helper.ports).toEqual([1723]);
  });

  it('records both keymap entries, so the GRE tracker reads the source key of version 1 packets', () => {
    const b = bench();
    const s = confirmedSession(b);
    const before = b.forward(grePacket(CLIENT, SERVER, PAC_ID));
    // No call yet: source key 0, an unrelated connection.
    expect(before.conntrack!.tuples[0].srcPort).toBe(0);
    expect(before.ctinfo).toBe(CtInfo.NEW);
    b.core.destroy(before.conntrack!);
    outgoingCall(s);
    expect(b.keymap.lookup(ip(CLIENT), ip(SERVER), PAC_ID)).toBe(PNS_ID);
    expect(b.keymap.lookup(ip(SERVER), ip(CLIENT), PNS_ID)).toBe(PAC_ID);
    const gre = b.forward(grePacket(CLIENT, SERVER, PAC_ID));
    expect([gre.conntrack!.tuples[0].srcPort, gre.conntrack!.tuples[0].dstPort]).toEqual([PNS_ID, PAC_ID]);
  });

  for (const first of ['client', 'server'] as const) {
    it(`relates the GRE connection when the ${first} sends first, with the GRE timeouts (30 s, 180 s once assured) as kernel 6.18, and both directions use it`, () => {
      const b = bench();
      const s = confirmedSession(b);
      outgoingCall(s);
      const fromClient = (): Forwarded => b.forward(grePacket(CLIENT, SERVER, PAC_ID));
      const fromServer = (): Forwarded => b.forward(grePacket(SERVER, CLIENT, PNS_ID));
      const opening = first === 'client' ? fromClient() : fromServer();
      const child = opening.conntrack!;
      expect(opening.ctinfo).toBe(CtInfo.RELATED);
      expect(child.master).toBe(s.entry);
      expect(child.status & Status.EXPECTED).toBeTruthy();
      expect(child.timeout - b.clock.ms).toBe(30_000);
      // The other expectation goes: the other direction is this connection's reply.
      expect(b.core.expectations.size).toBe(0);
      const answer = first === 'client' ? fromServer() : fromClient();
      expect([answer.conntrack, answer.ctinfo]).toEqual([child, CtInfo.ESTABLISHED_REPLY]);
      // As in the kernel, the replied timeout applies from the packet after the first reply.
      expect(child.timeout - b.clock.ms).toBe(30_000);
      const again = first === 'client' ? fromClient() : fromServer();
      expect([again.conntrack, again.ctinfo]).toEqual([child, CtInfo.ESTABLISHED]);
      expect(child.timeout - b.clock.ms).toBe(180_000);
      expect(formatConnection(child, b.clock.ms)).toMatch(/^gre +47 180 .*\[ASSURED\]/);
      expect(b.helper.counters.greExpected).toBe(1);
    });
  }

  it('Call-Disconnect-Notify removes the keymap entries and the GRE connection', () => {
    const b = bench();
    const s = confirmedSession(b);
    outgoingCall(s);
    const child = b.forward(grePacket(SERVER, CLIENT, PNS_ID)).conntrack!;
    b.forward(grePacket(CLIENT, SERVER, PAC_ID));
    expect(b.core.table.size).toBe(2);
    s.pns(T.CALL_CLEAR_REQUEST, { callId: PNS_ID });
    s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID });
    expect(child.dying).toBe(true);
    expect(b.core.table.size).toBe(1);
    expect([b.keymap.size, b.core.expectations.size]).toEqual([0, 0]);
    expect(b.helper.counters.callsTornDown).toBe(1);
  });

  it('the end of the control connection takes the keymap, the expectations and the GRE connections with it', () => {
    const b = bench();
    const s = confirmedSession(b);
    outgoingCall(s);
    const child = b.forward(grePacket(CLIENT, SERVER, PAC_ID)).conntrack!;
    b.core.destroy(s.entry!);
    expect(child.dying).toBe(true);
    expect([b.keymap.size, b.core.expectations.size, b.core.table.size]).toEqual([0, 0, 0]);
  });

  it('finds the GRE connections by reference even without a table lookup (findGre absent)', () => {
    const b = bench({ findGre: false });
    const s = confirmedSession(b);
    outgoingCall(s);
    const child = b.forward(grePacket(SERVER, CLIENT, PNS_ID)).conntrack!;
    s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID });
    expect(child.dying).toBe(true);
  });

  it('a CDN before any GRE removes the pending pair', () => {
    const b = bench();
    const s = confirmedSession(b);
    outgoingCall(s);
    s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID });
    expect([b.keymap.size, b.core.expectations.size]).toEqual([0, 0]);
    expect(b.forward(grePacket(SERVER, CLIENT, PNS_ID)).ctinfo).toBe(CtInfo.NEW);
  });

  it('keeps neither expectation nor keymap entry when the second expectation of the pair is refused', () => {
    const b = bench();
    const other = confirmedSession(b, CLIENT, 40001);
    const s = confirmedSession(b);
    // Another master already waits for exactly the PAC -> PNS flow of the coming call.
    const squatter = new Expectation(other.entry!, new Tuple(ip(SERVER), ip(CLIENT), 47, PAC_ID, PNS_ID), { src: 0xffffffff, srcPort: 0xffff }, 0, b.helper);
    expect(b.core.expectations.add(squatter)).toBe(ExpectResult.OK);
    outgoingCall(s);
    expect(b.helper.counters.expectFailed).toBe(1);
    expect(b.core.expectations.list()).toEqual([squatter]);
    expect(b.keymap.size).toBe(0);
    expect(s.entry!.expectations).toEqual([]);
  });

  it('a retransmitted OCRP keeps one pair of expectations', () => {
    const b = bench();
    const s = confirmedSession(b);
    outgoingCall(s);
    s.fromServer(encodePptpMessage(T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: PNS_ID, resultCode: 1 }));
    expect(b.core.expectations.size).toBe(2);
    expect(b.helper.counters.expectFailed).toBe(0);
  });
});

describe('pptp helper: second rounds (no NAT)', () => {
  for (const first of ['client', 'server'] as const) {
    it(`a second call on the same control connection works (${first} GRE first each time)`, () => {
      const b = bench();
      const s = confirmedSession(b);
      for (const [pns, pac] of [
        [PNS_ID, PAC_ID],
        [PNS_ID, PAC_ID],
        [PNS_ID + 1, PAC_ID + 1],
      ] as const) {
        outgoingCall(s, pns, pac);
        const a = first === 'client' ? b.forward(grePacket(CLIENT, SERVER, pac)) : b.forward(grePacket(SERVER, CLIENT, pns));
        const r = first === 'client' ? b.forward(grePacket(SERVER, CLIENT, pns)) : b.forward(grePacket(CLIENT, SERVER, pac));
        expect(a.ctinfo).toBe(CtInfo.RELATED);
        expect([r.conntrack, r.ctinfo]).toEqual([a.conntrack, CtInfo.ESTABLISHED_REPLY]);
        s.pns(T.CALL_CLEAR_REQUEST, { callId: pns });
        s.pac(T.CALL_DISCONNECT_NOTIFY, { callId: pac });
      }
      expect(b.helper.counters.expectFailed).toBe(0);
    });
  }

  it('a new call without a CDN in between replaces the previous one instead of being refused', () => {
    const b = bench();
    const s = confirmedSession(b);
    outgoingCall(s);
    const old = b.forward(grePacket(SERVER, CLIENT, PNS_ID)).conntrack!;
    outgoingCall(s, PNS_ID + 1, PAC_ID + 1);
    expect(b.helper.counters.expectFailed).toBe(0);
    expect(old.dying).toBe(true);
    expect(b.forward(grePacket(SERVER, CLIENT, PNS_ID + 1)).ctinfo).toBe(CtInfo.RELATED);
  });

  it('a new control connection with the same call ids works while the old one still lingers (stop without CDN)', () => {
    const b = bench();
    const first = confirmedSession(b, CLIENT, 40000);
    outgoingCall(first);
    b.forward(grePacket(SERVER, CLIENT, PNS_ID));
    b.forward(grePacket(CLIENT, SERVER, PAC_ID));
    first.pns(T.STOP_CONTROL_CONNECTION_REQUEST);
    first.pac(T.STOP_CONTROL_CONNECTION_REPLY, { resultCode: 1 });
    // The old control connection is still in the table (TIME_WAIT); a new one, same ids.
    const second = confirmedSession(b, CLIENT, 40001);
    outgoingCall(second);
    const opening = b.forward(grePacket(SERVER, CLIENT, PNS_ID));
    expect([opening.ctinfo, opening.conntrack!.master]).toEqual([CtInfo.RELATED, second.entry]);
    expect(b.forward(grePacket(CLIENT, SERVER, PAC_ID)).conntrack).toBe(opening.conntrack);
    // When the old control connection finally goes, the new call survives.
    b.core.destroy(first.entry!);
    expect(opening.conntrack!.dying).toBe(false);
    expect(b.keymap.lookup(ip(SERVER), ip(CLIENT), PNS_ID)).toBe(PAC_ID);
  });
});

describe('pptp helper: invalid and truncated messages', () => {
  it('accepts messages in the wrong state or direction untouched, counts them and keeps its state', () => {
    const b = bench();
    const s = new ControlSession(b).handshake();
    const sent: Buffer[] = [];
    const check = (packet: Forwarded, payload: Buffer): void => {
      sent.push(payload);
      expect(payloadOf(packet).equals(payload)).toBe(true);
    };
    for (const [from, type, fields] of [
      ['pns', T.OUTGOING_CALL_REQUEST, { callId: 1 }], // session not confirmed
      ['pac', T.START_CONTROL_CONNECTION_REQUEST, {}], // wrong direction
      ['pac', T.START_CONTROL_CONNECTION_REPLY, { resultCode: 1 }], // no request yet
      ['pns', T.OUTGOING_CALL_REPLY, { callId: 1, peerCallId: 1, resultCode: 1 }], // wrong direction
      ['pac', T.INCOMING_CALL_CONNECTED, { peerCallId: 1 }], // no session
      ['pns', T.CALL_CLEAR_REQUEST, { callId: 1 }], // no session
      ['pac', T.STOP_CONTROL_CONNECTION_REQUEST, {}], // the kernel only knows it from the PNS
      ['pns', T.CALL_DISCONNECT_NOTIFY, { callId: 1 }], // wrong direction
    ] as const) {
      const payload = encodePptpMessage(type, fields);
      check(from === 'pns' ? s.fromClient(payload) : s.fromServer(payload), payload);
    }
    expect(b.helper.counters.invalid).toBe(8);
    const state = stateOf(b, s);
    expect([state.session, state.call, state.pnsCallId, state.pacCallId]).toEqual([PptpSessionState.NONE, PptpCallState.NONE, 0, 0]);
    expect(b.core.expectations.size).toBe(0);
    expect(b.logs.some((line) => line.includes('invalid'))).toBe(true);
  });

  it('ignores truncated, unknown, non-control and garbage payloads without a change or an exception', () => {
    const b = bench();
    const s = confirmedSession(b);
    s.pns(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID });
    const ocrp = encodePptpMessage(T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: PNS_ID, resultCode: 1 });
    s.fromServer(ocrp.subarray(0, 31));
    expect(b.helper.counters.truncated).toBe(1);
    const unknown = Buffer.from(ocrp);
    unknown.writeUInt16BE(16, 8);
    s.fromServer(unknown);
    expect(b.helper.counters.unknownType).toBe(1);
    const management = Buffer.from(ocrp);
    management.writeUInt16BE(2, 2);
    s.fromServer(management);
    s.fromServer(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    s.fromServer(Buffer.from([1, 2, 3]));
    expect(b.helper.counters.notControl).toBe(2);
    expect(b.helper.counters.noHeader).toBe(1);
    expect(b.core.expectations.size).toBe(0);
    expect(stateOf(b, s).call).toBe(PptpCallState.OUT_REQ);
    // The real OCRP still works afterwards.
    s.fromServer(ocrp);
    expect(b.core.expectations.size).toBe(2);
  });

  it('survives every truncation and random corruption of a whole session', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const script: ['pns' | 'pac', Buffer][] = [
      ['pns', encodePptpMessage(T.START_CONTROL_CONNECTION_REQUEST)],
      ['pac', encodePptpMessage(T.START_CONTROL_CONNECTION_REPLY, { resultCode: 1 })],
      ['pns', encodePptpMessage(T.OUTGOING_CALL_REQUEST, { callId: PNS_ID })],
      ['pac', encodePptpMessage(T.OUTGOING_CALL_REPLY, { callId: PAC_ID, peerCallId: PNS_ID, resultCode: 1 })],
      ['pac', encodePptpMessage(T.INCOMING_CALL_REQUEST, { callId: PAC_ID })],
      ['pns', encodePptpMessage(T.INCOMING_CALL_REPLY, { callId: PNS_ID, peerCallId: PAC_ID, resultCode: 1 })],
      ['pac', encodePptpMessage(T.INCOMING_CALL_CONNECTED, { peerCallId: PNS_ID })],
      ['pac', encodePptpMessage(T.CALL_DISCONNECT_NOTIFY, { callId: PAC_ID })],
    ];
    for (let round = 0; round < 40; round++) {
      const b = bench();
      const s = new ControlSession(b).handshake();
      for (const [from, message] of script) {
        const bytes = Buffer.from(message.subarray(0, 1 + Math.floor(random() * message.length)));
        for (let i = 0; i < 3; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        if (bytes.length >= 8 && random() < 0.5) bytes.writeUInt32BE(0x1a2b3c4d, 4);
        expect(() => (from === 'pns' ? s.fromClient(bytes) : s.fromServer(bytes))).not.toThrow();
      }
      expect(b.core.counters.helperFaults).toBe(0);
      expect(b.core.expectations.size).toBeLessThanOrEqual(2);
    }
  });

  it('reads nothing before the handshake is complete', () => {
    const b = bench();
    const s = new ControlSession(b).handshake();
    const packet = new Packet(Buffer.alloc(0), null);
    packet.buf = s.fromClient(encodePptpMessage(T.ECHO_REQUEST)).buf;
    const before = b.helper.counters.messages;
    expect(b.helper.help(packet, s.entry!, CtInfo.NEW, 20)).toBe(Verdict.ACCEPT);
    expect(b.helper.help(packet, s.entry!, CtInfo.RELATED, 20)).toBe(Verdict.ACCEPT);
    expect(b.helper.counters.messages).toBe(before);
  });
});
