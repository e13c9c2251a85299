/**
 * RFC 2637 control messages: each type as a byte vector written out by hand from the RFC's
 * figures, encoded, parsed in place and read field by field; the size checks; what is not a
 * control message; only the first message of a segment.
 */
import { describe, expect, it } from 'vitest';
import {
  CallClearRequest,
  CallDisconnectNotify,
  EchoReply,
  EchoRequest,
  IncomingCallConnected,
  IncomingCallReply,
  IncomingCallRequest,
  OutgoingCallReply,
  OutgoingCallRequest,
  PPTP_MESSAGE_LENGTHS,
  PptpMessageType as T,
  PptpMessageView,
  PptpParse,
  SetLinkInfo,
  StartControlConnectionReply,
  StartControlConnectionRequest,
  StopControlConnectionReply,
  StopControlConnectionRequest,
  WanErrorNotify,
  encodePptpMessage,
  parsePptpMessage,
  pptpMessageName,
  splitPptpStream,
  type PptpField,
  type PptpFieldValues,
} from '../../../netfilter/helpers/pptp-messages.ts';

const z = (n: number): string => '00'.repeat(n);
const bytes = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const HEADER = (length: string, type: string): string => `${length} 0001 1a2b3c4d ${type} 0000`;

interface Vector {
  type: number;
  fields: PptpFieldValues;
  hex: string;
  /** Fields to read back after parsing, with their values. */
  read: [PptpField, number | string][];
}

const VECTORS: Vector[] = [
  {
    type: T.START_CONTROL_CONNECTION_REQUEST,
    fields: { protocolVersion: 0x0100, framingCapabilities: 3, bearerCapabilities: 3, maximumChannels: 1, firmwareRevision: 1, hostName: 'pns', vendorString: 'v' },
    hex: `${HEADER('009c', '0001')} 0100 0000 00000003 00000003 0001 0001 706e73${z(61)} 76${z(63)}`,
    read: [
      [StartControlConnectionRequest.protocolVersion, 0x0100],
      [StartControlConnectionRequest.maximumChannels, 1],
      [StartControlConnectionRequest.hostName, 'pns'],
      [StartControlConnectionRequest.vendorString, 'v'],
    ],
  },
  {
    type: T.START_CONTROL_CONNECTION_REPLY,
    fields: { protocolVersion: 0x0100, resultCode: 1, framingCapabilities: 3, bearerCapabilities: 3, maximumChannels: 8, firmwareRevision: 1, hostName: 'pac' },
    hex: `${HEADER('009c', '0002')} 0100 01 00 00000003 00000003 0008 0001 706163${z(61)} ${z(64)}`,
    read: [
      [StartControlConnectionReply.resultCode, 1],
      [StartControlConnectionReply.errorCode, 0],
      [StartControlConnectionReply.maximumChannels, 8],
      [StartControlConnectionReply.hostName, 'pac'],
    ],
  },
  {
    type: T.STOP_CONTROL_CONNECTION_REQUEST,
    fields: { reason: 1 },
    hex: `${HEADER('0010', '0003')} 01 00 0000`,
    read: [[StopControlConnectionRequest.reason, 1]],
  },
  {
    type: T.STOP_CONTROL_CONNECTION_REPLY,
    fields: { resultCode: 1 },
    hex: `${HEADER('0010', '0004')} 01 00 0000`,
    read: [[StopControlConnectionReply.resultCode, 1]],
  },
  {
    type: T.ECHO_REQUEST,
    fields: { identifier: 0xdeadbeef },
    hex: `${HEADER('0010', '0005')} deadbeef`,
    read: [[EchoRequest.identifier, 0xdeadbeef]],
  },
  {
    type: T.ECHO_REPLY,
    fields: { identifier: 0xdeadbeef, resultCode: 1 },
    hex: `${HEADER('0014', '0006')} deadbeef 01 00 0000`,
    read: [
      [EchoReply.identifier, 0xdeadbeef],
      [EchoReply.resultCode, 1],
    ],
  },
  {
    type: T.OUTGOING_CALL_REQUEST,
    fields: { callId: 0x1234, callSerialNumber: 1, minimumBps: 300, maximumBps: 100_000_000, bearerType: 3, framingType: 3, receiveWindowSize: 64 },
    hex: `${HEADER('00a8', '0007')} 1234 0001 0000012c 05f5e100 00000003 00000003 0040 0000 0000 0000 ${z(128)}`,
    read: [
      [OutgoingCallRequest.callId, 0x1234],
      [OutgoingCallRequest.callSerialNumber, 1],
      [OutgoingCallRequest.maximumBps, 100_000_000],
      [OutgoingCallRequest.receiveWindowSize, 64],
    ],
  },
  {
    type: T.OUTGOING_CALL_REPLY,
    fields: { callId: 0x0200, peerCallId: 0x1234, resultCode: 1, connectSpeed: 100_000_000, receiveWindowSize: 64 },
    hex: `${HEADER('0020', '0008')} 0200 1234 01 00 0000 05f5e100 0040 0000 00000000`,
    read: [
      [OutgoingCallReply.callId, 0x0200],
      [OutgoingCallReply.peerCallId, 0x1234],
      [OutgoingCallReply.resultCode, 1],
      [OutgoingCallReply.connectSpeed, 100_000_000],
    ],
  },
  {
    type: T.INCOMING_CALL_REQUEST,
    fields: { callId: 0x0300, callSerialNumber: 2, callBearerType: 1 },
    hex: `${HEADER('00dc', '0009')} 0300 0002 00000001 00000000 0000 0000 ${z(192)}`,
    read: [
      [IncomingCallRequest.callId, 0x0300],
      [IncomingCallRequest.callSerialNumber, 2],
    ],
  },
  {
    type: T.INCOMING_CALL_REPLY,
    fields: { callId: 5, peerCallId: 0x0300, resultCode: 1, receiveWindowSize: 64 },
    hex: `${HEADER('0018', '000a')} 0005 0300 01 00 0040 0000 0000`,
    read: [
      [IncomingCallReply.callId, 5],
      [IncomingCallReply.peerCallId, 0x0300],
      [IncomingCallReply.resultCode, 1],
    ],
  },
  {
    type: T.INCOMING_CALL_CONNECTED,
    fields: { peerCallId: 5, connectSpeed: 100_000_000, receiveWindowSize: 64, framingType: 3 },
    hex: `${HEADER('001c', '000b')} 0005 0000 05f5e100 0040 0000 00000003`,
    read: [
      [IncomingCallConnected.peerCallId, 5],
      [IncomingCallConnected.framingType, 3],
    ],
  },
  {
    type: T.CALL_CLEAR_REQUEST,
    fields: { callId: 0x1234 },
    hex: `${HEADER('0010', '000c')} 1234 0000`,
    read: [[CallClearRequest.callId, 0x1234]],
  },
  {
    type: T.CALL_DISCONNECT_NOTIFY,
    fields: { callId: 0x0200, resultCode: 3 },
    hex: `${HEADER('0094', '000d')} 0200 03 00 0000 0000 ${z(128)}`,
    read: [
      [CallDisconnectNotify.callId, 0x0200],
      [CallDisconnectNotify.resultCode, 3],
    ],
  },
  {
    type: T.WAN_ERROR_NOTIFY,
    fields: { peerCallId: 0x1234, crcErrors: 1, framingErrors: 2, hardwareOverruns: 3, bufferOverruns: 4, timeoutErrors: 5, alignmentErrors: 6 },
    hex: `${HEADER('0028', '000e')} 1234 0000 00000001 00000002 00000003 00000004 00000005 00000006`,
    read: [
      [WanErrorNotify.peerCallId, 0x1234],
      [WanErrorNotify.alignmentErrors, 6],
    ],
  },
  {
    type: T.SET_LINK_INFO,
    fields: { peerCallId: 0x0200, sendAccm: 0xffffffff, receiveAccm: 0xffffffff },
    hex: `${HEADER('0018', '000f')} 0200 0000 ffffffff ffffffff`,
    read: [
      [SetLinkInfo.peerCallId, 0x0200],
      [SetLinkInfo.receiveAccm, 0xffffffff],
    ],
  },
];

describe('PPTP control messages', () => {
  it('has the fixed lengths of RFC 2637 for all 15 types', () => {
    expect(PPTP_MESSAGE_LENGTHS.slice(1)).toEqual([156, 156, 16, 16, 16, 20, 168, 32, 220, 24, 28, 16, 148, 40, 24]);
  });

  for (const vector of VECTORS) {
    const name = pptpMessageName(vector.type);
    it(`${name}: encodes to the RFC layout and parses back in place`, () => {
      const expected = bytes(vector.hex);
      expect(expected.length).toBe(PPTP_MESSAGE_LENGTHS[vector.type]);
      expect(encodePptpMessage(vector.type, vector.fields).toString('hex')).toBe(expected.toString('hex'));
      const view = new PptpMessageView();
      expect(parsePptpMessage(expected, 0, expected.length, view)).toBe(PptpParse.OK);
      expect(view.type).toBe(vector.type);
      for (const [field, value] of vector.read) expect(typeof value === 'string' ? view.text(field) : view.get(field)).toBe(value);
    });

    it(`${name}: one byte short is truncated, and the fixed length is enough`, () => {
      const message = bytes(vector.hex);
      const view = new PptpMessageView();
      expect(parsePptpMessage(message, 0, message.length - 1, view)).toBe(PptpParse.TRUNCATED);
      expect(view.type).toBe(vector.type);
      expect(parsePptpMessage(message.subarray(0, message.length - 1), 0, message.length, view)).toBe(PptpParse.TRUNCATED);
      expect(parsePptpMessage(message, 0, message.length, view)).toBe(PptpParse.OK);
    });
  }

  it('reads only the first message of a segment, at an offset inside a bigger buffer', () => {
    const ocrp = encodePptpMessage(T.OUTGOING_CALL_REPLY, { callId: 7, peerCallId: 9, resultCode: 1 });
    const cdn = encodePptpMessage(T.CALL_DISCONNECT_NOTIFY, { callId: 7 });
    const segment = Buffer.concat([Buffer.alloc(40, 0xee), ocrp, cdn]);
    const view = new PptpMessageView();
    expect(parsePptpMessage(segment, 40, segment.length - 40, view)).toBe(PptpParse.OK);
    expect([view.type, view.at, view.get(OutgoingCallReply.callId), view.get(OutgoingCallReply.peerCallId)]).toEqual([T.OUTGOING_CALL_REPLY, 40, 7, 9]);
    expect(view.available).toBe(ocrp.length + cdn.length);
  });

  it('writes through the view into the bytes it reads (no copy)', () => {
    const message = encodePptpMessage(T.OUTGOING_CALL_REQUEST, { callId: 1 });
    const packet = Buffer.concat([Buffer.alloc(52), message]);
    const view = new PptpMessageView();
    parsePptpMessage(packet, 52, message.length, view);
    view.set(OutgoingCallRequest.callId, 0xbeef);
    expect(packet.readUInt16BE(52 + 12)).toBe(0xbeef);
    expect(view.offsetOf(OutgoingCallRequest.callId)).toBe(64);
  });

  it('tells a missing header, a non-control packet, a wrong cookie and an unknown type apart', () => {
    const view = new PptpMessageView();
    const good = encodePptpMessage(T.ECHO_REQUEST, { identifier: 1 });
    expect(parsePptpMessage(good, 0, 7, view)).toBe(PptpParse.NO_HEADER);
    expect(parsePptpMessage(good, 0, 11, view)).toBe(PptpParse.NO_HEADER);
    expect(parsePptpMessage(Buffer.alloc(0), 0, 0, view)).toBe(PptpParse.NO_HEADER);
    const management = Buffer.from(good);
    management.writeUInt16BE(2, 2);
    expect(parsePptpMessage(management, 0, management.length, view)).toBe(PptpParse.NOT_CONTROL);
    const cookie = Buffer.from(good);
    cookie.writeUInt32BE(0x1a2b3c4e, 4);
    expect(parsePptpMessage(cookie, 0, cookie.length, view)).toBe(PptpParse.NOT_CONTROL);
    expect(view.type).toBe(0);
    for (const type of [0, 16, 0xffff]) {
      const unknown = Buffer.from(good);
      unknown.writeUInt16BE(type, 8);
      expect(parsePptpMessage(unknown, 0, unknown.length, view)).toBe(PptpParse.UNKNOWN_TYPE);
      expect(view.type).toBe(type);
    }
  });

  it('never reads past the buffer whatever `available` says', () => {
    const message = encodePptpMessage(T.OUTGOING_CALL_REPLY, { callId: 1 });
    const view = new PptpMessageView();
    expect(parsePptpMessage(message.subarray(0, 20), 0, 10_000, view)).toBe(PptpParse.TRUNCATED);
    expect(view.available).toBe(20);
    expect(parsePptpMessage(message, 30, 10, view)).toBe(PptpParse.NO_HEADER);
    expect(parsePptpMessage(message, 100, 10, view)).toBe(PptpParse.NO_HEADER);
  });

  it('frames a stream by the Length field, keeping a partial message for later', () => {
    const a = encodePptpMessage(T.ECHO_REQUEST, { identifier: 1 });
    const b = encodePptpMessage(T.OUTGOING_CALL_REPLY, { callId: 2 });
    const { messages, rest } = splitPptpStream(Buffer.concat([a, b, b.subarray(0, 5)]));
    expect(messages.map((m) => m.length)).toEqual([16, 32]);
    expect(rest.length).toBe(5);
    const bad = Buffer.from(a);
    bad.writeUInt16BE(4, 0);
    expect(splitPptpStream(bad).messages).toHaveLength(1);
    expect(splitPptpStream(bad).rest.length).toBe(0);
  });

  it('refuses to encode a field the type does not have, or a string too long for its field', () => {
    expect(() => encodePptpMessage(T.ECHO_REQUEST, { callId: 1 })).toThrow(RangeError);
    expect(() => encodePptpMessage(T.START_CONTROL_CONNECTION_REQUEST, { hostName: 'x'.repeat(65) })).toThrow(RangeError);
    expect(() => encodePptpMessage(16)).toThrow(RangeError);
  });
});
