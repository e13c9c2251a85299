/**
 * The control socket: a Unix stream socket speaking JSON lines. A client sends one request line
 * `{"command": "...", "args": {...}}`; the handler answers with one or more lines
 * `{"ok": true, "result": ...}` / `{"ok": false, "error": "...", "code": "..."}` (the code of the
 * error the handler threw, when it has one, e.g. EVROUTERRULES for refused rules). Streaming commands (event
 * listeners) keep the connection open and send a line per event until the client goes away.
 * Commands come from an explicit registry, so each module adds its own.
 *
 * Whatever a client sends, the answer is a reply: a line that is not JSON, not a request object,
 * names no known command or carries arguments the command does not declare is refused with an
 * error line, and a handler's exception becomes one too. Nothing a client sends reaches the
 * event loop as an exception.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import { ControlArgumentError, checkArgs, optional, stringArg } from './control-args.ts';
import type { ControlCommand, ControlReply } from './command-registry.ts';

// Where callers have always found them.
export type { ControlCommand, ControlHandler, ControlReply } from './command-registry.ts';

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
      if (socket.destroyed) return;
      let text: string;
      try {
        text = JSON.stringify(message);
      } catch (error) {
        text = JSON.stringify({ ok: false, error: `internal error: the reply cannot be sent: ${messageOf(error)}` });
      }
      socket.write(`${text}\n`);
    };
    const reply: ControlReply = {
      send: (result) => write({ ok: true, result }),
      fail: (error, code) => write(code === undefined ? { ok: false, error } : { ok: false, error, code }),
      end: () => socket.end(),
      onClose: (listener) => closeListeners.push(listener),
      raw: () => socket,
    };
    let command: ControlCommand;
    let args: Record<string, unknown>;
    try {
      ({ command, args } = this.parseRequest(line));
    } catch (error) {
      reply.fail(messageOf(error));
      return reply.end();
    }
    try {
      const result = command.handler(args, reply);
      if (!command.streaming) {
        reply.send(result);
        reply.end();
      }
    } catch (error) {
      reply.fail(messageOf(error), codeOf(error));
      reply.end();
    }
  }

  /** The command a request line names and its checked arguments; throws ControlArgumentError. */
  parseRequest(line: string): { command: ControlCommand; args: Record<string, unknown> } {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch (error) {
      throw new ControlArgumentError(`request is not JSON: ${messageOf(error)}`);
    }
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      throw new ControlArgumentError(`a request is a JSON object {"command": NAME, "args": {...}} (got ${line.length > 60 ? `${line.slice(0, 60)}...` : line})`);
    }
    const { command: name, args } = checkArgs(REQUEST, request, 'request');
    const command = this.commands.get(name);
    if (!command) throw new ControlArgumentError(`unknown command ${JSON.stringify(name)} (known: ${[...this.commands.keys()].join(', ')})`);
    return { command, args: checkArgs(command.args, args, 'args') };
  }
}

/** A request line: `{"command": NAME, "args": {...}}`; the arguments are checked by the command. */
const REQUEST = { command: stringArg, args: optional((value: unknown) => value) };

/** The code of a handler's error (EVROUTERRULES: refused rules), for the client to act on. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
