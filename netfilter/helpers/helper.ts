/**
 * A conntrack helper (struct nf_conntrack_helper): reads an application protocol's payload on
 * connections it is attached to and creates expectations for the connections that protocol will
 * open. The NAT half of a helper (under nat/) rewrites the payload through `natHook`.
 */
import type { Conntrack } from '../conntrack/conntrack-entry.ts';
import type { Verdict } from '../../router/core/hooks.ts';
import type { Packet } from '../../router/core/packet.ts';

export interface ExpectationPolicy {
  /** Most live expectations of this class per master; 0 means 255, as in the kernel. */
  maxExpected: number;
  /** Seconds an expectation lives. */
  timeout: number;
  name: string;
}

export interface ConntrackHelper {
  /** As rules name it (`CT --helper ftp`) and listings show it (`helper=ftp`). */
  readonly name: string;
  readonly protocol: number;
  /** Ports for automatic assignment, which is off unless the config turns it on. */
  readonly ports: readonly number[];
  readonly policies: readonly ExpectationPolicy[];
  /**
   * Called for packets of connections this helper is attached to, at priority 300 after NAT.
   * `l4Offset` points at the L4 header. Returns ACCEPT or DROP. May throw: the framework catches
   * it and applies `faultVerdict`.
   */
  help(packet: Packet, entry: Conntrack, ctinfo: number, l4Offset: number): Verdict;
  /** Releases per-connection state when the connection is destroyed. */
  destroy?(entry: Conntrack): void;
  /** Verdict for a packet whose help() threw: ACCEPT unless configured otherwise. */
  faultVerdict?: Verdict;
}
