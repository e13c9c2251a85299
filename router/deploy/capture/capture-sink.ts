/**
 * Where a capture's bytes go: a file, written in batches, or a stream (stdout, a pipe, a control
 * connection), written a block at a time so that `| wireshark -k -i -` sees each packet as it
 * happens.
 *
 * The writer encodes each block straight into the sink's buffer: `reserve(n)` makes room for n
 * bytes at `position` in `buffer`, the writer fills them, `commit(n)` hands them on. Nothing is
 * copied between the encoder and the file or stream.
 *
 * A sink ends by itself when its reader goes away (EPIPE, a reset or closed connection: reason
 * 'closed') or a write fails (reason 'error', with the message): it tells its `onEnd` listeners
 * once and refuses everything after. Nothing here throws after the sink is open, and a closed
 * pipe is an ordinary end, never an uncaught 'error' event.
 *
 * Memory is bounded whatever the reader does: a file sink holds one batch; a stream sink refuses
 * blocks (the writer counts them as dropped) while more than `maxQueuedBytes` wait to be sent,
 * except "essential" blocks (section and interface headers, a few per interface), without which
 * later packets could not be read.
 */
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

export type SinkEndReason = 'closed' | 'error' | 'stopped';
export type SinkEndListener = (reason: SinkEndReason, message: string) => void;

export interface CaptureSink {
  /** The buffer the reserved bytes are in: read after `reserve`, it may change at each call. */
  readonly buffer: Buffer;
  /** Where the reserved bytes start in `buffer`. */
  readonly position: number;
  readonly ended: boolean;
  /**
   * Room for one block of `length` bytes at `position`. False when the sink has ended, or when it
   * cannot take a non-essential block now (the reader is behind): the block is then not written.
   */
  reserve(length: number, essential?: boolean): boolean;
  /** The `length` bytes at `position`, encoded since `reserve`, are one whole block. */
  commit(length: number): void;
  /** Copies bytes through (a relay of an already encoded capture); false if not taken. */
  writeBytes(bytes: Uint8Array): boolean;
  /** Sends what is batched now. */
  flush(): void;
  /** Flushes, ends the file or stream, and resolves when the bytes are out. */
  close(): Promise<void>;
  /** Called once, when the sink ends (also for `close`, with reason 'stopped'). */
  onEnd(listener: SinkEndListener): void;
}

/** A capture file that cannot be opened: at the API or config boundary, with the path and cause. */
export class CaptureFileError extends Error {
  readonly code = 'EVROUTERCAPTUREFILE';
}

/** The reader went away: an ordinary end of a live capture. */
const READER_GONE = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

function isReaderGone(error: unknown): boolean {
  return READER_GONE.has((error as NodeJS.ErrnoException).code ?? '');
}

abstract class SinkBase {
  private endReason: SinkEndReason | null = null;
  private readonly listeners: SinkEndListener[] = [];

  get ended(): boolean {
    return this.endReason !== null;
  }

  onEnd(listener: SinkEndListener): void {
    this.listeners.push(listener);
  }

  /** Ends the sink once; later calls are ignored. */
  protected finish(reason: SinkEndReason, message = ''): void {
    if (this.endReason !== null) return;
    this.endReason = reason;
    this.released();
    for (const listener of this.listeners) listener(reason, message);
  }

  /** Let go of timers and descriptors. */
  protected abstract released(): void;
}

export interface FileSinkOptions {
  /** Bytes batched before a write (grown for a larger block). Default 256 KiB. */
  batchBytes?: number;
  /** A timer flushes the batch this often, so a file being read while written stays current. 0: none. Default 1000. */
  flushIntervalMs?: number;
  /** Write every block as it is committed. Default: when the target is not a regular file (a FIFO, /dev/stdout). */
  perBlock?: boolean;
  /** Close the descriptor at the end. Default true (false for a descriptor the sink did not open). */
  ownsDescriptor?: boolean;
}

const DEFAULT_BATCH_BYTES = 256 * 1024;
const DEFAULT_FLUSH_INTERVAL_MS = 1000;

/**
 * A file descriptor written with writeSync: batches for a regular file, one block at a time for
 * a FIFO or character device. Opening a FIFO waits for its reader, as any writer of a FIFO does.
 */
export class FileSink extends SinkBase implements CaptureSink {
  buffer: Buffer;
  position = 0;
  private readonly perBlock: boolean;
  private readonly ownsDescriptor: boolean;
  private timer: NodeJS.Timeout | null = null;
  private fdOpen = true;

  /** Opens (creates or truncates) `path`; throws CaptureFileError naming the path and the cause. */
  static open(path: string, options: FileSinkOptions = {}): FileSink {
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (error) {
      throw new CaptureFileError(`cannot write the capture file ${path}: ${(error as Error).message}`);
    }
    return new FileSink(fd, path, options);
  }

  constructor(
    private readonly fd: number,
    /** Names the file in error messages. */
    readonly label: string,
    options: FileSinkOptions = {},
  ) {
    super();
    this.buffer = Buffer.allocUnsafe(options.batchBytes ?? DEFAULT_BATCH_BYTES);
    this.perBlock = options.perBlock ?? !fstatSync(fd).isFile();
    this.ownsDescriptor = options.ownsDescriptor ?? true;
    const interval = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    if (interval > 0 && !this.perBlock) {
      this.timer = setInterval(() => this.flush(), interval);
      this.timer.unref();
    }
  }

  reserve(length: number): boolean {
    if (this.ended) return false;
    if (this.position + length > this.buffer.length) {
      this.flush();
      if (this.ended) return false;
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(length);
    }
    return true;
  }

  commit(length: number): void {
    this.position += length;
    if (this.perBlock) this.flush();
  }

  writeBytes(bytes: Uint8Array): boolean {
    if (!this.reserve(bytes.length)) return false;
    this.buffer.set(bytes, this.position);
    this.commit(bytes.length);
    return !this.ended;
  }

  flush(): void {
    if (this.ended || this.position === 0) return;
    const length = this.position;
    this.position = 0;
    try {
      // A pipe may take part of a write.
      for (let done = 0; done < length; ) done += writeSync(this.fd, this.buffer, done, length - done);
    } catch (error) {
      if (isReaderGone(error)) this.finish('closed');
      else this.finish('error', `writing ${this.label}: ${(error as Error).message}`);
    }
  }

  close(): Promise<void> {
    this.flush();
    this.finish('stopped');
    return Promise.resolve();
  }

  protected released(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.fdOpen && this.ownsDescriptor) {
      this.fdOpen = false;
      try {
        closeSync(this.fd);
      } catch {
        // Already gone with the failed write that ended the sink.
      }
    }
  }
}

export interface StreamSinkOptions {
  /** Non-essential blocks are refused while more than this waits in the stream. Default 4 MiB. */
  maxQueuedBytes?: number;
  /** Blocks are encoded into slabs of this size, each block written as a view of its slab. Default 64 KiB. */
  slabBytes?: number;
  /** `close` ends the stream. Default true; false for process.stdout, which the process keeps. */
  endStream?: boolean;
}

const DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const DEFAULT_SLAB_BYTES = 64 * 1024;

/**
 * A Writable (process.stdout, a socket), written one block at a time. A block goes out as a view
 * of the slab it was encoded in; the sink never writes into bytes it has handed over, it starts a
 * new slab when one is full, and the stream keeps the old one alive until it has sent it.
 */
export class StreamSink extends SinkBase implements CaptureSink {
  buffer: Buffer;
  position = 0;
  private readonly maxQueuedBytes: number;
  private readonly slabBytes: number;
  private readonly endStream: boolean;

  constructor(
    private readonly stream: Writable,
    options: StreamSinkOptions = {},
  ) {
    super();
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.slabBytes = options.slabBytes ?? DEFAULT_SLAB_BYTES;
    this.endStream = options.endStream ?? true;
    this.buffer = Buffer.allocUnsafe(this.slabBytes);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
    if (stream.destroyed || stream.writableEnded) this.finish('closed');
  }

  private readonly onError = (error: Error): void => {
    if (isReaderGone(error)) this.finish('closed');
    else this.finish('error', error.message);
  };

  private readonly onClose = (): void => this.finish('closed');

  reserve(length: number, essential = false): boolean {
    if (this.ended) return false;
    if (!essential && this.stream.writableLength > this.maxQueuedBytes) return false;
    if (this.position + length > this.buffer.length) {
      this.buffer = Buffer.allocUnsafe(Math.max(this.slabBytes, length));
      this.position = 0;
    }
    return true;
  }

  commit(length: number): void {
    const start = this.position;
    this.position += length;
    this.stream.write(this.buffer.subarray(start, this.position));
  }

  writeBytes(bytes: Uint8Array): boolean {
    if (!this.reserve(bytes.length, true)) return false;
    this.buffer.set(bytes, this.position);
    this.commit(bytes.length);
    return true;
  }

  flush(): void {
    // Every block is written when committed.
  }

  close(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.finish('stopped');
    const stream = this.stream;
    return new Promise((resolve) => {
      const done = (): void => {
        stream.off('finish', done);
        stream.off('close', done);
        stream.off('error', done);
        stream.off('drain', done);
        resolve();
      };
      stream.on('error', done);
      stream.on('close', done);
      if (this.endStream) {
        stream.on('finish', done);
        stream.end();
      } else if (stream.writableNeedDrain) {
        stream.on('drain', done);
      } else {
        done();
      }
    });
  }

  protected released(): void {
    this.stream.off('close', this.onClose);
    // The error listener stays: an EPIPE from bytes still queued must not become uncaught.
    this.stream.off('error', this.onError);
    this.stream.on('error', ignoreError);
  }
}

function ignoreError(): void {}

/**
 * The sink for a `-w` target or a `capture:` key: '-' is the process's stdout (a block at a time,
 * left open at the end); anything else is a file path (FileSink.open: batched for a regular file,
 * a block at a time for a FIFO or device). Throws CaptureFileError for a path that cannot be opened.
 */
export function openCaptureSink(target: string, options: FileSinkOptions & StreamSinkOptions = {}): CaptureSink {
  if (target === '-') return new StreamSink(process.stdout, { ...options, endStream: false });
  return FileSink.open(target, options);
}
