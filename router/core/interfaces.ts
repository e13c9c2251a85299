/**
 * A router's interfaces: a name, its own address on the link, the link's prefix and MTU, and the
 * device it sends through (a TUN in a namespace, a lab segment's port, a test link).
 */
import type { Device } from './device.ts';

export interface RouterInterface {
  /** Position in the router's interface list; also the index rules use internally. */
  readonly index: number;
  /** The name used in rules (`-i`/`-o`) and, for a TUN, the device's name in its namespace. */
  readonly name: string;
  /** The router's own address on this link, and the link's prefix. */
  readonly address: number;
  readonly prefixLength: number;
  readonly mtu: number;
  device: Device | null;
  /** False once the device went away (its namespace was deleted): nothing is sent through it. */
  up: boolean;
}
