/**
 * What watches a router's packets while someone looks (a capture, a trace): told of each datagram
 * as it arrives, each one that leaves, and each one that goes no further. The router holds at most
 * one, null while nobody looks, so looking costs nothing when off (one null check per event).
 *
 * Calls are on the packet path: an observer copies what it keeps and throws nothing.
 */
import type { RouterInterface } from './interfaces.ts';
import type { Packet } from './packet.ts';
import type { DropReason } from './stats.ts';

export interface PacketObserver {
  /** A datagram as it arrived on `link`, before any check; its Packet will carry `packetId`. */
  received(link: RouterInterface, buf: Uint8Array, packetId: number): void;
  /** A datagram (or one of its fragments) leaving by `link`, as it leaves. */
  transmitted(link: RouterInterface, buf: Uint8Array, packetId: number): void;
  /**
   * A datagram that went no further, as it was then: `link` is where it came in (for one the
   * router made, where it was routed, if it was), `origin` what decided a hook's DROP (a rule, a
   * policy) when known.
   */
  dropped(link: RouterInterface | null, buf: Uint8Array, packetId: number, reason: DropReason, origin: string | null): void;
}

/**
 * A `vrouter trace`: picks the packets to follow (its filter, on each datagram that arrives or
 * that the router makes) and takes one line per step of a traced packet: each hook op with its
 * priority and verdict, each rule it meets (TRACE lines), and its fate.
 */
export interface PacketTracer {
  wants(buf: Uint8Array): boolean;
  line(packet: Packet, text: string): void;
}
