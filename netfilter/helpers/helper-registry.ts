/**
 * The helpers this router knows, by name (`CT --helper NAME`) and, only for the optional automatic
 * assignment, by protocol and port. An explicit registry: helpers are added by the code that
 * builds the router, never by importing a module.
 */
import type { ConntrackHelper } from './helper.ts';

export class HelperRegistry {
  private readonly byName = new Map<string, ConntrackHelper>();

  register(helper: ConntrackHelper): void {
    if (this.byName.has(helper.name)) throw new Error(`helper ${helper.name} registered twice`);
    this.byName.set(helper.name, helper);
  }

  get(name: string): ConntrackHelper | null {
    return this.byName.get(name) ?? null;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The helper serving `port` of `protocol` (the server's side of the connection), if any. */
  byPort(protocol: number, port: number): ConntrackHelper | null {
    for (const helper of this.byName.values()) if (helper.protocol === protocol && helper.ports.includes(port)) return helper;
    return null;
  }
}
