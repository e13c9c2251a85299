/**
 * The packet path through a table: the kernel's ipt_do_table. Built-in chain, rules in order;
 * a rule's IP part, then its matches (a HOTDROP drops the packet at once); on a match, the rule's
 * counters, then its target. -j pushes (a recursive walk), -g replaces the current chain (so the
 * chain it reaches returns to the last -j), RETURN or the end of a chain goes back to the caller,
 * and at the top level to the built-in chain's policy, whose counters then move.
 *
 * Reads the packet in place, allocates nothing, throws nothing. Re-entrant: REJECT sends a packet
 * that walks the tables again before the walk that rejected returns.
 */
import type { Packet } from '../../router/core/packet.ts';
import { IPV4_FRAGMENT_OFFSET_MASK, ipv4Dst, ipv4FlagsFragment, ipv4HeaderLength, ipv4Protocol, ipv4Src, ipv4TotalLength } from '../../router/wire/ipv4.ts';
import { Verdict, type HookPoint } from '../../router/core/hooks.ts';
import { CONTINUE, MatchResult } from './extension.ts';
import { Fragment, RuleKind, type Chain, type IpHeaderMatch, type LoadedTable, type Rule } from './ruleset.ts';
import { formatLogLine } from './targets/log-format.ts';
import { hookHasInput, hookHasOutput } from './tables.ts';

/** A walk that fell off the end of its chain or hit RETURN. */
const RETURN_TO_CALLER = -2;

/** Where the TRACE lines of a traced packet go. */
export type TraceSink = (packet: Packet, line: string) => void;

export function runTable(table: LoadedTable, hook: HookPoint, packet: Packet, trace: TraceSink | null = null): Verdict {
  const chain = table.builtin[hook]!;
  const buf = packet.buf;
  const thoff = ipv4HeaderLength(buf, 0);
  const fragoff = ipv4FlagsFragment(buf, 0) & IPV4_FRAGMENT_OFFSET_MASK;
  const length = ipv4TotalLength(buf, 0);
  const input = hookHasInput(hook) ? packet.inInterface : null;
  const output = hookHasOutput(hook) ? packet.outInterface : null;
  const counters = table.counters;
  const verdict = walk(chain, packet, hook, thoff, fragoff, length, input ? input.name : '', output ? output.name : '', counters, trace);
  if (verdict !== RETURN_TO_CALLER) return verdict as Verdict;
  counters[chain.policyCounter] += 1;
  counters[chain.policyCounter + 1] += length;
  // As skb->nf_trace, read where each line would go: a TRACE rule earlier in this walk counts.
  if (packet.traced && trace !== null) traceLine(trace, packet, hook, chain.policyOrigin);
  if (chain.policy === Verdict.DROP) packet.dropOrigin = chain.policyOrigin;
  return chain.policy;
}

function walk(
  start: Chain,
  packet: Packet,
  hook: HookPoint,
  thoff: number,
  fragoff: number,
  length: number,
  inName: string,
  outName: string,
  counters: Float64Array,
  trace: TraceSink | null,
): number {
  let chain = start;
  let rules = chain.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (!ipMatches(rule.ip, packet.buf, inName, outName, fragoff)) continue;
    const matches = rule.matches;
    let result: MatchResult = MatchResult.YES;
    for (let m = 0; m < matches.length && result === MatchResult.YES; m++) result = matches[m]!.test(packet, thoff, fragoff);
    if (result === MatchResult.HOTDROP) return dropBy(packet, rule);
    if (result === MatchResult.NO) continue;
    counters[rule.counter] += 1;
    counters[rule.counter + 1] += length;
    if (packet.traced && trace !== null) traceLine(trace, packet, hook, rule.origin);
    switch (rule.kind) {
      case RuleKind.NONE:
        continue;
      case RuleKind.VERDICT:
        return rule.verdict === Verdict.DROP ? dropBy(packet, rule) : rule.verdict;
      case RuleKind.RETURN:
        return RETURN_TO_CALLER;
      case RuleKind.JUMP: {
        const verdict = walk(rule.chain!, packet, hook, thoff, fragoff, length, inName, outName, counters, trace);
        if (verdict !== RETURN_TO_CALLER) return verdict;
        continue;
      }
      case RuleKind.GOTO:
        chain = rule.chain!;
        rules = chain.rules;
        i = -1;
        continue;
      default: {
        const verdict = rule.target!.run(packet, hook);
        if (verdict === Verdict.DROP) return dropBy(packet, rule);
        if (verdict !== CONTINUE) return verdict;
      }
    }
  }
  // Off the end of a user chain: the kernel traces the implicit return (a built-in's is its policy).
  if (packet.traced && trace !== null && chain.hook === -1) traceLine(trace, packet, hook, chain.returnOrigin);
  return RETURN_TO_CALLER;
}

/** `TRACE: filter:FORWARD:rule:2 ` and the LOG fields, as nf_log_trace prints them. */
function traceLine(trace: TraceSink, packet: Packet, hook: HookPoint, origin: string): void {
  const space = origin.indexOf(' ');
  trace(packet, formatLogLine(`TRACE: ${space < 0 ? origin : origin.slice(0, space)} `, 0, packet, hook));
}

function dropBy(packet: Packet, rule: Rule): Verdict {
  packet.dropOrigin = rule.origin;
  return Verdict.DROP;
}

/** ip_packet_match: each test XOR its inversion. */
function ipMatches(ip: IpHeaderMatch, buf: Buffer, inName: string, outName: string, fragoff: number): boolean {
  if ((((ipv4Src(buf, 0) & ip.srcMask) >>> 0) === ip.src) === ip.invertSrc) return false;
  if ((((ipv4Dst(buf, 0) & ip.dstMask) >>> 0) === ip.dst) === ip.invertDst) return false;
  if (ip.inName !== null && (ip.inWildcard ? inName.startsWith(ip.inName) : inName === ip.inName) === ip.invertIn) return false;
  if (ip.outName !== null && (ip.outWildcard ? outName.startsWith(ip.outName) : outName === ip.outName) === ip.invertOut) return false;
  if (ip.protocol !== 0 && (ipv4Protocol(buf, 0) === ip.protocol) === ip.invertProtocol) return false;
  if (ip.fragment === Fragment.NON_FIRST) return fragoff !== 0;
  if (ip.fragment === Fragment.NOT_NON_FIRST) return fragoff === 0;
  return true;
}
