/**
 * Where control commands are registered: the control server itself, or one router's set of
 * commands in a lab, which the lab's server reaches by the request's `router` argument.
 */
import type { ControlCommand } from './control-server.ts';

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
