/**
 * The pcapng blocks vrouter writes (draft-ietf-opsawg-pcapng, "PCAP Now Generic (pcapng) Capture
 * File Format"): encoders that write one whole block into a buffer at an offset, and the lengths
 * to reserve for them. No state here: the writer (pcapng-writer.ts) numbers the interfaces.
 *
 * Every block has the general structure of section 3.1:
 *
 *    0 |                          Block Type                           |
 *    4 |                      Block Total Length                       |
 *    8 /                          Block Body                           /
 *      /              variable length, padded to 32 bits               /
 *      |                      Block Total Length                       |
 *
 * and its options are a list of (type u16, length u16, value padded to 32 bits) ended by
 * opt_endofopt (section 3.5). Numbers are written little-endian: a section is in the writer's byte
 * order, announced by the Byte-Order Magic of its Section Header Block (sections 3.6.1, 4.1), and
 * padding is zeros (section 3.6.2). Strings are UTF-8, not zero-terminated (sections 3.5, 3.6.3);
 * Buffer.write never writes half a character, so a truncated string stays valid UTF-8.
 *
 * Blocks written:
 *   - Section Header Block (4.1): magic, version 1.0, section length -1 (unknown: the file is
 *     written as a stream), shb_userappl.
 *   - Interface Description Block (4.2): LINKTYPE_RAW, a snap length, if_name, if_description,
 *     if_tsresol = 9 (timestamps count nanoseconds).
 *   - Enhanced Packet Block (4.3): interface id, 64-bit timestamp as two u32 halves (high first),
 *     captured and original lengths, the packet padded to 32 bits, then epb_flags (direction in
 *     bits 0-1, section 4.3.1), epb_packetid (u64), epb_dropcount (u64, when packets were lost
 *     since this interface's previous block) and opt_comment (when given).
 */

/** Block types (section 10.1). */
export const PcapngBlockType = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  ENHANCED_PACKET: 0x00000006,
} as const;

export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
export const PCAPNG_MAJOR_VERSION = 1;
export const PCAPNG_MINOR_VERSION = 0;

/** Option types: common (3.5), SHB (4.1), IDB (4.2), EPB (4.3). */
export const PcapngOption = {
  END_OF_OPTIONS: 0,
  COMMENT: 1,
  SHB_USER_APPLICATION: 4,
  IF_NAME: 2,
  IF_DESCRIPTION: 3,
  IF_TSRESOL: 9,
  EPB_FLAGS: 2,
  EPB_DROP_COUNT: 4,
  EPB_PACKET_ID: 5,
} as const;

/** Raw IP: the packet begins with the IPv4 (or IPv6) header, no link layer (LINKTYPE_RAW). */
export const LINKTYPE_RAW = 101;
/** if_tsresol: the most significant bit clear, so 10^-9 seconds. */
export const TSRESOL_NANOSECONDS = 9;
/** No IPv4 datagram is longer. */
export const PCAPNG_SNAP_LENGTH = 65535;
/** An option's value length is a u16. */
export const MAX_OPTION_VALUE_LENGTH = 65535;

/** epb_flags bits 0-1 (section 4.3.1); 0 means "not available" and writes no epb_flags. */
export const CaptureDirection = { UNKNOWN: 0, INBOUND: 1, OUTBOUND: 2 } as const;
export type CaptureDirection = (typeof CaptureDirection)[keyof typeof CaptureDirection];

const BLOCK_HEADER = 8; // type + total length
const BLOCK_TRAILER = 4; // total length again
const OPTION_HEADER = 4; // type + length
const END_OF_OPTIONS = OPTION_HEADER;
const SHB_FIXED = 16; // magic, versions, section length
const IDB_FIXED = 8; // link type, reserved, snap length
const EPB_FIXED = 20; // interface id, timestamp, captured and original length
const TWO_POW_32 = 0x1_0000_0000;

export const pad32 = (n: number): number => (n + 3) & ~3;

function optionLength(valueLength: number): number {
  return OPTION_HEADER + pad32(valueLength);
}

// Little-endian stores as plain byte writes (a Uint8Array store keeps the low 8 bits): cheaper per
// packet than Buffer's checked writeUInt*LE.
function writeU16(buf: Buffer, at: number, value: number): void {
  buf[at] = value;
  buf[at + 1] = value >>> 8;
}

function writeU32(buf: Buffer, at: number, value: number): void {
  buf[at] = value;
  buf[at + 1] = value >>> 8;
  buf[at + 2] = value >>> 16;
  buf[at + 3] = value >>> 24;
}

/** A u64 as two u32 halves in little-endian order: exact for any safe integer. */
function writeU64(buf: Buffer, at: number, value: number): void {
  writeU32(buf, at, value % TWO_POW_32);
  writeU32(buf, at + 4, Math.floor(value / TWO_POW_32));
}

/** Zeroes the (at most 3) padding bytes from `from` to `to`: a loop, cheaper than fill's native call. */
function zeroPadding(buf: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) buf[i] = 0;
}

/** Writes the option header, then zero padding after `valueLength` value bytes; returns the end. */
function optionFrame(buf: Buffer, at: number, type: number, valueLength: number): number {
  writeU16(buf, at, type);
  writeU16(buf, at + 2, valueLength);
  const end = at + optionLength(valueLength);
  zeroPadding(buf, at + OPTION_HEADER + valueLength, end);
  return end;
}

/** A UTF-8 string option of exactly `byteLength` bytes (from utf8OptionLength). */
function stringOption(buf: Buffer, at: number, type: number, text: string, byteLength: number): number {
  buf.write(text, at + OPTION_HEADER, byteLength, 'utf8');
  return optionFrame(buf, at, type, byteLength);
}

/**
 * How many bytes of `text` a string option holds: its UTF-8 length, cut to `limit` at a character
 * boundary (so the bytes Buffer.write writes and the length field agree).
 */
export function utf8OptionLength(text: string, limit = MAX_OPTION_VALUE_LENGTH): number {
  const full = Buffer.byteLength(text, 'utf8');
  if (full <= limit) return full;
  let cut = limit;
  // Back off over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  const bytes = Buffer.from(text, 'utf8');
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return cut;
}

function blockFrame(buf: Buffer, at: number, type: number, totalLength: number): void {
  writeU32(buf, at, type);
  writeU32(buf, at + 4, totalLength);
  writeU32(buf, at + totalLength - BLOCK_TRAILER, totalLength);
}

// ---- Section Header Block (4.1) ----

export function sectionHeaderLength(userApplicationBytes: number): number {
  const options = userApplicationBytes > 0 ? optionLength(userApplicationBytes) : 0;
  return BLOCK_HEADER + SHB_FIXED + options + END_OF_OPTIONS + BLOCK_TRAILER;
}

/** Writes an SHB at `at`; returns its length. `userApplication` may be '' (then no shb_userappl). */
export function encodeSectionHeader(buf: Buffer, at: number, userApplication: string): number {
  const appBytes = utf8OptionLength(userApplication);
  const total = sectionHeaderLength(appBytes);
  blockFrame(buf, at, PcapngBlockType.SECTION_HEADER, total);
  writeU32(buf, at + 8, BYTE_ORDER_MAGIC);
  writeU16(buf, at + 12, PCAPNG_MAJOR_VERSION);
  writeU16(buf, at + 14, PCAPNG_MINOR_VERSION);
  writeU32(buf, at + 16, 0xffffffff); // section length -1: not known
  writeU32(buf, at + 20, 0xffffffff);
  let p = at + BLOCK_HEADER + SHB_FIXED;
  if (appBytes > 0) p = stringOption(buf, p, PcapngOption.SHB_USER_APPLICATION, userApplication, appBytes);
  optionFrame(buf, p, PcapngOption.END_OF_OPTIONS, 0);
  return total;
}

// ---- Interface Description Block (4.2) ----

export function interfaceDescriptionLength(nameBytes: number, descriptionBytes: number): number {
  return (
    BLOCK_HEADER +
    IDB_FIXED +
    optionLength(nameBytes) +
    (descriptionBytes > 0 ? optionLength(descriptionBytes) : 0) +
    optionLength(1) + // if_tsresol
    END_OF_OPTIONS +
    BLOCK_TRAILER
  );
}

/** Writes an IDB for a raw-IP interface at `at`; returns its length. */
export function encodeInterfaceDescription(buf: Buffer, at: number, name: string, description: string): number {
  const nameBytes = utf8OptionLength(name);
  const descriptionBytes = utf8OptionLength(description);
  const total = interfaceDescriptionLength(nameBytes, descriptionBytes);
  blockFrame(buf, at, PcapngBlockType.INTERFACE_DESCRIPTION, total);
  writeU16(buf, at + 8, LINKTYPE_RAW);
  writeU16(buf, at + 10, 0); // reserved
  writeU32(buf, at + 12, PCAPNG_SNAP_LENGTH);
  let p = at + BLOCK_HEADER + IDB_FIXED;
  p = stringOption(buf, p, PcapngOption.IF_NAME, name, nameBytes);
  if (descriptionBytes > 0) p = stringOption(buf, p, PcapngOption.IF_DESCRIPTION, description, descriptionBytes);
  buf[p + OPTION_HEADER] = TSRESOL_NANOSECONDS;
  p = optionFrame(buf, p, PcapngOption.IF_TSRESOL, 1);
  optionFrame(buf, p, PcapngOption.END_OF_OPTIONS, 0);
  return total;
}

// ---- Enhanced Packet Block (4.3) ----

/** The bytes of a packet an EPB holds (the rest is cut by the snap length). */
export function capturedLength(length: number): number {
  return length < PCAPNG_SNAP_LENGTH ? length : PCAPNG_SNAP_LENGTH;
}

export function enhancedPacketLength(
  captured: number,
  direction: CaptureDirection,
  dropCount: number,
  commentBytes: number,
): number {
  return (
    BLOCK_HEADER +
    EPB_FIXED +
    pad32(captured) +
    (direction !== CaptureDirection.UNKNOWN ? optionLength(4) : 0) +
    optionLength(8) + // epb_packetid
    (dropCount > 0 ? optionLength(8) : 0) +
    (commentBytes > 0 ? optionLength(commentBytes) : 0) +
    END_OF_OPTIONS +
    BLOCK_TRAILER
  );
}

/**
 * Writes an EPB at `at`: `length` packet bytes from `packet` at `packetOffset` (cut to the snap
 * length), timestamp (high, low) in the interface's if_tsresol units, and the options. The caller
 * reserved enhancedPacketLength(capturedLength(length), direction, dropCount, commentBytes) bytes,
 * with commentBytes = utf8OptionLength(comment). Returns the block's length.
 */
export function encodeEnhancedPacket(
  buf: Buffer,
  at: number,
  interfaceId: number,
  timestampHigh: number,
  timestampLow: number,
  packet: Uint8Array,
  packetOffset: number,
  length: number,
  direction: CaptureDirection,
  packetId: number,
  dropCount: number,
  comment: string | undefined,
  commentBytes: number,
): number {
  const captured = capturedLength(length);
  const total = enhancedPacketLength(captured, direction, dropCount, commentBytes);
  blockFrame(buf, at, PcapngBlockType.ENHANCED_PACKET, total);
  writeU32(buf, at + 8, interfaceId);
  writeU32(buf, at + 12, timestampHigh);
  writeU32(buf, at + 16, timestampLow);
  writeU32(buf, at + 20, captured);
  writeU32(buf, at + 24, length);
  let p = at + BLOCK_HEADER + EPB_FIXED;
  // A whole-buffer packet (what a receiver gets) is copied without making a view first.
  if (packetOffset === 0 && captured === packet.length) buf.set(packet, p);
  else buf.set(packet.subarray(packetOffset, packetOffset + captured), p);
  const padded = p + pad32(captured);
  zeroPadding(buf, p + captured, padded);
  p = padded;
  if (direction !== CaptureDirection.UNKNOWN) {
    writeU32(buf, p + OPTION_HEADER, direction);
    p = optionFrame(buf, p, PcapngOption.EPB_FLAGS, 4);
  }
  writeU64(buf, p + OPTION_HEADER, packetId);
  p = optionFrame(buf, p, PcapngOption.EPB_PACKET_ID, 8);
  if (dropCount > 0) {
    writeU64(buf, p + OPTION_HEADER, dropCount);
    p = optionFrame(buf, p, PcapngOption.EPB_DROP_COUNT, 8);
  }
  if (commentBytes > 0) p = stringOption(buf, p, PcapngOption.COMMENT, comment!, commentBytes);
  optionFrame(buf, p, PcapngOption.END_OF_OPTIONS, 0);
  return total;
}
