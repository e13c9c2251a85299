/**
 * One client of the control socket, with everything it can make the router hold bounded:
 *
 *   - the request line: at most `maxRequestBytes`, and it must arrive within `idleTimeoutMs` of
 *     connecting (trickling bytes does not extend it); otherwise an error line, then close;
 *   - a one-shot reply: the client must keep reading it (no progress for `idleTimeoutMs`: closed);
 *   - a streaming reply (an event listener): no timeout, but at most `maxQueuedBytes` of lines
 *     wait for it. Past that, events are dropped and counted; once it catches up it first gets
 *     an ENOBUFS line with the number lost, as a netlink listener whose receive buffer overran
 *     gets ENOBUFS from its next recv, and then the events that follow.
 */
import type { Socket } from 'node:net';
import type { ControlReply } from './command-registry.ts';

export interface ControlLimits {
  /** Longest request line, in bytes. */
  maxRequestBytes: number;
  /** Clients connected at once; one more is told so and closed. */
  maxClients: number;
  /** ms a client has to send its request line, and the most a one-shot reply may stall. */
  idleTimeoutMs: number;
  /** Bytes of lines that may wait for a streaming client before events are dropped. */
  maxQueuedBytes: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  maxRequestBytes: 1 << 20,
  maxClients: 32,
  idleTimeoutMs: 10_000,
  maxQueuedBytes: 1 << 20,
};

/** Where a connection hands its request line, once it has one. */
export type RequestHandler = (line: string, connection: ControlConnection) => void;

const NEWLINE = 0x0a;

export class ControlConnection {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private requested = false;
  private streaming = false;
  /** Events dropped since the listener last caught up. */
  private lost = 0;
  private readonly closeListeners: (() => void)[] = [];
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly limits: ControlLimits,
    private readonly onRequest: RequestHandler,
  ) {
    socket.on('close', () => {
      clearTimeout(this.deadline);
      for (const listener of this.closeListeners) listener();
    });
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('drain', () => this.reportLost());
    this.deadline = setTimeout(() => this.refuse(`no request line within ${limits.idleTimeoutMs} ms`), limits.idleTimeoutMs);
  }

  /** The reply for a one-shot command (`streaming` false) or an event listener. */
  reply(streaming: boolean): ControlReply {
    this.streaming = streaming;
    if (!streaming) {
      this.socket.setTimeout(this.limits.idleTimeoutMs, () => this.socket.destroy());
    }
    return {
      send: (result) => (streaming ? this.sendEvent(result) : this.write({ ok: true, result })),
      fail: (error, code) => this.write(code === undefined ? { ok: false, error } : { ok: false, error, code }),
      end: () => this.socket.end(),
      onClose: (listener) => this.closeListeners.push(listener),
      raw: () => this.socket,
    };
  }

  /** An error line, then the connection is closed (what else the client sends is not read). */
  refuse(message: string): void {
    clearTimeout(this.deadline);
    this.requested = true;
    this.write({ ok: false, error: message });
    this.socket.end(() => this.socket.destroy());
  }

  private read(chunk: Buffer): void {
    if (this.requested) return;
    const newline = chunk.indexOf(NEWLINE);
    const taken = newline < 0 ? chunk.length : newline;
    if (this.buffered + taken > this.limits.maxRequestBytes) return this.refuse(`request line longer than ${this.limits.maxRequestBytes} bytes`);
    this.chunks.push(newline < 0 ? chunk : chunk.subarray(0, newline));
    this.buffered += taken;
    if (newline < 0) return;
    clearTimeout(this.deadline);
    this.requested = true;
    const line = Buffer.concat(this.chunks, this.buffered).toString('utf8');
    this.chunks.length = 0;
    this.onRequest(line, this);
  }

  private sendEvent(result: unknown): void {
    if (this.socket.writableLength >= this.limits.maxQueuedBytes) {
      this.lost++;
      return;
    }
    this.reportLost();
    this.write({ ok: true, result });
  }

  private reportLost(): void {
    if (!this.streaming || this.lost === 0) return;
    const lost = this.lost;
    this.lost = 0;
    this.write({ ok: false, errno: 'ENOBUFS', lost, error: `${lost} events lost: this listener fell behind (at most ${this.limits.maxQueuedBytes} bytes wait for it)` });
  }

  private write(message: unknown): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (error) {
      text = JSON.stringify({ ok: false, error: `internal error: the reply cannot be sent: ${(error as Error).message}` });
    }
    this.socket.write(`${text}\n`);
  }
}
