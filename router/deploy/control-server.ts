/**
 * The control socket: a Unix stream socket speaking JSON lines. A client sends one request line
 * `{"command": "...", "args": {...}}`; the handler answers with one or more lines
 * `{"ok": true, "result": ...}` / `{"ok": false, "error": "...", "code": "..."}` (the code of the
 * error the handler threw, when it has one, e.g. EVROUTERRULES for refused rules). Streaming commands (event
 * listeners) keep the connection open and send a line per event until the client goes away.
 * Commands come from an explicit registry, so each module adds its own.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import type { Writable } from 'node:stream';

export interface ControlReply {
  send(result: unknown): void;
  fail(message: string, code?: string): void;
  /** Closes the connection; for one-shot commands `send` already does. */
  end(): void;
  /** Called when the client disconnects; streaming handlers unsubscribe here. */
  onClose(listener: () => void): void;
  /**
   * The connection itself, for a stream of bytes after the reply line (a capture's pcapng):
   * nothing more is framed as JSON lines on it.
   */
  raw(): Writable;
}

/** A one-shot handler returns its result (or throws a message); a streaming one returns nothing and uses `reply`. */
export type ControlHandler = (args: Record<string, unknown>, reply: ControlReply) => unknown;

export interface ControlCommand {
  handler: ControlHandler;
  streaming?: boolean;
}

const MAX_REQUEST_BYTES = 1 << 20;

export class ControlServer {
  private readonly commands = new Map<string, ControlCommand>();
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(readonly path: string) {}

  register(name: string, command: ControlCommand): void {
    if (this.commands.has(name)) throw new Error(`control command ${name} registered twice`);
    this.commands.set(name, command);
  }

  /** Refuses to take over a socket another live router answers on; removes a stale one. */
  static async claimPath(path: string): Promise<void> {
    if (!existsSync(path)) return;
    const live = await new Promise<boolean>((resolve) => {
      const probe = createConnection(path);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (live) throw new Error(`control socket ${path} is in use by another running router`);
    unlinkSync(path);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.accept(socket));
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        this.server = server;
        resolve();
      });
    });
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server?.close();
    this.server = null;
    if (existsSync(this.path)) unlinkSync(this.path);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    let buffered = '';
    let handled = false;
    const closeListeners: (() => void)[] = [];
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const listener of closeListeners) listener();
    });
    socket.on('error', () => socket.destroy());
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (handled) return;
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) return socket.destroy();
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      handled = true;
      this.dispatch(buffered.slice(0, newline), socket, closeListeners);
    });
  }

  private dispatch(line: string, socket: Socket, closeListeners: (() => void)[]): void {
    const write = (message: unknown): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
    };
    const reply: ControlReply = {
      send: (result) => write({ ok: true, result }),
      fail: (error, code) => write(code === undefined ? { ok: false, error } : { ok: false, error, code }),
      end: () => socket.end(),
      onClose: (listener) => closeListeners.push(listener),
      raw: () => socket,
    };
    let request: { command?: unknown; args?: unknown };
    try {
      request = JSON.parse(line) as typeof request;
    } catch {
      reply.fail('request is not JSON');
      return reply.end();
    }
    const command = typeof request.command === 'string' ? this.commands.get(request.command) : undefined;
    if (!command) {
      reply.fail(`unknown command ${JSON.stringify(request.command)} (known: ${[...this.commands.keys()].join(', ')})`);
      return reply.end();
    }
    const args = (request.args && typeof request.args === 'object' ? request.args : {}) as Record<string, unknown>;
    try {
      const result = command.handler(args, reply);
      if (!command.streaming) {
        reply.send(result);
        reply.end();
      }
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      reply.fail((error as Error).message, typeof code === 'string' ? code : undefined);
      reply.end();
    }
  }
}
