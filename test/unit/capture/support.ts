/** Shared by the capture tests: a sink that keeps what it is given, and a clock moved by hand. */
import type { CaptureClock } from '../../../router/deploy/capture/capture-clock.ts';
import type { CaptureSink, SinkEndListener, SinkEndReason } from '../../../router/deploy/capture/capture-sink.ts';

export const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/**
 * Keeps every committed block. The buffer is filled with 0xee before each reservation, so a byte
 * the encoder forgot to write (padding included) shows up in the output.
 */
export class MemorySink implements CaptureSink {
  buffer = Buffer.alloc(256 * 1024);
  position = 0;
  ended = false;
  readonly blocks: Buffer[] = [];
  /** When set, non-essential blocks are refused (a reader that is behind). */
  behind = false;
  private readonly listeners: SinkEndListener[] = [];

  reserve(length: number, essential = false): boolean {
    if (this.ended || (this.behind && !essential)) return false;
    if (length > this.buffer.length) this.buffer = Buffer.alloc(length);
    this.position = 0;
    this.buffer.fill(0xee, 0, length);
    return true;
  }

  commit(length: number): void {
    this.blocks.push(Buffer.from(this.buffer.subarray(this.position, this.position + length)));
  }

  writeBytes(bytes: Uint8Array): boolean {
    if (this.ended) return false;
    this.blocks.push(Buffer.from(bytes));
    return true;
  }

  flush(): void {}

  close(): Promise<void> {
    this.end('stopped');
    return Promise.resolve();
  }

  onEnd(listener: SinkEndListener): void {
    this.listeners.push(listener);
  }

  /** Ends as a real sink does when its reader goes away. */
  end(reason: SinkEndReason, message = ''): void {
    if (this.ended) return;
    this.ended = true;
    for (const listener of this.listeners) listener(reason, message);
  }

  bytes(): Buffer {
    return Buffer.concat(this.blocks);
  }
}

/** Starts at `originNs`; `advance` moves it. */
export class ManualClock implements CaptureClock {
  elapsed = 0;
  constructor(readonly originNs: bigint) {}
  elapsedNs(): number {
    return this.elapsed;
  }
  advance(ns: number): void {
    this.elapsed += ns;
  }
}

/** One block of a pcapng file, read back for the tests (little-endian sections only). */
export interface ReadBlock {
  type: number;
  /** The body between the total length words. */
  body: Buffer;
  /** Options by type; strings decoded as UTF-8, numbers little-endian (u32, or u64 as a number). */
  options: Map<number, Buffer>;
}

export interface ReadPacket {
  interfaceId: number;
  timestampNs: bigint;
  captured: number;
  original: number;
  data: Buffer;
  direction: number | undefined;
  packetId: number | undefined;
  dropCount: number | undefined;
  comment: string | undefined;
}

const FIXED_BODY: Record<number, number> = { 0x0a0d0d0a: 16, 1: 8 };

/** Walks the blocks of a whole file, checking each block's two length words agree. */
export function readBlocks(file: Buffer): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  for (let at = 0; at < file.length; ) {
    const type = file.readUInt32LE(at);
    const total = file.readUInt32LE(at + 4);
    if (total % 4 !== 0 || file.readUInt32LE(at + total - 4) !== total) throw new Error(`bad block lengths at ${at}`);
    const body = file.subarray(at + 8, at + total - 4);
    const fixed = type === 6 ? 20 + ((body.readUInt32LE(12) + 3) & ~3) : FIXED_BODY[type]!;
    const options = new Map<number, Buffer>();
    for (let p = fixed; p < body.length; ) {
      const code = body.readUInt16LE(p);
      const length = body.readUInt16LE(p + 2);
      if (code === 0) break;
      options.set(code, body.subarray(p + 4, p + 4 + length));
      p += 4 + ((length + 3) & ~3);
    }
    blocks.push({ type, body, options });
    at += total;
  }
  return blocks;
}

const u64 = (value: Buffer | undefined): number | undefined =>
  value ? value.readUInt32LE(0) + value.readUInt32LE(4) * 0x1_0000_0000 : undefined;

export function readPackets(file: Buffer): ReadPacket[] {
  return readBlocks(file)
    .filter((block) => block.type === 6)
    .map(({ body, options }) => ({
      interfaceId: body.readUInt32LE(0),
      timestampNs: (BigInt(body.readUInt32LE(4)) << 32n) | BigInt(body.readUInt32LE(8)),
      captured: body.readUInt32LE(12),
      original: body.readUInt32LE(16),
      data: Buffer.from(body.subarray(20, 20 + body.readUInt32LE(12))),
      direction: options.get(2)?.readUInt32LE(0),
      packetId: u64(options.get(5)),
      dropCount: u64(options.get(4)),
      comment: options.get(1)?.toString('utf8'),
    }));
}

/** if_name of each IDB, in interface id order. */
export function interfaceNames(file: Buffer): string[] {
  return readBlocks(file)
    .filter((block) => block.type === 1)
    .map((block) => block.options.get(2)!.toString('utf8'));
}
