/**
 * A lab as the runtime takes it, checked and resolved: segments with their impairments, hosts
 * with their namespaces and interfaces, routers with their specs and which segment each interface
 * is on. The config reader produces it from a lab file, or from a one-router file (a lab with one
 * router and one peer host per interface, in an existing namespace).
 */
import type { Prefix } from '../../core/addresses.ts';
import type { RouterSpec } from '../../stack/build-router.ts';
import type { ControlSocketSpec } from '../control-socket.ts';
import type { ImpairmentSettings } from './impairment.ts';

export interface SegmentSpec {
  name: string;
  impairment: Partial<ImpairmentSettings>;
  /** Seeds the segment's impairments (default: derived from the segment's name). */
  seed: number;
}

export interface HostInterfaceSpec {
  /** The TUN's name in the host's namespace (eth0 by default). */
  name: string;
  segment: string;
  address: Prefix;
  /** The default route's next hop, or 0 for no default route. */
  gateway: number;
  mtu: number;
}

export interface HostSpec {
  name: string;
  /** The namespace the host lives in. */
  netns: string;
  /** Whether the lab makes the namespace (and removes it at the end) or uses an existing one. */
  ownsNetns: boolean;
  interfaces: HostInterfaceSpec[];
}

export interface LabRouterSpec {
  name: string;
  spec: RouterSpec;
  /** By interface, in the order of spec.interfaces: the segment it is attached to. */
  segments: string[];
}

export interface LabSpec {
  /** Namespaces made for hosts are `<name>-<host>`. */
  name: string;
  file: string;
  control: ControlSocketSpec;
  /** A pcapng file every packet of the lab is captured to while it runs (`capture:`), or null. */
  capture: string | null;
  segments: SegmentSpec[];
  hosts: HostSpec[];
  routers: LabRouterSpec[];
}

/** A seed from a name, so that an unseeded segment still repeats from run to run. */
export function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
