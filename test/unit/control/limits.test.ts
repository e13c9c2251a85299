/**
 * What a control client can make the router hold is bounded (issue 12, item 4): the request line,
 * the time to send it, the number of clients, and the lines waiting for an event listener that
 * stopped reading, which loses events and is told so (ENOBUFS), as a netlink listener is.
 */
import { createConnection, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { udpPacket } from '../../support/packets.ts';
import { exchange, startTestControl, type ReplyLine, type TestControl } from './support.ts';

let control: TestControl | undefined;

afterEach(() => {
  control?.close();
  control = undefined;
});

/** A connection whose lines are kept as they arrive; `waitFor` resolves once `done(lines)` holds. */
class LineClient {
  readonly lines: (ReplyLine & { errno?: string; lost?: number })[] = [];
  closed = false;
  private text = '';
  private waiters: (() => void)[] = [];
  readonly socket: Socket;

  constructor(path: string, request?: string) {
    this.socket = createConnection(path);
    this.socket.setEncoding('utf8');
    if (request !== undefined) this.socket.on('connect', () => this.socket.write(request));
    this.socket.on('data', (chunk: string) => {
      this.text += chunk;
      let newline: number;
      while ((newline = this.text.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(this.text.slice(0, newline)) as ReplyLine);
        this.text = this.text.slice(newline + 1);
      }
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  waitFor(done: (client: LineClient) => boolean, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; lines so far: ${JSON.stringify(this.lines.slice(-3))}`)), timeoutMs);
      const check = (): void => {
        if (done(this)) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** New UDP flows from lan, `perTurn` at a time with the event loop running in between. */
async function newFlows(target: TestControl, first: number, count: number, perTurn = 100): Promise<void> {
  for (let i = 0; i < count; i++) {
    const n = first + i;
    target.receive('lan', udpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { srcPort: 1024 + (n % 60000), dstPort: 1 + Math.floor(n / 60000) }));
    if (i % perTurn === perTurn - 1) await turn();
  }
  await turn();
}

/** Sends probe flows until the listener shows it subscribed; returns the next flow number. */
async function subscribed(target: TestControl, listener: LineClient): Promise<number> {
  let next = 0;
  while (listener.lines.length === 0) {
    await newFlows(target, next++, 1, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return next;
}

const EVENTS_REQUEST = '{"command":"conntrack-events","args":{"events":["NEW"]}}\n';

describe('control socket limits', () => {
  it('a listener that keeps reading gets every event', async () => {
    control = await startTestControl({ maxQueuedBytes: 16 * 1024 });
    const listener = new LineClient(control.path, EVENTS_REQUEST);
    const next = await subscribed(control, listener);
    const base = listener.lines.length;
    await newFlows(control, next, 5_000);
    await listener.waitFor((c) => c.lines.length === base + 5_000);
    expect(listener.lines.every((line) => line.ok)).toBe(true);
  });

  it('a listener that stops reading loses events past the bound, then is told how many (ENOBUFS) and gets the rest', async () => {
    const bound = 16 * 1024;
    control = await startTestControl({ maxQueuedBytes: bound });
    const listener = new LineClient(control.path, EVENTS_REQUEST);
    const next = await subscribed(control, listener);
    const base = listener.lines.length;
    listener.socket.pause();
    const stalled = 10_000;
    await newFlows(control, next, stalled);
    listener.socket.resume();
    await listener.waitFor((c) => c.lines.some((line) => line.errno === 'ENOBUFS'));
    const at = listener.lines.findIndex((line) => line.errno === 'ENOBUFS');
    const notice = listener.lines[at]!;
    expect(notice).toMatchObject({ ok: false, errno: 'ENOBUFS', error: expect.stringMatching(/^\d+ events lost: this listener fell behind/) });
    // Every event made while it stalled was either delivered or counted as lost.
    expect(at - base + notice.lost!).toBe(stalled);
    // What waited for it: the bound, plus what the kernel's socket buffers held.
    const waited = listener.lines.slice(base, at).reduce((bytes, line) => bytes + JSON.stringify(line).length + 1, 0);
    expect(waited).toBeLessThan(bound + 512 * 1024);
    expect(notice.lost!).toBeGreaterThan(stalled / 2);
    // After the notice, events flow again.
    await newFlows(control, next + stalled, 10);
    await listener.waitFor((c) => c.lines.length === at + 11);
    expect(listener.lines.slice(at + 1).every((line) => line.ok && String(line.result).startsWith('    [NEW] udp'))).toBe(true);
    expect(listener.closed).toBe(false);
  });

  it('refuses a request line longer than the bound, and closes', async () => {
    control = await startTestControl({ maxRequestBytes: 4096 });
    const replies = await exchange(control.path, Buffer.alloc(8192, 'x'));
    expect(replies).toEqual([{ ok: false, error: 'request line longer than 4096 bytes' }]);
    // A request just inside the bound is answered.
    const padded = `{"command":"stats","args":{"router":"r1"}${' '.repeat(4000)}}\n`;
    expect((await exchange(control.path, padded)).map((reply) => reply.ok)).toEqual([true]);
  });

  it('closes a client that sends no request line in time, but not a listener that subscribed', async () => {
    control = await startTestControl({ idleTimeoutMs: 200 });
    const silent = new LineClient(control.path);
    const trickling = new LineClient(control.path);
    const listener = new LineClient(control.path, EVENTS_REQUEST);
    const trickle = setInterval(() => trickling.socket.write(' '), 50);
    await silent.waitFor((c) => c.closed, 3000);
    await trickling.waitFor((c) => c.closed, 3000);
    clearInterval(trickle);
    expect(silent.lines).toEqual([{ ok: false, error: 'no request line within 200 ms' }]);
    expect(trickling.lines).toEqual([{ ok: false, error: 'no request line within 200 ms' }]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(listener.closed).toBe(false);
    await subscribed(control, listener);
  });

  it('drops a client that stops reading its one-shot reply', async () => {
    control = await startTestControl({ maxClients: 1, idleTimeoutMs: 200 });
    const stalled = new LineClient(control.path, '{"command":"stats"}\n');
    stalled.socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await exchange(control.path, '{"command":"stats"}\n')).toEqual([{ ok: false, error: 'too many control clients (at most 1 at once)' }]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await exchange(control.path, '{"command":"stats"}\n')).map((reply) => reply.ok)).toEqual([true]);
    stalled.socket.destroy();
  });

  it('takes at most maxClients at once; one more is told so', async () => {
    control = await startTestControl({ maxClients: 3 });
    const held = [new LineClient(control.path), new LineClient(control.path), new LineClient(control.path, EVENTS_REQUEST)];
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await exchange(control.path, '{"command":"stats"}\n')).toEqual([{ ok: false, error: 'too many control clients (at most 3 at once)' }]);
    held[0]!.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await exchange(control.path, '{"command":"stats"}\n')).map((reply) => reply.ok)).toEqual([true]);
    for (const client of held) client.socket.destroy();
  });
});
