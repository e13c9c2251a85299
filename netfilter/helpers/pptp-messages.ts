/**
 * PPTP control messages (RFC 2637 section 2), read in place from a TCP payload.
 *
 * Every control message starts with the same 12 bytes (section 2, "Control Connection Protocol
 * Operation"):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------------------------------+-------------------------------+
 *   |            Length             |       PPTP Message Type       |
 *   +-------------------------------+-------------------------------+
 *   |                         Magic Cookie                          |
 *   +-------------------------------+-------------------------------+
 *   |     Control Message Type      |           Reserved0           |
 *   +-------------------------------+-------------------------------+
 *   |                 ... message-specific fields ...               |
 *
 * PPTP Message Type 1 is a control message, Magic Cookie is 0x1A2B3C4D, and the Control Message
 * Type (1..15) selects the layout of the rest. Each layout below is an offset table from the start
 * of the message (field offset and size in bytes), after the figure in the RFC section named on it.
 * All sizes are the fixed lengths of the RFC; the strings (host name, phone number, statistics) are
 * fixed-size fields padded with zero bytes.
 *
 * What the parser checks, as the kernel's nf_conntrack_pptp does:
 * - the 8-byte PPTP header is present, its message type is 1 and the cookie is right; otherwise
 *   the segment is "not a control message" and left alone;
 * - the control header (message type) is present;
 * - for a known message type, the rest of the segment holds at least that type's fixed length
 *   (shorter: TRUNCATED). Extra bytes are allowed: a segment may carry more than one message, and
 *   only the first is read. The Length field itself is not trusted (the kernel ignores it too).
 * An unknown type (0, or above 15) parses as UNKNOWN_TYPE with just its header readable.
 *
 * Nothing here allocates on the parse path: a `PptpMessageView` is reused and only records where
 * the message starts and how many bytes follow.
 */
import { readU16, readU32, writeU16, writeU32 } from '../../router/wire/bytes.ts';

export const PPTP_CONTROL_PORT = 1723;
export const PPTP_MAGIC_COOKIE = 0x1a2b3c4d;
/** PPTP Message Type values (section 2). */
export const PptpPacketType = { CONTROL: 1, MANAGEMENT: 2 } as const;

/** Control Message Type values (section 2, table of messages). */
export const PptpMessageType = {
  START_CONTROL_CONNECTION_REQUEST: 1,
  START_CONTROL_CONNECTION_REPLY: 2,
  STOP_CONTROL_CONNECTION_REQUEST: 3,
  STOP_CONTROL_CONNECTION_REPLY: 4,
  ECHO_REQUEST: 5,
  ECHO_REPLY: 6,
  OUTGOING_CALL_REQUEST: 7,
  OUTGOING_CALL_REPLY: 8,
  INCOMING_CALL_REQUEST: 9,
  INCOMING_CALL_REPLY: 10,
  INCOMING_CALL_CONNECTED: 11,
  CALL_CLEAR_REQUEST: 12,
  CALL_DISCONNECT_NOTIFY: 13,
  WAN_ERROR_NOTIFY: 14,
  SET_LINK_INFO: 15,
} as const;
export type PptpMessageType = (typeof PptpMessageType)[keyof typeof PptpMessageType];
export const PPTP_MESSAGE_TYPE_MAX = 15;

/** Short names, as logs and the peers print them; index = message type. */
export const PPTP_MESSAGE_NAMES: readonly string[] = [
  'UNKNOWN',
  'SCCRQ',
  'SCCRP',
  'StopCCRQ',
  'StopCCRP',
  'EchoRQ',
  'EchoRP',
  'OCRQ',
  'OCRP',
  'ICRQ',
  'ICRP',
  'ICCN',
  'CCRQ',
  'CDN',
  'WEN',
  'SLI',
];

export function pptpMessageName(type: number): string {
  return type >= 1 && type <= PPTP_MESSAGE_TYPE_MAX ? PPTP_MESSAGE_NAMES[type]! : `UNKNOWN(${type})`;
}

/** A field: its offset from the start of the message and its size in bytes (1, 2, 4, or a string's). */
export interface PptpField {
  readonly offset: number;
  readonly size: number;
}

const field = (offset: number, size: number): PptpField => Object.freeze({ offset, size });

/** The 12 bytes every control message starts with. */
export const PptpHeader = {
  length: field(0, 2),
  packetType: field(2, 2),
  magicCookie: field(4, 4),
  messageType: field(8, 2),
  reserved0: field(10, 2),
} as const;
export const PPTP_HEADER_LENGTH = 12;
/** The part the kernel calls pptp_pkt_hdr: length, packet type, cookie. */
export const PPTP_PACKET_HEADER_LENGTH = 8;

/** 2.1 Start-Control-Connection-Request. */
export const StartControlConnectionRequest = {
  protocolVersion: field(12, 2),
  reserved1: field(14, 2),
  framingCapabilities: field(16, 4),
  bearerCapabilities: field(20, 4),
  maximumChannels: field(24, 2),
  firmwareRevision: field(26, 2),
  hostName: field(28, 64),
  vendorString: field(92, 64),
} as const;

/** 2.2 Start-Control-Connection-Reply. */
export const StartControlConnectionReply = {
  protocolVersion: field(12, 2),
  resultCode: field(14, 1),
  errorCode: field(15, 1),
  framingCapabilities: field(16, 4),
  bearerCapabilities: field(20, 4),
  maximumChannels: field(24, 2),
  firmwareRevision: field(26, 2),
  hostName: field(28, 64),
  vendorString: field(92, 64),
} as const;

/** 2.3 Stop-Control-Connection-Request. */
export const StopControlConnectionRequest = {
  reason: field(12, 1),
  reserved1: field(13, 1),
  reserved2: field(14, 2),
} as const;

/** 2.4 Stop-Control-Connection-Reply. */
export const StopControlConnectionReply = {
  resultCode: field(12, 1),
  errorCode: field(13, 1),
  reserved2: field(14, 2),
} as const;

/** 2.5 Echo-Request. */
export const EchoRequest = {
  identifier: field(12, 4),
} as const;

/** 2.6 Echo-Reply. */
export const EchoReply = {
  identifier: field(12, 4),
  resultCode: field(16, 1),
  errorCode: field(17, 1),
  reserved1: field(18, 2),
} as const;

/** 2.7 Outgoing-Call-Request (PNS -> PAC). */
export const OutgoingCallRequest = {
  callId: field(12, 2),
  callSerialNumber: field(14, 2),
  minimumBps: field(16, 4),
  maximumBps: field(20, 4),
  bearerType: field(24, 4),
  framingType: field(28, 4),
  receiveWindowSize: field(32, 2),
  processingDelay: field(34, 2),
  phoneNumberLength: field(36, 2),
  reserved1: field(38, 2),
  phoneNumber: field(40, 64),
  subaddress: field(104, 64),
} as const;

/** 2.8 Outgoing-Call-Reply (PAC -> PNS). */
export const OutgoingCallReply = {
  callId: field(12, 2),
  peerCallId: field(14, 2),
  resultCode: field(16, 1),
  errorCode: field(17, 1),
  causeCode: field(18, 2),
  connectSpeed: field(20, 4),
  receiveWindowSize: field(24, 2),
  processingDelay: field(26, 2),
  physicalChannelId: field(28, 4),
} as const;

/** 2.9 Incoming-Call-Request (PAC -> PNS). */
export const IncomingCallRequest = {
  callId: field(12, 2),
  callSerialNumber: field(14, 2),
  callBearerType: field(16, 4),
  physicalChannelId: field(20, 4),
  dialedNumberLength: field(24, 2),
  dialingNumberLength: field(26, 2),
  dialedNumber: field(28, 64),
  dialingNumber: field(92, 64),
  subaddress: field(156, 64),
} as const;

/** 2.10 Incoming-Call-Reply (PNS -> PAC). */
export const IncomingCallReply = {
  callId: field(12, 2),
  peerCallId: field(14, 2),
  resultCode: field(16, 1),
  errorCode: field(17, 1),
  receiveWindowSize: field(18, 2),
  transmitDelay: field(20, 2),
  reserved1: field(22, 2),
} as const;

/** 2.11 Incoming-Call-Connected (PAC -> PNS). */
export const IncomingCallConnected = {
  peerCallId: field(12, 2),
  reserved1: field(14, 2),
  connectSpeed: field(16, 4),
  receiveWindowSize: field(20, 2),
  transmitDelay: field(22, 2),
  framingType: field(24, 4),
} as const;

/** 2.12 Call-Clear-Request (PNS -> PAC). */
export const CallClearRequest = {
  callId: field(12, 2),
  reserved1: field(14, 2),
} as const;

/** 2.13 Call-Disconnect-Notify (PAC -> PNS). */
export const CallDisconnectNotify = {
  callId: field(12, 2),
  resultCode: field(14, 1),
  errorCode: field(15, 1),
  causeCode: field(16, 2),
  reserved1: field(18, 2),
  callStatistics: field(20, 128),
} as const;

/** 2.14 WAN-Error-Notify (PAC -> PNS). */
export const WanErrorNotify = {
  peerCallId: field(12, 2),
  reserved1: field(14, 2),
  crcErrors: field(16, 4),
  framingErrors: field(20, 4),
  hardwareOverruns: field(24, 4),
  bufferOverruns: field(28, 4),
  timeoutErrors: field(32, 4),
  alignmentErrors: field(36, 4),
} as const;

/** 2.15 Set-Link-Info (either way). */
export const SetLinkInfo = {
  peerCallId: field(12, 2),
  reserved1: field(14, 2),
  sendAccm: field(16, 4),
  receiveAccm: field(20, 4),
} as const;

/** Offset tables by message type (index 0 unused). */
export const PPTP_MESSAGE_FIELDS: readonly (Readonly<Record<string, PptpField>> | null)[] = [
  null,
  StartControlConnectionRequest,
  StartControlConnectionReply,
  StopControlConnectionRequest,
  StopControlConnectionReply,
  EchoRequest,
  EchoReply,
  OutgoingCallRequest,
  OutgoingCallReply,
  IncomingCallRequest,
  IncomingCallReply,
  IncomingCallConnected,
  CallClearRequest,
  CallDisconnectNotify,
  WanErrorNotify,
  SetLinkInfo,
];

/** The fixed length of each message, header included (the RFC's Length value); index = type. */
export const PPTP_MESSAGE_LENGTHS: readonly number[] = PPTP_MESSAGE_FIELDS.map((fields) => {
  if (!fields) return 0;
  let end = PPTP_HEADER_LENGTH;
  for (const f of Object.values(fields)) end = Math.max(end, f.offset + f.size);
  return end;
});

/** Result codes used by the state machines (sections 2.2, 2.4, 2.8, 2.10). */
export const PptpResult = {
  START_OK: 1,
  STOP_OK: 1,
  ECHO_OK: 1,
  OUTGOING_CALL_CONNECTED: 1,
  INCOMING_CALL_ACCEPT: 1,
} as const;

export const PptpParse = {
  OK: 0,
  /** Fewer than 8 bytes: no PPTP header to read. */
  NO_HEADER: 1,
  /** PPTP Message Type is not 1 (control), or the cookie is wrong. */
  NOT_CONTROL: 2,
  /** A control message whose type-specific fields do not fit in the segment. */
  TRUNCATED: 3,
  /** Control Message Type 0 or above 15: only the header can be read. */
  UNKNOWN_TYPE: 4,
} as const;
export type PptpParse = (typeof PptpParse)[keyof typeof PptpParse];

export const PPTP_PARSE_NAMES: readonly string[] = ['ok', 'no-header', 'not-control', 'truncated', 'unknown-type'];

/**
 * A control message in place: `buf[at]` is its first byte and `available` bytes of the segment
 * follow from there. After an OK parse every field of `type`'s table is inside the buffer.
 */
export class PptpMessageView {
  buf: Uint8Array = new Uint8Array(0);
  at = 0;
  available = 0;
  type = 0;

  /** A 1-, 2- or 4-byte field as an unsigned number. */
  get(f: PptpField): number {
    const i = this.at + f.offset;
    if (f.size === 1) return this.buf[i]!;
    if (f.size === 2) return readU16(this.buf, i);
    return readU32(this.buf, i);
  }

  /** Writes a 1-, 2- or 4-byte field (no checksum handling: see the NAT half). */
  set(f: PptpField, value: number): void {
    const i = this.at + f.offset;
    if (f.size === 1) this.buf[i] = value;
    else if (f.size === 2) writeU16(this.buf, i, value);
    else writeU32(this.buf, i, value);
  }

  /** A string field up to its first zero byte (latin1). Allocates: for logs and the test peers. */
  text(f: PptpField): string {
    const start = this.at + f.offset;
    let end = start;
    const limit = start + f.size;
    while (end < limit && this.buf[end] !== 0) end++;
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('latin1');
  }

  /** Where a field lies in `buf`. */
  offsetOf(f: PptpField): number {
    return this.at + f.offset;
  }
}

/**
 * Reads the first control message of the `available` bytes at `buf[at]` (a TCP payload) into
 * `view`. On NOT_CONTROL and NO_HEADER the view's type is 0.
 */
export function parsePptpMessage(buf: Uint8Array, at: number, available: number, view: PptpMessageView): PptpParse {
  view.buf = buf;
  view.at = at;
  view.available = Math.max(0, Math.min(available, buf.length - at));
  view.type = 0;
  if (view.available < PPTP_PACKET_HEADER_LENGTH) return PptpParse.NO_HEADER;
  if (readU16(buf, at + PptpHeader.packetType.offset) !== PptpPacketType.CONTROL || readU32(buf, at + PptpHeader.magicCookie.offset) !== PPTP_MAGIC_COOKIE) {
    return PptpParse.NOT_CONTROL;
  }
  // The kernel gives up quietly when the control header is missing too.
  if (view.available < PPTP_HEADER_LENGTH) return PptpParse.NO_HEADER;
  const type = readU16(buf, at + PptpHeader.messageType.offset);
  view.type = type;
  if (type < 1 || type > PPTP_MESSAGE_TYPE_MAX) return PptpParse.UNKNOWN_TYPE;
  return view.available < PPTP_MESSAGE_LENGTHS[type]! ? PptpParse.TRUNCATED : PptpParse.OK;
}

/** Field values for building a message: numbers for integer fields, strings for text fields. */
export type PptpFieldValues = Readonly<Record<string, number | string>>;

/**
 * Builds one control message of `type` with the RFC's fixed length, the header filled in and
 * every field not given left zero. For tests and the test peers (allocates). Throws a RangeError
 * for a field the type does not have or a string longer than its field.
 */
export function encodePptpMessage(type: number, values: PptpFieldValues = {}): Buffer {
  const fields = PPTP_MESSAGE_FIELDS[type];
  if (!fields) throw new RangeError(`PPTP: no control message type ${type}`);
  const length = PPTP_MESSAGE_LENGTHS[type]!;
  const buf = Buffer.alloc(length);
  writeU16(buf, PptpHeader.length.offset, length);
  writeU16(buf, PptpHeader.packetType.offset, PptpPacketType.CONTROL);
  writeU32(buf, PptpHeader.magicCookie.offset, PPTP_MAGIC_COOKIE);
  writeU16(buf, PptpHeader.messageType.offset, type);
  const view = new PptpMessageView();
  view.buf = buf;
  view.available = length;
  view.type = type;
  for (const [name, value] of Object.entries(values)) {
    const f = fields[name];
    if (!f) throw new RangeError(`PPTP ${pptpMessageName(type)} has no field ${name}`);
    if (typeof value === 'string') {
      const bytes = Buffer.from(value, 'latin1');
      if (bytes.length > f.size) throw new RangeError(`PPTP ${pptpMessageName(type)}.${name}: "${value}" is longer than ${f.size} bytes`);
      bytes.copy(buf, f.offset);
    } else {
      if (f.size > 4) throw new RangeError(`PPTP ${pptpMessageName(type)}.${name} is a text field`);
      view.set(f, value);
    }
  }
  return buf;
}

/**
 * Splits a byte stream into whole control messages by their Length field, for the test peers
 * reading a TCP stream. Returns the messages and the bytes left over. A Length below 12 cannot
 * frame anything: the rest of the stream is returned as one bad message so the reader can stop.
 */
export function splitPptpStream(stream: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let at = 0;
  while (stream.length - at >= 2) {
    const length = readU16(stream, at);
    if (length < PPTP_HEADER_LENGTH) {
      messages.push(stream.subarray(at));
      return { messages, rest: Buffer.alloc(0) };
    }
    if (stream.length - at < length) break;
    messages.push(stream.subarray(at, at + length));
    at += length;
  }
  return { messages, rest: stream.subarray(at) };
}
