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
 * event loop as an exception. What a client can make the router hold is bounded: the number of
 * clients here, the request line, time and queued output per client in control-connection.ts.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import { applySocketAccess, bindOwnerOnly, checkSocketFile, controlSocketAt, prepareSocketDirectory, type ControlSocketSpec } from './control-socket.ts';
import { ControlArgumentError, checkArgs, optional, stringArg } from './control-args.ts';
import type { ControlCommand } from './command-registry.ts';
import { ControlConnection, DEFAULT_CONTROL_LIMITS, type ControlLimits } from './control-connection.ts';

// Where callers have always found them.
export type { ControlCommand, ControlHandler, ControlReply } from './command-registry.ts';

export class ControlServer {
  private readonly commands = new Map<string, ControlCommand>();
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  readonly spec: ControlSocketSpec;

  /** `socket`: a path (mode 0600, the router's group) or the config's `{ path, group, mode }`. */
  constructor(
    socket: string | ControlSocketSpec,
    private readonly limits: ControlLimits = DEFAULT_CONTROL_LIMITS,
  ) {
    this.spec = typeof socket === 'string' ? controlSocketAt(socket) : socket;
  }

  get path(): string {
    return this.spec.path;
  }

  register(name: string, command: ControlCommand): void {
    if (this.commands.has(name)) throw new Error(`control command ${name} registered twice`);
    this.commands.set(name, command);
  }

  /**
   * Makes the socket's directory if missing; refuses a directory or socket others could have put
   * there (control-socket.ts), and a socket another live router answers on; removes a stale one.
   */
  static async claim(spec: ControlSocketSpec): Promise<void> {
    prepareSocketDirectory(spec);
    const path = spec.path;
    if (!checkSocketFile(path)) return;
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
      bindOwnerOnly(() => server.listen(this.path, () => {
        server.off('error', reject);
        try {
          applySocketAccess(this.spec);
        } catch (error) {
          server.close();
          return reject(error as Error);
        }
        // Accepting can fail later (EMFILE); the clients already connected go on.
        server.on('error', () => {});
        this.server = server;
        resolve();
      }));
    });
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server?.close();
    this.server = null;
    if (existsSync(this.path)) unlinkSync(this.path);
  }

  private accept(socket: Socket): void {
    const connection = new ControlConnection(socket, this.limits, (line) => this.dispatch(line, connection));
    if (this.sockets.size >= this.limits.maxClients) return connection.refuse(`too many control clients (at most ${this.limits.maxClients} at once)`);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private dispatch(line: string, connection: ControlConnection): void {
    let command: ControlCommand;
    let args: Record<string, unknown>;
    try {
      ({ command, args } = this.parseRequest(line));
    } catch (error) {
      return connection.refuse(messageOf(error));
    }
    const reply = connection.reply(command.streaming === true);
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
  private parseRequest(line: string): { command: ControlCommand; args: Record<string, unknown> } {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch (error) {
      throw new ControlArgumentError(`request is not JSON: ${messageOf(error)}`);
    }
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      throw new ControlArgumentError(`a request is a JSON object {"command": NAME, "args": {...}} (got ${shortened(line)})`);
    }
    const { command: name, args } = checkArgs(REQUEST, request, 'request');
    const command = this.commands.get(name);
    if (!command) throw new ControlArgumentError(`unknown command ${shortened(JSON.stringify(name))} (known: ${[...this.commands.keys()].join(', ')})`);
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

/** At most 60 characters of what a client sent, for an error line. */
function shortened(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
