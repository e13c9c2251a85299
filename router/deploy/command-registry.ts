/**
 * Control commands and where they are registered: the control server itself, or one router's set
 * of commands in a lab, which the lab's server reaches by the request's `router` argument.
 *
 * A command declares its arguments (control-args.ts); the server checks a request against them
 * before the handler runs, so a handler never sees a value of the wrong type or range.
 */
import type { Writable } from 'node:stream';
import type { ArgSpec, ArgsOf } from './control-args.ts';

export interface ControlReply {
  send(result: unknown): void;
  /** `code`: the error's code (EVROUTERRULES for refused rules), passed on to the client. */
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
  readonly args: ArgSpec;
  /** Only ever called with arguments that passed `args`. */
  readonly handler: ControlHandler;
  /** Sends a line per event until the client goes away (the server bounds what waits for it). */
  readonly streaming?: boolean;
}

/** A command whose handler gets its arguments typed as `args` declares them. */
export function defineCommand<S extends ArgSpec>(args: S, handler: (args: ArgsOf<S>, reply: ControlReply) => unknown, options: { streaming?: boolean } = {}): ControlCommand {
  return { args, handler: handler as ControlHandler, ...(options.streaming ? { streaming: true } : {}) };
}

export interface CommandRegistry {
  register(name: string, command: ControlCommand): void;
}

export class CommandSet implements CommandRegistry {
  readonly commands = new Map<string, ControlCommand>();

  register(name: string, command: ControlCommand): void {
    if (this.commands.has(name)) throw new Error(`control command ${name} registered twice`);
    this.commands.set(name, command);
  }
}
