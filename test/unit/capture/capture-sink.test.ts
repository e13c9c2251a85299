import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureFileError, FileSink, StreamSink, openCaptureSink } from '../../../router/deploy/capture/capture-sink.ts';
import { CaptureDirection, CaptureSession } from '../../../router/deploy/capture/capture-session.ts';
import { udpPacket } from '../../support/packets.ts';
import { ManualClock, readBlocks, readPackets } from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'vrouter-capture-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DNS = udpPacket({ src: '10.0.0.1', dst: '10.0.0.2' }, { srcPort: 53, dstPort: 1024, payload: Buffer.from('answer') });
const clock = () => new ManualClock(1_700_000_000_000_000_000n);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('FileSink', () => {
  it('batches blocks and writes them when the batch is full and on close', async () => {
    const path = join(dir, 'batched.pcapng');
    const sink = FileSink.open(path, { batchBytes: 400, flushIntervalMs: 0 });
    const capture = new CaptureSession({ sink, clock: clock() });
    const lan = capture.addInterface('home:lan0');
    capture.packet(lan, CaptureDirection.INBOUND, 1, DNS);
    // SHB 44 + IDB 48 + EPB 92 (a 34-byte packet) = 184 bytes: all still in the batch.
    expect(statSync(path).size).toBe(0);
    for (let id = 2; id <= 4; id++) capture.packet(lan, CaptureDirection.INBOUND, id, DNS);
    // The fourth EPB did not fit after 368 bytes: those went out, the fourth waits.
    expect(statSync(path).size).toBe(368);
    await capture.close();
    expect(statSync(path).size).toBe(460);
    expect(readPackets(readFileSync(path)).map((p) => p.packetId)).toEqual([1, 2, 3, 4]);
  });

  it('flushes the batch on a timer, so a file read while written is current', async () => {
    const path = join(dir, 'timer.pcapng');
    const sink = FileSink.open(path, { flushIntervalMs: 20 });
    const capture = new CaptureSession({ sink, clock: clock() });
    capture.packet(capture.addInterface('home:lan0'), CaptureDirection.INBOUND, 1, DNS);
    expect(statSync(path).size).toBe(0);
    await sleep(80);
    expect(readPackets(readFileSync(path))).toHaveLength(1);
    await capture.close();
  });

  it('names the path when it cannot open it', () => {
    expect(() => FileSink.open(join(dir, 'missing', 'x.pcapng'))).toThrow(CaptureFileError);
    expect(() => openCaptureSink(join(dir, 'missing', 'x.pcapng'))).toThrow(/cannot write the capture file .*missing\/x\.pcapng: ENOENT/);
  });

  it('ends with the error when a write fails (/dev/full: ENOSPC)', async () => {
    const sink = FileSink.open('/dev/full');
    const capture = new CaptureSession({ sink, clock: clock() });
    const end = await capture.done;
    expect(end.reason).toBe('error');
    expect(end.message).toMatch(/^writing \/dev\/full: ENOSPC/);
    expect(() => capture.packet(0, CaptureDirection.INBOUND, 1, DNS)).not.toThrow();
  });

  it('writes each block at once to a FIFO, and ends quietly when its reader goes away', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
    const received: Buffer[] = [];
    reader.stdout.on('data', (chunk: Buffer) => received.push(chunk));
    const sink = FileSink.open(fifo); // waits for cat to open its end
    const capture = new CaptureSession({ sink, clock: clock() });
    const lan = capture.addInterface('home:lan0');
    capture.packet(lan, CaptureDirection.INBOUND, 1, DNS);
    // No batching: the reader has the packet while the capture runs.
    for (let i = 0; i < 50 && readPacketsSafe(Buffer.concat(received)).length < 1; i++) await sleep(10);
    expect(readPacketsSafe(Buffer.concat(received)).map((p) => p.packetId)).toEqual([1]);
    reader.kill();
    await new Promise((resolve) => reader.once('exit', resolve));
    for (let id = 2; !capture.ended && id < 100; id++) capture.packet(lan, CaptureDirection.INBOUND, id, DNS);
    expect(await capture.done).toEqual({ reason: 'closed', message: '' });
  });
});

/** The packets of the whole blocks received so far. */
function readPacketsSafe(bytes: Buffer) {
  let whole = 0;
  while (whole + 8 <= bytes.length && whole + bytes.readUInt32LE(whole + 4) <= bytes.length) whole += bytes.readUInt32LE(whole + 4);
  return readPackets(bytes.subarray(0, whole));
}

/** A stream that takes writes only when `release` is called, recording each chunk it was given. */
class SlowReader extends Writable {
  readonly chunks: Buffer[] = [];
  private pending: (() => void)[] = [];
  constructor() {
    super({ highWaterMark: 1 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    this.pending.push(done);
  }
  /** Lets every write through, including those queued behind the ones it completes. */
  release(): void {
    while (this.pending.length) this.pending.shift()!();
  }
}

describe('StreamSink', () => {
  it('writes every block as its own chunk, straight away', () => {
    const stream = new SlowReader();
    const capture = new CaptureSession({ sink: new StreamSink(stream), clock: clock() });
    const lan = capture.addInterface('home:lan0');
    capture.packet(lan, CaptureDirection.INBOUND, 1, DNS);
    stream.release();
    capture.packet(lan, CaptureDirection.OUTBOUND, 2, DNS);
    stream.release();
    expect(stream.chunks.map((chunk) => readBlocks(chunk).map((block) => block.type))).toEqual([[0x0a0d0d0a], [1], [6], [6]]);
  });

  it('keeps a block it handed over intact while later blocks are encoded', () => {
    const stream = new SlowReader();
    const capture = new CaptureSession({ sink: new StreamSink(stream, { slabBytes: 256 }), clock: clock() });
    const lan = capture.addInterface('home:lan0');
    // Nothing is released: every chunk stays queued while the slabs fill and are replaced.
    for (let id = 1; id <= 20; id++) capture.packet(lan, CaptureDirection.INBOUND, id, DNS);
    stream.release();
    expect(readPackets(Buffer.concat(stream.chunks)).map((p) => p.packetId)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('bounds what waits for a slow reader: drops packets, never the headers, and counts them', () => {
    const stream = new SlowReader();
    const sink = new StreamSink(stream, { maxQueuedBytes: 300 });
    const capture = new CaptureSession({ sink, clock: clock() });
    const lan = capture.addInterface('home:lan0');
    for (let id = 1; id <= 10; id++) capture.packet(lan, CaptureDirection.INBOUND, id, DNS);
    const late = capture.addInterface('pc:eth0');
    expect(stream.writableLength).toBeLessThan(300 + 2 * 84 + 100);
    stream.release();
    capture.packet(lan, CaptureDirection.INBOUND, 11, DNS);
    capture.packet(late, CaptureDirection.INBOUND, 12, DNS);
    stream.release();
    const bytes = Buffer.concat(stream.chunks);
    const written = readPackets(bytes);
    expect(capture.dropped).toBeGreaterThan(0);
    expect(written.map((p) => p.packetId)).toEqual([...Array.from({ length: 10 - capture.dropped }, (_, i) => i + 1), 11, 12]);
    expect(written.find((p) => p.packetId === 11)!.dropCount).toBe(capture.dropped);
    expect(readBlocks(bytes).filter((block) => block.type === 1)).toHaveLength(2);
  });

  it('ends quietly when the stream is closed or breaks with EPIPE, with the message otherwise', async () => {
    const closed = new PassThrough();
    const one = new CaptureSession({ sink: new StreamSink(closed), clock: clock() });
    closed.destroy();
    expect(await one.done).toEqual({ reason: 'closed', message: '' });

    const broken = new PassThrough();
    const two = new CaptureSession({ sink: new StreamSink(broken), clock: clock() });
    broken.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(await two.done).toEqual({ reason: 'closed', message: '' });

    const failing = new PassThrough();
    const three = new CaptureSession({ sink: new StreamSink(failing), clock: clock() });
    failing.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    expect(await three.done).toEqual({ reason: 'error', message: 'disk on fire' });
  });

  it('ends the stream on close unless told to leave it open', async () => {
    const ended = new PassThrough();
    ended.resume();
    await new CaptureSession({ sink: new StreamSink(ended), clock: clock() }).close();
    expect(ended.writableFinished).toBe(true);
    const kept = new PassThrough();
    kept.resume();
    await new CaptureSession({ sink: new StreamSink(kept, { endStream: false }), clock: clock() }).close();
    expect(kept.writableEnded).toBe(false);
  });
});
