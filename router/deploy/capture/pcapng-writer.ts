/**
 * Writes one pcapng section to a sink: the Section Header Block when made, an Interface
 * Description Block per `addInterface` (whenever it is called: an IDB may come after packets of
 * other interfaces, as long as it comes before its own, draft-ietf-opsawg-pcapng section 4.2), and
 * an Enhanced Packet Block per `writePacket`, encoded straight into the sink's buffer.
 *
 * Interface ids are the IDBs' order in the section, from 0 (section 4.2).
 */
import {
  capturedLength,
  encodeEnhancedPacket,
  encodeInterfaceDescription,
  encodeSectionHeader,
  enhancedPacketLength,
  interfaceDescriptionLength,
  sectionHeaderLength,
  utf8OptionLength,
  type CaptureDirection,
} from './pcapng.ts';
import type { CaptureSink } from './capture-sink.ts';

export const USER_APPLICATION = 'vrouter';

export class PcapngWriter {
  private interfaces = 0;

  constructor(
    readonly sink: CaptureSink,
    userApplication = USER_APPLICATION,
  ) {
    const length = sectionHeaderLength(utf8OptionLength(userApplication));
    if (sink.reserve(length, true)) sink.commit(encodeSectionHeader(sink.buffer, sink.position, userApplication));
  }

  get interfaceCount(): number {
    return this.interfaces;
  }

  /** Writes an IDB; returns the interface id packets of this interface are written with. */
  addInterface(name: string, description: string): number {
    const length = interfaceDescriptionLength(utf8OptionLength(name), utf8OptionLength(description));
    if (this.sink.reserve(length, true)) {
      this.sink.commit(encodeInterfaceDescription(this.sink.buffer, this.sink.position, name, description));
    }
    return this.interfaces++;
  }

  /**
   * Writes an EPB for `length` bytes of `packet` at `offset`. `timestampHigh`/`timestampLow` are
   * the two halves of the nanosecond count since 1970; `dropCount` is how many packets of this
   * interface were lost since its previous block (0: none, no option). Returns false when the
   * sink did not take the block (ended, or its reader is behind).
   */
  writePacket(
    interfaceId: number,
    direction: CaptureDirection,
    packetId: number,
    timestampHigh: number,
    timestampLow: number,
    packet: Uint8Array,
    offset: number,
    length: number,
    comment?: string,
    dropCount = 0,
  ): boolean {
    const commentBytes = comment ? utf8OptionLength(comment) : 0;
    const sink = this.sink;
    if (!sink.reserve(enhancedPacketLength(capturedLength(length), direction, dropCount, commentBytes))) return false;
    const written = encodeEnhancedPacket(
      sink.buffer,
      sink.position,
      interfaceId,
      timestampHigh,
      timestampLow,
      packet,
      offset,
      length,
      direction,
      packetId,
      dropCount,
      comment,
      commentBytes,
    );
    sink.commit(written);
    return true;
  }
}
